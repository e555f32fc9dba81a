//! The FTP / FTPS transport against a real in-process server (libunftp on a filesystem tempdir,
//! on its own thread and runtime): final names only after a size-checked rename, FTPS with the
//! data channel protected, reconciliation after a crash, and the faults the caller must tell
//! apart (down, hung, wrong password, refused rename).

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use factord::config::{FtpProtocol, FtpSettings, FtpTls};
use factord::domain::Money;
use factord::providers::batch::{Batch, BatchInvoice, BatchReceipt, BatchSeller, InvoiceOutcome, ProviderError};
use factord::providers::find_provider;
use factord::providers::ftp::FtpTransport;
use factord::providers::layout::{BatchFile, batch_files};
use libunftp::notification::{DataEvent, DataListener, EventMeta};
use libunftp::options::FtpsRequired;
use secrecy::SecretString;
use unftp_core::auth::{AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, Principal};
use unftp_sbe_fs::Filesystem;

const USER: &str = "acme";
const PASSWORD: &str = "s3cret-Pa55word";
const CSV: &str = "acme-east_20261130_7.csv";
const ZIP: &str = "acme-east_20261130_7.zip";

/// Short enough that a hung test fails fast, long enough for a loaded CI machine.
fn transport(settings: &FtpSettings) -> FtpTransport<'_> {
    FtpTransport::new(settings).with_timeouts(Duration::from_secs(10), Duration::from_secs(10), Duration::from_secs(30))
}

fn settings(port: u16, tls: FtpTls, password: &str) -> FtpSettings {
    FtpSettings {
        protocol: FtpProtocol::Ftp,
        host: "127.0.0.1".into(),
        port,
        username: USER.into(),
        password: Some(SecretString::from(password)),
        directory: "/incoming".into(),
        tls,
        host_key_sha256: None,
    }
}

/// A batch of two invoices whose packets hold line feeds, CRs and non-UTF-8 bytes, so an
/// ASCII-mode transfer (which rewrites line endings) shows up as a byte mismatch.
fn batch(provider: &str, dir: &Path) -> Batch {
    let invoice = |n: &str, cents: i64| {
        let packet = dir.join(format!("{n}-packet.pdf"));
        let mut bytes = format!("%PDF-1.7\n% packet {n}\n").into_bytes();
        bytes.extend_from_slice(b"stream\r\n\x00\xff\xfe\nline\nendstream\n%%EOF\n");
        std::fs::write(&packet, bytes).expect("write packet");
        BatchInvoice {
            invoice_number: n.to_string(),
            load_number: format!("L-{n}"),
            idempotency_key: format!("acme-east-b7:{n}"),
            amount: Money::from_cents(cents),
            invoice_date: "2026-11-30".into(),
            customer_id: "BRK-1".into(),
            customer_name: "Blue Brokerage".into(),
            customer_mc: Some("123456".into()),
            customer_dot: None,
            customer_factoring_id: None,
            po_number: None,
            reference_number: Some("WEX-9".into()),
            truck: None,
            pickup: None,
            delivery: None,
            delivered_at: None,
            packet,
        }
    };
    Batch {
        id: "acme-east-b7".into(),
        number: 7,
        date: "2026-11-30".into(),
        seller: BatchSeller { id: "acme-east".into(), name: "ACME".into(), usdot: None, mc: None },
        provider: find_provider(provider).expect("provider"),
        invoices: vec![invoice("AE-1", 245_000), invoice("AE-2", 100_050)],
    }
}

fn accepted(batch: &Batch, reference: &str) -> BatchReceipt {
    BatchReceipt::all(
        batch,
        Some(reference.to_string()),
        InvoiceOutcome::Accepted { reference: Some(reference.to_string()) },
    )
}

// --- the server -------------------------------------------------------------------------

/// A self-signed certificate for 127.0.0.1 / localhost, as PEM files for the server and DER
/// for the client's extra root.
struct TestCert {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

fn test_cert() -> TestCert {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    TestCert { der: generated.cert.der().to_vec(), cert, key, _dir: dir }
}

/// One login the server accepted: who, and whether the control channel was TLS by then.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Login {
    user: String,
    tls: bool,
}

#[derive(Clone, Debug)]
struct PasswordCheck {
    logins: Arc<Mutex<Vec<Login>>>,
}

