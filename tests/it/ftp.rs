//! The FTP / FTPS transport against a real in-process server (libunftp on a filesystem tempdir,
//! on its own thread and runtime; the servers are in [`crate::fakes::ftp`]): final names only
//! after a size-checked rename, FTPS with the data channel protected, reconciliation after a
//! crash, and the faults the caller must tell apart (down, hung, wrong password, refused
//! rename).

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use factord::config::{FtpProtocol, FtpSettings, FtpTls};
use factord::providers::batch::ProviderError;
use factord::providers::ftp::FtpTransport;
use factord::providers::layout::{BatchFile, batch_files};
use factord::providers::outbox::Found;
use libunftp::notification::DataEvent;
use secrecy::SecretString;

use crate::fakes::ftp::{Login, PASSWORD, Script, ScriptedServer, TestServer, USER, base_name, test_cert};
use crate::fakes::{accepted, sample_batch as batch};

const CSV: &str = "acme-east_20261130_7_3f9a0c2e.csv";
const ZIP: &str = "acme-east_20261130_7_3f9a0c2e.zip";
/// The packets of the sample batch: `<invoice>_<uid8>.pdf`.
const P1: &str = "AE-1_3f9a0c2e.pdf";
const P2: &str = "AE-2_3f9a0c2e.pdf";

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
    assert_eq!(server.names(), [P1, P2, CSV]);
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
    // The CSV goes last, so a factor's watcher that starts on it finds the PDFs there.
    assert_eq!(server.stored().last().map(String::as_str), Some(".acme-east_20261130_7_3f9a0c2e.csv.part"));
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
async fn implicit_ftps_uploads_over_tls_from_the_first_byte() {
    let cert = test_cert();
    let server = TestServer::start_implicit(&cert);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");

    // Verification is on here too: the test CA is not a system root.
    let implicit = settings(server.addr.port(), FtpTls::Implicit, PASSWORD);
    let untrusted = transport(&implicit).send(&batch, &files).await.expect_err("untrusted certificate");
    assert!(matches!(&untrusted, ProviderError::Auth(text) if text.contains("certificate")), "{untrusted:?}");
    assert!(server.names().is_empty() && server.logins().is_empty());

    let receipt =
        transport(&implicit).with_root_certificate(cert.der.clone()).send(&batch, &files).await.expect("sent");

    assert_eq!(receipt, accepted(&batch, CSV));
    assert_uploaded(&server, &files);
    assert_temp_then_rename(&server, &files);
    // The server requires TLS on the data channel: the uploads went through `PROT P`.
    assert_eq!(server.logins().len(), 1);

    // Explicit FTPS against the implicit port: the server speaks TLS first, so no AUTH TLS
    // exchange can happen; a clear failure, nothing stored.
    let explicit = settings(server.addr.port(), FtpTls::Explicit, PASSWORD);
    let before = server.stored().len();
    let error = transport(&explicit)
        .with_root_certificate(cert.der.clone())
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(2))
        .send(&batch, &files)
        .await
        .expect_err("explicit client on an implicit port");
    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");
    assert_eq!(server.stored().len(), before);
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
async fn unpinned_sftp_is_refused_up_front() {
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    // Port 9 (discard) is never dialled: the refusal comes first. SFTP goes to SftpTransport
    // (tests/it/sftp.rs), which will not connect without a host key pin.
    let mut sftp = settings(9, FtpTls::None, PASSWORD);
    sftp.protocol = FtpProtocol::Sftp;
    let refused = transport(&sftp).send(&batch, &files).await;
    assert!(matches!(&refused, Err(ProviderError::Auth(text)) if text.contains("no host_key_sha256")), "{refused:?}");
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

    assert_eq!(reconciled, Found::Delivered(sent));
    assert_eq!(server.stored().len(), stored, "nothing stored again");
    assert_eq!(inodes(&server), before, "no file replaced");
}

