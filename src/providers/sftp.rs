//! SFTP transport: the same contract as [`super::ftp::FtpTransport`] (which hands `protocol =
//! "sftp"` over to it), over SSH with russh and russh-sftp. Each file goes up under a temp name
//! `.<name>.part`, its remote size is checked (stat) against the local length, then it is
//! renamed to its final name (docs/reliability.md rule 8); [`SftpTransport::reconcile`] settles a batch
//! left in `sending` from the deterministic final names (which carry the batch's uid), their
//! sizes and their bytes read back (rule 5).
//!
//! Talks to: the factor's SFTP server only.
//!
//! - **Host key pinning.** The server's host key is checked against `host_key_sha256` before
//!   anything else is sent (the password included); a missing, unreadable or different
//!   fingerprint refuses the connection with [`ProviderError::Auth`]. There is no
//!   trust-on-first-use and no known_hosts file. Accepted forms (see
//!   [`parse_host_key_sha256`]): `SHA256:<base64>` exactly as `ssh-keygen -lf` prints it
//!   (padding optional, the prefix in any case), the bare base64, or 64 hex digits (colons
//!   allowed). Host key algorithms are negotiated in russh's order (ed25519, then ECDSA, then
//!   RSA), like OpenSSH's: pin the key of the first kind the server has.
//! - **Password authentication** only, the password handed to russh and never formatted into
//!   an error or a log line.
//! - **Timeouts**: connect (TCP, SSH handshake, host key check), each command (login, channel,
//!   stat, rename, remove, listing) and each file's transfer run under
//!   [`tokio::time::timeout`]; russh-sftp's own per-request limit is set just above them.
//! - **Existing final names.** SFTP v3 `rename` does not replace an existing file on most
//!   servers (OpenSSH answers "Failure"), so [`SftpTransport::send`] leaves a final name that
//!   already holds the right number of bytes alone (a resend with deterministic names finds
//!   its earlier upload), and removes one with the wrong size just before the rename.
//! - Errors: connection trouble and timeouts are [`ProviderError::Transient`]; a refused
//!   password, a host key mismatch or a missing pin are [`ProviderError::Auth`]; a server
//!   status such as "permission denied", "no such file" or "failure" on a file or the
//!   directory is [`ProviderError::Rejected`].

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::ssh_key::Fingerprint;
use russh::keys::{HashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::batch::{Batch, BatchReceipt, ProviderError};
use super::ftp::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TRANSFER_TIMEOUT, redact};
use super::layout::BatchFile;
use super::outbox::Found;
use super::remote::{self, PROBE_CONTENT, RemoteDir, probe_name, temp_name};
use crate::config::FtpSettings;

/// Longest server message carried into an error.
const MAX_MESSAGE_TEXT: usize = 300;

/// Uploads batches to one factor's SFTP server, as configured for one subsidiary.
pub struct SftpTransport<'a> {
    settings: &'a FtpSettings,
    /// TCP connect, SSH handshake and host key check.
    connect_timeout: Duration,
    /// Each command: login, opening the SFTP channel, stat, rename, remove, a listing.
    command_timeout: Duration,
    /// One file's bytes, from open to the server's confirmation of close.
    transfer_timeout: Duration,
}

/// Which step failed: a refusal while logging in is about credentials or policy, one on a
/// file is about that file or the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Login,
    Files,
}

/// What went wrong below the transport, before it is mapped to a [`ProviderError`].
#[derive(Debug)]
enum Failure {
    Ssh(SshError),
    Sftp(SftpError),
    Io(std::io::Error),
}

impl From<SshError> for Failure {
    fn from(error: SshError) -> Self {
        Failure::Ssh(error)
    }
}

impl From<russh::Error> for Failure {
    fn from(error: russh::Error) -> Self {
        Failure::Ssh(SshError::Ssh(error))
    }
}