// libunftp's traits are `#[async_trait]`; these impls spell out what the macro would write
// rather than pull in the macro crate for two tests helpers.
impl Authenticator for PasswordCheck {
    fn authenticate<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        username: &'life1 str,
        creds: &'life2 Credentials,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthenticationError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if username != USER {
                return Err(AuthenticationError::BadUser);
            }
            if creds.password.as_deref() != Some(PASSWORD) {
                return Err(AuthenticationError::BadPassword);
            }
            let tls = creds.command_channel_security == ChannelEncryptionState::Tls;
            self.logins.lock().expect("logins").push(Login { user: username.to_string(), tls });
            Ok(Principal { username: username.to_string() })
        })
    }
}

/// Every completed STOR, DELE and rename, in order; recorded before the server replies.
#[derive(Clone, Debug, Default)]
struct EventLog(Arc<Mutex<Vec<DataEvent>>>);

impl DataListener for EventLog {
    fn receive_data_event<'life0, 'async_trait>(
        &'life0 self,
        e: DataEvent,
        _m: EventMeta,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.0.lock().expect("events").push(e) })
    }
}

struct TestServer {
    addr: SocketAddr,
    root: tempfile::TempDir,
    events: EventLog,
    logins: Arc<Mutex<Vec<Login>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Plain FTP, or FTPS required on both channels (`ftps_required(All, All)`: no login
    /// before AUTH TLS, no PASV before PROT P).
    fn start(tls: Option<&TestCert>) -> TestServer {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("incoming")).expect("mkdir incoming");
        let events = EventLog::default();
        let logins = Arc::new(Mutex::new(Vec::new()));
        let tls = tls.map(|c| (c.cert.clone(), c.key.clone()));
        let (root_path, server_events, auth) =
            (root.path().to_path_buf(), events.clone(), PasswordCheck { logins: logins.clone() });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        // Its own thread and runtime: the server runs while a test blocks or times out, and
        // its logging never reaches the test's log capture.
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
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
                    // `Server::service` takes the server by value: one per connection.
                    let fs_root = root_path.clone();
                    let mut builder = libunftp::ServerBuilder::with_authenticator(
                        Box::new(move || Filesystem::new(fs_root.clone()).expect("filesystem")),
                        Arc::new(auth.clone()),
                    )
                    .notify_data(server_events.clone());
                    if let Some((cert, key)) = &tls {
                        builder =
                            builder.ftps(cert.clone(), key.clone()).ftps_required(FtpsRequired::All, FtpsRequired::All);
                    }
                    let server = builder.build().expect("server");
                    tokio::spawn(async move {
                        let _ = server.service(stream).await;
                    });
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("server listening");
        TestServer { addr, root, events, logins, stop: Some(stop), thread: Some(thread) }
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

    fn events(&self) -> Vec<DataEvent> {
        self.events.0.lock().expect("events").clone()
    }

    /// The names of the files STORed, in order.
    fn stored(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                DataEvent::Put { path, .. } => Some(base_name(&path)),
                _ => None,
            })
            .collect()
    }

    fn logins(&self) -> Vec<Login> {
        self.logins.lock().expect("logins").clone()
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

fn assert_uploaded(server: &TestServer, files: &[BatchFile]) {
    let mut expected: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    expected.sort();
    assert_eq!(server.names(), expected, "exactly the final names, no temp file");
    for file in files {
        assert!(server.read(&file.name) == file.bytes, "{} arrived byte for byte", file.name);
    }
}

/// Every file went up under `.<name>.part` and was renamed to `<name>`; nothing was stored
/// under a final name directly.
fn assert_temp_then_rename(server: &TestServer, files: &[BatchFile]) {
    let events = server.events();
    for file in files {
        let temp = format!(".{}.part", file.name);
        let put = events
            .iter()
            .position(|e| matches!(e, DataEvent::Put { path, .. } if base_name(path) == temp))
            .unwrap_or_else(|| panic!("{temp} stored: {events:?}"));
        let renamed = events
            .iter()
            .position(|e| {
                matches!(e, DataEvent::Renamed { from, to } if base_name(from) == temp && base_name(to) == file.name)
            })
            .unwrap_or_else(|| panic!("{temp} renamed to {}: {events:?}", file.name));
        assert!(put < renamed);
    }
    assert!(server.stored().iter().all(|name| name.starts_with('.') && name.ends_with(".part")), "{events:?}");
}

// --- uploads ------------------------------------------------------------------------------

#[tokio::test]
async fn plain_ftp_uploads_a_loose_batch_under_its_final_names() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);

    let receipt = transport(&settings).send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, CSV));
    assert_eq!(server.names(), ["AE-1.pdf", "AE-2.pdf", CSV]);
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
    // The CSV goes last, so a factor's watcher that starts on it finds the PDFs there.
    assert_eq!(server.stored().last().map(String::as_str), Some(".acme-east_20261130_7.csv.part"));
    assert_eq!(server.logins(), [Login { user: USER.into(), tls: false }]);
}

