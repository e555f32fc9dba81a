//! Validated settings: what the rest of factord reads. Built only by [`Settings::from_raw`],
//! which checks every value and combination and reports all problems at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use secrecy::SecretString;

use super::raw::{RawApi, RawFactoring, RawFtp, RawReports};
use super::{Environment, Issues, Loaded};
use crate::domain::is_safe_id;
use crate::providers::statuses::{StatusMap, StatusOutcome, status_key};
use crate::providers::{ApiCredential, Provider, Transport, find_provider};

/// The default database: an SQLite file created on first run, so a fresh checkout needs no server.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/factord.db";

#[derive(Debug)]
pub struct Settings {
    /// The main file, for messages and for reload.
    pub config_path: PathBuf,
    pub database: DatabaseSettings,
    pub paths: Paths,
    pub log: LogSettings,
    pub http: Option<HttpSettings>,
    pub credit: CreditSettings,
    pub intake: IntakeSettings,
    pub invoicing: InvoicingSettings,
    pub submission: SubmissionSettings,
    pub schedule: ScheduleSettings,
    pub subsidiaries: Vec<Subsidiary>,
    /// Per-provider report settings, by provider id.
    pub providers: BTreeMap<String, ProviderSettings>,
    /// `[smtp]`: the server alert emails and manual providers' batch emails go through.
    pub smtp: Option<super::SmtpSettings>,
    /// `[alerts]`.
    pub alerts: super::AlertSettings,
}

pub struct DatabaseSettings {
    pub url: String,
    /// For PostgreSQL: a password kept out of the URL (file or environment).
    pub password: Option<SecretString>,
    pub max_connections: u32,
}

