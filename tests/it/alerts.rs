//! Alerts by webhook and email, and a manual provider's batches by email: against a real SMTP
//! server (STARTTLS with a test CA the client trusts through `smtp.ca_file`) and a real HTTP
//! receiver that checks the signature, both on loopback, on both databases.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use factord::alerts::Alerter;
use factord::config::{Environment, Settings};
use factord::domain::{ExceptionKind, LoadStatus};
use factord::http::Metrics;
use factord::providers::batch::{InvoiceOutcome, ProviderError};
use factord::reports::{ReportKind, ingest_file};
use factord::store::{BatchDraft, DraftItem, LoadFilter, Store};
use tokio_util::sync::CancellationToken;

use crate::harness::{Backend, TestEnv, loads_csv, wait_for};
use crate::seed::{Seed, seed};

const SECRET: &str = "hook-secret-7c1e";

/// A loopback SMTP server: STARTTLS with a certificate from its own CA (written to `ca_file`
/// for the client), AUTH PLAIN, and every accepted message recorded. With `refuse` set, it
/// answers the end of DATA with 554.
pub mod smtp {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    #[derive(Clone, Debug)]
    pub struct Received {
        pub from: String,
        pub to: Vec<String>,
        pub data: String,
        pub auth: Option<String>,
    }

    #[derive(Default)]
    pub struct State {
        pub messages: Mutex<Vec<Received>>,
        pub refuse: AtomicBool,
        /// Messages whose DATA ended (accepted or refused).
        pub attempts: AtomicUsize,
    }

    pub struct SmtpServer {
        pub addr: SocketAddr,
        pub ca_file: PathBuf,
        pub state: Arc<State>,
        _dir: tempfile::TempDir,
        task: tokio::task::JoinHandle<()>,
    }

    impl SmtpServer {
        /// Stops listening (the CA file stays): connections are refused once this returns.
        pub async fn stop(&mut self) {
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }

    impl Drop for SmtpServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl SmtpServer {
        pub async fn start() -> SmtpServer {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
            let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().expect("key")).expect("ca");
            let leaf_key = rcgen::KeyPair::generate().expect("key");
            let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("params")
                .signed_by(&leaf_key, &ca)
                .expect("leaf");
            let ca_file = dir.path().join("ca.pem");
            std::fs::write(&ca_file, ca.pem()).expect("write ca");
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_no_client_auth()
                    .with_single_cert(vec![leaf.der().clone()], key)
                    .expect("server config");
            let acceptor = suppaftp::tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let state = Arc::new(State::default());
            let shared = state.clone();
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (acceptor, state) = (acceptor.clone(), shared.clone());
                    tokio::spawn(async move {
                        let _ = session(stream, acceptor, state).await;
                    });
                }
            });
            SmtpServer { addr, ca_file, state, _dir: dir, task }
        }

        pub fn messages(&self) -> Vec<Received> {
            self.state.messages.lock().expect("messages").clone()
        }
    }

    async fn session(
        stream: TcpStream,
        acceptor: suppaftp::tokio_rustls::TlsAcceptor,
        state: Arc<State>,
    ) -> std::io::Result<()> {
        let mut stream = stream;
        stream.write_all(b"220 localhost test ESMTP\r\n").await?;
        if let Some(plain) = converse(stream, false, &state).await? {
            let tls = acceptor.accept(plain).await?;
            converse(tls, true, &state).await?;
        }
        Ok(())
    }

    /// One phase of the conversation; returns the stream when the client asked for STARTTLS.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        stream: S,
        tls: bool,
        state: &State,
    ) -> std::io::Result<Option<S>> {
        let mut io = BufReader::new(stream);
        let mut current: Option<Received> = None;
        let mut auth = None;
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                if tls {
                    "250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n".into()
                } else {
                    "250-localhost\r\n250 STARTTLS\r\n".into()
                }
            } else if upper == "STARTTLS" && !tls {
                io.get_mut().write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
                io.get_mut().flush().await?;
                return Ok(Some(io.into_inner()));
            } else if !tls {
                "530 5.7.0 must issue a STARTTLS command first\r\n".into()
            } else if upper.starts_with("AUTH PLAIN ") {
                auth = Some(command["AUTH PLAIN ".len()..].to_string());
                "235 2.7.0 authenticated\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                current = Some(Received {
                    from: command["MAIL FROM:".len()..].to_string(),
                    to: Vec::new(),
                    data: String::new(),
                    auth: auth.clone(),
                });
                "250 2.1.0 ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                if let Some(mail) = current.as_mut() {
                    mail.to.push(command["RCPT TO:".len()..].to_string());
                }
                "250 2.1.5 ok\r\n".into()
            } else if upper == "DATA" {
                io.get_mut().write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                io.get_mut().flush().await?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if io.read_line(&mut line).await? == 0 {
                        return Ok(None);
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                state.attempts.fetch_add(1, Ordering::SeqCst);
                if state.refuse.load(Ordering::SeqCst) {
                    current = None;
                    "554 5.7.1 message refused by test\r\n".into()
                } else {
                    if let Some(mut mail) = current.take() {
                        mail.data = data;
                        state.messages.lock().expect("messages").push(mail);
                    }
                    "250 2.0.0 queued\r\n".into()
                }
            } else if upper == "QUIT" {
                io.get_mut().write_all(b"221 2.0.0 bye\r\n").await?;
                io.get_mut().flush().await?;
                return Ok(None);
            } else if upper == "RSET" || upper == "NOOP" {
                "250 2.0.0 ok\r\n".into()
            } else {
                "502 5.5.2 unknown command\r\n".into()
            };
            io.get_mut().write_all(reply.as_bytes()).await?;
            io.get_mut().flush().await?;
        }
    }

    /// The parts of a MIME message with a `filename` (plain or RFC 2231 `filename*0=`):
    /// name → decoded bytes (base64, quoted-printable or as is).
    pub fn attachments(data: &str) -> BTreeMap<String, Vec<u8>> {
        use base64::Engine;
        let mut found = BTreeMap::new();
        for part in data.split("\r\n--") {
            let Some((headers, body)) = part.split_once("\r\n\r\n") else { continue };
            let unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ");
            let mut name = String::new();
            for piece in unfolded.split(';').map(str::trim) {
                let value = |p: &str| {
                    p.split_once('=')
                        .map(|(_, v)| v.trim_start_matches('"').split('"').next().unwrap_or("").to_string())
                };
                if piece.starts_with("filename=") || piece.starts_with("filename*") {
                    name.push_str(&value(piece).unwrap_or_default());
                }
            }
            if name.is_empty() {
                continue;
            }
            let encoding = unfolded.to_ascii_lowercase();
            let bytes = if encoding.contains("content-transfer-encoding: base64") {
                let encoded: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64 attachment")
            } else if encoding.contains("content-transfer-encoding: quoted-printable") {
                quoted_printable(body.strip_suffix("\r\n").unwrap_or(body))
            } else {
                body.strip_suffix("\r\n").unwrap_or(body).as_bytes().to_vec()
            };
            found.insert(name, bytes);
        }
        found
    }

    fn quoted_printable(text: &str) -> Vec<u8> {
        let text = text.replace("=\r\n", "");
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() + 1 {
                let hex = std::str::from_utf8(&bytes[i + 1..(i + 3).min(bytes.len())]).unwrap_or("");
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }
}