impl From<SftpError> for Failure {
    fn from(error: SftpError) -> Self {
        Failure::Sftp(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Io(error)
    }
}

/// The SSH client handler's error: russh's, or the host key check's refusal.
#[derive(Debug)]
enum SshError {
    Ssh(russh::Error),
    HostKeyMismatch { algorithm: String, presented: String, expected: String },
}

impl From<russh::Error> for SshError {
    fn from(error: russh::Error) -> Self {
        SshError::Ssh(error)
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshError::Ssh(error) => write!(f, "{error}"),
            SshError::HostKeyMismatch { algorithm, presented, expected } => write!(
                f,
                "host key mismatch: the server presented the {algorithm} key {presented}, \
                 host_key_sha256 pins {expected}; refusing to connect"
            ),
        }
    }
}

/// Accepts the server only if its host key has the pinned SHA-256 fingerprint.
struct HostKeyCheck {
    expected: [u8; 32],
}

impl client::Handler for HostKeyCheck {
    type Error = SshError;

    async fn check_server_key(&mut self, server_public_key: &PublicKeyOrCertificate) -> Result<bool, SshError> {
        let key = server_public_key.public_key();
        let presented = key.fingerprint(HashAlg::Sha256);
        if presented.sha256() == Some(self.expected) {
            debug!(algorithm = %key.algorithm(), fingerprint = %presented, "host key matches the pin");
            return Ok(true);
        }
        Err(SshError::HostKeyMismatch {
            algorithm: key.algorithm().to_string(),
            presented: presented.to_string(),
            expected: Fingerprint::Sha256(self.expected).to_string(),
        })
    }
}

/// A logged-in SFTP session, checked to have the batch directory.
struct Connection {
    ssh: client::Handle<HostKeyCheck>,
    sftp: SftpSession,
    directory: String,
}

impl Connection {
    fn path(&self, name: &str) -> String {
        remote_path(&self.directory, name)
    }
}

impl<'a> SftpTransport<'a> {
    pub fn new(settings: &'a FtpSettings) -> Self {
        SftpTransport {
            settings,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            transfer_timeout: DEFAULT_TRANSFER_TIMEOUT,
        }
    }

    pub fn with_timeouts(mut self, connect: Duration, command: Duration, transfer: Duration) -> Self {
        self.connect_timeout = connect;
        self.command_timeout = command;
        self.transfer_timeout = transfer;
        self
    }

    /// Uploads the batch's files into the configured directory, in the given order (packets
    /// first, the CSV last): each under `.<name>.part`, size-checked, then renamed to `<name>`.
    /// A final name already holding the right number of bytes is left as it is (not uploaded
    /// again); one with the wrong size is replaced.
    #[tracing::instrument(name = "sftp_send", skip_all, fields(batch = %batch.id, host = %self.settings.host))]
    pub async fn send(&self, batch: &Batch, files: &[BatchFile]) -> Result<BatchReceipt, ProviderError> {
        let receipt = remote::receipt(batch, files)?;
        let connection = self.connect(&mut Vec::new()).await?;
        remote::upload_all(&mut SftpDir { transport: self, connection: &connection }, files).await?;
        self.quit(connection).await;
        info!(files = files.len(), reference = receipt.reference.as_deref(), "batch uploaded");
        Ok(receipt)
    }

    /// Settles a batch found in `sending` after a crash, as [`super::ftp::FtpTransport::reconcile`] does:
    /// [`remote::reconcile`] over this SFTP session.
    #[tracing::instrument(name = "sftp_reconcile", skip_all, fields(batch = %batch.id, host = %self.settings.host))]
    pub async fn reconcile(&self, batch: &Batch, files: &[BatchFile]) -> Result<Found, ProviderError> {
        let receipt = remote::receipt(batch, files)?;
        let connection = self.connect(&mut Vec::new()).await?;
        let found =
            remote::reconcile(&mut SftpDir { transport: self, connection: &connection }, batch, files, receipt).await;
        self.quit(connection).await;
        found
    }

    /// Checks the connection without sending a batch, as [`super::ftp::FtpTransport::probe`] does: connect
    /// (host key checked), log in, list the directory, write a probe file
    /// `.factord-probe-<random>.tmp` there and delete it. Every step that worked is added to
    /// `steps`; the first failure is returned.
    #[tracing::instrument(name = "sftp_probe", skip_all, fields(host = %self.settings.host))]
    pub async fn probe(&self, steps: &mut Vec<String>) -> Result<(), ProviderError> {
        let connection = self.connect(steps).await?;
        let result = self.probe_over(&connection, steps).await;
        self.quit(connection).await;
        result
    }

