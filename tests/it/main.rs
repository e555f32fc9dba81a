//! Integration tests: one binary, one module per area. Store tests run against a real SQLite
//! file and, when `TEST_DATABASE_URL` is set (CI sets it), a fresh PostgreSQL database.

mod harness;
#[allow(dead_code, reason = "shared test helpers: each test binary uses a part of them")]
#[path = "../common/pdfs.rs"]
mod pdfs;
#[allow(dead_code, reason = "shared test helpers: each test binary uses a part of them")]
#[path = "../common/seed.rs"]
mod seed;

mod alerts;
mod api;
mod architecture;
mod cli;
mod config;
mod credit;
mod daemon;
mod docs;
mod examples;
mod fakes;
mod ftp;
mod http;
mod intake;
mod invoice_content;
mod invoicing;
mod leader;
mod ledger;
mod multi;
mod probe;
mod reload;
mod reports;
mod rework;
mod rework_docs;
mod secrets;
mod sftp;
mod store;
mod submit;
mod submit_faults;
mod supervise;
mod sync;