#[tokio::test]
async fn explicit_ftps_uploads_over_tls_with_the_data_channel_protected() {
    let cert = test_cert();
    let server = TestServer::start(Some(&cert));
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");

    // The server refuses plain FTP: login needs AUTH TLS (and PASV needs PROT P).
    let plain = settings(server.addr.port(), FtpTls::None, PASSWORD);
    let refused = transport(&plain).send(&batch, &files).await.expect_err("plain login refused");
    assert!(matches!(&refused, ProviderError::Auth(text) if text.contains("534")), "{refused:?}");

    // Verification is on: the test CA is not a system root.
    let explicit = settings(server.addr.port(), FtpTls::Explicit, PASSWORD);
    let untrusted = transport(&explicit).send(&batch, &files).await.expect_err("untrusted certificate");
    assert!(matches!(&untrusted, ProviderError::Auth(text) if text.contains("certificate")), "{untrusted:?}");
    assert!(server.names().is_empty() && server.logins().is_empty());

    let receipt =
        transport(&explicit).with_root_certificate(cert.der.clone()).send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, CSV));
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
    assert_eq!(server.logins(), [Login { user: USER.into(), tls: true }]);
}

#[tokio::test]
async fn a_zip_provider_uploads_one_zip() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("compass", packets.path());
    let files = batch_files(&batch).expect("files");
    assert_eq!(files.len(), 1);
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);

    let receipt = transport(&settings).send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, ZIP));
    assert_eq!(server.names(), [ZIP]);
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
}

#[tokio::test]
async fn sftp_and_implicit_ftps_are_refused_up_front() {
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    // Port 9 (discard) is never dialled: the refusal comes first.
    let mut sftp = settings(9, FtpTls::Explicit, PASSWORD);
    sftp.protocol = FtpProtocol::Sftp;
    assert_eq!(
        transport(&sftp).send(&batch, &files).await,
        Err(ProviderError::Rejected("sftp is not supported yet".into()))
    );
    let implicit = settings(9, FtpTls::Implicit, PASSWORD);
    assert_eq!(
        transport(&implicit).reconcile(&batch, &files).await,
        Err(ProviderError::Rejected("implicit FTPS is not supported".into()))
    );
}

// --- reconciliation -----------------------------------------------------------------------

fn inodes(server: &TestServer) -> Vec<(String, u64)> {
    server
        .names()
        .into_iter()
        .map(|name| {
            let ino = std::fs::metadata(server.dir().join(&name)).expect("metadata").ino();
            (name, ino)
        })
        .collect()
}

#[tokio::test]
async fn reconcile_after_a_full_send_answers_the_receipt_and_uploads_nothing() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    let sent = transport(&settings).send(&batch, &files).await.expect("sent");
    let (stored, before) = (server.stored().len(), inodes(&server));

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Some(sent));
    assert_eq!(server.stored().len(), stored, "nothing stored again");
    assert_eq!(inodes(&server), before, "no file replaced");
}

#[tokio::test]
async fn reconcile_with_nothing_on_the_server_answers_none_and_clears_leftovers() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // A crash mid-STOR of the first file left its temp file; another batch's file stays.
    std::fs::write(server.dir().join(".AE-1.pdf.part"), b"%PDF-1.7 half").expect("leftover");
    std::fs::write(server.dir().join("other_20261129_6.csv"), b"another batch").expect("other file");

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, None);
    assert_eq!(server.names(), ["other_20261129_6.csv"]);
    assert!(server.stored().is_empty());

    // An empty directory too.
    std::fs::remove_file(server.dir().join("other_20261129_6.csv")).expect("remove");
    assert_eq!(transport(&settings).reconcile(&batch, &files).await, Ok(None));
}

#[tokio::test]
async fn reconcile_after_a_crash_mid_batch_finishes_the_missing_files() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // The crash: AE-1.pdf made it, AE-2.pdf was half-way through its temp file.
    std::fs::write(server.dir().join("AE-1.pdf"), &files[0].bytes).expect("first file");
    std::fs::write(server.dir().join(".AE-2.pdf.part"), b"%PDF-1.7 half").expect("leftover");
    let first = std::fs::metadata(server.dir().join("AE-1.pdf")).expect("metadata").ino();

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Some(accepted(&batch, CSV)));
    assert_uploaded(&server, &files);
    assert_eq!(server.stored(), [".AE-2.pdf.part", ".acme-east_20261130_7.csv.part"], "AE-1.pdf not sent again");
    assert_eq!(std::fs::metadata(server.dir().join("AE-1.pdf")).expect("metadata").ino(), first);
}