    async fn probe_over(&self, connection: &Connection, steps: &mut Vec<String>) -> Result<(), ProviderError> {
        let listed = self.list(connection).await?;
        debug!(names = listed.len(), "listed");
        steps.push(format!("listed {}", listing_path(&connection.directory)));
        let path = connection.path(&probe_name());
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let written = async {
            let mut remote = self
                .within(
                    self.command_timeout,
                    Phase::Files,
                    &format!("open {path}"),
                    connection.sftp.open_with_flags(path.as_str(), flags),
                )
                .await?;
            let transfer = async {
                remote.write_all(PROBE_CONTENT).await?;
                remote.shutdown().await
            };
            self.within(self.transfer_timeout, Phase::Files, &format!("write of {path}"), transfer).await
        }
        .await;
        if let Err(error) = written {
            // A refused or broken write may still have left a partial file.
            let remove = connection.sftp.remove_file(path.as_str());
            if let Err(leftover) = self.within(self.command_timeout, Phase::Files, "remove", remove).await {
                debug!(file = %path, %leftover, "no probe file to remove");
            }
            return Err(error);
        }
        let what = format!("remove {path}");
        self.within(self.command_timeout, Phase::Files, &what, connection.sftp.remove_file(path.as_str())).await?;
        steps.push("wrote and deleted probe file".to_string());
        Ok(())
    }

    /// The bytes of `name`, for reconciliation to compare with the batch's file.
    async fn download(&self, connection: &Connection, name: &str) -> Result<Vec<u8>, ProviderError> {
        let path = connection.path(name);
        let mut remote = self
            .within(self.command_timeout, Phase::Files, &format!("open {path}"), connection.sftp.open(path.as_str()))
            .await?;
        let transfer = async {
            let mut bytes = Vec::new();
            remote.read_to_end(&mut bytes).await?;
            Ok::<_, std::io::Error>(bytes)
        };
        self.within(self.transfer_timeout, Phase::Files, &format!("download of {path}"), transfer).await
    }

    /// One file: skipped if its final name already has the right size; otherwise written
    /// under the temp name, stat'ed, and renamed to the final name.
    async fn upload(&self, connection: &Connection, file: &BatchFile) -> Result<(), ProviderError> {
        let len = file.bytes.len() as u64;
        let existing = self.remote_size(connection, &file.name).await?;
        if existing == Some(len) {
            info!(file = %file.name, bytes = len, "already on the server with the right size: not uploaded again");
            return Ok(());
        }
        let temp = connection.path(&temp_name(&file.name));
        let target = connection.path(&file.name);
        debug!(file = %file.name, bytes = len, "uploading");
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let mut remote = self
            .within(
                self.command_timeout,
                Phase::Files,
                &format!("open {temp}"),
                connection.sftp.open_with_flags(temp.as_str(), flags),
            )
            .await?;
        let transfer = async {
            remote.write_all(&file.bytes).await?;
            // Waits for every write and the close to be confirmed by the server.
            remote.shutdown().await
        };
        self.within(self.transfer_timeout, Phase::Files, &format!("upload of {temp}"), transfer).await?;

        let size = self.remote_size(connection, &temp_name(&file.name)).await?;
        if size != Some(len) {
            self.discard(connection, &temp).await;
            return Err(ProviderError::Transient(format!(
                "{}: {} arrived with {} bytes instead of {len}",
                self.endpoint(),
                file.name,
                size.map_or_else(|| "an unknown number of".to_string(), |s| s.to_string()),
            )));
        }
        if let Some(size) = existing {
            // SFTP v3 rename does not replace: make room for the right file.
            warn!(file = %file.name, remote = size, local = len, "replacing a final file with the wrong size");
            let what = format!("remove {target}");
            if let Err(error) = self
                .within(self.command_timeout, Phase::Files, &what, connection.sftp.remove_file(target.as_str()))
                .await
            {
                if !matches!(error, ProviderError::Transient(_)) {
                    self.discard(connection, &temp).await;
                }
                return Err(error);
            }
        }
        let rename = format!("rename of {temp} to {target}");
        if let Err(error) = self
            .within(self.command_timeout, Phase::Files, &rename, connection.sftp.rename(temp.as_str(), target.as_str()))
            .await
        {
            // A refused rename leaves a session that still works: tidy up. A broken one
            // leaves the temp file for reconcile.
            if !matches!(error, ProviderError::Transient(_)) {
                self.discard(connection, &temp).await;
            }
            return Err(error);
        }
        info!(file = %file.name, bytes = len, "file uploaded");
        Ok(())
    }

