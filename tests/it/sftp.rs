//! The SFTP transport against a real in-process server: russh's SSH server with a russh-sftp
//! handler over a tempdir, on its own thread and runtime, with a freshly generated ed25519 host
//! key. Final names only after a size-checked rename, the host key pinned, reconciliation after
//! a crash, and the faults the caller must tell apart (down, hung, wrong key, wrong password,
//! refused file).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use factord::config::{FtpProtocol, FtpSettings, FtpTls};
use factord::providers::batch::ProviderError;
use factord::providers::ftp::FtpTransport;
use factord::providers::layout::{BatchFile, batch_files};
use factord::providers::outbox::Found;
use factord::providers::sftp::SftpTransport;

use crate::fakes::{accepted, sample_batch as batch};
use russh::keys::HashAlg;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version};
use secrecy::SecretString;
use sha2::Digest;

const USER: &str = "acme";
const PASSWORD: &str = "s3cret-Pa55word";
const CSV: &str = "acme-east_20261130_7_3f9a0c2e.csv";
const ZIP: &str = "acme-east_20261130_7_3f9a0c2e.zip";
/// The packets of the sample batch: `<invoice>_<uid8>.pdf`.
const P1: &str = "AE-1_3f9a0c2e.pdf";
const P2: &str = "AE-2_3f9a0c2e.pdf";

/// Short enough that a hung test fails fast, long enough for a loaded CI machine.
fn transport(settings: &FtpSettings) -> SftpTransport<'_> {
    SftpTransport::new(settings).with_timeouts(
        Duration::from_secs(10),
        Duration::from_secs(10),
        Duration::from_secs(30),
    )
}

fn settings(port: u16, host_key_sha256: &str, password: &str) -> FtpSettings {
    FtpSettings {
        protocol: FtpProtocol::Sftp,
        host: "127.0.0.1".into(),
        port,
        username: USER.into(),
        password: Some(SecretString::from(password)),
        directory: "/incoming".into(),
        tls: FtpTls::None,
        host_key_sha256: Some(host_key_sha256.to_string()),
    }
}

// --- host keys ----------------------------------------------------------------------------