// --- faults -------------------------------------------------------------------------------

#[tokio::test]
async fn a_server_that_is_down_is_transient_at_once() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(closed, FtpTls::Explicit, PASSWORD);
    let started = Instant::now();

    let error = transport(&settings).send(&batch, &files).await.expect_err("down");

    assert!(matches!(&error, ProviderError::Transient(text) if text.contains("connect")), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused, not timed out: {:?}", started.elapsed());
    let reconcile = transport(&settings).reconcile(&batch, &files).await;
    assert!(matches!(reconcile, Err(ProviderError::Transient(_))), "never None when the server is unknown");
}

#[tokio::test]
async fn a_server_that_never_answers_is_transient_within_the_timeout() {
    // Accepts connections and holds them without a greeting.
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
    let settings = settings(port, FtpTls::Explicit, PASSWORD);
    let second = Duration::from_secs(1);
    let started = Instant::now();

    let transport = FtpTransport::new(&settings).with_timeouts(second, second, second);
    let send = transport.send(&batch, &files);
    // Without the transport's own timeouts this would wait forever: fail instead.
    let error =
        tokio::time::timeout(Duration::from_secs(10), send).await.expect("gave up on its own").expect_err("hung");

    let elapsed = started.elapsed();
    assert!(matches!(&error, ProviderError::Transient(text) if text.contains("no answer within")), "{error:?}");
    assert!(elapsed >= second && elapsed < Duration::from_secs(4), "{elapsed:?}");
    held.abort();
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
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let wrong = "Wr0ng-Pa55word-xyz";
    let settings = settings(server.addr.port(), FtpTls::None, wrong);
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
    assert!(matches!(&error, ProviderError::Auth(text) if text.contains("530")), "{error:?}");
    assert!(!error.to_string().contains(wrong), "{error}");
    assert!(!format!("{error:?}").contains(wrong), "{error:?}");
    assert!(!format!("{settings:?}").contains(wrong));
    let log = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    assert!(log.contains("clear text"), "the plain-FTP warning is logged: {log}");
    assert!(!log.contains(wrong), "{log}");
    assert!(server.names().is_empty());
}

#[tokio::test]
async fn a_refused_rename_is_an_error_and_leaves_no_final_file() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // RNTO onto a directory fails (EISDIR), which libunftp answers with 550.
    std::fs::create_dir(server.dir().join(CSV)).expect("blocking directory");

    let error = transport(&settings).send(&batch, &files).await.expect_err("rename refused");

    assert!(matches!(&error, ProviderError::Rejected(text) if text.contains("550") && text.contains(CSV)), "{error:?}");
    assert!(server.dir().join(CSV).is_dir(), "the CSV never landed under its final name");
    assert_eq!(server.names(), ["AE-1.pdf", "AE-2.pdf", CSV], "the temp file was deleted");
    assert!(
        server
            .events()
            .iter()
            .any(|e| matches!(e, DataEvent::Deleted { path } if path.ends_with(".acme-east_20261130_7.csv.part")))
    );
}

// --- a scripted server, for what libunftp will not do -----------------------------------

/// How the scripted server misbehaves.
#[derive(Clone, Copy, Default)]
struct Script {
    /// Added to every SIZE answer: a server that lost bytes.
    size_error: i64,
    /// The answer to every STOR, instead of taking the file.
    stor_reply: Option<&'static str>,
}