    /// Deletes a temp file after a failed upload; best effort (reconcile deletes leftovers).
    async fn discard(&self, connection: &Connection, temp: &str) {
        let what = format!("remove {temp}");
        if let Err(error) =
            self.within(self.command_timeout, Phase::Files, &what, connection.sftp.remove_file(temp)).await
        {
            warn!(file = %temp, %error, "could not delete the temp file; reconcile will");
        }
    }

    /// The size of `name` in the directory, `None` if there is no such file.
    async fn remote_size(&self, connection: &Connection, name: &str) -> Result<Option<u64>, ProviderError> {
        let path = connection.path(name);
        let outcome = tokio::time::timeout(self.command_timeout, connection.sftp.metadata(path.as_str())).await;
        let attributes = match outcome {
            Ok(Err(SftpError::Status(status))) if status.status_code == StatusCode::NoSuchFile => return Ok(None),
            other => self.settle(self.command_timeout, Phase::Files, &format!("stat {path}"), other)?,
        };
        match attributes.size {
            Some(size) => Ok(Some(size)),
            None => Err(ProviderError::Rejected(format!("{}: stat {path}: the server gave no size", self.endpoint()))),
        }
    }

    /// The names in the directory. Any failure is an error, never "empty" (an empty listing
    /// means the batch may be sent again).
    async fn list(&self, connection: &Connection) -> Result<BTreeSet<String>, ProviderError> {
        let directory = listing_path(&connection.directory);
        let what = format!("listing of {directory}");
        let entries = self
            .within(self.transfer_timeout, Phase::Files, &what, connection.sftp.read_dir(directory.as_str()))
            .await?;
        Ok(entries
            .map(|entry| entry.file_name())
            .filter(|name| !name.is_empty() && name != "." && name != "..")
            .collect())
    }

    /// Ends the session; the work is done, so a server that drops the connection instead
    /// changes nothing.
    async fn quit(&self, connection: Connection) {
        let Connection { ssh, sftp, .. } = connection;
        if let Err(error) = self.within(self.command_timeout, Phase::Files, "SFTP close", sftp.close()).await {
            debug!(%error, "the SFTP session did not close cleanly");
        }
        let disconnect = ssh.disconnect(russh::Disconnect::ByApplication, "", "en");
        if let Err(error) = self.within(self.command_timeout, Phase::Files, "disconnect", disconnect).await {
            debug!(%error, "the SSH disconnect was not sent");
        }
    }

