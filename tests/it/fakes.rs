//! Fake factors on loopback, shared by the transport tests (`ftp`, `api`) and the submission
//! fault tests (`submit_faults`): an FTP server (libunftp on a tempdir) and a scripted one that
//! can misbehave or stall at a chosen step, and an HTTP server playing OTR from its published
//! contract (anything else is a bare `400 Invalid Request`) that counts *effective* submissions
//! (one invoice per USDOT and invoice number, whatever the client resends) and can stall inside
//! a request, before or after committing it.

pub mod ftp {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use libunftp::notification::{DataEvent, DataListener, EventMeta};
    use libunftp::options::FtpsRequired;
    use unftp_core::auth::{AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, Principal};
    use unftp_sbe_fs::Filesystem;

    pub const USER: &str = "acme";
    pub const PASSWORD: &str = "s3cret-Pa55word";

    /// A self-signed certificate for 127.0.0.1 / localhost, as PEM files for the server and DER
    /// for the client's extra root.
    pub struct TestCert {
        _dir: tempfile::TempDir,
        pub cert: PathBuf,
        pub key: PathBuf,
        pub der: Vec<u8>,
    }

    pub fn test_cert() -> TestCert {
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
    pub struct Login {
        pub user: String,
        pub tls: bool,
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
    pub struct EventLog(pub Arc<Mutex<Vec<DataEvent>>>);

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

    pub struct TestServer {
        pub addr: SocketAddr,
        pub root: tempfile::TempDir,
        pub events: EventLog,
        pub logins: Arc<Mutex<Vec<Login>>>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl TestServer {
        /// Plain FTP, or FTPS required on both channels (`ftps_required(All, All)`: no login
        /// before AUTH TLS, no PASV before PROT P).
        pub fn start(tls: Option<&TestCert>) -> TestServer {
            TestServer::start_on(tls, 0)
        }

        /// As [`TestServer::start`], on a given port of 127.0.0.1 (0: any free one), so that a
        /// server found down can be started where the config points.
        pub fn start_on(tls: Option<&TestCert>, port: u16) -> TestServer {
            TestServer::start_with(tls, port, false)
        }

        /// Implicit FTPS (port 990 style): TLS from the first byte of the control connection.
        /// libunftp speaks only explicit FTPS, so a TLS-terminating proxy (tokio-rustls, the
        /// test certificate) listens on `addr` and hands each connection's bytes to libunftp
        /// on a loopback port of its own; the data channel is libunftp's, TLS required (no
        /// PASV before `PROT P`).
        pub fn start_implicit(cert: &TestCert) -> TestServer {
            TestServer::start_with(Some(cert), 0, true)
        }

        fn start_with(tls: Option<&TestCert>, port: u16, implicit: bool) -> TestServer {
            let root = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir(root.path().join("incoming")).expect("mkdir incoming");
            let events = EventLog::default();
            let logins = Arc::new(Mutex::new(Vec::new()));
            let acceptor = tls.filter(|_| implicit).map(tls_acceptor);
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
                    let (listener_port, control) =
                        if implicit { (0, FtpsRequired::None) } else { (port, FtpsRequired::All) };
                    let listener = tokio::net::TcpListener::bind(("127.0.0.1", listener_port)).await.expect("bind");
                    match &acceptor {
                        Some(acceptor) => {
                            let front = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
                            addr_tx.send(front.local_addr().expect("addr")).expect("send addr");
                            let back = listener.local_addr().expect("addr");
                            tokio::spawn(tls_proxy(front, acceptor.clone(), back));
                        }
                        None => addr_tx.send(listener.local_addr().expect("addr")).expect("send addr"),
                    }
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
                            builder = builder.ftps(cert.clone(), key.clone()).ftps_required(control, FtpsRequired::All);
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

        pub fn dir(&self) -> PathBuf {
            self.root.path().join("incoming")
        }

        /// The names in the upload directory, sorted.
        pub fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.dir())
                .expect("read dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }

        pub fn read(&self, name: &str) -> Vec<u8> {
            std::fs::read(self.dir().join(name)).expect("read uploaded file")
        }

        pub fn events(&self) -> Vec<DataEvent> {
            self.events.0.lock().expect("events").clone()
        }

        /// The names of the files STORed, in order.
        pub fn stored(&self) -> Vec<String> {
            self.events()
                .into_iter()
                .filter_map(|e| match e {
                    DataEvent::Put { path, .. } => Some(base_name(&path)),
                    _ => None,
                })
                .collect()
        }

        pub fn logins(&self) -> Vec<Login> {
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

    fn tls_acceptor(cert: &TestCert) -> suppaftp::tokio_rustls::TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = vec![CertificateDer::from(cert.der.clone())];
        let key = PrivateKeyDer::from_pem_file(&cert.key).expect("test key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        suppaftp::tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Accepts TLS on `front` and relays each connection's plain bytes to `back`.
    async fn tls_proxy(
        front: tokio::net::TcpListener,
        acceptor: suppaftp::tokio_rustls::TlsAcceptor,
        back: SocketAddr,
    ) {
        while let Ok((stream, _)) = front.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut secure) = acceptor.accept(stream).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(back).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut secure, &mut plain).await;
            });
        }
    }

    pub fn base_name(path: &str) -> String {
        path.rsplit('/').next().unwrap_or(path).to_string()
    }

    // --- a scripted server, for what libunftp will not do -----------------------------------

    /// How the scripted server misbehaves.
    #[derive(Clone, Copy, Default)]
    pub struct Script {
        /// Added to every SIZE answer: a server that lost bytes.
        pub size_error: i64,
        /// The answer to every STOR, instead of taking the file.
        pub stor_reply: Option<&'static str>,
        /// Where the server stops answering, the first time it gets there.
        pub stall: Option<Stall>,
    }

    /// A point where the scripted server stops answering on one connection, as a hung server
    /// would: it counts the stall (see [`ScriptedServer::stalls`]) and then reads and ignores
    /// everything until the client goes away. It happens once per server, so a client started
    /// again afterwards gets normal answers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Stall {
        pub point: StallPoint,
        /// The file the stall waits for: a STOR or RNTO argument ending with this (any for the
        /// greeting).
        pub suffix: &'static str,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum StallPoint {
        /// Connected, before the greeting: nothing sent yet.
        Greeting,
        /// After a STOR's bytes arrived and were kept under its (temp) name, before the 226.
        Stored,
        /// An RNTO received, before the file is renamed.
        BeforeRename,
        /// After the file is renamed, before the answer.
        AfterRename,
    }

    type Files = Arc<Mutex<std::collections::BTreeMap<String, Vec<u8>>>>;
    type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>;

    /// A minimal FTP server that records every command line, keeps files in memory (shared by all
    /// connections, so a second client sees what the first left), and advertises an unroutable
    /// address in its PASV replies (a server behind NAT).
    pub struct ScriptedServer {
        pub port: u16,
        commands: Arc<Mutex<Vec<String>>>,
        files: Files,
        stalls: Arc<AtomicUsize>,
        /// RNTO onto a name starting with this is refused with a 550 (permission denied).
        refused: Refused,
        task: tokio::task::JoinHandle<()>,
    }

    type Refused = Arc<Mutex<Option<&'static str>>>;

    impl ScriptedServer {
        pub async fn start(script: Script) -> ScriptedServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let (commands, files) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Default::default())));
            let stalls = Arc::new(AtomicUsize::new(0));
            let refused: Refused = Arc::new(Mutex::new(None));
            let (log, store, stalled) = (Arc::clone(&commands), Arc::clone(&files), Arc::clone(&stalls));
            let refusing = Arc::clone(&refused);
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let session = Self::session(
                        stream,
                        script,
                        Arc::clone(&log),
                        Arc::clone(&store),
                        Arc::clone(&stalled),
                        Arc::clone(&refusing),
                    );
                    tokio::spawn(session);
                }
            });
            ScriptedServer { port, commands, files, stalls, refused, task }
        }

        #[expect(clippy::too_many_lines, reason = "an FTP server's command loop: one arm per command")]
        async fn session(
            stream: tokio::net::TcpStream,
            script: Script,
            log: Arc<Mutex<Vec<String>>>,
            store: Files,
            stalls: Arc<AtomicUsize>,
            refused: Refused,
        ) {
            use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
            // Whether to stall here: the script says so and no stall happened yet.
            let trip = |point: StallPoint, name: &str| {
                script.stall.is_some_and(|s| s.point == point && name.ends_with(s.suffix))
                    && stalls.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            };
            let (read, mut write) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(read).lines();
            let mut passive: Option<tokio::net::TcpListener> = None;
            let mut rename_from = None;
            if trip(StallPoint::Greeting, "") {
                return ignore_until_closed(&mut lines).await;
            }
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
                            store.lock().expect("files").insert(arg.clone(), bytes);
                            if trip(StallPoint::Stored, &arg) {
                                return ignore_until_closed(&mut lines).await;
                            }
                            "226 stored".to_string()
                        }
                        (None, None) => "425 use PASV first".to_string(),
                    },
                    "RETR" => {
                        let held = store.lock().expect("files").get(&arg).cloned();
                        match (held, passive.take()) {
                            (None, _) => "550 no such file".to_string(),
                            (Some(bytes), Some(data)) => {
                                let _ = write.write_all(b"150 sending\r\n").await;
                                let Ok((mut socket, _)) = data.accept().await else { return };
                                let _ = socket.write_all(&bytes).await;
                                let _ = socket.shutdown().await;
                                "226 sent".to_string()
                            }
                            (Some(_), None) => "425 use PASV first".to_string(),
                        }
                    }
                    "NLST" => match passive.take() {
                        Some(data) => {
                            let _ = write.write_all(b"150 listing\r\n").await;
                            let Ok((mut socket, _)) = data.accept().await else { return };
                            let listing: String =
                                store.lock().expect("files").keys().map(|name| format!("{name}\r\n")).collect();
                            let _ = socket.write_all(listing.as_bytes()).await;
                            let _ = socket.shutdown().await;
                            "226 listed".to_string()
                        }
                        None => "425 use PASV first".to_string(),
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
                        if trip(StallPoint::BeforeRename, &arg) {
                            return ignore_until_closed(&mut lines).await;
                        }
                        let refuse = *refused.lock().expect("refused");
                        if refuse.is_some_and(|prefix| arg.starts_with(prefix)) {
                            rename_from = None;
                            let reply = "550 permission denied\r\n";
                            if write.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        let renamed = {
                            let mut files = store.lock().expect("files");
                            match rename_from.take().and_then(|from| files.remove(&from)) {
                                Some(bytes) => {
                                    files.insert(arg.clone(), bytes);
                                    true
                                }
                                None => false,
                            }
                        };
                        if renamed && trip(StallPoint::AfterRename, &arg) {
                            return ignore_until_closed(&mut lines).await;
                        }
                        if renamed { "250 renamed" } else { "550 no such file" }.to_string()
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

        pub fn commands(&self) -> Vec<String> {
            self.commands.lock().expect("commands").clone()
        }

        pub fn file_names(&self) -> Vec<String> {
            self.files.lock().expect("files").keys().cloned().collect()
        }

        /// The bytes held under `name`.
        pub fn file(&self, name: &str) -> Option<Vec<u8>> {
            self.files.lock().expect("files").get(name).cloned()
        }

        /// How many times the server stalled (0 or 1): the sign that a client is stuck there.
        /// Refuses (550) every rename onto a name starting with `prefix`, from now on; `None`
        /// takes renames again.
        pub fn refuse_renames_to(&self, prefix: Option<&'static str>) {
            *self.refused.lock().expect("refused") = prefix;
        }

        pub fn stalls(&self) -> usize {
            self.stalls.load(Ordering::SeqCst)
        }
    }

    /// A stalled connection: commands are read and never answered until the client goes away.
    async fn ignore_until_closed(lines: &mut Lines) {
        while let Ok(Some(_)) = lines.next_line().await {}
    }

    impl Drop for ScriptedServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
}

