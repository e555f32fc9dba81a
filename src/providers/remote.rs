//! What the FTP/FTPS and SFTP transports share: the upload of a batch's files and the
//! reconciliation of a batch found in `sending` after a crash (docs/reliability.md rules 5 and 8),
//! written once over [`RemoteDir`], the few file operations each protocol provides.
//!
//! [`super::ftp`] implements [`RemoteDir`] over suppaftp, [`super::sftp`] over russh-sftp; the
//! rules below (temp names, what counts as the batch's file, what is left alone) are the same for
//! both.

use std::collections::BTreeSet;

use tracing::{debug, info};

use super::batch::{Batch, BatchReceipt, InvoiceOutcome, ProviderError};
use super::layout::BatchFile;
use super::outbox::Found;
use crate::files::sha256_hex;

/// The factor's directory, as one connected FTP or SFTP session sees it. Every method runs
/// under the transport's timeouts and returns its errors already classified.
pub(super) trait RemoteDir {
    /// `host:port`, for messages.
    fn endpoint(&self) -> String;
    /// The directory, for messages.
    fn location(&self) -> String;
    /// The names in the directory. Any failure is an error, never "empty" (an empty listing
    /// means the batch may be sent again).
    async fn list(&mut self) -> Result<BTreeSet<String>, ProviderError>;
    /// Deletes `name`.
    async fn remove(&mut self, name: &str) -> Result<(), ProviderError>;
    /// The size of `name`, `None` if there is no such file.
    async fn size(&mut self, name: &str) -> Result<Option<u64>, ProviderError>;
    /// The bytes of `name`.
    async fn download(&mut self, name: &str) -> Result<Vec<u8>, ProviderError>;
    /// One file: written under [`temp_name`], size-checked, renamed to its final name.
    async fn upload(&mut self, file: &BatchFile) -> Result<(), ProviderError>;
}

/// What `send` answers: the whole batch accepted, referenced by its schedule file (the CSV, or
/// the zip holding it). Also checks the files before anything is sent.
pub(super) fn receipt(batch: &Batch, files: &[BatchFile]) -> Result<BatchReceipt, ProviderError> {
    if files.is_empty() {
        return Err(ProviderError::Rejected(format!("batch {} has no files to upload", batch.id)));
    }
    let mut seen = BTreeSet::new();
    for file in files {
        if !is_safe_remote_name(&file.name) {
            return Err(ProviderError::Rejected(format!("unsafe remote file name {:?}", file.name)));
        }
        if !seen.insert(file.name.as_str()) {
            return Err(ProviderError::Rejected(format!("file {} appears twice in the batch", file.name)));
        }
    }
    let schedule = files
        .iter()
        .rev()
        .find(|f| f.name.ends_with(".csv") || f.name.ends_with(".zip"))
        .or(files.last())
        .map(|f| f.name.clone());
    Ok(BatchReceipt::all(batch, schedule.clone(), InvoiceOutcome::Accepted { reference: schedule }))
}

/// Uploads the files in the given order (packets first, the CSV last).
pub(super) async fn upload_all(remote: &mut impl RemoteDir, files: &[BatchFile]) -> Result<(), ProviderError> {
    for file in files {
        remote.upload(file).await?;
    }
    Ok(())
}

/// Settles a batch found in `sending` after a crash, from what the directory holds under the
/// batch's final names (which carry its uid), after deleting this batch's `.<name>.part`
/// leftovers:
/// - every final name present, each holding exactly the batch's file (same size, and the same
///   bytes when read back): [`Found::Delivered`], nothing uploaded;
/// - no final name present: [`Found::Absent`] (safe to send again);
/// - some present (a crash mid-batch): the others are uploaded, and [`Found::Delivered`];
/// - a final name holding anything else (another size or other bytes): [`Found::Clash`], naming
///   the file and the batch; nothing is uploaded, renamed or deleted.
///
/// A final name is only ever made by renaming a complete, size-checked upload, so the batch's
/// own file matches; reading the files back costs one download of what is there, only after a
/// crash.
pub(super) async fn reconcile(
    remote: &mut impl RemoteDir,
    batch: &Batch,
    files: &[BatchFile],
    receipt: BatchReceipt,
) -> Result<Found, ProviderError> {
    let listed = remote.list().await?;
    for file in files {
        let temp = temp_name(&file.name);
        if listed.contains(&temp) {
            info!(file = %temp, "deleting a leftover temp file");
            remote.remove(&temp).await?;
        }
    }
    let mut present = 0;
    let mut missing = Vec::new();
    for file in files {
        if !listed.contains(&file.name) {
            missing.push(file);
            continue;
        }
        present += 1;
        // Listed a moment ago: a file gone since counts as empty, which is not the batch's.
        let size = remote.size(&file.name).await?.unwrap_or(0);
        let held = if size == file.bytes.len() as u64 { Some(remote.download(&file.name).await?) } else { None };
        if let Some(difference) = difference(file, size, held.as_deref()) {
            return Ok(Found::Clash(clash(&remote.endpoint(), &remote.location(), batch, &file.name, &difference)));
        }
        debug!(file = %file.name, size, "already on the server");
    }
    if present == 0 {
        info!("no file of the batch is on the server: safe to send again");
        return Ok(Found::Absent);
    }
    if !missing.is_empty() {
        info!(missing = missing.len(), "the batch is partly on the server: finishing it");
    }
    for file in missing {
        remote.upload(file).await?;
    }
    Ok(Found::Delivered(receipt))
}

/// How the file under a batch's final name differs from the batch's file, if it does: `held`
/// is what the server holds when its size (`size`) matched.
fn difference(file: &BatchFile, size: u64, held: Option<&[u8]>) -> Option<String> {
    let len = file.bytes.len() as u64;
    match held {
        _ if size != len => Some(format!("{size} bytes where the batch's file has {len}")),
        Some(bytes) if bytes != file.bytes.as_slice() => Some(format!(
            "other content (sha256 {} where the batch's file has {})",
            sha256_hex(bytes),
            sha256_hex(&file.bytes)
        )),
        _ => None,
    }
}

/// The error of a final name holding something other than the batch's file: names the file,
/// where it is, and the batch.
fn clash(endpoint: &str, directory: &str, batch: &Batch, name: &str, difference: &str) -> String {
    let uid = batch.uid.as_deref().unwrap_or("none");
    format!(
        "{endpoint}: {name} in {directory} is not batch {}'s file (uid {uid}): it holds {difference}; \
         it was left as it is, and the batch's invoices go in a new batch under new names",
        batch.id
    )
}

/// What a probe file holds.
pub(super) const PROBE_CONTENT: &[u8] = b"factord connection test; safe to delete\n";

/// `.factord-probe-<random>.tmp`: hidden, unique per probe, never a batch file's name.
pub(super) fn probe_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!(".factord-probe-{:016x}.tmp", hasher.finish())
}

/// `.<name>.part`: hidden, and ignored by watchers that skip temp files.
pub(super) fn temp_name(name: &str) -> String {
    format!(".{name}.part")
}

/// Names go into FTP commands: only `[A-Za-z0-9._-]`, not hidden (temp names are), not `.`/`..`.
fn is_safe_remote_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_are_checked() {
        assert!(is_safe_remote_name("acme-east_20261130_7.csv"));
        assert!(!is_safe_remote_name(".hidden"));
        assert!(!is_safe_remote_name(".."));
        assert!(!is_safe_remote_name("a/b.pdf"));
        assert!(!is_safe_remote_name("a b.pdf"));
        assert!(!is_safe_remote_name(""));
    }
}
