//! The manual transport (Capital Depot, Wex FleetOne): the batch becomes a folder
//! `outbox/<subsidiary>/<provider>/<batch stem>/` holding the schedule CSV and the packets, for
//! ops to send. The folder is filled under a temp name and renamed whole, so ops never see half
//! a batch; the final folder existing is the proof of delivery.

use std::path::{Path, PathBuf};

use super::batch::{Batch, BatchReceipt, InvoiceOutcome, ProviderError};
use super::layout::{BatchFile, batch_stem};
use crate::files::{sync_dir, write_synced};

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

    /// Writes the batch folder: files under the temp folder, fsynced, then the folder renamed.
    pub fn send(&self, batch: &Batch, files: &[BatchFile]) -> Result<BatchReceipt, ProviderError> {
        let final_dir = self.final_dir(batch);
        if final_dir.exists() {
            return Ok(self.receipt(batch));
        }
        let temp = self.temp_dir(batch);
        let io = |what: &str, path: &Path, e: std::io::Error| {
            ProviderError::Transient(format!("cannot {what} {}: {e}", path.display()))
        };
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(|e| io("clear", &temp, e))?;
        }
        std::fs::create_dir_all(&temp).map_err(|e| io("create", &temp, e))?;
        for file in files {
            let path = temp.join(&file.name);
            write_synced(&path, &file.bytes).map_err(|e| io("write", &path, e))?;
        }
        sync_dir(&temp).map_err(|e| io("sync", &temp, e))?;
        std::fs::rename(&temp, &final_dir).map_err(|e| io("publish", &final_dir, e))?;
        sync_dir(&self.dir).map_err(|e| io("sync", &self.dir, e))?;
        Ok(self.receipt(batch))
    }

    /// After a crash: the final folder is there (delivered) or not (a temp folder is
    /// removed, and the batch may be written again).
    pub fn reconcile(&self, batch: &Batch) -> Result<Option<BatchReceipt>, ProviderError> {
        if self.final_dir(batch).exists() {
            return Ok(Some(self.receipt(batch)));
        }
        let temp = self.temp_dir(batch);
        if temp.exists() {
            std::fs::remove_dir_all(&temp)
                .map_err(|e| ProviderError::Transient(format!("cannot clear {}: {e}", temp.display())))?;
        }
        Ok(None)
    }
}