impl fmt::Debug for DatabaseSettings {
    /// Redacts the URL's user info and the password: a URL may carry `user:secret@`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl DatabaseSettings {
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

/// A URL with any password replaced, for logs and messages: the one in the user info
/// (`user:secret@`) and a `password=` query parameter, which sqlx also accepts.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, tail) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    let redacted = if userinfo.contains(':') { format!("{user}:[REDACTED]") } else { user.to_string() };
                    format!("{scheme}://{redacted}@{host}{tail}")
                }
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    match query {
        None => base,
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=[REDACTED]"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

#[derive(Clone, Debug)]
pub struct Paths {
    pub inbox: PathBuf,
    pub outbox: PathBuf,
    pub documents: PathBuf,
    pub archive: PathBuf,
    pub data: PathBuf,
}

impl Paths {
    /// `inbox/loads/`: load exports from the TMS.
    pub fn loads_inbox(&self) -> PathBuf {
        self.inbox.join("loads")
    }

    /// `inbox/<provider>/`: reports of one factor (kind told by the columns), with `purchase/`
    /// and `payment/` below it.
    pub fn reports_inbox(&self, provider: &str) -> PathBuf {
        self.inbox.join(provider)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogSettings {
    pub format: LogFormat,
    /// factord's own level (`error`, `warn`, `info`, `debug`, `trace`); dependencies log
    /// warnings and errors only unless `filter` raises them. A value with `=` in it is taken as
    /// whole `EnvFilter` directives (the form earlier versions documented).
    pub level: String,
    /// Extra `EnvFilter` directives applied after `level` (`log.filter`), e.g. `sqlx=info`.
    pub filter: Option<String>,
}

#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

#[derive(Clone, Debug)]
pub struct CreditSettings {
    /// A check older than this is refreshed before it is relied on.
    pub max_age: Duration,
    /// When the refresh job runs (in UTC: the setting is not a subsidiary's).
    pub refresh_schedule: Schedule,
    /// The least time between two checks of one refresh run: the rate limit on the factors.
    pub request_interval: Duration,
    /// The longest wait of the refresh job's backoff after failed checks.
    pub retry_cap: Duration,
}

#[derive(Clone, Debug)]
pub struct IntakeSettings {
    /// How often the inbox is scanned even without inotify events (network shares send none).
    pub scan_interval: Duration,
    /// How long a file's size and mtime must hold still before it is taken.
    pub quiet_period: Duration,
    /// Files larger than this are refused.
    pub max_file_bytes: u64,
    /// Files with more data rows than this are refused.
    pub max_rows: u64,
    /// XLSX reports whose zip entries inflate to more than this are refused unread.
    pub max_unpacked_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct InvoicingSettings {
    /// How often the daemon runs an invoice pass (it also runs one after every load import).
    pub interval: Duration,
    /// How long a pass owns the loads it claimed without renewing; a pass renews its claims as
    /// it works, and one that dies frees them after this.
    pub lease: Duration,
    /// Larger POD or rate confirmation files are refused.
    pub max_document_bytes: u64,
}

/// Every cron schedule (submission, credit refresh, status sync).
#[derive(Clone, Debug)]
pub struct ScheduleSettings {
    /// A fire missed while no daemon ran the schedule (restart, upgrade, reboot) runs once at
    /// start when it is at most this old; older ones are logged as skipped (`schedule.catch_up`).
    pub catch_up: Duration,
}

#[derive(Clone, Debug)]
pub struct SubmissionSettings {
    /// How long a batch being sent is held without renewal; the sender renews it while the
    /// transport works. A batch whose sender died is reconciled once this has passed.
    pub lease: Duration,
    /// With several daemons on one PostgreSQL, one runs the schedules; it renews its lease every
    /// third of this, and another daemon takes over once it has run out.
    pub scheduler_lease: Duration,
}

/// A parsed 6-field cron expression (seconds first), kept with its text.
#[derive(Clone)]
pub struct Schedule {
    pub expression: String,
    pub cron: Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.expression)
    }
}

impl Schedule {
    /// Parses `sec min hour day month weekday`; day-of-month and day-of-week must both match.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        let fields = expression.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "`{expression}` has {fields} fields; expected 6: sec min hour day month weekday (e.g. \"0 0 16 * * Mon-Fri\")"
            ));
        }
        let parser = CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).dom_and_dow(true).build();
        parser
            .parse(expression)
            .map(|cron| Schedule { expression: expression.to_string(), cron })
            .map_err(|error| format!("`{expression}` is not a valid cron expression: {error}"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoicingMethod {
    Factoring,
    Direct,
}

impl InvoicingMethod {
    fn parse(text: &str) -> Option<InvoicingMethod> {
        match text {
            "factoring" => Some(InvoicingMethod::Factoring),
            "direct" => Some(InvoicingMethod::Direct),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            InvoicingMethod::Factoring => "factoring",
            InvoicingMethod::Direct => "direct",
        }
    }
}

/// Payment terms of a subsidiary that sets none (`terms_days`).
pub const DEFAULT_TERMS_DAYS: u32 = 30;
/// Longest payment terms accepted, in days.
pub const MAX_TERMS_DAYS: u32 = 365;

#[derive(Debug)]
pub struct Subsidiary {
    pub id: String,
    pub name: String,
    pub address: String,
    pub usdot: Option<String>,
    pub mc: Option<String>,
    pub timezone: Tz,
    pub invoice_prefix: String,
    pub invoicing_method: InvoicingMethod,
    pub automerge: bool,
    pub noa: Option<String>,
    /// Payment terms in days printed on invoices of loads that name none (`terms_days`,
    /// default 30).
    pub terms_days: u32,
    /// Customer id → method, overriding `invoicing_method` for that customer.
    pub customer_overrides: BTreeMap<String, InvoicingMethod>,
    pub factoring: Option<Factoring>,
    /// The file this subsidiary was configured in.
    pub source: PathBuf,
}

impl Subsidiary {
    /// The method for one customer: its override, else the subsidiary default.
    pub fn method_for(&self, customer_id: &str) -> InvoicingMethod {
        self.customer_overrides.get(customer_id).copied().unwrap_or(self.invoicing_method)
    }

    /// What a factored packet of this subsidiary is built for today: `<provider>:<NOA digest>`
    /// (the first 16 hex digits of the NOA text's sha256). Stored with each packet, so that a
    /// packet built for another factor or another NOA is rebuilt before any batch takes it
    /// (docs/design.md §4). `None` without a factoring provider or an NOA.
    pub fn packet_mark(&self) -> Option<String> {
        use sha2::{Digest, Sha256};
        let provider = self.factoring.as_ref()?.provider.id;
        let digest = Sha256::digest(self.noa.as_deref()?.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Some(format!("{provider}:{hex}"))
    }
}

/// The provider id of a packet mark made by [`Subsidiary::packet_mark`].
pub fn packet_mark_provider(mark: &str) -> &str {
    mark.split_once(':').map_or(mark, |(provider, _)| provider)
}

#[derive(Debug)]
pub struct Factoring {
    pub provider: &'static Provider,
    pub active: bool,
    pub schedule: Option<Schedule>,
    pub block_on_declined_credit: bool,
    pub block_on_unknown_credit: bool,
    pub max_batch_size: u32,
    /// When status sync asks the factor about the invoices it holds (`factoring.status_sync`,
    /// in the subsidiary's time zone; default nightly at 02:00). Used by providers with a status
    /// API only; `None` only in settings that failed validation.
    pub status_sync: Option<Schedule>,
    /// The factor's own id for each customer (TAFS), by TMS customer id.
    pub customer_ids: BTreeMap<String, String>,
    pub connection: Connection,
    /// Manual providers: the factor's address that batches are also emailed to
    /// (`[subsidiary.factoring.email] to`).
    pub email_to: Option<String>,
    /// The factor's payment address, printed as the remit-to block of factored invoices
    /// (`[subsidiary.factoring] remit_to`); without it the invoice names the factor and points
    /// to the Notice of Assignment.
    pub remit_to: Option<String>,
}

#[derive(Debug)]
pub enum Connection {
    /// Manual providers: nothing to connect to.
    None,
    Ftp(FtpSettings),
    Api(ApiSettings),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpProtocol {
    Ftp,
    Sftp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpTls {
    Explicit,
    Implicit,
    None,
}

/// `Debug` shows secrets as `[REDACTED]` (secrecy's own `Debug`).
#[derive(Debug)]
pub struct FtpSettings {
    pub protocol: FtpProtocol,
    pub host: String,
    pub port: u16,
    pub username: String,
    /// `None` only while the provider is inactive.
    pub password: Option<SecretString>,
    pub directory: String,
    pub tls: FtpTls,
    pub host_key_sha256: Option<String>,
}

#[derive(Debug)]
pub struct ApiSettings {
    pub base_url: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub subscription_key: Option<SecretString>,
    pub api_key: Option<SecretString>,
    pub client_id: Option<String>,
    /// Longest wait for one request's answer (each retry gets it anew).
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct ProviderSettings {
    pub reports: ReportSettings,
    /// Status words configured for this provider (`[provider.<id>.statuses]`), by
    /// [`status_key`]: the word as written and its outcome. They go on top of the shipped table.
    pub statuses: BTreeMap<String, (String, StatusOutcome)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportEncoding {
    Utf8,
    Windows1252,
}

#[derive(Clone, Debug)]
pub struct ReportSettings {
    pub encoding: ReportEncoding,
    pub delimiter: u8,
    /// XLSX: the sheet to read; the first when absent.
    pub sheet: Option<String>,
    pub purchase_aliases: BTreeMap<String, Vec<String>>,
    pub payment_aliases: BTreeMap<String, Vec<String>>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            encoding: ReportEncoding::Utf8,
            delimiter: b',',
            sheet: None,
            purchase_aliases: BTreeMap::new(),
            payment_aliases: BTreeMap::new(),
        }
    }
}

/// Status sync's default schedule: nightly at 02:00 in the subsidiary's time zone.
pub const DEFAULT_STATUS_SYNC: &str = "0 0 2 * * *";

/// Report fields that per-provider aliases may name (docs/design.md §8).
const PURCHASE_FIELDS: &[&str] = &[
    "invoice_number",
    "load_number",
    "amount",
    "advance",
    "fee",
    "reserve",
    "purchase_date",
    "schedule_number",
    "factor_status",
    "reserve_release",
    "chargeback",
];
const PAYMENT_FIELDS: &[&str] = &[
    "invoice_number",
    "load_number",
    "paid_amount",
    "payment_date",
    "payment_reference",
    "fee",
    "reserve_release",
    "chargeback",
];

impl Settings {
    /// The subsidiary with this id.
    pub fn subsidiary(&self, id: &str) -> Option<&Subsidiary> {
        self.subsidiaries.iter().find(|s| s.id == id)
    }

    /// A provider's status map: the shipped table with `[provider.<id>.statuses]` on top.
    pub fn status_map(&self, provider_id: &str) -> StatusMap {
        match self.providers.get(provider_id) {
            Some(provider) => StatusMap::new(provider_id, &provider.statuses),
            None => StatusMap::new(provider_id, &BTreeMap::new()),
        }
    }

    /// Validates everything; problems go to `issues`, and `None` comes back if there were any.
    #[expect(
        clippy::too_many_lines,
        reason = "one check per top-level key, in the order of the reference; every problem is collected, so they cannot return early"
    )]
    pub(crate) fn from_raw(loaded: Loaded, env: &Environment, issues: &mut Issues) -> Option<Settings> {
        let before = issues.0.len();
        let main = &loaded.main;
        let main_source = loaded.main_path.display().to_string();
        // A top-level key's source: the environment variable that set it, else the main file.
        let src = |key: &str| match loaded.env_keys.get(key) {
            Some(var) => format!("environment variable {var}"),
            None => main_source.clone(),
        };

        // [database]
        let url = main.database.url.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let is_sqlite = url.starts_with("sqlite:");
        let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !is_sqlite && !is_postgres {
            issues.push(
                src("database.url"),
                "database.url",
                format!("`{}` is neither sqlite:// nor postgres://", redact_url(&url)),
            );
        }
        let password = read_secret(
            SecretRef {
                file: main.database.password_file.as_deref(),
                env_name: main.database.password_env.as_deref(),
                file_key: "database.password_file",
                env_key: "database.password_env",
                required: false,
            },
            &src("database.password_file"),
            env,
            issues,
        );
        if password.is_some() && is_sqlite {
            issues.push(
                src("database.password_file"),
                "database.password_file",
                "a password applies to PostgreSQL only",
            );
        }
        let max_connections = main.database.max_connections.unwrap_or(8);
        if max_connections == 0 {
            issues.push(src("database.max_connections"), "database.max_connections", "must be at least 1");
        }

        // [paths]
        let path_or = |p: &Option<PathBuf>, default: &str| p.clone().unwrap_or_else(|| PathBuf::from(default));
        let paths = Paths {
            inbox: path_or(&main.paths.inbox, "inbox"),
            outbox: path_or(&main.paths.outbox, "outbox"),
            documents: path_or(&main.paths.documents, "documents"),
            archive: path_or(&main.paths.archive, "archive"),
            data: path_or(&main.paths.data, "data"),
        };

        // [log]
        let format = match main.log.format.as_deref().unwrap_or("pretty") {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                issues.push(src("log.format"), "log.format", format!("`{other}` is not pretty or json"));
                LogFormat::Pretty
            }
        };
        let level = main.log.level.clone().unwrap_or_else(|| "info".to_string());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&level) {
            issues.push(src("log.level"), "log.level", format!("`{level}` is not a log level: {error}"));
        }
        let log_filter = main.log.filter.clone().filter(|f| !f.trim().is_empty());
        if let Some(filter) = &log_filter
            && let Err(error) = tracing_subscriber::EnvFilter::try_new(filter)
        {
            issues.push(
                src("log.filter"),
                "log.filter",
                format!("`{filter}` is not a filter (e.g. \"sqlx=info,suppaftp=debug\"): {error}"),
            );
        }

        // [http]
        let http = main.http.as_ref().and_then(|http| {
            let listen = http.listen.as_deref().unwrap_or("127.0.0.1:9464");
            match listen.parse::<SocketAddr>() {
                Ok(listen) => Some(HttpSettings { listen }),
                Err(_) => {
                    issues.push(src("http.listen"), "http.listen", format!("`{listen}` is not an address:port"));
                    None
                }
            }
        });

        // Durations: parsed, or the default (also when invalid, with the issue recorded).
        let mut duration = |value: &Option<String>, key: &str, default: Duration, min: Duration| {
            duration_setting(value.as_deref(), default, min, &src(key), key, issues)
        };

        // [credit]
        let max_age = duration(&main.credit.max_age, "credit.max_age", Duration::from_secs(86_400), Duration::ZERO);
        let request_interval = duration(
            &main.credit.request_interval,
            "credit.request_interval",
            Duration::from_millis(500),
            Duration::ZERO,
        );
        let retry_cap = duration(&main.credit.retry_cap, "credit.retry_cap", Duration::from_secs(600), Duration::ZERO);

        // [intake]
        let intake = IntakeSettings {
            scan_interval: duration(
                &main.intake.scan_interval,
                "intake.scan_interval",
                Duration::from_secs(2),
                Duration::ZERO,
            ),
            quiet_period: duration(
                &main.intake.quiet_period,
                "intake.quiet_period",
                Duration::from_secs(2),
                Duration::ZERO,
            ),
            max_file_bytes: main.intake.max_file_bytes.unwrap_or(64 * 1024 * 1024),
            max_rows: main.intake.max_rows.unwrap_or(1_000_000),
            max_unpacked_bytes: main.intake.max_unpacked_bytes.unwrap_or(256 * 1024 * 1024),
        };

        // [invoicing]
        let invoicing = InvoicingSettings {
            interval: duration(&main.invoicing.interval, "invoicing.interval", Duration::from_secs(10), Duration::ZERO),
            lease: duration(&main.invoicing.lease, "invoicing.lease", Duration::from_secs(60), Duration::from_secs(1)),
            max_document_bytes: main.invoicing.max_document_bytes.unwrap_or(50 * 1024 * 1024),
        };

        // [submission]
        let submission = SubmissionSettings {
            lease: duration(
                &main.submission.lease,
                "submission.lease",
                Duration::from_secs(60),
                Duration::from_secs(1),
            ),
            scheduler_lease: duration(
                &main.submission.scheduler_lease,
                "submission.scheduler_lease",
                Duration::from_secs(30),
                Duration::from_secs(1),
            ),
        };

        // [schedule]
        let schedule = ScheduleSettings {
            catch_up: duration(
                &main.schedule.catch_up,
                "schedule.catch_up",
                Duration::from_secs(6 * 3600),
                Duration::ZERO,
            ),
        };

        let refresh_schedule = parse_setting(
            main.credit.refresh_schedule.as_deref(),
            "0 0 * * * *",
            Schedule::parse,
            &src("credit.refresh_schedule"),
            "credit.refresh_schedule",
            issues,
        );

        // [provider.<id>]
        let mut providers = BTreeMap::new();
        for (id, raw) in &main.provider {
            let key = format!("provider.{id}");
            let known = find_provider(id).is_some();
            if !known {
                issues.push(src(&key), &key, format!("unknown provider `{id}` (known: {})", known_providers()));
            }
            // The section's keys are checked under an unknown id too, so one run lists them all.
            let reports = raw.reports.as_ref().map(|r| validate_reports(r, &key, &src, issues)).unwrap_or_default();
            let statuses = validate_statuses(&raw.statuses, &key, &src(&key), issues);
            if known {
                providers.insert(id.clone(), ProviderSettings { reports, statuses });
            }
        }

        // [[subsidiary]] and subsidiaries/*.toml
        let mut subsidiaries = Vec::new();
        for sourced in &loaded.subsidiaries {
            if let Some(subsidiary) = validate_subsidiary(sourced, env, issues) {
                subsidiaries.push(subsidiary);
            }
        }
        check_unique_subsidiaries(&loaded, issues);

        // [smtp], [alerts]
        let smtp = main.smtp.as_ref().and_then(|raw| super::alerts::validate_smtp(raw, &src, env, issues));
        let alerts = super::alerts::validate_alerts(main.alerts.as_ref(), main.smtp.is_some(), &src, env, issues);
        if main.smtp.is_none() {
            for sourced in &loaded.subsidiaries {
                if sourced.raw.factoring.as_ref().is_some_and(|f| f.email.is_some()) {
                    issues.push(
                        sourced.source.display(),
                        format!("{}factoring.email", sourced.key_prefix),
                        "batches by email need an [smtp] section",
                    );
                }
            }
        }

        if issues.0.len() > before {
            return None;
        }
        Some(Settings {
            config_path: loaded.main_path.clone(),
            database: DatabaseSettings { url, password, max_connections },
            paths,
            log: LogSettings { format, level, filter: log_filter },
            http,
            credit: CreditSettings { max_age, refresh_schedule: refresh_schedule?, request_interval, retry_cap },
            intake,
            invoicing,
            submission,
            schedule,
            subsidiaries,
            providers,
            smtp,
            alerts,
        })
    }
}

fn known_providers() -> String {
    crate::providers::PROVIDERS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

/// A duration setting: `value` parsed, or `default` when absent. A value that does not parse
/// or is below `min` is an issue naming `key` (and the default stands in, so validation goes on).
pub(super) fn duration_setting(
    value: Option<&str>,
    default: Duration,
    min: Duration,
    source: &str,
    key: &str,
    issues: &mut Issues,
) -> Duration {
    let Some(text) = value else { return default };
    match parse_duration(text) {
        Ok(parsed) if parsed >= min => parsed,
        Ok(_) => {
            issues.push(source, key, format!("must be at least {}", format_duration(min)));
            default
        }
        Err(message) => {
            issues.push(source, key, message);
            default
        }
    }
}

/// `1s`, `100ms`: the shortest form of a duration, for messages.
fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

fn parse_setting<T>(
    value: Option<&str>,
    default: &str,
    parse: impl Fn(&str) -> Result<T, String>,
    source: &str,
    key: &str,
    issues: &mut Issues,
) -> Option<T> {
    match parse(value.unwrap_or(default)) {
        Ok(parsed) => Some(parsed),
        Err(message) => {
            issues.push(source, key, message);
            None
        }
    }
}

/// Parses durations such as `24h`, `90m`, `30s`, `500ms`, `1d`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("`{text}` is not a duration (e.g. 24h, 90m, 30s, 500ms)");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            _ => return Err(invalid()),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Where a secret may come from, and the keys to name in errors.
pub(super) struct SecretRef<'a> {
    pub file: Option<&'a Path>,
    pub env_name: Option<&'a str>,
    pub file_key: &'a str,
    pub env_key: &'a str,
    pub required: bool,
}

/// Reads a secret from its file or environment variable. Errors name the key and the file or
/// variable, never the content.
pub(super) fn read_secret(
    secret: SecretRef<'_>,
    source: &str,
    env: &Environment,
    issues: &mut Issues,
) -> Option<SecretString> {
    match (secret.file, secret.env_name) {
        (Some(_), Some(_)) => {
            issues.push(
                source,
                secret.file_key,
                format!("give either {} or {}, not both", secret.file_key, secret.env_key),
            );
            None
        }
        (Some(file), None) => match std::fs::read_to_string(file) {
            Ok(content) => {
                let value = content.trim_end_matches(['\n', '\r']);
                if value.is_empty() {
                    issues.push(source, secret.file_key, format!("{} is empty", file.display()));
                    None
                } else {
                    Some(SecretString::from(value.to_string()))
                }
            }
            Err(error) => {
                issues.push(source, secret.file_key, format!("cannot read {}: {error}", file.display()));
                None
            }
        },
        (None, Some(name)) => match env.get(name) {
            Some(value) if !value.is_empty() => Some(SecretString::from(value.clone())),
            _ => {
                issues.push(source, secret.env_key, format!("environment variable {name} is not set"));
                None
            }
        },
        (None, None) => {
            if secret.required {
                issues.push(
                    source,
                    secret.file_key,
                    format!("required: set {} or {}", secret.file_key, secret.env_key),
                );
            }
            None
        }
    }
}

fn validate_reports(raw: &RawReports, key: &str, src: &dyn Fn(&str) -> String, issues: &mut Issues) -> ReportSettings {
    let mut reports = ReportSettings::default();
    match raw.encoding.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("utf-8") | Some("utf8") => {}
        Some("windows-1252") | Some("cp1252") => reports.encoding = ReportEncoding::Windows1252,
        Some(other) => {
            issues.push(src(key), format!("{key}.reports.encoding"), format!("`{other}` is not utf-8 or windows-1252"))
        }
    }
    if let Some(delimiter) = &raw.delimiter {
        let delimiter = if delimiter == "\\t" { "\t" } else { delimiter.as_str() };
        match delimiter.as_bytes() {
            [byte] if byte.is_ascii() && *byte != b'"' => reports.delimiter = *byte,
            _ => issues.push(
                src(key),
                format!("{key}.reports.delimiter"),
                format!("`{delimiter}` is not a single character"),
            ),
        }
    }
    reports.sheet = raw.sheet.clone();
    for (kind, fields, raw_aliases, out) in [
        ("purchase", PURCHASE_FIELDS, &raw.purchase, &mut reports.purchase_aliases),
        ("payment", PAYMENT_FIELDS, &raw.payment, &mut reports.payment_aliases),
    ] {
        for (field, aliases) in raw_aliases {
            if fields.contains(&field.as_str()) {
                out.insert(field.clone(), aliases.clone());
            } else {
                issues.push(
                    src(key),
                    format!("{key}.reports.{kind}.{field}"),
                    format!("unknown {kind} field (known: {})", fields.join(", ")),
                );
            }
        }
    }
    reports
}

