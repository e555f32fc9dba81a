//! The configuration as written in the files (docs/design.md §10): serde structs that mirror the TOML
//! closely and accept anything of the right shape. Every value is checked later, in
//! `Settings::from_raw`, so that all problems can be reported at once.
//!
//! Numbers and booleans also accept strings, because environment overrides arrive as text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub database: RawDatabase,
    pub paths: RawPaths,
    pub log: RawLog,
    pub http: Option<RawHttp>,
    pub credit: RawCredit,
    pub intake: RawIntake,
    pub invoicing: RawInvoicing,
    pub submission: RawSubmission,
    pub schedule: RawScheduleSection,
    pub subsidiary: Vec<RawSubsidiary>,
    pub provider: BTreeMap<String, RawProvider>,
    pub smtp: Option<super::alerts::RawSmtp>,
    pub alerts: Option<super::alerts::RawAlerts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawDatabase {
    pub url: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    #[serde(deserialize_with = "lenient::opt_u32")]
    pub max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawPaths {
    pub inbox: Option<PathBuf>,
    pub outbox: Option<PathBuf>,
    pub documents: Option<PathBuf>,
    pub archive: Option<PathBuf>,
    pub data: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
    /// Extra `EnvFilter` directives, e.g. `sqlx=info,suppaftp=debug`, to raise a dependency.
    pub filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHttp {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawCredit {
    pub max_age: Option<String>,
    pub refresh_schedule: Option<String>,
    pub request_interval: Option<String>,
    pub retry_cap: Option<String>,
}

/// Inbox pickup timing (docs/reliability.md rule 6). Not in docs/design.md §10's example; defaults suit ops.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawIntake {
    pub scan_interval: Option<String>,
    pub quiet_period: Option<String>,
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub max_file_bytes: Option<u64>,
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub max_rows: Option<u64>,
    /// XLSX reports: the most bytes a workbook's zip entries may inflate to.
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub max_unpacked_bytes: Option<u64>,
}

/// The invoice job's timing and limits. Not in docs/design.md §10's example; defaults suit ops.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawInvoicing {
    pub interval: Option<String>,
    pub lease: Option<String>,
    #[serde(deserialize_with = "lenient::opt_u64")]
    pub max_document_bytes: Option<u64>,
}

/// Every cron schedule: how old a missed fire may be and still run at start.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawScheduleSection {
    pub catch_up: Option<String>,
}

/// Batch submission timing. Not in docs/design.md §10's example; defaults suit ops.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSubmission {
    pub lease: Option<String>,
    pub scheduler_lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSubsidiary {
    pub id: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub usdot: Option<String>,
    pub mc: Option<String>,
    pub timezone: Option<String>,
    pub invoice_prefix: Option<String>,
    pub invoicing_method: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub automerge: Option<bool>,
    pub noa: Option<String>,
    /// Payment terms printed on invoices when a load names none (days; default 30).
    #[serde(deserialize_with = "lenient::opt_u32")]
    pub terms_days: Option<u32>,
    pub customer_overrides: BTreeMap<String, String>,
    pub factoring: Option<RawFactoring>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFactoring {
    pub provider: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub active: Option<bool>,
    pub schedule: Option<String>,
    /// Status sync's cron schedule (providers with a status API).
    pub status_sync: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub block_on_declined_credit: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub block_on_unknown_credit: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_u32")]
    pub max_batch_size: Option<u32>,
    /// The factor's own id for each customer (TAFS), by TMS customer id.
    pub customer_ids: BTreeMap<String, String>,
    pub ftp: Option<RawFtp>,
    pub api: Option<RawApi>,
    /// Manual providers: batches also sent by email.
    pub email: Option<super::alerts::RawFactoringEmail>,
    /// The factor's payment address, printed as the remit-to block of factored invoices.
    pub remit_to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFtp {
    pub protocol: Option<String>,
    pub host: Option<String>,
    #[serde(deserialize_with = "lenient::opt_u16")]
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub directory: Option<String>,
    pub tls: Option<String>,
    pub host_key_sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawApi {
    pub base_url: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub subscription_key_file: Option<PathBuf>,
    pub subscription_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub api_key_env: Option<String>,
    pub client_id: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawProvider {
    pub reports: Option<RawReports>,
    /// The factor's status words per outcome (docs/design.md §8a), e.g. `purchased = ["Funded"]`.
    pub statuses: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawReports {
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub sheet: Option<String>,
    /// Extra header aliases per field, e.g. `purchase.invoice_number = ["Client Inv #"]`.
    pub purchase: BTreeMap<String, Vec<String>>,
    pub payment: BTreeMap<String, Vec<String>>,
}

pub(super) use lenient::opt_u16 as lenient_opt_u16;

/// Deserializers that take a number or boolean either typed or as text.
mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(i64),
        Text(String),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrText {
        Bool(bool),
        Text(String),
    }

    fn opt_int<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + std::str::FromStr,
    {
        use serde::de::Error;
        let value = Option::<NumberOrText>::deserialize(deserializer)?;
        let out_of_range = |v: &dyn std::fmt::Display| D::Error::custom(format!("`{v}` is not a valid number here"));
        match value {
            None => Ok(None),
            Some(NumberOrText::Number(n)) => T::try_from(n).map(Some).map_err(|_| out_of_range(&n)),
            Some(NumberOrText::Text(t)) => t.trim().parse::<T>().map(Some).map_err(|_| out_of_range(&t)),
        }
    }

    pub fn opt_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        opt_int(d)
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        opt_int(d)
    }

    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        opt_int(d)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
        use serde::de::Error;
        match Option::<BoolOrText>::deserialize(deserializer)? {
            None => Ok(None),
            Some(BoolOrText::Bool(b)) => Ok(Some(b)),
            Some(BoolOrText::Text(t)) => match t.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(D::Error::custom(format!("`{other}` is not true or false"))),
            },
        }
    }
}