/// A loopback HTTP receiver for the webhook: records each delivery (body, headers, whether the
/// signature verified with [`SECRET`]) and answers with `status`.
pub mod hook {
    use super::*;
    use axum::body::Bytes;
    use axum::extract::State as AxumState;
    use axum::http::{HeaderMap, StatusCode};

    #[derive(Clone, Debug)]
    pub struct Delivery {
        pub body: serde_json::Value,
        pub verified: bool,
        pub answered: u16,
    }

    #[derive(Default)]
    pub struct State {
        pub deliveries: Mutex<Vec<Delivery>>,
        pub status: AtomicU16,
    }

    pub struct Receiver {
        pub addr: SocketAddr,
        pub state: Arc<State>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// The check a receiver makes, written from the documentation (docs/operations.md):
    /// HMAC-SHA256 over `<timestamp>.<raw body>`, compared with the `sha256=` header.
    fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
        use hmac::{KeyInit, Mac};
        let Some(timestamp) = headers.get("x-factord-timestamp").and_then(|v| v.to_str().ok()) else { return false };
        let Some(signature) = headers.get("x-factord-signature").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(hex_mac) = signature.strip_prefix("sha256=") else { return false };
        let Ok(given) = hex::decode(hex_mac) else { return false };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let fresh = timestamp.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
        fresh && mac.verify_slice(&given).is_ok()
    }

    async fn receive(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let answered = state.status.load(Ordering::SeqCst);
        let delivery = Delivery {
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            verified: verify(&headers, &body),
            answered,
        };
        state.deliveries.lock().expect("deliveries").push(delivery);
        StatusCode::from_u16(answered).expect("status")
    }

    impl Receiver {
        pub async fn start() -> Receiver {
            let state = Arc::new(State { status: AtomicU16::new(200), ..State::default() });
            let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Receiver { addr, state, task }
        }

        pub fn url(&self) -> String {
            format!("http://{}/hook", self.addr)
        }

        pub fn deliveries(&self) -> Vec<Delivery> {
            self.state.deliveries.lock().expect("deliveries").clone()
        }