/// `[provider.<id>.statuses]`: each key an outcome, each word non-empty and under one outcome
/// only (a word under two would make the factor's meaning a matter of order).
fn validate_statuses(
    raw: &BTreeMap<String, Vec<String>>,
    key: &str,
    source: &str,
    issues: &mut Issues,
) -> BTreeMap<String, (String, StatusOutcome)> {
    let mut words: BTreeMap<String, (String, StatusOutcome)> = BTreeMap::new();
    for (name, listed) in raw {
        let field = format!("{key}.statuses.{name}");
        let outcome = match name.parse::<StatusOutcome>() {
            Ok(outcome) => outcome,
            Err(message) => {
                issues.push(source, &field, message);
                continue;
            }
        };
        for word in listed {
            if word.trim().is_empty() {
                issues.push(source, &field, "an empty status word");
                continue;
            }
            let word_key = status_key(word);
            match words.get(&word_key) {
                Some((_, other)) if *other != outcome => issues.push(
                    source,
                    &field,
                    format!("`{}` is also listed under {key}.statuses.{other}: a word has one outcome", word.trim()),
                ),
                _ => {
                    words.insert(word_key, (word.trim().to_string(), outcome));
                }
            }
        }
    }
    words
}

#[expect(
    clippy::too_many_lines,
    reason = "one check per key of [subsidiary.<id>], in the order of the reference, collecting every problem"
)]
fn validate_subsidiary(
    sourced: &super::SourcedSubsidiary,
    env: &Environment,
    issues: &mut Issues,
) -> Option<Subsidiary> {
    let raw = &sourced.raw;
    let source = sourced.source.display().to_string();
    let key = |k: &str| format!("{}{k}", sourced.key_prefix);
    let before = issues.0.len();

    let mut required = |value: &Option<String>, k: &str| -> String {
        match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => {
                issues.push(&source, key(k), "required");
                String::new()
            }
        }
    };
    let id = required(&raw.id, "id");
    let name = required(&raw.name, "name");
    let address = required(&raw.address, "address");
    let invoice_prefix = required(&raw.invoice_prefix, "invoice_prefix");
    let timezone_text = required(&raw.timezone, "timezone");

    if !id.is_empty() && !is_safe_id(&id) {
        issues.push(&source, key("id"), format!("`{id}` may use only letters, digits, - and _ (at most 64)"));
    }
    if !invoice_prefix.is_empty()
        && !invoice_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        issues.push(
            &source,
            key("invoice_prefix"),
            format!("`{invoice_prefix}` may use only letters, digits, - and _"),
        );
    }
    let timezone = if timezone_text.is_empty() {
        None
    } else {
        match timezone_text.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                issues.push(
                    &source,
                    key("timezone"),
                    format!("`{timezone_text}` is not a time zone (e.g. America/Chicago)"),
                );
                None
            }
        }
    };
    let invoicing_method = match raw.invoicing_method.as_deref() {
        None => InvoicingMethod::Factoring,
        Some(text) => InvoicingMethod::parse(text).unwrap_or_else(|| {
            issues.push(&source, key("invoicing_method"), format!("`{text}` is not factoring or direct"));
            InvoicingMethod::Factoring
        }),
    };
    let mut customer_overrides = BTreeMap::new();
    for (customer, method) in &raw.customer_overrides {
        match InvoicingMethod::parse(method) {
            Some(m) => {
                customer_overrides.insert(customer.clone(), m);
            }
            None => issues.push(
                &source,
                key(&format!("customer_overrides.{customer}")),
                format!("`{method}` is not factoring or direct"),
            ),
        }
    }
    let automerge = raw.automerge.unwrap_or(true);
    let noa = raw.noa.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let factors = invoicing_method == InvoicingMethod::Factoring
        || customer_overrides.values().any(|m| *m == InvoicingMethod::Factoring);
    if factors {
        if noa.is_none() {
            issues.push(
                &source,
                key("noa"),
                "required for factoring: the Notice of Assignment printed on every factored invoice",
            );
        }
        if !automerge {
            issues.push(
                &source,
                key("automerge"),
                "must be true for factoring: the factor needs invoice, rate confirmation and POD in one packet",
            );
        }
        if raw.factoring.is_none() {
            issues.push(&source, key("factoring"), "required for factoring: a [factoring] section naming the provider");
        }
    }
    let factoring = raw.factoring.as_ref().and_then(|f| validate_factoring(f, &source, &key, env, issues));
    let terms_days = raw.terms_days.unwrap_or(DEFAULT_TERMS_DAYS);
    if terms_days > MAX_TERMS_DAYS {
        issues.push(&source, key("terms_days"), format!("{terms_days} is more than {MAX_TERMS_DAYS} days"));
    }

    if issues.0.len() > before {
        return None;
    }
    Some(Subsidiary {
        id,
        name,
        address,
        usdot: raw.usdot.clone().filter(|v| !v.trim().is_empty()),
        mc: raw.mc.clone().filter(|v| !v.trim().is_empty()),
        timezone: timezone?,
        invoice_prefix,
        invoicing_method,
        automerge,
        noa,
        terms_days,
        customer_overrides,
        factoring,
        source: sourced.source.clone(),
    })
}

