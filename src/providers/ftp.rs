//! FTP / FTPS transport: uploads a batch's files (from [`super::layout::batch_files`]) into the
//! factor's directory with suppaftp (tokio). Each file goes up under a temp name
//! `.<name>.part`, its remote size is checked against the local length, then it is renamed to
//! its final name (docs/reliability.md rule 8), so a factor's watcher never sees a half-written file and
//! a crash leaves either the final name or a `.part` leftover. Final names are deterministic
//! (derived from the batch, and carrying its uid so they never repeat after a database reset),
//! which is what [`FtpTransport::reconcile`] looks for after a crash with the batch in
//! `sending` (rule 5); a final name is taken for the batch's only if it holds the batch's bytes.
//!
//! Talks to: the factor's FTP server only. It never sees the store; the caller records the
//! outcome and decides on retries from the [`ProviderError`] kind (rule 9).
//!
//! - Explicit FTPS (`AUTH TLS`, then `PBSZ 0` / `PROT P` so the data channel is protected too)
//!   by default; plain FTP only with `tls = "none"`, with a warning on every connection. No
//!   plaintext fallback (rule 10). Implicit FTPS (`tls = "implicit"`, port 990 by default):
//!   TLS from the first byte (suppaftp's `connect_secure_implicit`, behind its `deprecated`
//!   feature), then `PBSZ 0` / `PROT P` for the data channel.
//! - TLS verification is always on, against the system's CA bundle (plus an extra root for
//!   tests). A factor with a self-signed certificate needs a fingerprint-pinning verifier
//!   (like SFTP's `host_key_sha256`), not built yet; never "accept invalid certs".
//! - suppaftp has no I/O timeouts: every call is wrapped in [`tokio::time::timeout`]. A timed
//!   out connection is dropped, never reused.
//! - Passive mode, with the PASV address replaced by the control connection's peer (servers
//!   behind NAT advertise private addresses; it also stops a server from steering the data
//!   connection elsewhere).
//! - SFTP (`protocol = "sftp"`) is handed to [`super::sftp::SftpTransport`], with the same
//!   timeouts: same temp names, size check, rename and reconciliation, over SSH.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use suppaftp::tokio::{AsyncFtpStream, AsyncRustlsConnector, AsyncRustlsFtpStream, ImplAsyncFtpStream, TokioTlsStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::batch::{Batch, BatchReceipt, ProviderError};
use super::layout::BatchFile;
use super::outbox::Found;
use super::remote::{self, PROBE_CONTENT, RemoteDir, probe_name, temp_name};
use super::sftp::SftpTransport;
use crate::config::{FtpProtocol, FtpSettings, FtpTls};

/// Default limit on TCP connect + greeting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default limit on each control command (login, SIZE, rename, …).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on one data transfer (a file's bytes and the server's completion reply).
pub const DEFAULT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the system's CA bundle lives on the distributions factord runs on (Debian/Ubuntu,
/// RHEL/Fedora, SUSE, Alpine). `SSL_CERT_FILE` comes first when set.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Longest server reply text carried into an error (replies may be up to 256 KiB).
const MAX_REPLY_TEXT: usize = 300;

/// Uploads batches to one factor's FTP server, as configured for one subsidiary.
pub struct FtpTransport<'a> {
    settings: &'a FtpSettings,
    /// TCP connect and the server's greeting.
    connect_timeout: Duration,
    /// Each control command; also the TLS upgrade.
    command_timeout: Duration,
    /// Each data transfer: one file's bytes plus the completion reply, or a listing.
    transfer_timeout: Duration,
    /// Extra trust anchors besides the system's: tests use it for their own CA. Not for a
    /// factor's self-signed certificate: that needs a fingerprint-pinning verifier (not built
    /// yet), since trusting a self-signed leaf as a root still lets anyone holding its key in.
    extra_roots: Vec<CertificateDer<'static>>,
}

/// Which step failed: a 5xx while logging in means credentials or policy (nothing works until
/// config changes), a 5xx on a file means the factor refused that file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Login,
    Files,
}