pub mod api {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path as UrlPath, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    pub const USERNAME: &str = "acme";
    pub const PASSWORD: &str = "pw-Hunter2-otr-secret";
    pub const SUBSCRIPTION_KEY: &str = "sub-4f1d9c-apim-secret";
    pub const API_KEY: &str = "key-7a7a7a-api-secret";
    /// The servers live under a path, as OTR's does, to prove endpoints are appended to it.
    pub const PREFIX: &str = "/carrier-tms/2";

    /// Serves `routes` under [`PREFIX`] on 127.0.0.1:0; returns the base URL.
    pub async fn serve(routes: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, Router::new().nest(PREFIX, routes)).await });
        format!("http://{address}{PREFIX}")
    }

    pub fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
        shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn bearer(headers: &HeaderMap) -> Option<String> {
        headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string)
    }

    pub fn json_response(status: StatusCode, body: Value) -> Response {
        (status, axum::Json(body)).into_response()
    }

    // ---- The OTR server -----------------------------------------------------------------------
    //
    // Written from OTR's published contract (`docs/providers/otr.md`), not from the
    // adapter: exact paths, query names, form fields, JSON names and types, multipart fields and
    // document types. Anything else is answered as OTR answers it: a bare `400 Invalid Request`
    // that names no field. Every request needs the subscription key; every request after login
    // the bearer token.

    /// An invoice OTR holds.
    #[derive(Clone, Debug, Default)]
    pub struct OtrInvoice {
        /// `invoicePkey` (digits; answered as a JSON number).
        pub id: String,
        /// `InvoiceNo`.
        pub number: String,
        /// `ClientDOT`: with `InvoiceNo`, OTR's key of an invoice.
        pub client_dot: u64,
        /// The `POST invoices` body it was created from.
        pub body: Value,
        /// `InvoiceDocTypes` of every document uploaded to it, in order.
        pub documents: Vec<u64>,
        /// The bytes of every uploaded file, in the same order.
        pub files: Vec<Vec<u8>>,
    }

    /// What the fake OTR does (knobs) and what it saw (counters).
    #[derive(Default)]
    pub struct Otr {
        /// The first token issued is refused once, as an expired token would be.
        pub expire_first_token: bool,
        /// Every token is refused (credentials revoked).
        pub refuse_tokens: bool,
        /// This many `POST invoices` answer 500 / 429 (`Retry-After: 1`) first.
        pub fail_500: u32,
        pub fail_429: u32,
        /// `POST invoices` for this invoice number never answers.
        pub hang: Option<String>,
        /// `POST invoices` creates the invoice, then the connection drops without an answer.
        pub drop_after_commit: bool,
        /// The first `POST invoices` for this invoice number stops there and never answers, once:
        /// before the invoice is committed, or after (a factor that took it and then hung).
        pub stall: Option<(String, OtrStall)>,
        /// `POST invoices` with this `BrokerMC` answers 204 (unknown broker) / 402 (not approved).
        pub unknown_mc: Option<String>,
        pub unapproved_mc: Option<String>,
        /// A duplicate (ClientDOT, InvoiceNo) gets a 409 without the `invoicePkey`.
        pub conflict_without_id: bool,
        /// `POST documents/upload` answers 413 for a file larger than this.
        pub max_file_bytes: Option<usize>,
        /// `GET broker-check` answers by query, `mc:<number>` or `dot:<number>`; a number not
        /// listed is unknown to OTR (404).
        pub brokers: HashMap<String, BrokerAnswer>,
        /// `Status` of `GET invoices/{invoicePkey}` by pkey; `Pending` when not set.
        pub statuses: HashMap<String, String>,
        /// `GET invoices/{invoicePkey}` for these pkeys answers 503, every time.
        pub status_unavailable: std::collections::HashSet<String>,

        /// Every broker-check query answered or not, as `mc:<number>` / `dot:<number>`.
        pub broker_checks: Vec<String>,
        pub logins: u32,
        pub valid_tokens: Vec<String>,
        pub requests: u32,
        pub without_subscription_key: u32,
        /// Requests answered `400 Invalid Request`.
        pub bad_requests: u32,
        pub invoice_posts: u32,
        /// The body of every `POST invoices`, as received, and its headers (the credentials'
        /// values blanked).
        pub invoice_bodies: Vec<String>,
        pub invoice_headers: Vec<Vec<(String, String)>>,
        /// Every 201 answer to `POST invoices`, as sent.
        pub invoice_answers: Vec<String>,
        pub document_posts: u32,
        pub status_reads: u32,
        pub invoices: Vec<OtrInvoice>,
        /// How many times a stall happened: the sign that a client is stuck inside a request.
        pub stalled: u32,
    }

    /// What the fake OTR answers to one broker check.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum BrokerAnswer {
        /// 200 with this `message` (`APPROVED`, `CALL OFFICE`, `NOT APPROVED`, or other words).
        Message(String),
        /// 204, no body: unknown broker.
        NoContent,
        /// 503, every time.
        Unavailable,
        /// Never answers.
        Hang,
    }

    impl BrokerAnswer {
        pub fn message(message: &str) -> BrokerAnswer {
            BrokerAnswer::Message(message.to_string())
        }
    }

    /// Where [`Otr::stall`] stops a `POST invoices`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum OtrStall {
        BeforeCommit,
        AfterCommit,
    }

    pub type Shared<T> = Arc<Mutex<T>>;

    /// The `invoicePkey` OTR gives its `n`th invoice (1-based) in this fake.
    pub fn pkey(n: usize) -> String {
        (1000 + n).to_string()
    }

    impl Otr {
        /// Counts a request; `false` when it lacks the subscription key (then 401, as OTR's
        /// gateway answers).
        fn saw(&mut self, headers: &HeaderMap) -> bool {
            self.requests += 1;
            let keyed =
                headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()) == Some(SUBSCRIPTION_KEY);
            if !keyed {
                self.without_subscription_key += 1;
            }
            keyed
        }

        /// Subscription key and a valid bearer token.
        fn authorized(&mut self, headers: &HeaderMap) -> bool {
            self.saw(headers) && !self.refuse_tokens && bearer(headers).is_some_and(|t| self.valid_tokens.contains(&t))
        }

        fn invalid(&mut self) -> Response {
            self.bad_requests += 1;
            invalid_request()
        }
    }

    /// OTR's answer to a body, query or form it does not take: no field named.
    fn invalid_request() -> Response {
        (StatusCode::BAD_REQUEST, "Invalid Request").into_response()
    }

    fn unauthorized() -> Response {
        json_response(StatusCode::UNAUTHORIZED, json!({"statusCode": 401, "message": "Unauthorized"}))
    }

    fn otr_routes(state: Shared<Otr>) -> Router {
        Router::new()
            .route("/auth/token", post(otr_login))
            .route("/broker-check", get(otr_broker_check))
            .route("/invoices", post(otr_create))
            .route("/invoices/{pkey}", get(otr_get))
            .route("/documents/upload", post(otr_upload))
            .with_state(state)
    }

    /// `application/x-www-form-urlencoded` pairs, decoded; `None` when malformed.
    fn form_pairs(body: &str) -> Option<Vec<(String, String)>> {
        let decode = |text: &str| -> Option<String> {
            let bytes = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'+' => out.push(b' '),
                    b'%' => {
                        let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            String::from_utf8(out).ok()
        };
        body.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((decode(k)?, decode(v)?))
            })
            .collect()
    }

    /// `POST auth/token`, form `username`, `password` and nothing else.
    async fn otr_login(State(state): State<Shared<Otr>>, headers: HeaderMap, body: String) -> Response {
        let mut otr = lock(&state);
        if !otr.saw(&headers) {
            return unauthorized();
        }
        let form_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(form) = form_pairs(&body).filter(|_| form_type.starts_with("application/x-www-form-urlencoded"))
        else {
            return otr.invalid();
        };
        let mut names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        if names != ["password", "username"] {
            return otr.invalid();
        }
        let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if value("username") != Some(USERNAME) || value("password") != Some(PASSWORD) {
            // Echoes what it got, as careless servers do: the client must scrub it.
            return json_response(
                StatusCode::UNAUTHORIZED,
                json!({"message": format!("bad login {body} with key {SUBSCRIPTION_KEY}")}),
            );
        }
        otr.logins += 1;
        let token = format!("token-{}", otr.logins);
        if !(otr.expire_first_token && otr.logins == 1) {
            otr.valid_tokens.push(token.clone());
        }
        json_response(
            StatusCode::OK,
            json!({"access_token": token, "refresh_token": format!("refresh-{}", otr.logins), "expires_in": 7199}),
        )
    }

    /// `GET broker-check?brokerMc=<mc>&brokerDot=<dot>`, either alone; MC wins when both.
    async fn otr_broker_check(
        State(state): State<Shared<Otr>>,
        headers: HeaderMap,
        Query(query): Query<HashMap<String, String>>,
    ) -> Response {
        let answer = {
            let mut otr = lock(&state);
            if !otr.authorized(&headers) {
                return unauthorized();
            }
            let digits = |v: &String| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit());
            if query.is_empty()
                || query.keys().any(|k| k != "brokerMc" && k != "brokerDot")
                || !query.values().all(digits)
            {
                return otr.invalid();
            }
            let key = match (query.get("brokerMc"), query.get("brokerDot")) {
                (Some(mc), _) => format!("mc:{mc}"),
                (None, Some(dot)) => format!("dot:{dot}"),
                (None, None) => return otr.invalid(),
            };
            otr.broker_checks.push(key.clone());
            otr.brokers.get(&key).cloned()
        };
        match answer {
            None => json_response(StatusCode::NOT_FOUND, json!({"message": "Broker not found"})),
            Some(BrokerAnswer::Message(message)) => json_response(StatusCode::OK, json!({"message": message})),
            Some(BrokerAnswer::NoContent) => StatusCode::NO_CONTENT.into_response(),
            Some(BrokerAnswer::Unavailable) => {
                json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"message": "broker check under maintenance"}))
            }
            Some(BrokerAnswer::Hang) => {
                std::future::pending::<()>().await;
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }

    /// The JSON types of OTR's invoice fields.
    #[derive(Clone, Copy)]
    enum Kind {
        Text,
        Integer,
        Number,
        Date,
        State,
    }

    /// `POST invoices` fields: name, type, required.
    const INVOICE_FIELDS: [(&str, Kind, bool); 14] = [
        ("InvoiceNo", Kind::Text, true),
        ("BrokerMC", Kind::Integer, true),
        ("ClientDOT", Kind::Integer, true),
        ("InvoiceAmount", Kind::Number, true),
        ("InvoiceDate", Kind::Date, true),
        ("PoNumber", Kind::Text, false),
        ("FromCity", Kind::Text, true),
        ("FromState", Kind::State, true),
        ("ToCity", Kind::Text, true),
        ("ToState", Kind::State, true),
        ("TermPkey", Kind::Integer, false),
        ("Weight", Kind::Number, false),
        ("Miles", Kind::Number, false),
        ("Notes", Kind::Text, false),
    ];

    fn of_kind(value: &Value, kind: Kind) -> bool {
        match kind {
            Kind::Text => value.as_str().is_some_and(|s| !s.trim().is_empty()),
            Kind::Integer => value.as_u64().is_some(),
            Kind::Number => value.is_number(),
            Kind::Date => value.as_str().is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
            Kind::State => value.as_str().is_some_and(|s| s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase())),
        }
    }

    /// Whether a `POST invoices` body is one OTR takes: a JSON object with only OTR's names,
    /// each of its type, every required one present.
    fn valid_invoice(body: &Value) -> bool {
        let Some(map) = body.as_object() else { return false };
        let known = map
            .iter()
            .all(|(name, value)| INVOICE_FIELDS.iter().any(|(field, kind, _)| field == name && of_kind(value, *kind)));
        known && INVOICE_FIELDS.iter().all(|(field, _, required)| !required || map.contains_key(*field))
    }

    #[expect(
        clippy::too_many_lines,
        reason = "OTR's answers to POST invoices, one per documented case, in the page's order"
    )]
    async fn otr_create(State(state): State<Shared<Otr>>, headers: HeaderMap, body: Bytes) -> Response {
        let hang = {
            let mut otr = lock(&state);
            if !otr.authorized(&headers) {
                return unauthorized();
            }
            otr.invoice_posts += 1;
            otr.invoice_bodies.push(String::from_utf8_lossy(&body).into_owned());
            let seen = headers
                .iter()
                .map(|(name, value)| {
                    let secret = ["authorization", "ocp-apim-subscription-key"].contains(&name.as_str());
                    let value = if secret { "…".to_string() } else { value.to_str().unwrap_or("?").to_string() };
                    (name.to_string(), value)
                })
                .collect();
            otr.invoice_headers.push(seen);
            if otr.fail_500 > 0 {
                otr.fail_500 -= 1;
                return json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "database busy"}));
            }
            if otr.fail_429 > 0 {
                otr.fail_429 -= 1;
                return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response();
            }
            let json_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            let Some(invoice) = parsed.filter(|v| json_type.starts_with("application/json") && valid_invoice(v)) else {
                return otr.invalid();
            };
            let number = invoice["InvoiceNo"].as_str().unwrap_or_default().to_string();
            let client_dot = invoice["ClientDOT"].as_u64().unwrap_or_default();
            let mc = invoice["BrokerMC"].as_u64().unwrap_or_default().to_string();
            let stall = otr.stall.take_if(|(n, _)| *n == number).map(|(_, point)| point);
            if stall == Some(OtrStall::BeforeCommit) {
                otr.stalled += 1;
                true
            } else if otr.hang.as_deref() == Some(number.as_str()) {
                true
            } else {
                if otr.unknown_mc.as_deref() == Some(mc.as_str()) {
                    return StatusCode::NO_CONTENT.into_response();
                }
                if otr.unapproved_mc.as_deref() == Some(mc.as_str()) {
                    return json_response(
                        StatusCode::PAYMENT_REQUIRED,
                        json!({"message": format!("Broker MC {mc} is not approved for factoring")}),
                    );
                }
                let existing = otr
                    .invoices
                    .iter()
                    .find(|i| i.number == number && i.client_dot == client_dot)
                    .map(|i| i.id.clone());
                if let Some(id) = existing {
                    let body = if otr.conflict_without_id {
                        json!({"Message": "Duplicate invoice number or PO number"})
                    } else {
                        json!({"Message": "Invoice already exists", "invoicePkey": id.parse::<u64>().ok(), "IsDuplicate": true})
                    };
                    return json_response(StatusCode::CONFLICT, body);
                }
                let id = pkey(otr.invoices.len() + 1);
                otr.invoices.push(OtrInvoice {
                    id: id.clone(),
                    number: number.clone(),
                    client_dot,
                    body: invoice.clone(),
                    ..OtrInvoice::default()
                });
                if otr.drop_after_commit {
                    drop(otr);
                    // Committed, and now the connection dies without an answer: the panic ends the
                    // connection's task, which closes the socket.
                    panic!("simulated crash after commit (expected in this test)");
                }
                if stall == Some(OtrStall::AfterCommit) {
                    otr.stalled += 1;
                    true
                } else {
                    let answer = json!({
                            "invoicePkey": id.parse::<u64>().ok(),
                            "invoiceNo": number,
                            "poNumber": invoice.get("PoNumber"),
                            "clientName": "ACME Freight East LLC",
                            "brokerName": "Blue River Logistics",
                            "invoiceExists": false,
                            "IsDuplicate": false,
                            "Message": "Invoice created",
                    });
                    otr.invoice_answers.push(answer.to_string());
                    return json_response(StatusCode::CREATED, answer);
                }
            }
        };
        if hang {
            std::future::pending::<()>().await;
        }
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }

    /// `GET invoices/{invoicePkey}`: the record with its `Status`.
    async fn otr_get(State(state): State<Shared<Otr>>, headers: HeaderMap, UrlPath(pkey): UrlPath<String>) -> Response {
        let mut otr = lock(&state);
        if !otr.authorized(&headers) {
            return unauthorized();
        }
        otr.status_reads += 1;
        if otr.status_unavailable.contains(&pkey) {
            return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"message": "status service unavailable"}));
        }
        let Some(invoice) = otr.invoices.iter().find(|i| i.id == pkey) else {
            return json_response(StatusCode::NOT_FOUND, json!({"message": "Invoice not found"}));
        };
        let status = otr.statuses.get(&pkey).cloned().unwrap_or_else(|| "Pending".to_string());
        let lane = |name: &str| invoice.body.get(name).cloned().unwrap_or(Value::Null);
        json_response(
            StatusCode::OK,
            json!({
                "invoicePkey": pkey.parse::<u64>().ok(),
                "invoiceNo": invoice.number,
                "Status": status,
                "scheduleId": null,
                "fuelAdvanceStatus": null,
                "submittedDate": "2026-11-20T10:00:00",
                "lastUpdated": "2026-11-20T10:00:00",
                "FromCity": lane("FromCity"),
                "FromState": lane("FromState"),
                "ToCity": lane("ToCity"),
                "ToState": lane("ToState"),
            }),
        )
    }

    /// One part of a multipart body: its name, its file name if any, its bytes.
    pub struct FormPart {
        pub name: String,
        pub file_name: Option<String>,
        pub bytes: Vec<u8>,
    }

    fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    }

    /// The parts of a `multipart/form-data` body; `None` when it is not one.
    pub fn multipart(headers: &HeaderMap, body: &[u8]) -> Option<Vec<FormPart>> {
        let content_type = headers.get("content-type")?.to_str().ok()?;
        let boundary = content_type.strip_prefix("multipart/form-data")?.split("boundary=").nth(1)?.trim_matches('"');
        let delimiter = format!("--{boundary}").into_bytes();
        let mut at = find(body, &delimiter, 0)? + delimiter.len();
        let mut parts = Vec::new();
        loop {
            if body.get(at..at + 2)? == b"--" {
                return Some(parts);
            }
            let head_start = at + 2;
            let head_end = find(body, b"\r\n\r\n", head_start)?;
            let head = std::str::from_utf8(&body[head_start..head_end]).ok()?;
            let next = find(body, &delimiter, head_end)?;
            let bytes = body.get(head_end + 4..next.checked_sub(2)?)?.to_vec();
            let disposition = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
            let param = |key: &str| {
                disposition
                    .split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix(key))
                    .map(|v| v.trim_matches('"').to_string())
            };
            parts.push(FormPart { name: param("name=")?, file_name: param("filename="), bytes });
            at = next + delimiter.len();
        }
    }

    /// `POST documents/upload`: exactly `file` (a PDF), `invoiceid`, `InvoiceDocTypes`,
    /// `SendEmail` and `DocumentType` = `invoice-file-upload`.
    async fn otr_upload(State(state): State<Shared<Otr>>, headers: HeaderMap, body: Bytes) -> Response {
        let mut otr = lock(&state);
        if !otr.authorized(&headers) {
            return unauthorized();
        }
        otr.document_posts += 1;
        let Some(parts) = multipart(&headers, &body) else { return otr.invalid() };
        let mut names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if names != ["DocumentType", "InvoiceDocTypes", "SendEmail", "file", "invoiceid"] {
            return otr.invalid();
        }
        let part = |name: &str| parts.iter().find(|p| p.name == name);
        let text = |name: &str| part(name).map(|p| String::from_utf8_lossy(&p.bytes).into_owned()).unwrap_or_default();
        let file = part("file").filter(|f| f.file_name.is_some() && f.bytes.starts_with(b"%PDF-"));
        let doc_type = text("InvoiceDocTypes").parse::<u64>().ok().filter(|t| [1, 3, 4, 5, 6, 7].contains(t));
        let invoice_id = text("invoiceid");
        let (Some(file), Some(doc_type)) = (file, doc_type) else { return otr.invalid() };
        if !["true", "false"].contains(&text("SendEmail").as_str())
            || text("DocumentType") != "invoice-file-upload"
            || invoice_id.is_empty()
            || !invoice_id.chars().all(|c| c.is_ascii_digit())
        {
            return otr.invalid();
        }
        if otr.max_file_bytes.is_some_and(|max| file.bytes.len() > max) {
            return (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large").into_response();
        }
        let bytes = file.bytes.clone();
        match otr.invoices.iter_mut().find(|i| i.id == invoice_id) {
            Some(invoice) => {
                invoice.documents.push(doc_type);
                invoice.files.push(bytes);
                json_response(StatusCode::OK, json!({"message": "File uploaded"}))
            }
            None => json_response(StatusCode::NOT_FOUND, json!({"message": "Invoice not found"})),
        }
    }

    pub async fn otr_server(otr: Otr) -> (String, Shared<Otr>) {
        let state = Arc::new(Mutex::new(otr));
        (serve(otr_routes(state.clone())).await, state)
    }
}