        /// Event keys of the deliveries answered 2xx, in order (with repeats, if any).
        pub fn delivered_keys(&self) -> Vec<String> {
            self.deliveries()
                .iter()
                .filter(|d| d.answered < 300)
                .flat_map(|d| d.body["events"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["key"].as_str().map(str::to_string))
                .collect()
        }
    }
}

/// The `[smtp]` and `[alerts]` sections for the two servers.
fn alert_config(env_dir: &std::path::Path, smtp: &smtp::SmtpServer, hook: &hook::Receiver, extra: &str) -> String {
    let secret = env_dir.join("hook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    let password = env_dir.join("smtp-password");
    std::fs::write(&password, "mail-pass-1\n").expect("password");
    format!(
        r#"
[smtp]
host = "127.0.0.1"
port = {port}
username = "factord"
password_file = "{password}"
from = "factord@acme.example"
ca_file = "{ca}"
timeout = "10s"

[alerts]
interval = "100ms"
{extra}

[alerts.webhook]
url = "{url}"
secret_file = "{secret}"
timeout = "2s"

[alerts.email]
to = ["ops@acme.example"]
"#,
        port = smtp.addr.port(),
        password = password.display(),
        ca = smtp.ca_file.display(),
        url = hook.url(),
        secret = secret.display(),
    )
}

/// A test environment whose config carries `sections` (rewritten after the harness made it,
/// since the servers' ports are known only once they run).
async fn env_with(backend: Backend, sections: impl Fn(&std::path::Path) -> String) -> Option<TestEnv> {
    let mut env = TestEnv::new(backend).await?;
    let text = std::fs::read_to_string(&env.config_path).expect("config");
    let extra = sections(env.dir.path());
    // Top-level sections go before the first [[subsidiary]]; a subsidiary's own go where asked.
    let (head, tail) = text.split_once("[[subsidiary]]").expect("subsidiaries");
    let (extra_top, extra_sub) = extra.split_once("#SUBSIDIARY\n").unwrap_or((&extra, ""));
    let tail = tail.replacen(
        "schedule = \"0 0 16 * * Mon-Fri\"\n",
        &format!("schedule = \"0 0 16 * * Mon-Fri\"\n{extra_sub}"),
        1,
    );
    std::fs::write(&env.config_path, format!("{head}{extra_top}\n[[subsidiary]]{tail}")).expect("write config");
    env.settings = Settings::load(&env.config_path, &Environment::new()).expect("config with alerts is valid");
    Some(env)
}

fn alerter(store: &Store, settings: &Arc<Settings>, holder: &str) -> Alerter {
    Alerter::new(store.clone(), settings.clone(), holder, Arc::new(Metrics::new())).expect("alerter")
}

async fn load_id(store: &Store, load: &str) -> i64 {
    store.load_detail(load).await.expect("detail").expect("load").load.id
}

/// A batch of the given seeded loads, written ahead as the submitter does.
async fn batch_of(env: &TestEnv, loads: &[(&str, &str)]) -> String {
    let mut items = Vec::new();
    for (load, invoice) in loads {
        items.push(DraftItem {
            load_id: load_id(&env.store, load).await,
            invoice_number: (*invoice).to_string(),
            amount_cents: 100_000,
            payload_sha256: String::new(),
        });
    }
    let draft = BatchDraft {
        subsidiary: "acme-east",
        provider: "capital_depot",
        batch_date: "2026-12-01",
        cause: "test",
        items,
        lease: Duration::from_secs(60),
    };
    env.store.create_batch(&draft).await.expect("batch").id
}

/// One event of every kind derived from the database: a failed batch, a partly rejected
/// batch, a refused report, a report with rejected rows, a refused load file and exceptions.
async fn make_events(env: &TestEnv) {
    let queued = Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "Q-",
        count: 3,
        amount_cents: 100_000,
        status: "Queued",
    };
    seed(&env.store, &queued).await;
    let failed = batch_of(env, &[("Q-000001", "Q-INV000001")]).await;
    env.store.fail_batch(&failed, &ProviderError::Transient("connection refused".into())).await.expect("fail");
    let partly = batch_of(env, &[("Q-000002", "Q-INV000002"), ("Q-000003", "Q-INV000003")]).await;
    let outcomes = vec![
        ("Q-INV000002".to_string(), InvoiceOutcome::Accepted { reference: None }),
        ("Q-INV000003".to_string(), InvoiceOutcome::Rejected { reason: "broker not approved".into() }),
    ];
    env.store.record_batch_outcome(&partly, None, &outcomes).await.expect("outcome");

    let invoiced = Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "I-",
        count: 2,
        amount_cents: 100_000,
        status: "Invoiced",
    };
    seed(&env.store, &invoiced).await;
    let refused = env.write("refused.csv", "this is not a report\n");
    ingest_file(&env.store, &env.settings, &refused, "capital_depot", Some(ReportKind::Purchase))
        .await
        .expect("ingest");
    let rows = env.write("rows.csv", "Invoice #,Status\nI-INV000001,Funded\nNO-SUCH-9,Funded\n");
    let summary = ingest_file(&env.store, &env.settings, &rows, "capital_depot", Some(ReportKind::Purchase))
        .await
        .expect("ingest");
    assert!(summary.rejected > 0 && summary.refused.is_none(), "{summary:#?}");
    env.store.record_refused_file("loads", "broken.csv", None, "not CSV or JSON").await.expect("refused");
    env.store.raise_exception("I-000002", ExceptionKind::Held, "factor holds it: missing BOL").await.expect("raise");
}

const DERIVED_KINDS: [&str; 6] =
    ["batch_failed", "batch_rejected", "report_refused", "report_rows_rejected", "load_file_refused", "exception"];

fn kinds_of(keys: &[String], alerts: &[factord::store::AlertRecord]) -> std::collections::BTreeSet<String> {
    keys.iter().filter_map(|k| alerts.iter().find(|a| &a.event_key == k).map(|a| a.kind.clone())).collect()
}