/// An open, logged-in control connection in the batch directory, in binary mode.
enum Control {
    Plain(AsyncFtpStream),
    Tls(AsyncRustlsFtpStream),
}

impl<'a> FtpTransport<'a> {
    pub fn new(settings: &'a FtpSettings) -> Self {
        FtpTransport {
            settings,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            transfer_timeout: DEFAULT_TRANSFER_TIMEOUT,
            extra_roots: Vec::new(),
        }
    }

    pub fn with_timeouts(mut self, connect: Duration, command: Duration, transfer: Duration) -> Self {
        self.connect_timeout = connect;
        self.command_timeout = command;
        self.transfer_timeout = transfer;
        self
    }

    /// Trusts `der` (a DER certificate) as an extra root, besides the system's CA bundle. For
    /// tests with their own CA; a factor with a self-signed certificate needs a
    /// fingerprint-pinning verifier instead (not built yet).
    pub fn with_root_certificate(mut self, der: Vec<u8>) -> Self {
        self.extra_roots.push(CertificateDer::from(der));
        self
    }

    /// Uploads the batch's files into the configured directory, in the given order (packets
    /// first, the CSV last): each under `.<name>.part`, size-checked, then renamed to `<name>`.
    /// A file whose final name already exists is overwritten by the rename.
    #[tracing::instrument(name = "ftp_send", skip_all, fields(batch = %batch.id, host = %self.settings.host))]
    pub async fn send(&self, batch: &Batch, files: &[BatchFile]) -> Result<BatchReceipt, ProviderError> {
        if self.settings.protocol == FtpProtocol::Sftp {
            return self.sftp().send(batch, files).await;
        }
        let receipt = remote::receipt(batch, files)?;
        match self.connect(&mut Vec::new()).await? {
            Control::Plain(mut ftp) => self.send_over(&mut ftp, files).await?,
            Control::Tls(mut ftp) => self.send_over(&mut ftp, files).await?,
        }
        info!(files = files.len(), reference = receipt.reference.as_deref(), "batch uploaded");
        Ok(receipt)
    }

    /// Settles a batch found in `sending` after a crash, from what the server holds under the
    /// batch's final names: [`remote::reconcile`] over this FTP session.
    #[tracing::instrument(name = "ftp_reconcile", skip_all, fields(batch = %batch.id, host = %self.settings.host))]
    pub async fn reconcile(&self, batch: &Batch, files: &[BatchFile]) -> Result<Found, ProviderError> {
        if self.settings.protocol == FtpProtocol::Sftp {
            return self.sftp().reconcile(batch, files).await;
        }
        let receipt = remote::receipt(batch, files)?;
        match self.connect(&mut Vec::new()).await? {
            Control::Plain(mut ftp) => self.reconcile_over(&mut ftp, batch, files, receipt).await,
            Control::Tls(mut ftp) => self.reconcile_over(&mut ftp, batch, files, receipt).await,
        }
    }

    /// Checks the connection without sending a batch (`factord providers test`): connect and
    /// log in, list the directory, write a probe file `.factord-probe-<random>.tmp` there and
    /// delete it, each under its timeout. Every step that worked is added to `steps`; the
    /// first failure is returned, in the server's words.
    #[tracing::instrument(name = "ftp_probe", skip_all, fields(host = %self.settings.host))]
    pub async fn probe(&self, steps: &mut Vec<String>) -> Result<(), ProviderError> {
        if self.settings.protocol == FtpProtocol::Sftp {
            return self.sftp().probe(steps).await;
        }
        match self.connect(steps).await? {
            Control::Plain(mut ftp) => self.probe_over(&mut ftp, steps).await,
            Control::Tls(mut ftp) => self.probe_over(&mut ftp, steps).await,
        }
    }

