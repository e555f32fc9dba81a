//! The manual transport (Capital Depot, Wex FleetOne): the batch becomes a folder
//! `outbox/<subsidiary>/<provider>/<batch stem>/` holding the schedule CSV and the packets, for
//! ops to send. The folder is filled under a temp name and renamed whole, so ops never see half
//! a batch.
//!
//! A delivered batch is recognised by its content, never by its name: the folder holds a
//! manifest [`MANIFEST`] naming the batch's id and uid and the sha256 of each file, written
//! (and fsynced) before the rename. The batch is delivered when the final folder exists and its
//! manifest names this batch's uid and the hashes of the files the batch is made of. A folder
//! with the batch's final name but another manifest (or none) belongs to someone else (a batch
//! from before a database reset, another installation sharing the outbox): the batch fails
//! with an error naming the folder and both batches, and nothing in the folder is touched.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batch::{Batch, BatchReceipt, InvoiceOutcome, ProviderError};
use super::layout::{BatchFile, batch_stem};
use crate::files::{create_shared_dirs, share_dir, sync_dir, write_shared};

/// The manifest inside every batch folder (hidden, so it is not taken for a file to send).
pub const MANIFEST: &str = ".factord-manifest.json";

/// What [`MANIFEST`] holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The batch id (`acme-east-7`).
    pub batch: String,
    /// The batch's unique id (16 hex digits).
    pub uid: String,
    /// Each file of the batch, in writing order.
    pub files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    /// Lowercase hex.
    pub sha256: String,
}

impl Manifest {
    /// The manifest of `batch` made of `files`.
    pub fn of(batch: &Batch, files: &[BatchFile]) -> Manifest {
        Manifest {
            batch: batch.id.clone(),
            uid: batch.uid.clone().unwrap_or_default(),
            files: files
                .iter()
                .map(|f| ManifestFile { name: f.name.clone(), sha256: crate::files::sha256_hex(&f.bytes) })
                .collect(),
        }
    }
}

/// What the factor's side holds under a batch's final names: the outbox's batch folder, or the
/// files on an FTP/SFTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// This batch, delivered.
    Delivered(BatchReceipt),
    /// Nothing of that name: not delivered (the batch's leftover temp files are removed).
    Absent,
    /// A final name holding something else; the error says what, naming the folder or file and
    /// the batch (both batches when the other is known). Nothing in it was touched.
    Clash(String),
}

pub struct OutboxTransport {
    /// `outbox/<subsidiary>/<provider>/`.
    dir: PathBuf,
}

impl OutboxTransport {
    pub fn new(dir: PathBuf) -> OutboxTransport {
        OutboxTransport { dir }
    }

    fn final_dir(&self, batch: &Batch) -> PathBuf {
        self.dir.join(batch_stem(batch))
    }

    fn temp_dir(&self, batch: &Batch) -> PathBuf {
        self.dir.join(format!(".{}.part", batch_stem(batch)))
    }

    fn receipt(&self, batch: &Batch) -> BatchReceipt {
        let reference = self.final_dir(batch).display().to_string();
        BatchReceipt::all(batch, Some(reference.clone()), InvoiceOutcome::Accepted { reference: Some(reference) })
    }

    /// Writes the batch folder: files and manifest under the temp folder, fsynced, then the
    /// folder renamed. Sending a batch that is already there (its manifest) answers as a send;
    /// a folder of the same name holding anything else is a [`ProviderError::Transient`] error
    /// naming both (the batch's loads go in a new batch, under a new name), and is not touched.
    pub fn send(&self, batch: &Batch, files: &[BatchFile]) -> Result<BatchReceipt, ProviderError> {
        let final_dir = self.final_dir(batch);
        match self.inspect(batch, files)? {
            Found::Delivered(receipt) => return Ok(receipt),
            Found::Clash(error) => return Err(ProviderError::Transient(error)),
            Found::Absent => {}
        }
        let temp = self.temp_dir(batch);
        let io = |what: &str, path: &Path, e: std::io::Error| {
            ProviderError::Transient(format!("cannot {what} {}: {e}", path.display()))
        };
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(|e| io("clear", &temp, e))?;
        }
        // Readable by the group (ops), whatever the umask: folders 0750, files 0640.
        create_shared_dirs(&temp).map_err(|e| io("create", &temp, e))?;
        for dir in [Some(self.dir.as_path()), self.dir.parent()].into_iter().flatten() {
            share_dir(dir).map_err(|e| io("share", dir, e))?;
        }
        for file in files {
            let path = temp.join(&file.name);
            write_shared(&path, &file.bytes).map_err(|e| io("write", &path, e))?;
        }
        let manifest = serde_json::to_vec_pretty(&Manifest::of(batch, files))
            .map_err(|e| ProviderError::Transient(format!("cannot build the manifest of batch {}: {e}", batch.id)))?;
        let path = temp.join(MANIFEST);
        write_shared(&path, &manifest).map_err(|e| io("write", &path, e))?;
        sync_dir(&temp).map_err(|e| io("sync", &temp, e))?;
        // A folder that appeared since the check: the rename fails on a non-empty one, so
        // nothing is overwritten; the next look settles it.
        std::fs::rename(&temp, &final_dir).map_err(|e| io("publish", &final_dir, e))?;
        sync_dir(&self.dir).map_err(|e| io("sync", &self.dir, e))?;
        Ok(self.receipt(batch))
    }

    /// After a crash: the final folder holds this batch (delivered), or there is none (a temp
    /// folder of the batch is removed, and the batch may be written again), or it holds
    /// something else ([`Found::Clash`]: this batch was not delivered there).
    pub fn reconcile(&self, batch: &Batch, files: &[BatchFile]) -> Result<Found, ProviderError> {
        let found = self.inspect(batch, files)?;
        if matches!(found, Found::Absent) {
            let temp = self.temp_dir(batch);
            if temp.exists() {
                std::fs::remove_dir_all(&temp)
                    .map_err(|e| ProviderError::Transient(format!("cannot clear {}: {e}", temp.display())))?;
            }
        }
        Ok(found)
    }

    /// What the final folder of `batch` holds, judged by its manifest against `files`.
    fn inspect(&self, batch: &Batch, files: &[BatchFile]) -> Result<Found, ProviderError> {
        let final_dir = self.final_dir(batch);
        if !final_dir.exists() {
            return Ok(Found::Absent);
        }
        // A batch written before batches had uids and manifests: its folder was written whole
        // by this daemon under its (then) unique name.
        let Some(uid) = batch.uid.as_deref() else { return Ok(Found::Delivered(self.receipt(batch))) };
        let path = final_dir.join(MANIFEST);
        let holds = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(manifest) if manifest.uid == uid && manifest == Manifest::of(batch, files) => {
                    return Ok(Found::Delivered(self.receipt(batch)));
                }
                Ok(manifest) if manifest.uid == uid => {
                    format!("batch {} (uid {}) with other files than the batch has now", manifest.batch, manifest.uid)
                }
                Ok(manifest) => format!("batch {} (uid {})", manifest.batch, manifest.uid),
                Err(e) => format!("a manifest factord cannot read ({}: {e})", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("no {MANIFEST} (a folder of an earlier installation or database, or made by hand)")
            }
            Err(e) => {
                return Err(ProviderError::Transient(format!("cannot read {}: {e}", path.display())));
            }
        };
        Ok(Found::Clash(format!(
            "outbox folder {} already exists and holds {holds}, not batch {} (uid {uid}); nothing in it was \
             overwritten",
            final_dir.display(),
            batch.id
        )))
    }
}