/// A new ed25519 key: its seed is a hash of the process, the time and a counter.
fn generate_host_key() -> russh::keys::PrivateKey {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let noise = format!("{}:{nanos}:{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let seed: [u8; 32] = sha2::Sha256::digest(noise.as_bytes()).into();
    russh::keys::PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// `SHA256:<base64>`, as `ssh-keygen -lf` prints it.
fn fingerprint(key: &russh::keys::PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

// --- the server -----------------------------------------------------------------------------

/// What the server did to files, in order; names relative to the root.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// Opened for writing (created or truncated).
    Write(String),
    Rename {
        from: String,
        to: String,
    },
    Remove(String),
}

/// How the server misbehaves.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Opening a file for writing answers "permission denied".
    deny_writes: bool,
    /// Every rename answers "permission denied".
    deny_renames: bool,
    /// Stat reports temp files one byte short: a server that lost bytes.
    short_temp_files: bool,
}

#[derive(Default)]
struct Record {
    events: Mutex<Vec<Event>>,
    /// Every password attempt's user name, and whether it was accepted.
    logins: Mutex<Vec<(String, bool)>>,
}

struct TestServer {
    addr: SocketAddr,
    root: tempfile::TempDir,
    fingerprint: String,
    record: Arc<Record>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start() -> TestServer {
        Self::start_with(Faults::default())
    }

    fn start_with(faults: Faults) -> TestServer {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("incoming")).expect("mkdir incoming");
        let key = generate_host_key();
        let fingerprint = fingerprint(&key);
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            // Rejections are delayed by this much; the tests need no brute-force protection.
            auth_rejection_time: Duration::from_millis(10),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        });
        let record = Arc::new(Record::default());
        let (root_path, server_record) = (root.path().to_path_buf(), Arc::clone(&record));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        // Its own thread and runtime: the server runs while a test blocks or times out, and
        // its logging never reaches the test's log capture.
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send addr");
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let handler = SshSession {
                        root: root_path.clone(),
                        record: Arc::clone(&server_record),
                        faults,
                        channels: HashMap::new(),
                    };
                    let config = Arc::clone(&config);
                    tokio::spawn(async move {
                        if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                            let _ = session.await;
                        }
                    });
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("server listening");
        TestServer { addr, root, fingerprint, record, stop: Some(stop), thread: Some(thread) }
    }

    fn settings(&self) -> FtpSettings {
        settings(self.addr.port(), &self.fingerprint, PASSWORD)
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("incoming")
    }

    /// The names in the upload directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir().join(name)).expect("read uploaded file")
    }

    fn events(&self) -> Vec<Event> {
        self.record.events.lock().expect("events").clone()
    }

    /// The base names of the files opened for writing, in order.
    fn written(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Write(path) => Some(base_name(&path)),
                _ => None,
            })
            .collect()
    }

    fn logins(&self) -> Vec<(String, bool)> {
        self.record.logins.lock().expect("logins").clone()
    }

    fn inode(&self, name: &str) -> u64 {
        std::fs::metadata(self.dir().join(name)).expect("metadata").ino()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn base_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// One SSH connection: password check, one session channel, the sftp subsystem.
struct SshSession {
    root: PathBuf,
    record: Arc<Record>,
    faults: Faults,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for SshSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = user == USER && password == PASSWORD;
        self.record.logins.lock().expect("logins").push((user.to_string(), ok));
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.close(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match (name, self.channels.remove(&channel_id)) {
            ("sftp", Some(channel)) => {
                session.channel_success(channel_id)?;
                let files = Files {
                    root: self.root.clone(),
                    record: Arc::clone(&self.record),
                    faults: self.faults,
                    handles: HashMap::new(),
                    next_handle: 0,
                };
                russh_sftp::server::run(channel.into_stream(), files).await;
            }
            _ => session.channel_failure(channel_id)?,
        }
        Ok(())
    }
}

enum Open {
    File(std::fs::File),
    /// The listing, until it has been sent.
    Dir(Option<Vec<File>>),
}

/// The SFTP operations the transport uses, on the tempdir; paths are relative to it.
struct Files {
    root: PathBuf,
    record: Arc<Record>,
    faults: Faults,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

fn status_of(error: &std::io::Error) -> StatusCode {
    match error.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        std::io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    }
}

impl Files {
    /// The local path of a client path; `..` is refused.
    fn resolve(&self, path: &str) -> Result<PathBuf, StatusCode> {
        let mut local = self.root.clone();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => local.push(part),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => return Err(StatusCode::PermissionDenied),
            }
        }
        Ok(local)
    }

    /// The client's name for a local path.
    fn relative(&self, local: &Path) -> String {
        local.strip_prefix(&self.root).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn add_handle(&mut self, open: Open) -> String {
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.handles.insert(handle.clone(), open);
        handle
    }

    fn attributes(path: &Path) -> Result<FileAttributes, StatusCode> {
        std::fs::metadata(path).map(|m| FileAttributes::from(&m)).map_err(|e| status_of(&e))
    }

    fn event(&self, event: Event) {
        self.record.events.lock().expect("events").push(event);
    }
}