#[expect(
    clippy::too_many_lines,
    reason = "one check per key of [subsidiary.factoring], in the order of the reference, collecting every problem"
)]
fn validate_factoring(
    raw: &RawFactoring,
    source: &str,
    key: &dyn Fn(&str) -> String,
    env: &Environment,
    issues: &mut Issues,
) -> Option<Factoring> {
    // An unknown or missing provider is one issue; every other key is still checked as far as it
    // can be without knowing the provider, so that one run lists every problem.
    let provider: Option<&'static Provider> = match raw.provider.as_deref() {
        None => {
            issues.push(source, key("factoring.provider"), format!("required (one of: {})", known_providers()));
            None
        }
        Some(provider_id) => {
            let found = find_provider(provider_id);
            if found.is_none() {
                issues.push(
                    source,
                    key("factoring.provider"),
                    format!("unknown provider `{provider_id}` (known: {})", known_providers()),
                );
            }
            found
        }
    };
    let active = raw.active.unwrap_or(true);
    let schedule = match raw.schedule.as_deref() {
        Some(text) => match Schedule::parse(text) {
            Ok(schedule) => Some(schedule),
            Err(message) => {
                issues.push(source, key("factoring.schedule"), message);
                None
            }
        },
        None => {
            if active {
                issues.push(
                    source,
                    key("factoring.schedule"),
                    "required while the provider is active (e.g. \"0 0 16 * * Mon-Fri\")",
                );
            }
            None
        }
    };
    let status_sync = parse_setting(
        raw.status_sync.as_deref(),
        DEFAULT_STATUS_SYNC,
        Schedule::parse,
        source,
        &key("factoring.status_sync"),
        issues,
    );
    if let Some(provider) = provider.filter(|p| raw.status_sync.is_some() && !p.status_api) {
        issues.push(
            source,
            key("factoring.status_sync"),
            format!("{} has no invoice status API: remove this key (its reports are the source)", provider.name),
        );
    }
    let max_batch_size = match provider {
        Some(provider) => {
            let size = raw.max_batch_size.unwrap_or(provider.max_batch_size);
            if size == 0 || size > provider.max_batch_size {
                issues.push(
                    source,
                    key("factoring.max_batch_size"),
                    format!("must be between 1 and {} for {}", provider.max_batch_size, provider.name),
                );
            }
            size
        }
        None => {
            if raw.max_batch_size == Some(0) {
                issues.push(source, key("factoring.max_batch_size"), "must be at least 1");
            }
            raw.max_batch_size.unwrap_or(0)
        }
    };

    let Some(provider) = provider else {
        // Without a provider the transport is unknown: the connection blocks that are given are
        // still checked for what does not depend on it.
        if raw.ftp.is_some() && raw.api.is_some() {
            issues.push(
                source,
                key("factoring.api"),
                "give one of [factoring.ftp] or [factoring.api], as the provider takes batches",
            );
        }
        if let Some(ftp) = &raw.ftp {
            validate_ftp(ftp, active, source, key, env, issues);
        }
        if let Some(api) = &raw.api {
            validate_api(api, None, active, source, key, env, issues);
        }
        return None;
    };

    let email_to = raw.email.as_ref().and_then(|email| {
        let not_manual = (provider.transport != Transport::Manual).then_some(provider.name);
        super::alerts::validate_factoring_email(email, not_manual, source, &key("factoring.email"), issues)
    });
    let connection = match provider.transport {
        Transport::Manual => {
            for (present, block) in [(raw.ftp.is_some(), "factoring.ftp"), (raw.api.is_some(), "factoring.api")] {
                if present {
                    issues.push(
                        source,
                        key(block),
                        format!(
                            "{} is a manual provider (batch files in the outbox): remove this section",
                            provider.name
                        ),
                    );
                }
            }
            Connection::None
        }
        Transport::Ftp => {
            if raw.api.is_some() {
                issues.push(
                    source,
                    key("factoring.api"),
                    format!("{} takes batches by FTP: use [factoring.ftp], not [factoring.api]", provider.name),
                );
            }
            match &raw.ftp {
                Some(ftp) => validate_ftp(ftp, active, source, key, env, issues).map(Connection::Ftp)?,
                None if active => {
                    issues.push(
                        source,
                        key("factoring.ftp"),
                        format!("required: {} takes batches by FTP", provider.name),
                    );
                    return None;
                }
                None => Connection::None,
            }
        }
        Transport::Api => {
            if raw.ftp.is_some() {
                issues.push(
                    source,
                    key("factoring.ftp"),
                    format!("{} takes batches by API: use [factoring.api], not [factoring.ftp]", provider.name),
                );
            }
            match &raw.api {
                Some(api) => {
                    validate_api(api, Some(provider), active, source, key, env, issues).map(Connection::Api)?
                }
                None if active => {
                    issues.push(
                        source,
                        key("factoring.api"),
                        format!("required: {} takes batches by API", provider.name),
                    );
                    return None;
                }
                None => Connection::None,
            }
        }
    };
    Some(Factoring {
        provider,
        active,
        schedule,
        block_on_declined_credit: raw.block_on_declined_credit.unwrap_or(true),
        block_on_unknown_credit: raw.block_on_unknown_credit.unwrap_or(false),
        max_batch_size,
        status_sync,
        customer_ids: raw.customer_ids.clone(),
        connection,
        email_to,
        remit_to: raw.remit_to.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string),
    })
}