    async fn probe_over<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        steps: &mut Vec<String>,
    ) -> Result<(), ProviderError> {
        let listed = self.list(ftp).await?;
        debug!(names = listed.len(), "listed");
        steps.push(format!("listed {}", self.directory()));
        let name = probe_name();
        let written = async {
            let mut stream = self
                .within(self.command_timeout, Phase::Files, &format!("STOR {name}"), ftp.put_with_stream(name.as_str()))
                .await?;
            let transfer = async {
                stream.write_all(PROBE_CONTENT).await.map_err(FtpError::ConnectionError)?;
                stream.finish().await
            };
            self.within(self.transfer_timeout, Phase::Files, &format!("upload of {name}"), transfer).await
        }
        .await;
        if let Err(error) = written {
            // A refused or broken upload may still have left a partial file.
            if let Err(leftover) = self.within(self.command_timeout, Phase::Files, "DELE", ftp.rm(name.as_str())).await
            {
                debug!(file = %name, %leftover, "no probe file to delete");
            }
            return Err(error);
        }
        self.within(self.command_timeout, Phase::Files, &format!("DELE {name}"), ftp.rm(name.as_str())).await?;
        steps.push("wrote and deleted probe file".to_string());
        self.quit(ftp).await;
        Ok(())
    }

    /// The configured directory as the server sees it (the login directory when empty).
    fn directory(&self) -> &str {
        if self.settings.directory.is_empty() { "the login directory" } else { &self.settings.directory }
    }

    /// The SFTP transport for the same settings and timeouts.
    fn sftp(&self) -> SftpTransport<'a> {
        SftpTransport::new(self.settings).with_timeouts(
            self.connect_timeout,
            self.command_timeout,
            self.transfer_timeout,
        )
    }

    async fn send_over<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        files: &[BatchFile],
    ) -> Result<(), ProviderError> {
        remote::upload_all(&mut FtpDir { transport: self, ftp: &mut *ftp }, files).await?;
        self.quit(ftp).await;
        Ok(())
    }

    /// [`remote::reconcile`] over this session; QUIT once it is settled.
    async fn reconcile_over<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        batch: &Batch,
        files: &[BatchFile],
        receipt: BatchReceipt,
    ) -> Result<Found, ProviderError> {
        let found = remote::reconcile(&mut FtpDir { transport: self, ftp: &mut *ftp }, batch, files, receipt).await?;
        self.quit(ftp).await;
        Ok(found)
    }

    /// The bytes of `name` (RETR), for reconciliation to compare with the batch's file.
    async fn download<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        name: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut stream =
            self.within(self.command_timeout, Phase::Files, &format!("RETR {name}"), ftp.retr_as_stream(name)).await?;
        let transfer = async {
            let mut bytes = Vec::new();
            stream.read_to_end(&mut bytes).await.map_err(FtpError::ConnectionError)?;
            stream.finish().await?;
            Ok(bytes)
        };
        self.within(self.transfer_timeout, Phase::Files, &format!("download of {name}"), transfer).await
    }

    /// One file: STOR under the temp name, SIZE, rename to the final name.
    async fn upload<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        file: &BatchFile,
    ) -> Result<(), ProviderError> {
        let temp = temp_name(&file.name);
        let len = file.bytes.len() as u64;
        debug!(file = %file.name, bytes = len, "uploading");
        let mut stream = self
            .within(self.command_timeout, Phase::Files, &format!("STOR {temp}"), ftp.put_with_stream(temp.as_str()))
            .await?;
        let transfer = async {
            stream.write_all(&file.bytes).await.map_err(FtpError::ConnectionError)?;
            stream.finish().await
        };
        self.within(self.transfer_timeout, Phase::Files, &format!("upload of {temp}"), transfer).await?;

        let size = self.remote_size(ftp, &temp).await?;
        if size != len {
            self.discard(ftp, &temp).await;
            return Err(ProviderError::Transient(format!(
                "{}: {} arrived with {size} bytes instead of {len}",
                self.endpoint(),
                file.name
            )));
        }
        let rename = format!("rename of {temp} to {}", file.name);
        if let Err(error) = self
            .within(self.command_timeout, Phase::Files, &rename, ftp.rename(temp.as_str(), file.name.as_str()))
            .await
        {
            // A refused rename leaves a connection that still works: tidy up. A broken one
            // leaves the temp file for reconcile.
            if !matches!(error, ProviderError::Transient(_)) {
                self.discard(ftp, &temp).await;
            }
            return Err(error);
        }
        info!(file = %file.name, bytes = len, "file uploaded");
        Ok(())
    }

    /// Deletes a temp file after a failed upload; best effort (reconcile deletes leftovers).
    async fn discard<T: TokioTlsStream + Send>(&self, ftp: &mut ImplAsyncFtpStream<T>, temp: &str) {
        if let Err(error) = self.within(self.command_timeout, Phase::Files, &format!("DELE {temp}"), ftp.rm(temp)).await
        {
            warn!(file = %temp, %error, "could not delete the temp file; reconcile will");
        }
    }

    async fn remote_size<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        name: &str,
    ) -> Result<u64, ProviderError> {
        let size = self.within(self.command_timeout, Phase::Files, &format!("SIZE {name}"), ftp.size(name)).await?;
        Ok(size as u64)
    }

    /// The names in the current directory (NLST). A 550 after a successful CWD is how some
    /// servers say "no files"; any other failure is an error, never "empty" (an empty listing
    /// means the batch may be sent again).
    async fn list<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
    ) -> Result<BTreeSet<String>, ProviderError> {
        let lines = match tokio::time::timeout(self.transfer_timeout, ftp.nlst(None)).await {
            Ok(Err(FtpError::UnexpectedResponse(reply))) if reply_code(&reply.body) == Some(550) => Vec::new(),
            other => self.settle(self.transfer_timeout, Phase::Files, "NLST", other)?,
        };
        Ok(lines
            .iter()
            .map(|line| line.trim().rsplit('/').next().unwrap_or_default().to_string())
            .filter(|name| !name.is_empty())
            .collect())
    }

    async fn quit<T: TokioTlsStream + Send>(&self, ftp: &mut ImplAsyncFtpStream<T>) {
        // The work is done; a server that drops the connection instead of answering QUIT
        // changes nothing.
        if let Err(error) = self.within(self.command_timeout, Phase::Files, "QUIT", ftp.quit()).await {
            debug!(%error, "QUIT was not answered");
        }
    }

    /// Connects, secures, logs in, enters the directory and switches to binary mode; each step
    /// done is added to `steps` (for [`Self::probe`]).
    async fn connect(&self, steps: &mut Vec<String>) -> Result<Control, ProviderError> {
        let settings = self.settings;
        if settings.protocol == FtpProtocol::Sftp {
            // `send` and `reconcile` hand sftp over before connecting.
            return Err(ProviderError::Rejected("sftp settings reached the FTP client".into()));
        }
        let password = settings.password.as_ref().ok_or_else(|| {
            ProviderError::Auth(format!("{}: no password configured for user {}", self.endpoint(), settings.username))
        })?;
        let address = (settings.host.as_str(), settings.port);
        match settings.tls {
            FtpTls::Implicit => {
                let connector = self.tls_connector()?;
                let connect = AsyncRustlsFtpStream::connect_secure_implicit(address, connector, &settings.host);
                let mut ftp =
                    self.within(self.connect_timeout, Phase::Login, "connect (implicit TLS)", connect).await?;
                // TLS from the first byte covers the control channel; the data channel is
                // protected as in explicit mode (suppaftp opens it with TLS either way).
                for command in ["PBSZ 0", "PROT P"] {
                    let call = ftp.custom_command(command, &[Status::CommandOk]);
                    self.within(self.command_timeout, Phase::Login, command, call).await?;
                }
                steps.push(format!("connected to {} (implicit TLS)", self.endpoint()));
                self.prepare(&mut ftp, password, steps).await?;
                Ok(Control::Tls(ftp))
            }
            FtpTls::None => {
                warn!(host = %settings.host, "plain FTP (tls = \"none\"): the password and the batch travel in clear text");
                let mut ftp = self
                    .within(self.connect_timeout, Phase::Login, "connect", AsyncFtpStream::connect(address))
                    .await?;
                steps.push(format!("connected to {} (plain FTP)", self.endpoint()));
                self.prepare(&mut ftp, password, steps).await?;
                Ok(Control::Plain(ftp))
            }
            FtpTls::Explicit => {
                let connector = self.tls_connector()?;
                let ftp = self
                    .within(self.connect_timeout, Phase::Login, "connect", AsyncRustlsFtpStream::connect(address))
                    .await?;
                let mut ftp = self
                    .within(self.command_timeout, Phase::Login, "AUTH TLS", ftp.into_secure(connector, &settings.host))
                    .await?;
                steps.push(format!("connected to {} (explicit TLS)", self.endpoint()));
                self.prepare(&mut ftp, password, steps).await?;
                Ok(Control::Tls(ftp))
            }
        }
    }

    async fn prepare<T: TokioTlsStream + Send>(
        &self,
        ftp: &mut ImplAsyncFtpStream<T>,
        password: &SecretString,
        steps: &mut Vec<String>,
    ) -> Result<(), ProviderError> {
        let settings = self.settings;
        ftp.set_mode(Mode::Passive);
        ftp.set_passive_nat_workaround(true);
        // The only place the password leaves its SecretString: handed to the server, and kept
        // out of whatever the server answered.
        let secret = password.expose_secret();
        self.within(self.command_timeout, Phase::Login, "login", ftp.login(settings.username.as_str(), secret))
            .await
            .map_err(|error| redact(error, secret))?;
        steps.push(format!("logged in as {}", settings.username));
        if !settings.directory.is_empty() {
            let what = format!("CWD {}", settings.directory);
            self.within(self.command_timeout, Phase::Files, &what, ftp.cwd(settings.directory.as_str())).await?;
        }
        // The default ASCII type rewrites line endings: PDFs and zips must go byte for byte.
        self.within(self.command_timeout, Phase::Files, "TYPE I", ftp.transfer_type(FileType::Binary)).await?;
        debug!(host = %settings.host, "logged in");
        Ok(())
    }

    fn tls_connector(&self) -> Result<AsyncRustlsConnector, ProviderError> {
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(system_roots());
        for root in &self.extra_roots {
            roots.add(root.clone()).map_err(|e| ProviderError::Auth(format!("the extra root certificate: {e}")))?;
        }
        if added == 0 && self.extra_roots.is_empty() {
            warn!("no system CA bundle found: FTPS certificates cannot be verified");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProviderError::Rejected(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(AsyncRustlsConnector::from(suppaftp::tokio_rustls::TlsConnector::from(Arc::new(config))))
    }

    /// Runs one suppaftp call under `limit` and maps its failure.
    async fn within<T>(
        &self,
        limit: Duration,
        phase: Phase,
        what: &str,
        call: impl Future<Output = Result<T, FtpError>>,
    ) -> Result<T, ProviderError> {
        let outcome = tokio::time::timeout(limit, call).await;
        self.settle(limit, phase, what, outcome)
    }

    fn settle<T>(
        &self,
        limit: Duration,
        phase: Phase,
        what: &str,
        outcome: Result<Result<T, FtpError>, tokio::time::error::Elapsed>,
    ) -> Result<T, ProviderError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(phase, what, error)),
            Err(_) => Err(ProviderError::Transient(format!(
                "{}: {what}: no answer within {:.1} s",
                self.endpoint(),
                limit.as_secs_f64()
            ))),
        }
    }

    /// Maps a suppaftp error to what the caller does next: retry later, give up, or alert.
    fn classify(&self, phase: Phase, what: &str, error: FtpError) -> ProviderError {
        let at = format!("{}: {what}", self.endpoint());
        match error {
            FtpError::UnexpectedResponse(reply) => {
                let text = reply_text(&reply.body);
                let message = format!("{at}: the server answered {text:?}");
                match (phase, reply_code(&reply.body)) {
                    (_, Some(430 | 530 | 532)) => ProviderError::Auth(message),
                    (_, Some(400..=499)) => ProviderError::Transient(message),
                    // A refused AUTH TLS, USER or PASS: credentials or policy, not this batch.
                    (Phase::Login, Some(500..=599)) => ProviderError::Auth(message),
                    (Phase::Files, Some(500..=599)) => ProviderError::Rejected(message),
                    _ => ProviderError::Transient(format!("{at}: unexpected reply {text:?}")),
                }
            }
            FtpError::SecureError(detail) if detail.contains("invalid peer certificate") => {
                ProviderError::Auth(format!("{at}: the server's TLS certificate is not trusted: {detail}"))
            }
            other => ProviderError::Transient(format!("{at}: {other}")),
        }
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }
}