impl russh_sftp::server::Handler for Files {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn init(&mut self, _version: u32, _extensions: HashMap<String, String>) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = self.resolve(&filename)?;
        let write = pflags.intersects(OpenFlags::WRITE | OpenFlags::APPEND);
        if write && self.faults.deny_writes {
            return Err(StatusCode::PermissionDenied);
        }
        let file = std::fs::OpenOptions::new()
            .read(pflags.contains(OpenFlags::READ))
            .write(write)
            .create(pflags.contains(OpenFlags::CREATE))
            .truncate(pflags.contains(OpenFlags::TRUNCATE))
            .open(&path)
            .map_err(|e| status_of(&e))?;
        if write {
            self.event(Event::Write(self.relative(&path)));
        }
        Ok(Handle { id, handle: self.add_handle(Open::File(file)) })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, Self::Error> {
        match self.handles.get(&handle) {
            Some(Open::File(file)) => file.write_all_at(&data, offset).map_err(|e| status_of(&e))?,
            _ => return Err(StatusCode::Failure),
        }
        Ok(ok(id))
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let Some(Open::File(file)) = self.handles.get(&handle) else { return Err(StatusCode::Failure) };
        let mut data = vec![0; len as usize];
        let n = file.read_at(&mut data, offset).map_err(|e| status_of(&e))?;
        if n == 0 {
            return Err(StatusCode::Eof);
        }
        data.truncate(n);
        Ok(Data { id, data })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure),
        }
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let mut attrs = Self::attributes(&self.resolve(&path)?)?;
        if self.faults.short_temp_files && path.ends_with(".part") {
            attrs.size = attrs.size.map(|size| size.saturating_sub(1));
        }
        Ok(Attrs { id, attrs })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let local = self.resolve(&path)?;
        let metadata = std::fs::symlink_metadata(local).map_err(|e| status_of(&e))?;
        Ok(Attrs { id, attrs: FileAttributes::from(&metadata) })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        match self.handles.get(&handle) {
            Some(Open::File(file)) => {
                let metadata = file.metadata().map_err(|e| status_of(&e))?;
                Ok(Attrs { id, attrs: FileAttributes::from(&metadata) })
            }
            _ => Err(StatusCode::Failure),
        }
    }

    /// Like OpenSSH's server (SFTP v3): an existing target is not replaced.
    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Self::Error> {
        let (from, to) = (self.resolve(&oldpath)?, self.resolve(&newpath)?);
        if self.faults.deny_renames {
            return Err(StatusCode::PermissionDenied);
        }
        if std::fs::symlink_metadata(&to).is_ok() {
            return Err(StatusCode::Failure);
        }
        std::fs::rename(&from, &to).map_err(|e| status_of(&e))?;
        self.event(Event::Rename { from: self.relative(&from), to: self.relative(&to) });
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let path = self.resolve(&filename)?;
        std::fs::remove_file(&path).map_err(|e| status_of(&e))?;
        self.event(Event::Remove(self.relative(&path)));
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let local = self.resolve(&path)?;
        let mut files = vec![File::new(".", Self::attributes(&local)?)];
        for entry in std::fs::read_dir(&local).map_err(|e| status_of(&e))? {
            let entry = entry.map_err(|e| status_of(&e))?;
            let metadata = entry.metadata().map_err(|e| status_of(&e))?;
            files.push(File::new(entry.file_name().to_string_lossy(), FileAttributes::from(&metadata)));
        }
        Ok(Handle { id, handle: self.add_handle(Open::Dir(Some(files))) })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.handles.get_mut(&handle) {
            Some(Open::Dir(listing)) => match listing.take() {
                Some(files) => Ok(Name { id, files }),
                None => Err(StatusCode::Eof),
            },
            _ => Err(StatusCode::Failure),
        }
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let local = self.resolve(&path)?;
        Ok(Name { id, files: vec![File::dummy(format!("/{}", self.relative(&local)))] })
    }
}

// --- assertions ------------------------------------------------------------------------------

fn assert_uploaded(server: &TestServer, files: &[BatchFile]) {
    let mut expected: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    expected.sort();
    assert_eq!(server.names(), expected, "exactly the final names, no temp file");
    for file in files {
        assert!(server.read(&file.name) == file.bytes, "{} arrived byte for byte", file.name);
    }
}

/// Every file was written under `.<name>.part` and renamed to `<name>`; nothing was written
/// under a final name directly.
fn assert_temp_then_rename(server: &TestServer, files: &[BatchFile]) {
    let events = server.events();
    for file in files {
        let temp = format!("incoming/.{}.part", file.name);
        let written = events
            .iter()
            .position(|e| *e == Event::Write(temp.clone()))
            .unwrap_or_else(|| panic!("{temp} written: {events:?}"));
        let renamed = events
            .iter()
            .position(|e| *e == Event::Rename { from: temp.clone(), to: format!("incoming/{}", file.name) })
            .unwrap_or_else(|| panic!("{temp} renamed to {}: {events:?}", file.name));
        assert!(written < renamed);
    }
    assert!(server.written().iter().all(|name| name.starts_with('.') && name.ends_with(".part")), "{events:?}");
}

