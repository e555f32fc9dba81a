//! A manual provider's batches by email (`[subsidiary.factoring.email] to`): the batch file and
//! the packets go as attachments of one message through `[smtp]`, and the outbox copy is written
//! as for any manual batch (docs/providers.md, Manual providers by email).
//!
//! Exactly-once as far as factord can know (docs/reliability.md rules 1 and 5): the outbox copy
//! is written only after the SMTP server accepted the message, so the copy is the record that
//! the message went. Sending a batch whose copy is already there answers as a send without a
//! second message; a refused or failed SMTP exchange leaves no copy, and the batch fails with
//! its loads free for a later batch. After a crash, reconciliation looks at the copy: present,
//! delivered; absent, not delivered. The one window factord cannot close: a crash after the
//! server accepted the message and before the copy was written sends the loads again in a later
//! batch (the message carries the batch's uid in its Message-ID, so the factor can tell).

use super::batch::{Batch, BatchReceipt, InvoiceOutcome, ProviderError};
use super::layout::BatchFile;
use super::outbox::{Found, OutboxTransport};
use crate::mail::{Mail, MailAttachment, Mailer};

pub struct EmailTransport {
    outbox: OutboxTransport,
    mailer: Mailer,
    to: String,
}

impl EmailTransport {
    pub fn new(outbox: OutboxTransport, mailer: Mailer, to: String) -> EmailTransport {
        EmailTransport { outbox, mailer, to }
    }

    /// Emails the batch, then writes its outbox copy.
    pub async fn send(&self, batch: &Batch, files: &[BatchFile]) -> Result<BatchReceipt, ProviderError> {
        match self.outbox.reconcile(batch, files)? {
            Found::Delivered(receipt) => return Ok(self.receipt(batch, receipt)),
            Found::Clash(error) => return Err(ProviderError::Transient(error)),
            Found::Absent => {}
        }
        self.mailer
            .send(&self.mail(batch, files))
            .await
            .map_err(|e| ProviderError::Transient(format!("batch email to {}: {e}", self.to)))?;
        tracing::info!(batch = %batch.id, to = %self.to, "batch email accepted by the SMTP server");
        match self.outbox.send(batch, files) {
            Ok(receipt) => Ok(self.receipt(batch, receipt)),
            // The message went: the batch is delivered. Without the copy, a crash before the
            // commit would send it again; this is logged for ops.
            Err(error) => {
                tracing::error!(batch = %batch.id, %error, "batch emailed, but its outbox copy could not be written");
                Ok(BatchReceipt::all(
                    batch,
                    Some(format!("emailed to {}", self.to)),
                    InvoiceOutcome::Accepted { reference: Some(format!("emailed to {}", self.to)) },
                ))
            }
        }
    }

    /// After a crash: the outbox copy says whether the message went.
    pub fn reconcile(&self, batch: &Batch, files: &[BatchFile]) -> Result<Found, ProviderError> {
        Ok(match self.outbox.reconcile(batch, files)? {
            Found::Delivered(receipt) => Found::Delivered(self.receipt(batch, receipt)),
            other => other,
        })
    }

    fn receipt(&self, batch: &Batch, outbox: BatchReceipt) -> BatchReceipt {
        let reference = format!("emailed to {}; copy {}", self.to, outbox.reference.unwrap_or_default());
        BatchReceipt::all(batch, Some(reference.clone()), InvoiceOutcome::Accepted { reference: Some(reference) })
    }

    fn mail(&self, batch: &Batch, files: &[BatchFile]) -> Mail {
        let mut text = format!(
            "{} ({}) submits batch {} of {} invoices, total {}, for factoring by {}.\n\n",
            batch.seller.name,
            batch.seller.mc.as_deref().map_or_else(String::new, |mc| format!("MC {mc}")),
            batch.external_id(),
            batch.invoices.len(),
            batch.total(),
            batch.provider.name,
        );
        for invoice in &batch.invoices {
            text.push_str(&format!(
                "  {}  load {}  {}  {}\n",
                invoice.invoice_number, invoice.load_number, invoice.customer_name, invoice.amount
            ));
        }
        text.push_str("\nThe schedule and each invoice packet are attached.\n");
        let attachments = files
            .iter()
            .map(|file| MailAttachment {
                name: file.name.clone(),
                content_type: content_type(&file.name),
                bytes: file.bytes.clone(),
            })
            .collect();
        let uid = batch.uid.clone().unwrap_or_else(|| batch.id.clone());
        Mail {
            to: vec![self.to.clone()],
            subject: format!(
                "{} batch {}: {} invoices, {}",
                batch.seller.name,
                batch.external_id(),
                batch.invoices.len(),
                batch.total()
            ),
            text,
            message_id: Some(format!("batch-{uid}.{}@factord", batch.id)),
            attachments,
        }
    }
}

fn content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".csv") {
        "text/csv"
    } else if lower.ends_with(".xlsx") {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else {
        "application/octet-stream"
    }
}
