//! Invoicing (docs/design.md §2–§3): Released loads become invoices with the Notice of Assignment and
//! one merged packet each (AutoMerge) → Queued; direct customers get their invoice in the
//! outbox → Invoiced.
//!
//! - [`content`]: what an invoice says, as plain data.
//! - [`render`]: the invoice PDF (krilla, vendored DejaVu fonts, word wrap).
//! - [`packet`]: document checks and the merge of invoice + rate confirmation + POD (lopdf).
//! - [`job`]: the pass that claims loads, numbers, renders, writes and moves them.
//! - [`rebuild`]: Queued packets built for another factor or NOA, rebuilt before a batch takes
//!   them (safe provider and NOA switching).

pub mod content;
pub mod job;
pub mod packet;
pub mod rebuild;
pub mod render;

pub use job::{PassReport, run_once};