// --- uploads ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_loose_batch_arrives_under_its_final_names() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = server.settings();

    let receipt = transport(&settings).send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, CSV));
    assert_eq!(server.names(), [P1, P2, CSV]);
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
    // The CSV goes last, so a factor's watcher that starts on it finds the PDFs there.
    assert_eq!(server.written().last().map(String::as_str), Some(".acme-east_20261130_7_3f9a0c2e.csv.part"));
    assert_eq!(server.logins(), [(USER.to_string(), true)]);
}

#[tokio::test]
async fn the_ftp_transport_hands_sftp_over_and_a_zip_provider_uploads_one_zip() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("compass", packets.path());
    let files = batch_files(&batch).expect("files");
    assert_eq!(files.len(), 1);
    let settings = server.settings();

    // The daemon holds an FtpTransport for every FTP-ish provider.
    let short = Duration::from_secs(10);
    let receipt = FtpTransport::new(&settings).with_timeouts(short, short, short).send(&batch, &files).await;

    assert_eq!(receipt, Ok(accepted(&batch, ZIP)));
    assert_eq!(server.names(), [ZIP]);
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
}

#[tokio::test]
async fn the_pin_may_be_given_in_hex() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("compass", packets.path());
    let files = batch_files(&batch).expect("files");
    let bytes =
        factord::providers::sftp::parse_host_key_sha256(&server.fingerprint).expect("the server's own fingerprint");
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let settings = settings(server.addr.port(), &hex.join(":"), PASSWORD);

    assert_eq!(transport(&settings).send(&batch, &files).await, Ok(accepted(&batch, ZIP)));
    assert_uploaded(&server, &files);
}

#[tokio::test]
async fn a_final_file_with_the_right_size_is_left_alone_and_one_with_the_wrong_size_replaced() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    std::fs::write(server.dir().join(P1), &files[0].bytes).expect("right size");
    std::fs::write(server.dir().join(P2), b"%PDF-1.7 short").expect("wrong size");
    let first = server.inode(P1);

    let receipt = transport(&server.settings()).send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, CSV));
    assert_uploaded(&server, &files);
    assert_eq!(server.written(), [".AE-2_3f9a0c2e.pdf.part", ".acme-east_20261130_7_3f9a0c2e.csv.part"]);
    assert_eq!(server.inode(P1), first, "AE-1 not uploaded again");
    // SFTP rename does not replace: the short file went first.
    let events = server.events();
    let removed =
        events.iter().position(|e| *e == Event::Remove("incoming/AE-2_3f9a0c2e.pdf".into())).expect("removed");
    let renamed = events
        .iter()
        .position(|e| matches!(e, Event::Rename { to, .. } if to == "incoming/AE-2_3f9a0c2e.pdf"))
        .expect("renamed");
    assert!(removed < renamed, "{events:?}");
}

// --- reconciliation --------------------------------------------------------------------------

#[tokio::test]
async fn reconcile_after_a_full_send_answers_the_receipt_and_uploads_nothing() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = server.settings();
    let sent = transport(&settings).send(&batch, &files).await.expect("sent");
    let events = server.events().len();
    let inodes: Vec<u64> = server.names().iter().map(|name| server.inode(name)).collect();

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Found::Delivered(sent));
    assert_eq!(server.events().len(), events, "nothing written, renamed or removed: {:?}", server.events());
    assert_eq!(server.names().iter().map(|name| server.inode(name)).collect::<Vec<_>>(), inodes);
}