/// A minimal FTP server that records every command line, keeps files in memory, and
/// advertises an unroutable address in its PASV replies (a server behind NAT).
struct ScriptedServer {
    port: u16,
    commands: Arc<Mutex<Vec<String>>>,
    files: Arc<Mutex<std::collections::BTreeMap<String, Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    async fn start(script: Script) -> ScriptedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (commands, files) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Default::default())));
        let (log, store) = (Arc::clone(&commands), Arc::clone(&files));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::session(stream, script, Arc::clone(&log), Arc::clone(&store)));
            }
        });
        ScriptedServer { port, commands, files, task }
    }

    async fn session(
        stream: tokio::net::TcpStream,
        script: Script,
        log: Arc<Mutex<Vec<String>>>,
        store: Arc<Mutex<std::collections::BTreeMap<String, Vec<u8>>>>,
    ) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let (read, mut write) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        let mut passive: Option<tokio::net::TcpListener> = None;
        let mut rename_from = None;
        if write.write_all(b"220 scripted\r\n").await.is_err() {
            return;
        }
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().expect("log").push(line.clone());
            let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let arg = arg.to_string();
            let reply = match verb {
                "USER" => "331 password please".to_string(),
                "PASS" => "230 logged in".to_string(),
                "CWD" => "250 ok".to_string(),
                "TYPE" => "200 ok".to_string(),
                "PASV" => {
                    let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind data");
                    let port = data.local_addr().expect("addr").port();
                    passive = Some(data);
                    format!("227 Entering Passive Mode (10,255,255,1,{},{})", port / 256, port % 256)
                }
                "STOR" => match (script.stor_reply, passive.take()) {
                    (Some(refusal), _) => refusal.to_string(),
                    (None, Some(data)) => {
                        let _ = write.write_all(b"150 send it\r\n").await;
                        let Ok((mut socket, _)) = data.accept().await else { return };
                        let mut bytes = Vec::new();
                        let _ = socket.read_to_end(&mut bytes).await;
                        store.lock().expect("files").insert(arg, bytes);
                        "226 stored".to_string()
                    }
                    (None, None) => "425 use PASV first".to_string(),
                },
                "SIZE" => match store.lock().expect("files").get(&arg) {
                    Some(bytes) => format!("213 {}", bytes.len() as i64 + script.size_error),
                    None => "550 no such file".to_string(),
                },
                "RNFR" => {
                    rename_from = Some(arg);
                    "350 go on".to_string()
                }
                "RNTO" => {
                    let mut files = store.lock().expect("files");
                    match rename_from.take().and_then(|from| files.remove(&from)) {
                        Some(bytes) => {
                            files.insert(arg, bytes);
                            "250 renamed".to_string()
                        }
                        None => "550 no such file".to_string(),
                    }
                }
                "DELE" => match store.lock().expect("files").remove(&arg) {
                    Some(_) => "250 deleted".to_string(),
                    None => "550 no such file".to_string(),
                },
                "QUIT" => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => "502 not here".to_string(),
            };
            if write.write_all(format!("{reply}\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().expect("commands").clone()
    }

    fn file_names(&self) -> Vec<String> {
        self.files.lock().expect("files").keys().cloned().collect()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn uploads_are_binary_and_follow_the_control_connection_through_nat() {
    let server = ScriptedServer::start(Script::default()).await;
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.port, FtpTls::None, PASSWORD);
    // The PASV replies name 10.255.255.1: followed, the data connection would time out.
    let short = Duration::from_secs(3);
    let transport = FtpTransport::new(&settings).with_timeouts(short, short, short);

    let receipt = transport.send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, CSV));
    assert_eq!(server.file_names(), ["AE-1.pdf", "AE-2.pdf", CSV]);
    let commands = server.commands();
    let binary = commands.iter().position(|c| c == "TYPE I").expect("TYPE I sent");
    let first_stor = commands.iter().position(|c| c.starts_with("STOR")).expect("STOR sent");
    assert!(binary < first_stor, "ASCII mode would rewrite the PDFs' line endings: {commands:?}");
}

#[tokio::test]
async fn a_size_mismatch_is_transient_and_the_temp_file_is_deleted() {
    let server = ScriptedServer::start(Script { size_error: -1, ..Script::default() }).await;
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.port, FtpTls::None, PASSWORD);

    let error = transport(&settings).send(&batch, &files).await.expect_err("short file");

    assert!(matches!(&error, ProviderError::Transient(text) if text.contains("AE-1.pdf")), "{error:?}");
    let commands = server.commands();
    assert!(commands.contains(&"DELE .AE-1.pdf.part".to_string()), "{commands:?}");
    assert!(!commands.iter().any(|c| c.starts_with("RNFR")), "never renamed: {commands:?}");
    assert!(server.file_names().is_empty());
}

#[tokio::test]
async fn a_4xx_reply_is_transient_and_a_5xx_on_a_file_is_rejected() {
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    for (reply, transient) in [("451 Local error in processing", true), ("553 File name not allowed", false)] {
        let server = ScriptedServer::start(Script { stor_reply: Some(reply), ..Script::default() }).await;
        let settings = settings(server.port, FtpTls::None, PASSWORD);

        let error = transport(&settings).send(&batch, &files).await.expect_err("refused");

        let text = match (&error, transient) {
            (ProviderError::Transient(text), true) | (ProviderError::Rejected(text), false) => text,
            _ => panic!("{reply}: {error:?}"),
        };
        assert!(text.contains(reply) && text.contains(".AE-1.pdf.part"), "{text}");
    }
}

#[test]
fn the_transport_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let settings = settings(9, FtpTls::Explicit, PASSWORD);
    let transport = FtpTransport::new(&settings);
    assert_send(&transport.send(&batch, &[]));
    assert_send(&transport.reconcile(&batch, &[]));
}