#[expect(
    clippy::too_many_lines,
    reason = "one check per key of the FTP/SFTP block, in the order of the reference, collecting every problem"
)]
fn validate_ftp(
    raw: &RawFtp,
    active: bool,
    source: &str,
    key: &dyn Fn(&str) -> String,
    env: &Environment,
    issues: &mut Issues,
) -> Option<FtpSettings> {
    let before = issues.0.len();
    let protocol = match raw.protocol.as_deref().unwrap_or("ftp") {
        "ftp" => FtpProtocol::Ftp,
        "sftp" => FtpProtocol::Sftp,
        other => {
            issues.push(source, key("factoring.ftp.protocol"), format!("`{other}` is not ftp or sftp"));
            FtpProtocol::Ftp
        }
    };
    let tls = match (protocol, raw.tls.as_deref()) {
        (FtpProtocol::Sftp, Some(_)) => {
            issues.push(source, key("factoring.ftp.tls"), "applies to ftp only; sftp is encrypted by SSH");
            FtpTls::None
        }
        (FtpProtocol::Sftp, None) => FtpTls::None,
        (FtpProtocol::Ftp, None | Some("explicit")) => FtpTls::Explicit,
        (FtpProtocol::Ftp, Some("implicit")) => FtpTls::Implicit,
        (FtpProtocol::Ftp, Some("none")) => FtpTls::None,
        (FtpProtocol::Ftp, Some(other)) => {
            issues.push(source, key("factoring.ftp.tls"), format!("`{other}` is not explicit, implicit or none"));
            FtpTls::Explicit
        }
    };
    if protocol == FtpProtocol::Ftp && raw.host_key_sha256.is_some() {
        issues.push(source, key("factoring.ftp.host_key_sha256"), "applies to sftp only");
    }
    if protocol == FtpProtocol::Sftp && raw.host_key_sha256.is_none() && active {
        issues.push(
            source,
            key("factoring.ftp.host_key_sha256"),
            "required for sftp: the server's host key fingerprint",
        );
    }
    if let Some(Err(message)) = raw
        .host_key_sha256
        .as_deref()
        .filter(|_| protocol == FtpProtocol::Sftp)
        .map(crate::providers::sftp::parse_host_key_sha256)
    {
        issues.push(source, key("factoring.ftp.host_key_sha256"), message);
    }
    let host = raw.host.clone().unwrap_or_default();
    let username = raw.username.clone().unwrap_or_default();
    if active {
        if host.trim().is_empty() {
            issues.push(source, key("factoring.ftp.host"), "required");
        }
        if username.trim().is_empty() {
            issues.push(source, key("factoring.ftp.username"), "required");
        }
    }
    let password = if active {
        read_secret(
            SecretRef {
                file: raw.password_file.as_deref(),
                env_name: raw.password_env.as_deref(),
                file_key: &key("factoring.ftp.password_file"),
                env_key: &key("factoring.ftp.password_env"),
                required: true,
            },
            source,
            env,
            issues,
        )
    } else {
        None
    };
    let default_port = match (protocol, tls) {
        (FtpProtocol::Sftp, _) => 22,
        (FtpProtocol::Ftp, FtpTls::Implicit) => 990,
        (FtpProtocol::Ftp, _) => 21,
    };
    if issues.0.len() > before {
        return None;
    }
    Some(FtpSettings {
        protocol,
        host,
        port: raw.port.unwrap_or(default_port),
        username,
        password,
        directory: raw.directory.clone().unwrap_or_else(|| "/".to_string()),
        tls,
        host_key_sha256: raw.host_key_sha256.clone(),
    })
}