#[tokio::test]
async fn reconcile_refuses_a_final_name_holding_other_bytes_and_touches_nothing() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = server.settings();
    // The batch's first packet made it; under its second final name, same size, other bytes.
    std::fs::write(server.dir().join(P1), &files[0].bytes).expect("first file");
    let mut other = files[1].bytes.clone();
    other[0] ^= 0xff;
    std::fs::write(server.dir().join(P2), &other).expect("planted");

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    let Found::Clash(text) = reconciled else { panic!("a clash: {reconciled:?}") };
    assert!(text.contains(P2) && text.contains("incoming") && text.contains("acme-east-b7"), "{text}");
    assert!(text.contains("3f9a0c2e11223344") && text.contains("other content (sha256 "), "{text}");
    assert_eq!(std::fs::read(server.dir().join(P2)).expect("planted"), other, "left as it was");
    assert_eq!(server.names(), [P1, P2], "nothing uploaded");
    assert!(server.events().is_empty(), "nothing written, renamed or removed: {:?}", server.events());

    // Another size: refused too, not replaced.
    std::fs::write(server.dir().join(P2), b"%PDF-1.7 short").expect("planted");
    let Found::Clash(text) = transport(&settings).reconcile(&batch, &files).await.expect("reconciled") else {
        panic!("a clash")
    };
    assert!(text.contains(&format!("14 bytes where the batch's file has {}", files[1].bytes.len())), "{text}");
    assert!(server.events().is_empty(), "{:?}", server.events());
}

#[tokio::test]
async fn an_earlier_installations_file_of_the_same_invoice_and_size_is_not_taken_for_the_batch() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = server.settings();
    // Before a database reset, invoice AE-1 of another batch went up as `AE-1.pdf` (the
    // previous version's names had no uid), with the same bytes even.
    std::fs::write(server.dir().join("AE-1.pdf"), &files[0].bytes).expect("earlier file");

    assert_eq!(transport(&settings).reconcile(&batch, &files).await, Ok(Found::Absent));
    transport(&settings).send(&batch, &files).await.expect("sent");
    assert_eq!(server.names(), ["AE-1.pdf", P1, P2, CSV], "the earlier file stays, the batch beside it");
}

#[tokio::test]
async fn reconcile_with_nothing_on_the_server_answers_none_and_clears_leftovers() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = server.settings();
    // A crash mid-write of the first file left its temp file; another batch's file stays.
    std::fs::write(server.dir().join(".AE-1_3f9a0c2e.pdf.part"), b"%PDF-1.7 half").expect("leftover");
    std::fs::write(server.dir().join("other_20261129_6.csv"), b"another batch").expect("other file");

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Found::Absent);
    assert_eq!(server.names(), ["other_20261129_6.csv"]);
    assert!(server.written().is_empty());

    // An empty directory too.
    std::fs::remove_file(server.dir().join("other_20261129_6.csv")).expect("remove");
    assert_eq!(transport(&settings).reconcile(&batch, &files).await, Ok(Found::Absent));
}

#[tokio::test]
async fn reconcile_after_a_crash_mid_batch_finishes_the_missing_files() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    // The crash: AE-1 made it, AE-2 was half-way through its temp file.
    std::fs::write(server.dir().join(P1), &files[0].bytes).expect("first file");
    std::fs::write(server.dir().join(".AE-2_3f9a0c2e.pdf.part"), b"%PDF-1.7 half").expect("leftover");
    let first = server.inode(P1);

    let reconciled = transport(&server.settings()).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Found::Delivered(accepted(&batch, CSV)));
    assert_uploaded(&server, &files);
    assert_eq!(
        server.written(),
        [".AE-2_3f9a0c2e.pdf.part", ".acme-east_20261130_7_3f9a0c2e.csv.part"],
        "AE-1 not sent again"
    );
    assert_eq!(server.inode(P1), first);
}