    /// Checks the pin, connects (host key checked during the handshake), logs in with the
    /// password, opens the SFTP subsystem and checks the directory; each step done is added to
    /// `steps` (for [`Self::probe`]).
    #[expect(
        clippy::too_many_lines,
        reason = "the connection steps in order (pin, TCP, handshake, login, subsystem, directory), each with its own timeout and message"
    )]
    async fn connect(&self, steps: &mut Vec<String>) -> Result<Connection, ProviderError> {
        let settings = self.settings;
        let pin = settings.host_key_sha256.as_deref().ok_or_else(|| {
            ProviderError::Auth(format!(
                "{}: no host_key_sha256 configured: refusing to connect without checking the server's key",
                self.endpoint()
            ))
        })?;
        let expected = parse_host_key_sha256(pin)
            .map_err(|e| ProviderError::Auth(format!("{}: host_key_sha256: {e}", self.endpoint())))?;
        let password = settings.password.as_ref().ok_or_else(|| {
            ProviderError::Auth(format!("{}: no password configured for user {}", self.endpoint(), settings.username))
        })?;

        // A safety net for the session task russh spawns: it ends once nothing has come
        // from the server for longer than any single step may take.
        let idle = self.connect_timeout.max(self.command_timeout).max(self.transfer_timeout) * 2;
        let config = client::Config { inactivity_timeout: Some(idle), ..client::Config::default() };
        let address = (settings.host.as_str(), settings.port);
        let mut ssh = self
            .within(
                self.connect_timeout,
                Phase::Login,
                "connect",
                client::connect(Arc::new(config), address, HostKeyCheck { expected }),
            )
            .await?;
        steps.push(format!("connected to {} (host key matches the pin)", self.endpoint()));

        // The only place the password leaves its SecretString: handed to russh (whose Debug
        // redacts it), and kept out of whatever comes back.
        let secret = password.expose_secret();
        let login = ssh.authenticate_password(settings.username.as_str(), secret);
        let outcome =
            self.within(self.command_timeout, Phase::Login, "login", login).await.map_err(|e| redact(e, secret))?;
        if let client::AuthResult::Failure { remaining_methods, .. } = outcome {
            let offered: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            return Err(ProviderError::Auth(format!(
                "{}: the server refused the password of user {} (it offers: {})",
                self.endpoint(),
                settings.username,
                if offered.is_empty() { "nothing more".to_string() } else { offered.join(", ") }
            )));
        }
        steps.push(format!("logged in as {}", settings.username));

        let mut channel =
            self.within(self.command_timeout, Phase::Login, "session channel", ssh.channel_open_session()).await?;
        self.within(self.command_timeout, Phase::Login, "sftp subsystem", channel.request_subsystem(true, "sftp"))
            .await?;
        let answer = async {
            loop {
                match channel.wait().await {
                    Some(russh::ChannelMsg::Success) => return Ok(true),
                    Some(russh::ChannelMsg::Failure) => return Ok(false),
                    Some(_) => continue,
                    None => return Err(russh::Error::Disconnect),
                }
            }
        };
        if !self.within(self.command_timeout, Phase::Login, "sftp subsystem", answer).await? {
            return Err(ProviderError::Rejected(format!(
                "{}: the server refused the sftp subsystem to user {}",
                self.endpoint(),
                settings.username
            )));
        }
        // russh-sftp's own per-request limit, just above ours so that ours speaks first.
        let request_limit = self.command_timeout.max(self.transfer_timeout).as_secs() + 1;
        let config = russh_sftp::client::Config { request_timeout_secs: request_limit, ..Default::default() };
        let sftp = self
            .within(
                self.command_timeout,
                Phase::Login,
                "sftp start",
                SftpSession::new_with_config(channel.into_stream(), config),
            )
            .await?;

        let directory = settings.directory.clone();
        let listing = listing_path(&directory);
        let what = format!("stat of the directory {listing}");
        let attributes =
            self.within(self.command_timeout, Phase::Files, &what, sftp.metadata(listing.as_str())).await?;
        if !attributes.is_dir() {
            return Err(ProviderError::Rejected(format!("{}: {listing} is not a directory", self.endpoint())));
        }
        debug!(host = %settings.host, "logged in");
        Ok(Connection { ssh, sftp, directory })
    }

    /// Runs one call under `limit` and maps its failure.
    async fn within<T, E: Into<Failure>>(
        &self,
        limit: Duration,
        phase: Phase,
        what: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ProviderError> {
        let outcome = tokio::time::timeout(limit, call).await;
        self.settle(limit, phase, what, outcome)
    }

    fn settle<T, E: Into<Failure>>(
        &self,
        limit: Duration,
        phase: Phase,
        what: &str,
        outcome: Result<Result<T, E>, tokio::time::error::Elapsed>,
    ) -> Result<T, ProviderError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(phase, what, error.into())),
            Err(_) => Err(ProviderError::Transient(format!(
                "{}: {what}: no answer within {:.1} s",
                self.endpoint(),
                limit.as_secs_f64()
            ))),
        }
    }

    /// Maps a failure to what the caller does next: retry later, give up, or alert.
    fn classify(&self, phase: Phase, what: &str, failure: Failure) -> ProviderError {
        let at = format!("{}: {what}", self.endpoint());
        match failure {
            Failure::Ssh(error @ SshError::HostKeyMismatch { .. }) => ProviderError::Auth(format!("{at}: {error}")),
            Failure::Ssh(SshError::Ssh(error)) => match error {
                russh::Error::UnknownKey | russh::Error::WrongServerSig | russh::Error::KeyChanged { .. } => {
                    ProviderError::Auth(format!("{at}: the server's host key was not accepted: {error}"))
                }
                russh::Error::NoCommonAlgo { .. } => {
                    ProviderError::Rejected(format!("{at}: no SSH algorithm in common with the server: {error}"))
                }
                other => ProviderError::Transient(format!("{at}: {other}")),
            },
            Failure::Sftp(SftpError::Status(status)) => {
                let text = shorten(&status.error_message);
                let message = format!("{at}: the server answered {:?}: {text}", status.status_code);
                match status.status_code {
                    StatusCode::PermissionDenied if phase == Phase::Login => ProviderError::Auth(message),
                    StatusCode::NoSuchFile
                    | StatusCode::PermissionDenied
                    | StatusCode::Failure
                    | StatusCode::BadMessage
                    | StatusCode::OpUnsupported => ProviderError::Rejected(message),
                    StatusCode::Ok | StatusCode::Eof | StatusCode::NoConnection | StatusCode::ConnectionLost => {
                        ProviderError::Transient(message)
                    }
                }
            }
            Failure::Sftp(SftpError::Timeout) => {
                ProviderError::Transient(format!("{at}: no answer (SFTP request timeout)"))
            }
            Failure::Sftp(other) => ProviderError::Transient(format!("{at}: {}", shorten(&other.to_string()))),
            Failure::Io(error) => ProviderError::Transient(format!("{at}: {}", shorten(&error.to_string()))),
        }
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }
}