fn validate_api(
    raw: &RawApi,
    provider: Option<&Provider>,
    active: bool,
    source: &str,
    key: &dyn Fn(&str) -> String,
    env: &Environment,
    issues: &mut Issues,
) -> Option<ApiSettings> {
    let before = issues.0.len();
    let base_url = raw.base_url.clone().unwrap_or_default();
    if active && !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        issues.push(source, key("factoring.api.base_url"), "required: the provider's https:// address");
    }
    // Without a known provider nothing is required, but every secret that is named is still read.
    let needs = |c: ApiCredential| active && provider.is_some_and(|p| p.api_credentials.contains(&c));
    let provider_name = provider.map_or("the provider", |p| p.name);
    let secret =
        |file: &Option<PathBuf>, env_name: &Option<String>, name: &str, required: bool, issues: &mut Issues| {
            if !active {
                return None;
            }
            read_secret(
                SecretRef {
                    file: file.as_deref(),
                    env_name: env_name.as_deref(),
                    file_key: &key(&format!("factoring.api.{name}_file")),
                    env_key: &key(&format!("factoring.api.{name}_env")),
                    required,
                },
                source,
                env,
                issues,
            )
        };
    let up = needs(ApiCredential::UsernamePassword);
    if up && raw.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
        issues.push(source, key("factoring.api.username"), format!("required for {provider_name}"));
    }
    let password = secret(&raw.password_file, &raw.password_env, "password", up, issues);
    let subscription_key = secret(
        &raw.subscription_key_file,
        &raw.subscription_key_env,
        "subscription_key",
        needs(ApiCredential::SubscriptionKey),
        issues,
    );
    let api_key = secret(&raw.api_key_file, &raw.api_key_env, "api_key", needs(ApiCredential::ApiKey), issues);
    if needs(ApiCredential::ClientId) && raw.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
        issues.push(source, key("factoring.api.client_id"), format!("required for {provider_name}"));
    }
    let timeout = duration_setting(
        raw.timeout.as_deref(),
        Duration::from_secs(30),
        Duration::from_millis(100),
        source,
        &key("factoring.api.timeout"),
        issues,
    );
    if issues.0.len() > before {
        return None;
    }
    Some(ApiSettings {
        timeout,
        base_url,
        username: raw.username.clone(),
        password,
        subscription_key,
        api_key,
        client_id: raw.client_id.clone(),
    })
}