// --- faults ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_host_key_that_does_not_match_the_pin_is_refused_before_the_password_is_sent() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let other = fingerprint(&generate_host_key());
    let settings = settings(server.addr.port(), &other, PASSWORD);

    let error = transport(&settings).send(&batch, &files).await.expect_err("refused");

    let ProviderError::Auth(text) = &error else { panic!("{error:?}") };
    assert!(text.contains("host key mismatch"), "{text}");
    assert!(text.contains(&server.fingerprint) && text.contains(&other), "both fingerprints named: {text}");
    assert!(!text.contains(PASSWORD), "{text}");
    let reconcile = transport(&settings).reconcile(&batch, &files).await;
    assert!(
        matches!(&reconcile, Err(ProviderError::Auth(text)) if text.contains("host key mismatch")),
        "{reconcile:?}"
    );
    assert!(server.logins().is_empty(), "the password never reached the server: {:?}", server.logins());
    assert!(server.events().is_empty() && server.names().is_empty());

    // No pin, or an unreadable one: refused without connecting.
    let mut unpinned = server.settings();
    unpinned.host_key_sha256 = None;
    let error = transport(&unpinned).send(&batch, &files).await.expect_err("no pin");
    assert!(matches!(&error, ProviderError::Auth(text) if text.contains("host_key_sha256")), "{error:?}");
    unpinned.host_key_sha256 = Some("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48".into());
    let error = transport(&unpinned).send(&batch, &files).await.expect_err("md5 pin");
    assert!(matches!(&error, ProviderError::Auth(text) if text.contains("host_key_sha256")), "{error:?}");
    assert!(server.logins().is_empty() && server.names().is_empty());
}

/// Collects the formatted log lines of the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_wrong_password_is_auth_and_the_password_is_never_shown() {
    let server = TestServer::start();
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let wrong = "Wr0ng-Pa55word-xyz";
    let settings = settings(server.addr.port(), &server.fingerprint, wrong);
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is current-thread: every event of the transport lands here.
    let guard = tracing::subscriber::set_default(subscriber);

    let error = transport(&settings).send(&batch, &files).await.expect_err("refused");

    drop(guard);
    assert!(matches!(&error, ProviderError::Auth(text) if text.contains("refused the password")), "{error:?}");
    assert!(!error.to_string().contains(wrong), "{error}");
    assert!(!format!("{error:?}").contains(wrong), "{error:?}");
    assert!(!format!("{settings:?}").contains(wrong));
    let log = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    assert!(log.contains("host key matches the pin"), "the transport's events were captured: {log}");
    assert!(!log.contains(wrong), "{log}");
    assert_eq!(server.logins(), [(USER.to_string(), false)]);
    assert!(server.names().is_empty());
}

#[tokio::test]
async fn a_server_that_is_down_is_transient_at_once() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(closed, &fingerprint(&generate_host_key()), PASSWORD);
    let started = Instant::now();

    let error = transport(&settings).send(&batch, &files).await.expect_err("down");

    assert!(matches!(&error, ProviderError::Transient(text) if text.contains("connect")), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused, not timed out: {:?}", started.elapsed());
    let reconcile = transport(&settings).reconcile(&batch, &files).await;
    assert!(matches!(reconcile, Err(ProviderError::Transient(_))), "never None when the server is unknown");
}

#[tokio::test]
async fn a_server_that_never_answers_is_transient_within_the_timeout() {
    // Accepts connections and holds them without an SSH greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(port, &fingerprint(&generate_host_key()), PASSWORD);
    let second = Duration::from_secs(1);
    let started = Instant::now();

    let transport = SftpTransport::new(&settings).with_timeouts(second, second, second);
    let send = transport.send(&batch, &files);
    // Without the transport's own timeouts this would wait forever: fail instead.
    let error =
        tokio::time::timeout(Duration::from_secs(10), send).await.expect("gave up on its own").expect_err("hung");

    let elapsed = started.elapsed();
    assert!(matches!(&error, ProviderError::Transient(text) if text.contains("no answer within")), "{error:?}");
    assert!(elapsed >= second && elapsed < Duration::from_secs(4), "{elapsed:?}");
    held.abort();
}

#[tokio::test]
async fn a_missing_directory_or_a_refused_file_is_rejected() {
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");

    let server = TestServer::start();
    let mut missing = server.settings();
    missing.directory = "/outgoing".into();
    let error = transport(&missing).send(&batch, &files).await.expect_err("no such directory");
    assert!(matches!(&error, ProviderError::Rejected(text) if text.contains("/outgoing")), "{error:?}");

    let denying = TestServer::start_with(Faults { deny_writes: true, ..Faults::default() });
    let error = transport(&denying.settings()).send(&batch, &files).await.expect_err("permission denied");
    assert!(
        matches!(&error, ProviderError::Rejected(text) if text.contains("PermissionDenied") && text.contains(".AE-1_3f9a0c2e.pdf.part")),
        "{error:?}"
    );
    assert!(denying.names().is_empty());
}