/// One SFTP session in the factor's directory, for the routines SFTP shares with FTP.
struct SftpDir<'s, 'a> {
    transport: &'s SftpTransport<'a>,
    connection: &'s Connection,
}

impl RemoteDir for SftpDir<'_, '_> {
    fn endpoint(&self) -> String {
        self.transport.endpoint()
    }

    fn location(&self) -> String {
        listing_path(&self.connection.directory)
    }

    async fn list(&mut self) -> Result<BTreeSet<String>, ProviderError> {
        self.transport.list(self.connection).await
    }

    async fn remove(&mut self, name: &str) -> Result<(), ProviderError> {
        let (t, path) = (self.transport, self.connection.path(name));
        let remove = self.connection.sftp.remove_file(path.as_str());
        t.within(t.command_timeout, Phase::Files, &format!("remove {path}"), remove).await
    }

    async fn size(&mut self, name: &str) -> Result<Option<u64>, ProviderError> {
        self.transport.remote_size(self.connection, name).await
    }

    async fn download(&mut self, name: &str) -> Result<Vec<u8>, ProviderError> {
        self.transport.download(self.connection, name).await
    }

    async fn upload(&mut self, file: &BatchFile) -> Result<(), ProviderError> {
        self.transport.upload(self.connection, file).await
    }
}

/// Reads a pinned host key fingerprint (SHA-256 of the key's SSH wire encoding) in one of
/// the forms ops meet:
/// - `SHA256:<base64>` as `ssh-keygen -lf` and `ssh` print it (the prefix in any case,
///   trailing `=` allowed): `SHA256:uDr9hb…Yq0`;
/// - the same base64 without the prefix;
/// - 64 hex digits, in any case, optionally split by `:` (with or without the `SHA256:` prefix).
///
/// MD5 fingerprints (`MD5:aa:bb:…`, 16 bytes) are refused.
pub fn parse_host_key_sha256(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let body = match text.split_once(':') {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case("sha256") => rest.trim(),
        Some((prefix, _)) if prefix.eq_ignore_ascii_case("md5") || prefix.eq_ignore_ascii_case("sha1") => {
            return Err(format!("a {prefix} fingerprint is not accepted: give the SHA256 one (ssh-keygen -lf)"));
        }
        _ => text,
    };
    let hex_digits: String = body.chars().filter(|&c| c != ':').collect();
    let mut out = [0u8; 32];
    if hex::decode_to_slice(&hex_digits, &mut out).is_ok() {
        return Ok(out);
    }
    let base64 = body.trim_end_matches('=');
    match decode_base64(base64) {
        Some(bytes) => bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!("the fingerprint holds {} bytes, not the 32 of a SHA-256 one", bytes.len())
        }),
        None => Err("not a SHA256 fingerprint: expected SHA256:<base64> (as ssh-keygen -lf prints it) \
                     or 64 hex digits"
            .to_string()),
    }
}