fn reply_code(body: &[u8]) -> Option<u16> {
    let digits = body.get(..3)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The server's reply as one short line, for error messages.
fn reply_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX_REPLY_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Keeps the password out of an error even if a server echoes it back.
pub(super) fn redact(error: ProviderError, secret: &str) -> ProviderError {
    if secret.is_empty() {
        return error;
    }
    let redactor = crate::secrets::Redactor::new([secret], None);
    let scrub = |text: String| redactor.redact(&text);
    match error {
        ProviderError::Transient(text) => ProviderError::Transient(scrub(text)),
        ProviderError::Rejected(text) => ProviderError::Rejected(scrub(text)),
        ProviderError::Auth(text) => ProviderError::Auth(scrub(text)),
    }
}

/// The system's trust anchors: the first CA bundle found (`SSL_CERT_FILE` first).
fn system_roots() -> Vec<CertificateDer<'static>> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = from_env.into_iter().chain(SYSTEM_CA_BUNDLES.iter().map(std::path::PathBuf::from));
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else { continue };
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
        if !certs.is_empty() {
            debug!(bundle = %path.display(), certificates = certs.len(), "system CA bundle");
            return certs;
        }
    }
    Vec::new()
}

/// One FTP session in the factor's directory, for the routines FTP shares with SFTP.
struct FtpDir<'s, 'a, T: TokioTlsStream + Send> {
    transport: &'s FtpTransport<'a>,
    ftp: &'s mut ImplAsyncFtpStream<T>,
}