/// A batch of two invoices whose packets hold line feeds, CRs and non-UTF-8 bytes, so an
/// ASCII-mode transfer (which rewrites line endings) shows up as a byte mismatch.
pub fn sample_batch(provider: &str, dir: &std::path::Path) -> factord::providers::batch::Batch {
    use factord::providers::batch::{Batch, BatchInvoice, BatchSeller};
    let invoice = |n: &str, cents: i64| {
        let packet = dir.join(format!("{n}-packet.pdf"));
        let mut bytes = format!("%PDF-1.7\n% packet {n}\n").into_bytes();
        bytes.extend_from_slice(b"stream\r\n\x00\xff\xfe\nline\nendstream\n%%EOF\n");
        std::fs::write(&packet, bytes).expect("write packet");
        BatchInvoice {
            invoice_number: n.to_string(),
            load_number: format!("L-{n}"),
            idempotency_key: format!("acme-east-b7:{n}"),
            amount: factord::domain::Money::from_cents(cents),
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
            pickup_city: None,
            pickup_state: None,
            delivery_city: None,
            delivery_state: None,
            delivered_at: None,
            packet,
            pod: None,
            rate_confirmation: None,
            extra_documents: Vec::new(),
            held_reference: None,
        }
    };
    Batch {
        id: "acme-east-b7".into(),
        number: 7,
        date: "2026-11-30".into(),
        uid: Some("3f9a0c2e11223344".into()),
        seller: BatchSeller { id: "acme-east".into(), name: "ACME".into(), usdot: None, mc: None },
        provider: factord::providers::find_provider(provider).expect("provider"),
        invoices: vec![invoice("AE-1", 245_000), invoice("AE-2", 100_050)],
    }
}

/// What a file transport answers for a batch it took whole.
pub fn accepted(batch: &factord::providers::batch::Batch, reference: &str) -> factord::providers::batch::BatchReceipt {
    use factord::providers::batch::{BatchReceipt, InvoiceOutcome};
    BatchReceipt::all(
        batch,
        Some(reference.to_string()),
        InvoiceOutcome::Accepted { reference: Some(reference.to_string()) },
    )
}