/// Standard-alphabet base64 without padding (the padding is trimmed before); `None` for
/// anything else, including unused trailing bits that are not zero.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    if text.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(text).ok()
}

/// `<directory>/<name>`; the directory as configured (`/` is the root, empty is the login
/// directory).
fn remote_path(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        return name.to_string();
    }
    format!("{}/{name}", directory.trim_end_matches('/'))
}

/// The directory itself, for stat and listing.
fn listing_path(directory: &str) -> String {
    match directory {
        "" => ".".to_string(),
        "/" => "/".to_string(),
        other => other.trim_end_matches('/').to_string(),
    }
}

/// A server message as one short line, for error messages.
fn shorten(text: &str) -> String {
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX_MESSAGE_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-256 of the ed25519 public key of seed [7; 32], in each accepted form.
    fn sample() -> ([u8; 32], String) {
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]);
        let key = russh::keys::PrivateKey::from(pair);
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256);
        (fingerprint.sha256().expect("sha256"), fingerprint.to_string())
    }

    #[test]
    fn the_openssh_form_and_bare_base64_are_read() {
        let (bytes, openssh) = sample();
        assert!(openssh.starts_with("SHA256:") && openssh.len() == 7 + 43, "{openssh}");
        assert_eq!(parse_host_key_sha256(&openssh), Ok(bytes));
        assert_eq!(parse_host_key_sha256(&format!("  {openssh}=\n")), Ok(bytes));
        assert_eq!(parse_host_key_sha256(&openssh.replace("SHA256", "sha256")), Ok(bytes));
        assert_eq!(parse_host_key_sha256(&openssh["SHA256:".len()..]), Ok(bytes));
    }

    #[test]
    fn hex_is_read_with_or_without_colons() {
        let (bytes, _) = sample();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_host_key_sha256(&hex), Ok(bytes));
        assert_eq!(parse_host_key_sha256(&hex.to_uppercase()), Ok(bytes));
        let colons: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_host_key_sha256(&colons.join(":")), Ok(bytes));
        assert_eq!(parse_host_key_sha256(&format!("SHA256:{hex}")), Ok(bytes));
    }

    #[test]
    fn other_fingerprints_are_refused() {
        let (_, openssh) = sample();
        let md5 = "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48";
        assert!(parse_host_key_sha256(md5).expect_err("md5").contains("MD5"));
        assert!(parse_host_key_sha256("").is_err());
        assert!(parse_host_key_sha256("SHA256:").is_err());
        assert!(parse_host_key_sha256("SHA256:not base64!").is_err());
        // One character short: 31 bytes and some.
        assert!(parse_host_key_sha256(&openssh[..openssh.len() - 1]).is_err());
        assert!(parse_host_key_sha256(&"ab".repeat(31)).is_err());
    }

    #[test]
    fn base64_decoding_matches_the_standard_alphabet() {
        assert_eq!(decode_base64("TWFu"), Some(b"Man".to_vec()));
        assert_eq!(decode_base64("TWE"), Some(b"Ma".to_vec()));
        assert_eq!(decode_base64("TQ"), Some(b"M".to_vec()));
        assert_eq!(decode_base64("TR"), None, "non-zero trailing bits");
        assert_eq!(decode_base64("T"), None);
        assert_eq!(decode_base64("-_"), None, "URL-safe alphabet");
    }

    #[test]
    fn remote_paths_join_the_directory() {
        assert_eq!(remote_path("/incoming", "a.pdf"), "/incoming/a.pdf");
        assert_eq!(remote_path("/incoming/", "a.pdf"), "/incoming/a.pdf");
        assert_eq!(remote_path("/", "a.pdf"), "/a.pdf");
        assert_eq!(remote_path("", "a.pdf"), "a.pdf");
        assert_eq!(remote_path("up", "a.pdf"), "up/a.pdf");
        assert_eq!(listing_path(""), ".");
        assert_eq!(listing_path("/"), "/");
        assert_eq!(listing_path("/incoming/"), "/incoming");
    }
}