fn assert_no_repeats(keys: &[String]) {
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        assert!(seen.insert(key), "alert {key} delivered twice: {keys:#?}");
    }
}

/// Each kind of event alerts once by webhook and once by email, signed; a second sender (a
/// restart) finds nothing new.
async fn every_event_alerts_once_by_webhook_and_email(backend: Backend) {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let Some(env) = env_with(backend, |dir| alert_config(dir, &mail, &receiver, "")).await else { return };
    make_events(&env).await;
    let settings = Arc::new(env.settings);
    let first = alerter(&env.store, &settings, "daemon-1");
    let round = first.round().await.expect("round");
    assert!(round.recorded >= 2 * 7 && round.sent == round.recorded && round.failed == 0, "{round:?}");

    let alerts = env.store.all_alerts().await.expect("alerts");
    let keys = receiver.delivered_keys();
    assert_no_repeats(&keys);
    let kinds = kinds_of(&keys, &alerts);
    for kind in DERIVED_KINDS {
        assert!(kinds.contains(kind), "{kind} alerted: {kinds:?}");
    }
    // The rejected report row and the rejected invoice raise exceptions of their own: every
    // recorded webhook alert went, once.
    let webhook: Vec<&String> = alerts.iter().filter(|a| a.channel == "webhook").map(|a| &a.event_key).collect();
    assert_eq!(keys.len(), webhook.len(), "{keys:#?}");
    assert!(alerts.iter().all(|a| a.sent && a.attempts == 1), "{alerts:#?}");
    // Signed with the secret, body as documented.
    let deliveries = receiver.deliveries();
    assert!(deliveries.iter().all(|d| d.verified), "every signature verifies");
    let held = deliveries
        .iter()
        .flat_map(|d| d.body["events"].as_array().cloned().unwrap_or_default())
        .find(|e| e["kind"] == "exception" && e["load"] == "I-000002")
        .expect("the held exception");
    assert_eq!(held["subsidiary"], "acme-east");
    assert!(held["key"].as_str().is_some_and(|k| k.starts_with("exception:")), "{held}");
    assert!(held["detail"].as_str().is_some_and(|d| d.contains("missing BOL")), "{held}");
    assert!(held["summary"].as_str().is_some_and(|s| s.contains("I-000002")), "{held}");
    assert!(held["at"].as_str().is_some_and(|s| s.ends_with('Z')), "{held}");

    // One email per alert, over STARTTLS with the password from its file.
    let messages = mail.messages();
    assert_eq!(messages.len(), keys.len());
    for message in &messages {
        assert!(message.to.iter().any(|t| t.contains("ops@acme.example")), "{message:?}");
        assert!(message.from.contains("factord@acme.example"), "{message:?}");
        assert!(message.data.contains("Subject: [factord] "), "{}", message.data);
        use base64::Engine;
        let auth = message.auth.as_deref().expect("authenticated");
        let plain = base64::engine::general_purpose::STANDARD.decode(auth).expect("plain");
        assert_eq!(plain, b"\0factord\0mail-pass-1");
    }
    assert!(messages.iter().any(|m| m.data.contains("Batch failed at acme-east")), "a batch alert by email");

    // A restart (another sender, another holder) and the same sender again: nothing repeats.
    first.round().await.expect("round");
    let restarted = alerter(&env.store, &settings, "daemon-1-restarted");
    let again = restarted.round().await.expect("round");
    assert_eq!((again.recorded, again.sent), (0, 0));
    assert_eq!(receiver.delivered_keys().len(), keys.len());
    assert_eq!(mail.messages().len(), messages.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_alerts_once_by_webhook_and_email_sqlite() {
    every_event_alerts_once_by_webhook_and_email(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_alerts_once_by_webhook_and_email_postgres() {
    every_event_alerts_once_by_webhook_and_email(Backend::Postgres).await;
}

/// The daemon sends alerts itself, a component that stopped among them; run again, it sends
/// none of them twice.
async fn the_daemon_alerts_once_across_a_restart(backend: Backend) {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let Some(env) = env_with(backend, |dir| alert_config(dir, &mail, &receiver, "")).await else { return };
    make_events(&env).await;
    let (faults, _failures) = factord::supervise::FaultPlan::new();
    faults.panic("invoice job", 1);
    let config_path = env.config_path.clone();
    let run = move |faults: factord::supervise::FaultPlan| {
        let settings = Arc::new(Settings::load(&config_path, &Environment::new()).expect("settings"));
        let shutdown = CancellationToken::new();
        let options = factord::daemon::RunOptions { faults, ..factord::daemon::RunOptions::default() };
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            // A pool of its own: the daemon closes its pool when it stops.
            let store = Store::connect(&settings.database).await.expect("daemon pool");
            factord::daemon::run_with_options(settings, store, token, options).await
        });
        (shutdown, task)
    };
    let (shutdown, task) = run(faults);
    let keys = wait_for(Duration::from_secs(30), "every kind by webhook, a stopped component too", || async {
        let alerts = env.store.all_alerts().await.ok()?;
        let keys = receiver.delivered_keys();
        let kinds = kinds_of(&keys, &alerts);
        let all = DERIVED_KINDS.iter().all(|k| kinds.contains(*k)) && kinds.contains("component_stopped");
        let done = alerts.iter().all(|a| a.sent);
        (all && done).then_some(keys)
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("daemon");
    assert_no_repeats(&keys);
    let stopped = receiver
        .deliveries()
        .iter()
        .flat_map(|d| d.body["events"].as_array().cloned().unwrap_or_default())
        .find(|e| e["kind"] == "component_stopped")
        .expect("component stopped");
    assert!(stopped["detail"].as_str().is_some_and(|d| d.contains("invoice job")), "{stopped}");

    // Run again; a new event shows the sender has been round since.
    let (shutdown, task) = run(factord::supervise::FaultPlan::default());
    env.store.raise_exception("I-000001", ExceptionKind::ShortPaid, "paid 900.00 of 1000.00").await.expect("raise");
    wait_for(Duration::from_secs(30), "the new exception", || async {
        let alerts = env.store.all_alerts().await.ok()?;
        let new = alerts.iter().any(|a| a.detail.contains("paid 900.00"));
        (new && alerts.iter().all(|a| a.sent)).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("daemon");
    let after = receiver.delivered_keys();
    assert_no_repeats(&after);
    assert_eq!(after.len(), keys.len() + 1, "only the new event: {after:#?}");
    assert_eq!(mail.messages().len(), after.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_alerts_once_across_a_restart_sqlite() {
    the_daemon_alerts_once_across_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_alerts_once_across_a_restart_postgres() {
    the_daemon_alerts_once_across_a_restart(Backend::Postgres).await;
}

/// Two daemons on one PostgreSQL, each with its own pool, racing round for round: every event
/// goes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_on_one_postgres_alert_once() {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let Some(env) = env_with(Backend::Postgres, |dir| alert_config(dir, &mail, &receiver, "")).await else { return };
    let loads = Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "T-",
        count: 30,
        amount_cents: 100_000,
        status: "Invoiced",
    };
    seed(&env.store, &loads).await;
    let other = Store::connect(&env.settings.database).await.expect("second pool");
    let settings = Arc::new(env.settings);
    let (one, two) = (alerter(&env.store, &settings, "daemon-a"), alerter(&other, &settings, "daemon-b"));
    for round in 0..3 {
        for i in 1..=10 {
            let load = format!("T-{:06}", round * 10 + i);
            env.store.raise_exception(&load, ExceptionKind::Rejected, "missing POD").await.expect("raise");
        }
        let (a, b) = tokio::join!(one.round(), two.round());
        let (a, b) = (a.expect("round a"), b.expect("round b"));
        assert_eq!(a.recorded + b.recorded, 20, "10 events on 2 channels, recorded once: {a:?} {b:?}");
    }
    let keys = receiver.delivered_keys();
    assert_no_repeats(&keys);
    assert_eq!(keys.len(), 30);
    assert_eq!(mail.messages().len(), 30);
}

/// A webhook answering 500 is tried again with backoff while loads keep moving; once it
/// answers, the alert goes once. Email is not held up by it.
async fn a_dead_webhook_is_retried_and_never_blocks_the_pipeline(backend: Backend) {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    receiver.state.status.store(500, Ordering::SeqCst);
    let Some(env) = env_with(backend, |dir| alert_config(dir, &mail, &receiver, "")).await else { return };
    let invoiced = Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "I-",
        count: 1,
        amount_cents: 100_000,
        status: "Invoiced",
    };
    seed(&env.store, &invoiced).await;
    env.store.raise_exception("I-000001", ExceptionKind::Held, "missing BOL").await.expect("raise");
    let settings = Arc::new(Settings::load(&env.config_path, &Environment::new()).expect("settings"));
    let shutdown = CancellationToken::new();
    // A pool of its own: the daemon closes its pool when it stops.
    let store = Store::connect(&settings.database).await.expect("daemon pool");
    let task = tokio::spawn(factord::daemon::run_until_stopped(settings, store, shutdown.clone()));

    // Loads dropped meanwhile are imported and invoiced.
    let docs = env.path("documents");
    std::fs::create_dir_all(&docs).expect("mkdir");
    std::fs::write(docs.join("rc.pdf"), crate::pdfs::rate_confirmation("P", 1)).expect("rc");
    std::fs::write(docs.join("pod.pdf"), crate::pdfs::pod_with_jpeg("P", &crate::pdfs::scanned_jpeg(100, 60, 1)))
        .expect("pod");
    let csv = loads_csv(&["P-1,acme-east,BRK-1,Blue,123456,500.00,,,pod.pdf,rc.pdf,PO-1,,"]);
    env.write("inbox/loads/more.csv", &csv);
    wait_for(Duration::from_secs(60), "the new load invoiced while the webhook fails", || async {
        let queued = env
            .store
            .list_loads(&LoadFilter { status: Some(LoadStatus::Queued), ..LoadFilter::default() })
            .await
            .ok()?;
        let alerts = env.store.all_alerts().await.ok()?;
        let retried = alerts.iter().any(|a| a.channel == "webhook" && !a.sent && a.attempts >= 2);
        (queued.iter().any(|l| l.load.load_number == "P-1") && retried).then_some(())
    })
    .await;
    let failing = receiver.deliveries();
    assert!(failing.len() >= 2 && failing.iter().all(|d| d.answered == 500), "retried: {}", failing.len());
    assert!(!mail.messages().is_empty(), "email went while the webhook failed");
    let alerts = env.store.all_alerts().await.expect("alerts");
    assert!(
        alerts
            .iter()
            .filter(|a| a.channel == "webhook")
            .all(|a| a.last_error.as_deref().is_some_and(|e| e.contains("500"))),
        "{alerts:#?}"
    );

    receiver.state.status.store(200, Ordering::SeqCst);
    wait_for(Duration::from_secs(60), "the webhook alerts delivered", || async {
        let alerts = env.store.all_alerts().await.ok()?;
        alerts.iter().filter(|a| a.channel == "webhook").all(|a| a.sent).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("daemon");
    let keys = receiver.delivered_keys();
    assert_no_repeats(&keys);
    assert!(keys.iter().any(|k| k.starts_with("exception:")), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_is_retried_and_never_blocks_the_pipeline_sqlite() {
    a_dead_webhook_is_retried_and_never_blocks_the_pipeline(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_is_retried_and_never_blocks_the_pipeline_postgres() {
    a_dead_webhook_is_retried_and_never_blocks_the_pipeline(Backend::Postgres).await;
}

/// A load that has not moved for `stuck_after` alerts once; a fresh one does not.
async fn a_load_waiting_past_stuck_after_alerts_once(backend: Backend) {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let extra = "stuck_after = \"2s\"";
    let Some(env) = env_with(backend, |dir| alert_config(dir, &mail, &receiver, extra)).await else { return };
    let queued = Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "W-",
        count: 1,
        amount_cents: 100_000,
        status: "Queued",
    };
    seed(&env.store, &queued).await;
    env.store.set_waiting_reason("W-000001", Some("customer MC missing")).await.expect("waiting");
    let settings = Arc::new(env.settings);
    let sender = alerter(&env.store, &settings, "daemon-1");
    let fresh = sender.round().await.expect("round");
    assert_eq!(fresh.recorded, 0, "a load that just moved is not stuck");
    wait_for(Duration::from_secs(20), "the stuck alert", || async {
        let round = sender.round().await.ok()?;
        (round.sent > 0).then_some(())
    })
    .await;
    for _ in 0..3 {
        sender.round().await.expect("round");
    }
    let keys = receiver.delivered_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("stuck:"), "{keys:?}");
    let body = &receiver.deliveries()[0].body["events"][0];
    assert_eq!((body["kind"].as_str(), body["load"].as_str()), (Some("load_stuck"), Some("W-000001")));
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("Queued") && d.contains("customer MC missing")),
        "{body}"
    );
    assert_eq!(mail.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_waiting_past_stuck_after_alerts_once_sqlite() {
    a_load_waiting_past_stuck_after_alerts_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_waiting_past_stuck_after_alerts_once_postgres() {
    a_load_waiting_past_stuck_after_alerts_once(Backend::Postgres).await;
}

/// With a digest, the due alerts of a channel go as one message.
async fn a_digest_sends_one_message_per_channel(backend: Backend) {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let Some(env) = env_with(backend, |dir| alert_config(dir, &mail, &receiver, "digest = \"1h\"")).await else {
        return;
    };
    make_events(&env).await;
    let settings = Arc::new(env.settings);
    let round = alerter(&env.store, &settings, "daemon-1").round().await.expect("round");
    assert!(round.sent >= 14, "{round:?}");
    assert_eq!(receiver.deliveries().len(), 1);
    assert_eq!(mail.messages().len(), 1);
    let events = receiver.deliveries()[0].body["events"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(u64::try_from(events).expect("count") * 2, round.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_sends_one_message_per_channel_sqlite() {
    a_digest_sends_one_message_per_channel(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_sends_one_message_per_channel_postgres() {
    a_digest_sends_one_message_per_channel(Backend::Postgres).await;
}

/// A manual provider with `[subsidiary.factoring.email]`: a refused message leaves the batch
/// undelivered (no outbox copy, loads still Queued); the next submission is delivered once, the
/// batch file and packets attached, the outbox copy readable by the group (0640 in 0750).
#[expect(
    clippy::too_many_lines,
    reason = "one story: refused, not delivered; accepted, delivered once; the copy and its modes"
)]
async fn a_manual_batch_goes_by_email_once_accepted(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let sections = |dir: &std::path::Path| {
        format!(
            "{}#SUBSIDIARY\n\n[subsidiary.factoring.email]\nto = \"batches@capitaldepot.example\"\n\n",
            alert_config(dir, &mail, &receiver, "")
        )
    };
    let Some(env) = env_with(backend, sections).await else { return };
    let docs = env.path("documents");
    std::fs::create_dir_all(&docs).expect("mkdir");
    std::fs::write(docs.join("rc.pdf"), crate::pdfs::rate_confirmation("M", 1)).expect("rc");
    std::fs::write(docs.join("pod.pdf"), crate::pdfs::pod_with_jpeg("M", &crate::pdfs::scanned_jpeg(100, 60, 1)))
        .expect("pod");
    let csv = loads_csv(&[
        "M-1,acme-east,BRK-1,Blue,123456,100.00,,,pod.pdf,rc.pdf,PO-1,,",
        "M-2,acme-east,BRK-1,Blue,123456,200.00,,,pod.pdf,rc.pdf,PO-2,,",
    ]);
    let file = env.write("loads.csv", &csv);
    factord::intake::import_load_file(&env.store, &env.settings, &file, None).await.expect("import");
    factord::invoicing::run_once(&env.store, &env.settings, None, &CancellationToken::new()).await.expect("invoice");

    mail.state.refuse.store(true, Ordering::SeqCst);
    let report = factord::submit::run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    assert_eq!(report.batches[0].status, "failed", "{report:#?}");
    assert!(report.batches[0].error.as_deref().is_some_and(|e| e.contains("refused")), "{report:#?}");
    assert_eq!(mail.state.attempts.load(Ordering::SeqCst), 1);
    let outbox = env.path("outbox/acme-east/capital_depot");
    let folders = || -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&outbox)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        found.sort();
        found
    };
    assert!(folders().is_empty(), "no outbox copy of an undelivered batch: {:?}", folders());
    let queued = env
        .store
        .list_loads(&LoadFilter { status: Some(LoadStatus::Queued), ..LoadFilter::default() })
        .await
        .expect("list");
    assert_eq!(queued.len(), 2);

    mail.state.refuse.store(false, Ordering::SeqCst);
    let report = factord::submit::run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert_eq!((report.batches.len(), report.batches[0].status.as_str(), report.batches[0].accepted), (1, "sent", 2));
    let again = factord::submit::run_once(&env.store, &env.settings, None, false, "command").await.expect("submit");
    assert!(again.batches.is_empty());
    let messages = mail.messages();
    assert_eq!(messages.len(), 1, "delivered once");
    let message = &messages[0];
    assert!(message.to.iter().any(|t| t.contains("batches@capitaldepot.example")), "{message:?}");
    let attached = smtp::attachments(&message.data);

    let copies = folders();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    let mut files: Vec<String> = std::fs::read_dir(copy)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "a CSV and two packets: {files:?}");
    assert_eq!(attached.keys().cloned().collect::<Vec<_>>(), files, "every file attached");
    for name in &files {
        let on_disk = std::fs::read(copy.join(name)).expect("copy");
        assert_eq!(attached[name], on_disk, "{name} attached byte for byte");
        let mode = std::fs::metadata(copy.join(name)).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{name}");
    }
    assert!(files.iter().any(|n| n.ends_with(".csv")) && files.iter().filter(|n| n.ends_with(".pdf")).count() == 2);
    for dir in [copy.as_path(), outbox.as_path(), env.path("outbox/acme-east").as_path()] {
        let mode = std::fs::metadata(dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o750, "{}", dir.display());
    }
    let manifest = copy.join(factord::providers::outbox::MANIFEST);
    assert_eq!(std::fs::metadata(manifest).expect("manifest").permissions().mode() & 0o777, 0o640);

    let invoiced = env
        .store
        .list_loads(&LoadFilter { status: Some(LoadStatus::Invoiced), ..LoadFilter::default() })
        .await
        .expect("list");
    assert_eq!(invoiced.len(), 2);
    let detail = env.store.load_detail("M-1").await.expect("detail").expect("load");
    assert!(
        detail
            .load
            .submission_reference
            .as_deref()
            .is_some_and(|r| r.contains("emailed to batches@capitaldepot.example")),
        "{:?}",
        detail.load.submission_reference
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_batch_goes_by_email_once_accepted_sqlite() {
    a_manual_batch_goes_by_email_once_accepted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_batch_goes_by_email_once_accepted_postgres() {
    a_manual_batch_goes_by_email_once_accepted(Backend::Postgres).await;
}

/// `providers test` on a manual provider whose batches go by email reaches the SMTP server
/// (STARTTLS, login, NOOP) and sends nothing; with the server gone it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_test_reaches_the_smtp_server_of_an_email_provider() {
    let (mut mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    let sections = |dir: &std::path::Path| {
        format!(
            "{}#SUBSIDIARY\n\n[subsidiary.factoring.email]\nto = \"batches@capitaldepot.example\"\n\n",
            alert_config(dir, &mail, &receiver, "")
        )
    };
    let Some(env) = env_with(Backend::Sqlite, sections).await else { return };
    let results = factord::providers::probe::test_connections(&env.settings, Some("acme-east")).await;
    assert!(results[0].ok, "{results:#?}");
    let smtp_step = results[0].steps.iter().find(|s| s.starts_with("SMTP ")).expect("an SMTP step");
    assert!(smtp_step.contains("STARTTLS") && smtp_step.contains("nothing sent"), "{smtp_step}");
    assert_eq!(mail.state.attempts.load(Ordering::SeqCst), 0, "a probe sends no message");
    mail.stop().await;
    let results = factord::providers::probe::test_connections(&env.settings, Some("acme-east")).await;
    assert!(!results[0].ok, "{results:#?}");
    assert!(results[0].error.as_deref().is_some_and(|e| e.contains("SMTP")), "{results:#?}");
}

/// Config errors name their key: email on a provider that is not manual, alert email without
/// `[smtp]`, a plain-http webhook to another host.
#[test]
fn alert_and_email_config_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s").expect("secret");
    let config = format!(
        r#"
[alerts.webhook]
url = "http://hooks.example.com/factord"
secret_file = "{secret}"

[alerts.email]
to = ["ops@acme.example"]

[[subsidiary]]
id = "acme-east"
name = "ACME"
address = "1 Main St"
usdot = "1234567"
mc = "765432"
timezone = "America/Chicago"
invoice_prefix = "AE-"

[subsidiary.factoring]
provider = "triumph"
active = false

[subsidiary.factoring.email]
to = "batches@triumph.example"
"#,
        secret = secret.display()
    );
    let path = crate::harness::write_config(dir.path(), "sqlite://x.db", "");
    std::fs::write(&path, config).expect("write");
    let error = Settings::load(&path, &Environment::new()).expect_err("invalid");
    let keys: Vec<&str> = error.issues.iter().map(|i| i.key.as_str()).collect();
    for key in ["alerts.webhook.url", "alerts.email.to", "subsidiary[acme-east].factoring.email"] {
        assert!(keys.contains(&key), "{key} in {:#?}", error.issues);
    }
    let email = error.issues.iter().find(|i| i.key == "subsidiary[acme-east].factoring.email").expect("issue");
    assert!(email.message.contains("not a manual provider"), "{email:?}");
}

/// A webhook nobody listens on (connection refused) fails and is tried again later, counted in
/// the metrics; one answering 400 is given up, the reason kept.
async fn refused_connections_are_retried_and_4xx_given_up(backend: Backend) {
    let (mail, receiver) = (smtp::SmtpServer::start().await, hook::Receiver::start().await);
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let Some(env) = env_with(backend, |dir| {
        alert_config(dir, &mail, &receiver, "").replace(&receiver.url(), &format!("http://{closed}/hook"))
    })
    .await
    else {
        return;
    };
    let invoiced = Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "I-",
        count: 1,
        amount_cents: 100_000,
        status: "Invoiced",
    };
    seed(&env.store, &invoiced).await;
    env.store.raise_exception("I-000001", ExceptionKind::Held, "missing BOL").await.expect("raise");
    let settings = Arc::new(env.settings);
    let metrics = Arc::new(Metrics::new());
    let sender = Alerter::new(env.store.clone(), settings.clone(), "daemon-1", metrics.clone()).expect("alerter");
    let round = sender.round().await.expect("round");
    assert_eq!((round.sent, round.failed), (1, 1), "email sent, webhook failed: {round:?}");
    assert_eq!(metrics.alerts("webhook"), (0, 1));
    assert_eq!(metrics.alerts("email"), (1, 0));
    let alerts = env.store.all_alerts().await.expect("alerts");
    let webhook = alerts.iter().find(|a| a.channel == "webhook").expect("webhook alert");
    assert!(!webhook.sent && !webhook.given_up && webhook.attempts == 1, "{webhook:?}");
    assert!(webhook.last_error.as_deref().is_some_and(|e| e.contains("cannot post")), "{webhook:?}");
    wait_for(Duration::from_secs(20), "a second attempt after the backoff", || async {
        sender.round().await.ok()?;
        let alerts = env.store.all_alerts().await.ok()?;
        alerts.iter().any(|a| a.channel == "webhook" && a.attempts >= 2).then_some(())
    })
    .await;

    // A receiver answering 400 is given up after one attempt.
    receiver.state.status.store(400, Ordering::SeqCst);
    let text = std::fs::read_to_string(&settings.config_path).expect("config");
    std::fs::write(&settings.config_path, text.replace(&format!("http://{closed}/hook"), &receiver.url()))
        .expect("write");
    let settings = Arc::new(Settings::load(&settings.config_path, &Environment::new()).expect("settings"));
    env.store.raise_exception("I-000001", ExceptionKind::ShortPaid, "paid 900.00 of 1000.00").await.expect("raise");
    let sender = alerter(&env.store, &settings, "daemon-1");
    wait_for(Duration::from_secs(20), "every webhook alert answered 400", || async {
        sender.round().await.ok()?;
        let alerts = env.store.all_alerts().await.ok()?;
        alerts.iter().filter(|a| a.channel == "webhook").all(|a| a.given_up).then_some(())
    })
    .await;
    let alerts = env.store.all_alerts().await.expect("alerts");
    let webhook: Vec<_> = alerts.iter().filter(|a| a.channel == "webhook").collect();
    assert_eq!(webhook.len(), 2);
    assert!(
        webhook.iter().all(|a| !a.sent && a.last_error.as_deref().is_some_and(|e| e.contains("400"))),
        "{webhook:#?}"
    );
    let posted = receiver.deliveries().len();
    for _ in 0..3 {
        sender.round().await.expect("round");
    }
    assert_eq!(receiver.deliveries().len(), posted, "a given-up alert is not posted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_and_4xx_given_up_sqlite() {
    refused_connections_are_retried_and_4xx_given_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_and_4xx_given_up_postgres() {
    refused_connections_are_retried_and_4xx_given_up(Backend::Postgres).await;
}
