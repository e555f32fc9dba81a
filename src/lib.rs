//! factord: invoice factoring for trucking carriers, unattended.
//!
//! Layout, with data flowing from the top down:
//! - [`cli`]: the command line of docs/design.md §6 (clap): calls the library, formats the result as
//!   text or JSON.
//! - [`config`]: files and environment → validated [`config::Settings`]; secrets kept secret.
//! - [`telemetry`]: the tracing subscriber, set up once.
//! - [`domain`]: money in cents, the load status graph, exceptions, the load import rule, the
//!   money ledger's figures (reconcile, aging, journal; docs/money.md).
//! - [`providers`]: the catalogue of the 13 factoring companies, batch layouts and transports
//!   (outbox, FTP, HTTP APIs).
//! - [`store`]: the only code that speaks SQL, on PostgreSQL or SQLite.
//! - [`invoicing`]: Released loads → invoice PDF with the NOA + merged packet → Queued; direct
//!   customers' invoices to the outbox → Invoiced.
//! - [`schedule`]: when a cron schedule fires in a subsidiary's time zone, across DST changes.
//! - [`submit`]: batches of Queued invoices to the factor: pre-flight, write-ahead, transports,
//!   outcomes, reconciliation after a crash.
//! - [`sync`]: status sync: asks API factors for the status of the invoices they hold and
//!   applies the answers through the provider's status map.
//! - [`credit`]: broker credit checks: at invoice time, the refresh job, the submission policy.
//! - [`secrets`]: secrets redacted from every text that came from outside, in every encoded
//!   form.
//! - [`files`]: durable file writes (temp name, fsync, rename) and safe file names.
//! - [`intake`]: load exports (CSV, JSON) → validated rows → the store; the inbox pickup
//!   (stable-file detection, processing folder, archive and failed folders).
//! - [`reports`]: the factor's purchase and payment reports (CSV, XLSX) → Financed and
//!   Completed, from the per-provider inboxes or `factord ingest`.
//! - [`rework`]: ops' rework commands (hold, release, settle, void), `submit --loads` and the list of
//!   open exceptions with the command that resolves each.
//! - [`loads`]: one load in full as `loads show` tells it, and the JSON object of a load.
//! - [`rework_docs`]: `loads docs` (documents checked, copied, recorded, a Queued packet rebuilt)
//!   and `loads retry` (a rejected load back to Queued, resubmitted under its invoice number).
//! - [`status`]: what `factord status` shows, gathered from the store (also its JSON).
//! - [`reload`]: live reload: load, validate and compare the configuration; the outcome.
//! - [`backoff`]: capped exponential backoff with full jitter, for every retry loop.
//! - [`supervise`]: each daemon component under a supervisor: heartbeats, restarts with
//!   backoff after a panic or an unexpected stop, its state in the health registry.
//! - [`daemon`]: `factord run`: components started in order, stopped in reverse on shutdown.
//! - [`http`]: the daemon's `/healthz`, `/readyz`, `/metrics` and read-only dashboard.
//! - [`alerts`]: events derived from the database, claimed once, sent by webhook and email.
//! - [`mail`]: email through the `[smtp]` server (STARTTLS), for alerts and manual providers.

pub mod alerts;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod credit;
pub mod daemon;
pub mod domain;
pub mod files;
pub mod http;
pub mod intake;
pub mod invoicing;
pub mod loads;
pub mod mail;
pub mod providers;
pub mod reload;
pub mod reports;
pub mod rework;
pub mod rework_docs;
pub mod schedule;
pub mod secrets;
pub mod status;
pub mod store;
pub mod submit;
pub mod supervise;
pub mod sync;
pub mod telemetry;