impl<T: TokioTlsStream + Send> RemoteDir for FtpDir<'_, '_, T> {
    fn endpoint(&self) -> String {
        self.transport.endpoint()
    }

    fn location(&self) -> String {
        self.transport.directory().to_string()
    }

    async fn list(&mut self) -> Result<BTreeSet<String>, ProviderError> {
        self.transport.list(self.ftp).await
    }

    async fn remove(&mut self, name: &str) -> Result<(), ProviderError> {
        let t = self.transport;
        t.within(t.command_timeout, Phase::Files, &format!("DELE {name}"), self.ftp.rm(name)).await
    }

    async fn size(&mut self, name: &str) -> Result<Option<u64>, ProviderError> {
        self.transport.remote_size(self.ftp, name).await.map(Some)
    }

    async fn download(&mut self, name: &str) -> Result<Vec<u8>, ProviderError> {
        self.transport.download(self.ftp, name).await
    }

    async fn upload(&mut self, file: &BatchFile) -> Result<(), ProviderError> {
        self.transport.upload(self.ftp, file).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_and_shortened() {
        assert_eq!(reply_code(b"550 Permission denied\r\n"), Some(550));
        assert_eq!(reply_code(b"53"), None);
        assert_eq!(reply_text(b"550 Permission\r\n denied\r\n"), "550 Permission denied");
        assert_eq!(reply_text(&[b'x'; 1000]).chars().count(), MAX_REPLY_TEXT + 1);
    }

    #[test]
    fn the_password_is_scrubbed_from_errors() {
        let error = redact(ProviderError::Auth("530 bad password hunter2".into()), "hunter2");
        assert_eq!(error, ProviderError::Auth("530 bad password [REDACTED]".into()));
    }
}
