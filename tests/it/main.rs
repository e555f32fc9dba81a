//! Integration tests: one binary, one module per area. Store tests run against a real SQLite
//! file and, when `TEST_DATABASE_URL` is set (CI sets it), a fresh PostgreSQL database.

mod harness;

mod cli;
mod config;
mod daemon;
mod intake;
mod store;