#[tokio::test]
async fn reconcile_refuses_a_final_name_holding_other_bytes_and_touches_nothing() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // Under the batch's final name, a file of the same size but other bytes.
    let mut other = files[0].bytes.clone();
    other[0] ^= 0xff;
    std::fs::write(server.dir().join(P1), &other).expect("planted");

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    let Found::Clash(text) = reconciled else { panic!("a clash: {reconciled:?}") };
    assert!(text.contains(P1) && text.contains("/incoming") && text.contains("acme-east-b7"), "{text}");
    assert!(text.contains("3f9a0c2e11223344") && text.contains("other content (sha256 "), "{text}");
    assert_eq!(std::fs::read(server.dir().join(P1)).expect("planted"), other, "left as it was");
    assert_eq!(server.names(), [P1], "nothing uploaded");
    assert!(server.events().iter().all(|e| matches!(e, DataEvent::Got { .. })), "{:?}", server.events());

    // Another size: refused too, not replaced.
    std::fs::write(server.dir().join(P1), b"%PDF-1.7 short").expect("planted");
    let Found::Clash(text) = transport(&settings).reconcile(&batch, &files).await.expect("reconciled") else {
        panic!("a clash")
    };
    assert!(text.contains(&format!("14 bytes where the batch's file has {}", files[0].bytes.len())), "{text}");
    assert_eq!(std::fs::read(server.dir().join(P1)).expect("planted"), b"%PDF-1.7 short");
}

#[tokio::test]
async fn an_earlier_installations_file_of_the_same_invoice_and_size_is_not_taken_for_the_batch() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // Before a database reset, invoice AE-1 of another batch went up as `AE-1.pdf`, and the
    // previous version's names had no uid; same bytes even.
    std::fs::write(server.dir().join("AE-1.pdf"), &files[0].bytes).expect("earlier file");

    assert_eq!(transport(&settings).reconcile(&batch, &files).await, Ok(Found::Absent));
    transport(&settings).send(&batch, &files).await.expect("sent");
    assert_eq!(server.names(), ["AE-1.pdf", P1, P2, CSV], "the earlier file stays, the batch beside it");
}

#[tokio::test]
async fn reconcile_with_nothing_on_the_server_answers_none_and_clears_leftovers() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // A crash mid-STOR of the first file left its temp file; another batch's file stays.
    std::fs::write(server.dir().join(".AE-1_3f9a0c2e.pdf.part"), b"%PDF-1.7 half").expect("leftover");
    std::fs::write(server.dir().join("other_20261129_6.csv"), b"another batch").expect("other file");

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Found::Absent);
    assert_eq!(server.names(), ["other_20261129_6.csv"]);
    assert!(server.stored().is_empty());

    // An empty directory too.
    std::fs::remove_file(server.dir().join("other_20261129_6.csv")).expect("remove");
    assert_eq!(transport(&settings).reconcile(&batch, &files).await, Ok(Found::Absent));
}

#[tokio::test]
async fn reconcile_after_a_crash_mid_batch_finishes_the_missing_files() {
    let server = TestServer::start(None);
    let packets = tempfile::tempdir().expect("tempdir");
    let batch = batch("winfactor", packets.path());
    let files = batch_files(&batch).expect("files");
    let settings = settings(server.addr.port(), FtpTls::None, PASSWORD);
    // The crash: AE-1 made it, AE-2 was half-way through its temp file.
    std::fs::write(server.dir().join(P1), &files[0].bytes).expect("first file");
    std::fs::write(server.dir().join(".AE-2_3f9a0c2e.pdf.part"), b"%PDF-1.7 half").expect("leftover");
    let first = std::fs::metadata(server.dir().join(P1)).expect("metadata").ino();

    let reconciled = transport(&settings).reconcile(&batch, &files).await.expect("reconciled");

    assert_eq!(reconciled, Found::Delivered(accepted(&batch, CSV)));
    assert_uploaded(&server, &files);
    assert_eq!(
        server.stored(),
        [".AE-2_3f9a0c2e.pdf.part", ".acme-east_20261130_7_3f9a0c2e.csv.part"],
        "AE-1 not sent again"
    );
    assert_eq!(std::fs::metadata(server.dir().join(P1)).expect("metadata").ino(), first);
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
    assert_eq!(server.names(), [P1, P2, CSV], "the temp file was deleted");
    assert!(server.events().iter().any(
        |e| matches!(e, DataEvent::Deleted { path } if path.ends_with(".acme-east_20261130_7_3f9a0c2e.csv.part"))
    ));
}

// --- a scripted server, for what libunftp will not do -----------------------------------

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
    assert_eq!(server.file_names(), [P1, P2, CSV]);
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

    assert!(matches!(&error, ProviderError::Transient(text) if text.contains(P1)), "{error:?}");
    let commands = server.commands();
    assert!(commands.contains(&"DELE .AE-1_3f9a0c2e.pdf.part".to_string()), "{commands:?}");
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
        assert!(text.contains(reply) && text.contains(".AE-1_3f9a0c2e.pdf.part"), "{text}");
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
