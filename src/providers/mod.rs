//! The factoring companies factord knows (docs/design.md §4) and how batches reach them.
//!
//! - [`catalogue`]: the 13 providers: ids, transports, limits, what each needs.
//! - [`batch`]: what a transport sends (a batch of invoices) and what it answers.
//! - [`layout`]: the files of a batch for file-taking providers (schedule CSV + packets, zip).
//! - [`outbox`]: the manual transport: the batch as a folder in the outbox for ops to send.
//! - [`email`]: a manual provider's batches also emailed through `[smtp]`, then copied to the
//!   outbox.
//! - [`ftp`]: FTP / FTPS upload (suppaftp): temp name, size check, rename to the final name.
//! - [`sftp`]: SFTP upload (russh, russh-sftp) with a pinned host key, the same contract as
//!   [`ftp`], which hands `protocol = "sftp"` to it.
//! - [`remote`]: what FTP and SFTP share: the upload of a batch and its reconciliation after a
//!   crash, over the few file operations each protocol provides.
//! - [`api`]: HTTP APIs, one file per provider with its request/response mapping.
//! - [`statuses`]: each provider's status map: the factor's words → purchased, paid, held,
//!   rejected or no change (docs/design.md §8a).
//! - [`probe`]: `factord providers test`: each subsidiary's connection checked without sending
//!   an invoice.

pub mod api;
pub mod batch;
mod catalogue;
pub mod email;
pub mod ftp;
pub mod layout;
pub mod outbox;
pub mod probe;
mod remote;
pub mod sftp;
pub mod statuses;

pub use catalogue::{ApiCredential, PROVIDERS, Provider, Requirement, Transport, find_provider};