/// Subsidiary ids and invoice prefixes must be unique; a prefix that starts another (`A-` and
/// `A-1`) could produce the same invoice number from two subsidiaries, so that is refused too.
fn check_unique_subsidiaries(loaded: &Loaded, issues: &mut Issues) {
    let mut ids: BTreeMap<&str, &super::SourcedSubsidiary> = BTreeMap::new();
    for sourced in &loaded.subsidiaries {
        let Some(id) = sourced.raw.id.as_deref() else { continue };
        if let Some(first) = ids.get(id) {
            issues.push(
                sourced.source.display(),
                format!("{}id", sourced.key_prefix),
                format!("duplicate subsidiary id `{id}` (also in {})", first.source.display()),
            );
        } else {
            ids.insert(id, sourced);
        }
    }
    let prefixes: Vec<(&str, &super::SourcedSubsidiary)> = loaded
        .subsidiaries
        .iter()
        .filter_map(|s| s.raw.invoice_prefix.as_deref().filter(|p| !p.is_empty()).map(|p| (p, s)))
        .collect();
    let mut reported = BTreeSet::new();
    for (i, (a, sa)) in prefixes.iter().enumerate() {
        for (b, sb) in &prefixes[i + 1..] {
            if (a.starts_with(b) || b.starts_with(a)) && reported.insert((i, *b)) {
                issues.push(
                    sb.source.display(),
                    format!("{}invoice_prefix", sb.key_prefix),
                    format!(
                        "`{b}` clashes with `{a}` of subsidiary `{}` ({}): invoice prefixes must differ and neither may start the other",
                        sa.raw.id.as_deref().unwrap_or("?"),
                        sa.source.display()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("24").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1 day").is_err());
    }

    #[test]
    fn cron_needs_six_fields() {
        assert!(Schedule::parse("0 0 16 * * Mon-Fri").is_ok());
        assert!(Schedule::parse("0 16 * * Mon-Fri").is_err());
        assert!(Schedule::parse("0 0 25 * * *").is_err());
        assert!(Schedule::parse("0 0 16 * * Funday").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:[REDACTED]@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/f.db"), "sqlite://data/f.db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=pw"),
            "postgres://u@h/db?sslmode=require&password=[REDACTED]"
        );
    }
}