#[tokio::test]
async fn a_refused_rename_is_rejected_and_the_temp_file_deleted() {
    let server = TestServer::start_with(Faults { deny_renames: true, ..Faults::default() });
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");

    let error = transport(&server.settings()).send(&batch, &files).await.expect_err("rename refused");

    assert!(
        matches!(&error, ProviderError::Rejected(text) if text.contains("rename") && text.contains(P1)),
        "{error:?}"
    );
    assert!(server.names().is_empty(), "no final name, and the temp file was deleted: {:?}", server.names());
    assert_eq!(server.events().last(), Some(&Event::Remove("incoming/.AE-1_3f9a0c2e.pdf.part".into())));
}

#[tokio::test]
async fn a_size_mismatch_is_transient_and_the_temp_file_is_deleted_unrenamed() {
    let server = TestServer::start_with(Faults { short_temp_files: true, ..Faults::default() });
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");

    let error = transport(&server.settings()).send(&batch, &files).await.expect_err("short file");

    assert!(matches!(&error, ProviderError::Transient(text) if text.contains(P1)), "{error:?}");
    assert!(!server.events().iter().any(|e| matches!(e, Event::Rename { .. })), "never renamed: {:?}", server.events());
    assert!(server.names().is_empty());
}

#[test]
fn the_transport_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let settings = settings(9, "SHA256:x", PASSWORD);
    let transport = SftpTransport::new(&settings);
    assert_send(&transport.send(&batch, &[]));
    assert_send(&transport.reconcile(&batch, &[]));
}

// --- connection test (`factord providers test`) -------------------------------------------

#[tokio::test]
async fn the_probe_logs_in_lists_and_writes_then_removes_a_probe_file() {
    let server = TestServer::start();
    let settings = server.settings();
    let mut steps = Vec::new();

    // Through the FTP transport, as `providers test` calls it for `protocol = "sftp"`.
    FtpTransport::new(&settings).probe(&mut steps).await.expect("probe");

    assert_eq!(
        steps,
        [
            format!("connected to 127.0.0.1:{} (host key matches the pin)", server.addr.port()),
            format!("logged in as {USER}"),
            "listed /incoming".to_string(),
            "wrote and deleted probe file".to_string(),
        ]
    );
    let written = server.written();
    assert_eq!(written.len(), 1, "{:?}", server.events());
    assert!(written[0].starts_with(".factord-probe-") && written[0].ends_with(".tmp"), "{written:?}");
    assert_eq!(server.events().last(), Some(&Event::Remove(format!("incoming/{}", written[0]))));
    assert!(server.names().is_empty(), "no probe file left: {:?}", server.names());
}

#[tokio::test]
async fn the_probe_reports_a_refused_password_and_a_refused_write() {
    let server = TestServer::start_with(Faults { deny_writes: true, ..Faults::default() });
    let wrong = settings(server.addr.port(), &server.fingerprint, "wrong-Pa55word-z");
    let mut steps = Vec::new();

    let error = transport(&wrong).probe(&mut steps).await.expect_err("password refused");

    assert!(
        matches!(&error, ProviderError::Auth(text) if text.contains("refused the password of user acme")),
        "{error:?}"
    );
    assert!(!error.to_string().contains("wrong-Pa55word-z"));
    assert_eq!(steps.len(), 1, "connected, not logged in: {steps:?}");
    assert_eq!(server.logins(), [(USER.to_string(), false)]);

    let mut steps = Vec::new();
    let error = transport(&server.settings()).probe(&mut steps).await.expect_err("write refused");
    assert!(matches!(&error, ProviderError::Rejected(text) if text.contains("PermissionDenied")), "{error:?}");
    assert_eq!(steps.last().map(String::as_str), Some("listed /incoming"));
    assert!(server.names().is_empty());
}
