//! The command line of docs/design.md §6. Each command loads the settings, calls the library and
//! formats what it returns, as text ([`output`]) or as its serialisable JSON; it prints to
//! stdout, logs go to stderr. Exit codes: 0 success, 1 operational
//! failure, 2 usage or configuration error.

pub mod json;
mod output;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Settings, process_environment};
use crate::credit::CustomerCheckError;
use crate::daemon::Reloads;
use crate::domain::LoadStatus;
use crate::intake::{IntakeError, import_load_file};
use crate::store::{LoadFilter, Store};

/// Command output to stdout, through [`emit`].
macro_rules! out {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => { emit(format_args!("{}\n", format_args!($($arg)*))) };
}

// After the macros, which they use.
mod money;
mod rework;

/// Writes command output to a locked stdout. A reader that went away (`factord loads list |
/// head`) is no failure: the rest of the output is dropped and the command finishes as it would
/// have, with its own exit code (no panic, unlike `print!`). Any other write error is logged.
pub fn emit(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush())
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::warn!(%error, "cannot write the command's output to stdout");
    }
}

/// One line to stderr; a closed stderr loses it, never the process.
pub fn err_line(text: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

#[derive(Debug, Parser)]
#[command(name = "factord", version, about = "Invoice factoring for trucking carriers, unattended")]
pub struct Cli {
    /// The main configuration file.
    #[arg(long, global = true, env = "FACTORD_CONFIG", default_value = "config/factord.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run,
    /// Validate the configuration; list every error with its file and key.
    CheckConfig,
    /// Create or upgrade the database schema.
    Migrate,
    /// Import, show and list loads.
    #[command(subcommand)]
    Loads(LoadsCommand),
    /// One invoicing pass: Released → Queued (or Invoiced for direct customers).
    Invoice {
        /// Only this subsidiary's loads.
        #[arg(long)]
        subsidiary: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Submit batches now.
    Submit {
        /// Only this subsidiary's Queued invoices.
        #[arg(long)]
        subsidiary: Option<String>,
        /// List what would go, and for every Queued load that would not, why; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these loads (comma-separated load numbers): ops picking. An unknown load refuses
        /// the command; one that cannot go (not Queued, held, another subsidiary) is refused with
        /// why.
        #[arg(long, value_delimiter = ',', value_name = "L1,L2")]
        loads: Vec<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every open exception, oldest first, with the command that resolves it.
    Exceptions {
        /// Only this subsidiary's loads.
        #[arg(long)]
        subsidiary: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Broker credit checks.
    #[command(subcommand)]
    Credit(CreditCommand),
    /// Process one purchase or payment report now.
    Ingest {
        /// The report: CSV or XLSX.
        file: PathBuf,
        /// The provider id whose report it is (e.g. capital_depot); its column names and status
        /// map apply.
        #[arg(long)]
        provider: String,
        /// `purchase` or `payment`; told by the columns when left out.
        #[arg(long)]
        kind: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Counts per subsidiary and status, exceptions, recent files.
    Status {
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ask API factors (OTR) for the status of the invoices they hold.
    ///
    /// Every Invoiced and Financed invoice of an API factor with a status API is looked up, and
    /// each answer applied through the provider's status map, as a purchase-report row would be.
    /// Exit 1 if a lookup failed.
    Sync {
        /// Only this subsidiary.
        #[arg(long)]
        subsidiary: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The factors' connections.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Every invoice's money: amount, advance, fee, reserve held and released, paid, chargeback,
    /// open balance and status, with totals (docs/money.md).
    Reconcile {
        /// Only this subsidiary's invoices.
        #[arg(long)]
        subsidiary: Option<String>,
        /// Only invoices dated on or after this day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Only invoices dated on or before this day (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV (plain decimals) instead of text.
        #[arg(long)]
        csv: bool,
    },
    /// Open invoices bucketed by days past their invoice date: 0-30, 31-60, 61-90, 90+.
    Aging {
        /// Only this subsidiary's invoices.
        #[arg(long)]
        subsidiary: Option<String>,
        /// `customer`: one line per customer instead of per invoice.
        #[arg(long, value_name = "customer")]
        by: Option<String>,
        /// Age as of this day (YYYY-MM-DD; default today, UTC).
        #[arg(long)]
        as_of: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Exports for accounting.
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Double-entry journal lines (date, account, debit, credit, invoice, load, source) of the
    /// money events dated within --from..--to (docs/money.md).
    Journal {
        /// The first day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// The last day (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        /// Only `csv`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only this subsidiary's invoices.
        #[arg(long)]
        subsidiary: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Check each subsidiary's connection without sending an invoice.
    ///
    /// Logs in, lists, writes and deletes a probe file, checks outbox folders are writable. One
    /// line per subsidiary; exit 1 if any failed.
    Test {
        /// Only this subsidiary.
        subsidiary: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LoadsCommand {
    /// Import loads from CSV or JSON files (same as dropping them into inbox/loads).
    Import {
        /// One or more load exports, CSV or JSON.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One load: status, exceptions, why it is waiting, documents, history.
    Show {
        /// The load number.
        load: String,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Loads, filtered by status and subsidiary.
    List(ListArgs),
    /// Send a load the factor rejected again: back to Queued with a rebuilt packet, resubmitted
    /// under the same invoice number by the next batch.
    ///
    /// Works for a rejection at submission (the load is Queued), in a purchase report or by
    /// status sync (the load is Invoiced). Exit 1 if the load has no open rejection.
    Retry {
        /// The load number.
        load: String,
        /// Why (written to the load's history).
        #[arg(long)]
        reason: String,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace or add a load's documents (PDF files, copied into documents/).
    ///
    /// --pod, --rc, --bol and --lumper replace the current one; --other adds (repeat it). A
    /// Queued load's packet is rebuilt at once; a load past Queued keeps the documents for its
    /// retry. A file that is not a readable PDF refuses the whole command (exit 1).
    Docs(DocsArgs),
    /// Hold a load: invoicing and submission skip it until it is released.
    Hold(ReworkArgs),
    /// Release a held load (held by ops, by a void, or by the factor).
    Release(ReworkArgs),
    /// Clear a load's money exceptions (ledger_mismatch, charged_back) once settled with the
    /// factor or the customer (docs/money.md). Exit 1 if it has neither.
    Settle(ReworkArgs),
    /// Enter a correction of an invoice's figures, each a signed amount added to its figure
    /// (docs/money.md "Adjustments"). With an advance, fee or reserve, the invariant amount =
    /// advance + fee + reserve held is checked again: it clears `ledger_mismatch` when it holds
    /// and raises it when it does not. Exit 1 if the load has no invoice.
    Adjust(AdjustArgs),
    /// Void a Queued or Invoiced load's invoice: the number is kept as void, never reused; the
    /// load goes back to Released and the next invoice pass issues a new number.
    Void(ReworkArgs),
}

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// The load number.
    pub load: String,
    /// A new proof of delivery.
    #[arg(long)]
    pub pod: Option<PathBuf>,
    /// A new rate confirmation.
    #[arg(long)]
    pub rc: Option<PathBuf>,
    /// A new bill of lading.
    #[arg(long)]
    pub bol: Option<PathBuf>,
    /// A new lumper receipt.
    #[arg(long)]
    pub lumper: Option<PathBuf>,
    /// Another document to add (repeatable).
    #[arg(long)]
    pub other: Vec<PathBuf>,
    /// Why (written to the load's history).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON (stable keys; see docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdjustArgs {
    /// The load number.
    pub load: String,
    /// Advance the factor paid, e.g. `1650.00` (negative to take back: `-12.50`).
    #[arg(long, allow_hyphen_values = true, value_name = "D")]
    pub advance: Option<String>,
    /// Factoring fee at purchase (from the receivable).
    #[arg(long, allow_hyphen_values = true, value_name = "D")]
    pub fee: Option<String>,
    /// Reserve held back by the factor.
    #[arg(long, allow_hyphen_values = true, value_name = "D")]
    pub reserve: Option<String>,
    /// Reserve the factor released (paid out).
    #[arg(long, allow_hyphen_values = true, value_name = "D")]
    pub reserve_released: Option<String>,
    /// Customer payment (to the factor; to the carrier for a direct or charged-back invoice).
    #[arg(long, allow_hyphen_values = true, value_name = "D")]
    pub paid: Option<String>,
    /// Chargeback (the factor sold the invoice back).
    #[arg(long, allow_hyphen_values = true, value_name = "D")]
    pub chargeback: Option<String>,
    /// The adjustment's date (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    pub date: Option<String>,
    /// Why (written to the load's history and the ledger).
    #[arg(long, required = true)]
    pub reason: String,
    /// Print JSON (stable keys; see docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReworkArgs {
    /// The load number.
    pub load: String,
    /// Why (written to the load's history).
    #[arg(long, required = true)]
    pub reason: String,
    /// Print JSON (stable keys; see docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only loads in this status (Delivered, Released, Queued, Invoiced, Financed, Completed).
    #[arg(long)]
    pub status: Option<LoadStatus>,
    /// Only this subsidiary's loads.
    #[arg(long)]
    pub subsidiary: Option<String>,
    /// At most this many loads.
    #[arg(long)]
    pub limit: Option<i64>,
    /// Print JSON (stable keys; see docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CreditCommand {
    /// Re-check customers with Released or Queued loads whose last check is older than
    /// credit.max_age; print each customer checked and the result.
    Refresh {
        /// Re-check every such customer, however recent its last check.
        #[arg(long)]
        force: bool,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check one customer now and print the result.
    Check {
        /// The customer id from the TMS.
        customer: String,
        /// Check with this subsidiary's provider (default: the providers of the subsidiaries
        /// the customer has loads in).
        #[arg(long)]
        subsidiary: Option<String>,
        /// Print JSON (stable keys; see docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Why a command failed, which decides its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Config(_) | CommandError::Usage(_) => 2,
            CommandError::Failed(_) => 1,
        }
    }
}

impl From<crate::store::StoreError> for CommandError {
    fn from(error: crate::store::StoreError) -> Self {
        CommandError::Failed(error.to_string())
    }
}

/// Runs a parsed command line. `shutdown` stops `run`; `reloads.signal` makes it reload its
/// configuration.
#[expect(clippy::too_many_lines, reason = "one arm per command, each a call into the library and its formatting")]
pub async fn execute(cli: Cli, shutdown: CancellationToken, reloads: Reloads) -> Result<(), CommandError> {
    let env = process_environment();
    let settings = match Settings::load(&cli.config, &env) {
        Ok(settings) => settings,
        Err(error) => {
            crate::telemetry::init_fallback();
            return Err(error.into());
        }
    };
    crate::telemetry::init(&settings.log);
    match cli.command {
        Command::CheckConfig => {
            outln!("{}: configuration is valid ({} subsidiaries)", cli.config.display(), settings.subsidiaries.len());
            for s in &settings.subsidiaries {
                let provider = s.factoring.as_ref().map_or("none".to_string(), |f| {
                    format!("{}{}", f.provider.id, if f.active { "" } else { " (inactive)" })
                });
                outln!("  {}: {} [{}], provider {}", s.id, s.name, s.invoicing_method.as_str(), provider);
            }
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&settings).await?;
            outln!("database migrated ({})", store.backend());
            Ok(())
        }
        Command::Run => run(settings, shutdown, reloads).await,
        Command::Loads(LoadsCommand::Import { files, json }) => import(&settings, &files, json).await,
        Command::Loads(LoadsCommand::Show { load, json }) => {
            let store = open_store(&settings).await?;
            let show = crate::loads::show_load(&store, &settings, &load)
                .await?
                .ok_or_else(|| CommandError::Failed(format!("load {load} not found")))?;
            if json {
                print_json(&show.json())
            } else {
                out!("{}", output::load_show_text(&show, &settings));
                Ok(())
            }
        }
        Command::Loads(LoadsCommand::List(args)) => {
            let store = open_store(&settings).await?;
            let filter = LoadFilter { status: args.status, subsidiary: args.subsidiary, limit: args.limit };
            let loads = store.list_loads(&filter).await?;
            if args.json {
                print_json(&crate::loads::list_json(&loads))
            } else {
                out!("{}", output::list_text(&loads));
                Ok(())
            }
        }
        Command::Status { json } => {
            let store = open_store(&settings).await?;
            let status = crate::status::Status::gather(&store, &settings).await?;
            if json {
                print_json(&status)
            } else {
                out!("{}", output::status_text(&status));
                Ok(())
            }
        }
        Command::Invoice { subsidiary, json } => invoice(&settings, subsidiary.as_deref(), json, &shutdown).await,
        Command::Submit { subsidiary, dry_run, loads, json } if !loads.is_empty() => {
            rework::submit_picked(&settings, &loads, subsidiary.as_deref(), dry_run, json).await
        }
        Command::Submit { subsidiary, dry_run, json, .. } => {
            submit(&settings, subsidiary.as_deref(), dry_run, json).await
        }
        Command::Exceptions { subsidiary, json } => rework::exceptions(&settings, subsidiary.as_deref(), json).await,
        Command::Loads(LoadsCommand::Hold(a)) => {
            rework::load_rework(&settings, rework::LoadRework::Hold, &a.load, &a.reason, a.json).await
        }
        Command::Loads(LoadsCommand::Release(a)) => {
            rework::load_rework(&settings, rework::LoadRework::Release, &a.load, &a.reason, a.json).await
        }
        Command::Loads(LoadsCommand::Settle(a)) => {
            rework::load_rework(&settings, rework::LoadRework::Settle, &a.load, &a.reason, a.json).await
        }
        Command::Loads(LoadsCommand::Adjust(a)) => rework::adjust(&settings, &a).await,
        Command::Loads(LoadsCommand::Void(a)) => {
            rework::load_rework(&settings, rework::LoadRework::Void, &a.load, &a.reason, a.json).await
        }
        Command::Sync { subsidiary, json } => sync(&settings, subsidiary.as_deref(), json).await,
        Command::Loads(LoadsCommand::Retry { load, reason, json }) => {
            let store = open_store(&settings).await?;
            let report = crate::rework_docs::retry_load(&store, &settings, &load, &reason).await?;
            if json {
                print_json(&report)
            } else {
                out!("{}", output::retry_text(&report));
                Ok(())
            }
        }
        Command::Loads(LoadsCommand::Docs(args)) => docs(&settings, args).await,
        Command::Credit(CreditCommand::Refresh { force, json }) => {
            credit_refresh(&settings, force, json, &shutdown).await
        }
        Command::Credit(CreditCommand::Check { customer, subsidiary, json }) => {
            credit_check(&settings, &customer, subsidiary.as_deref(), json).await
        }
        Command::Ingest { file, provider, kind, json } => {
            ingest(&settings, &file, &provider, kind.as_deref(), json).await
        }
        Command::Providers(ProvidersCommand::Test { subsidiary, json }) => {
            providers_test(&settings, subsidiary.as_deref(), json).await
        }
        Command::Reconcile { subsidiary, from, to, json, csv } => {
            let format = match (json, csv) {
                (true, _) => money::Format::Json,
                (_, true) => money::Format::Csv,
                _ => money::Format::Text,
            };
            money::reconcile(&settings, subsidiary.as_deref(), (from.as_deref(), to.as_deref()), format).await
        }
        Command::Aging { subsidiary, by, as_of, json } => {
            money::aging(&settings, subsidiary.as_deref(), by.as_deref(), as_of.as_deref(), json).await
        }
        Command::Export(ExportCommand::Journal { from, to, format, subsidiary }) => {
            money::journal(&settings, subsidiary.as_deref(), (&from, &to), &format).await
        }
    }
}

/// `factord providers test [SUBSIDIARY] [--json]`: exit 1 if any connection failed.
async fn providers_test(settings: &Settings, subsidiary: Option<&str>, json: bool) -> Result<(), CommandError> {
    if let Some(id) = subsidiary.filter(|id| settings.subsidiary(id).is_none()) {
        return Err(CommandError::Usage(format!("subsidiary `{id}` is not configured")));
    }
    let results = crate::providers::probe::test_connections(settings, subsidiary).await;
    if json {
        print_json(&results)?;
    } else {
        out!("{}", output::probe_text(&results));
    }
    match results.iter().filter(|r| !r.ok).count() {
        0 => Ok(()),
        failed => Err(CommandError::Failed(format!("{failed} connection(s) failed (see above)"))),
    }
}

/// `factord loads docs LOAD --pod F ...`.
async fn docs(settings: &Settings, args: DocsArgs) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    let files = crate::rework_docs::DocumentFiles {
        pod: args.pod,
        rate_confirmation: args.rc,
        bol: args.bol,
        lumper: args.lumper,
        other: args.other,
    };
    let reason = args.reason.as_deref().unwrap_or("no reason given");
    let report = crate::rework_docs::attach_documents(&store, settings, &args.load, &files, reason).await?;
    if args.json {
        print_json(&report)
    } else {
        out!("{}", output::docs_text(&report));
        Ok(())
    }
}

impl From<crate::rework_docs::ReworkCommandError> for CommandError {
    fn from(error: crate::rework_docs::ReworkCommandError) -> Self {
        match error {
            crate::rework_docs::ReworkCommandError::Usage(message) => CommandError::Usage(message),
            other => CommandError::Failed(other.to_string()),
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CommandError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CommandError::Failed(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// `factord ingest FILE --provider P [--kind K]`: one report, now. A refused file exits 1.
async fn ingest(
    settings: &Settings,
    file: &std::path::Path,
    provider: &str,
    kind: Option<&str>,
    json: bool,
) -> Result<(), CommandError> {
    if crate::providers::find_provider(provider).is_none() {
        let known: Vec<&str> = crate::providers::PROVIDERS.iter().map(|p| p.id).collect();
        return Err(CommandError::Usage(format!("unknown provider `{provider}` (known: {})", known.join(", "))));
    }
    let kind = kind.map(str::parse::<crate::reports::ReportKind>).transpose().map_err(CommandError::Usage)?;
    let store = open_store(settings).await?;
    // The result text is stored with the file's record; it is not kept here as well.
    let mut discard = crate::reports::ResultOut::Discard;
    let summary = crate::reports::ingest_file_to(&store, settings, file, provider, kind, &mut discard)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if json {
        print_json(&json::IngestJson::of(&summary))?;
    } else {
        out!("{}", output::ingest_text(&summary));
    }
    match &summary.refused {
        Some(reason) => Err(CommandError::Failed(format!("{}: refused, nothing applied: {reason}", file.display()))),
        None => Ok(()),
    }
}

/// Opens the database and brings its schema up to date.
async fn open_store(settings: &Settings) -> Result<Store, CommandError> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    Ok(store)
}

async fn run(settings: Settings, shutdown: CancellationToken, reloads: Reloads) -> Result<(), CommandError> {
    // On SQLite one daemon only: the lock is taken before anything else touches the database.
    let _lock = match crate::store::sqlite_file(&settings.database.url) {
        Some(file) => Some(crate::daemon::DaemonLock::acquire(&file).map_err(|e| CommandError::Failed(e.to_string()))?),
        None => None,
    };
    let store = open_store(&settings).await?;
    crate::daemon::run_with_reloads(Arc::new(settings), store, shutdown, reloads)
        .await
        .map_err(|e| CommandError::Failed(format!("{e:#}")))
}

async fn invoice(
    settings: &Settings,
    subsidiary: Option<&str>,
    json: bool,
    shutdown: &CancellationToken,
) -> Result<(), CommandError> {
    if let Some(id) = subsidiary.filter(|id| settings.subsidiary(id).is_none()) {
        return Err(CommandError::Usage(format!("subsidiary `{id}` is not configured")));
    }
    let store = open_store(settings).await?;
    let report = crate::invoicing::run_once(&store, settings, subsidiary, shutdown)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if json {
        print_json(&report)?;
    } else {
        out!("{}", output::invoice_text(&report));
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Failed(format!("{} invoice(s) could not be made (see above)", report.failed.len())))
    }
}

async fn submit(settings: &Settings, subsidiary: Option<&str>, dry_run: bool, json: bool) -> Result<(), CommandError> {
    if let Some(id) = subsidiary.filter(|id| settings.subsidiary(id).is_none()) {
        return Err(CommandError::Usage(format!("subsidiary `{id}` is not configured")));
    }
    let store = open_store(settings).await?;
    let report = crate::submit::run_once(&store, settings, subsidiary, dry_run, "command")
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if json {
        print_json(&report)?;
    } else {
        out!("{}", output::submit_text(&report, dry_run));
    }
    // A crashed batch that reconciliation found undelivered is not this run's failure: its
    // loads went in this run's batches.
    let failed = report.batches.iter().filter(|b| b.status == "failed" && !b.reconciled).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(CommandError::Failed(format!("{failed} batch(es) were not delivered (see above for what happens next)")))
    }
}

/// `factord sync [--subsidiary ID] [--json]`: status sync now. A failed lookup exits 1.
async fn sync(settings: &Settings, subsidiary: Option<&str>, json: bool) -> Result<(), CommandError> {
    if let Some(id) = subsidiary.filter(|id| settings.subsidiary(id).is_none()) {
        return Err(CommandError::Usage(format!("subsidiary `{id}` is not configured")));
    }
    let store = open_store(settings).await?;
    let report = crate::sync::run_once(&store, settings, subsidiary).await?;
    if json {
        print_json(&report)?;
    } else {
        out!("{}", output::sync_text(&report));
    }
    if report.any_failed() {
        Err(CommandError::Failed("some invoices could not be asked about (see above); the next sync asks again".into()))
    } else {
        Ok(())
    }
}

async fn credit_refresh(
    settings: &Settings,
    force: bool,
    json: bool,
    shutdown: &CancellationToken,
) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    let report = crate::credit::refresh(&store, settings, force, shutdown).await?;
    if json {
        print_json(&report)?;
    } else {
        out!("{}", output::credit_refresh_text(&report));
    }
    match report.failed() {
        0 => Ok(()),
        failed => Err(CommandError::Failed(format!(
            "{failed} credit check(s) failed (see above); the next refresh checks them again"
        ))),
    }
}

async fn credit_check(
    settings: &Settings,
    customer_id: &str,
    subsidiary: Option<&str>,
    json: bool,
) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    let checks =
        crate::credit::check_customer(&store, settings, customer_id, subsidiary).await.map_err(|e| match e {
            CustomerCheckError::UnknownCustomer(_) => CommandError::Failed(e.to_string()),
            CustomerCheckError::NothingToAsk(reason) => CommandError::Usage(reason),
            CustomerCheckError::Store(error) => error.into(),
        })?;
    if json {
        print_json(&checks.checks)?;
    } else {
        out!("{}", output::credit_check_text(&checks));
    }
    match checks.failed() {
        0 => Ok(()),
        failed => Err(CommandError::Failed(format!("{failed} credit check(s) failed"))),
    }
}

async fn import(settings: &Settings, files: &[PathBuf], json: bool) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    let mut reports = Vec::new();
    let mut trouble = false;
    for file in files {
        let bar = progress_bar(file);
        let tick = |done: usize| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        };
        let result = import_load_file(&store, settings, file, Some(&tick)).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(report) => {
                trouble |= report.counts.rejected > 0;
                if !json {
                    out!("{}", output::import_text(&report));
                }
                reports.push(report);
            }
            Err(error @ (IntakeError::File { .. } | IntakeError::Io { .. })) => {
                trouble = true;
                err_line(format_args!("error: {error}"));
            }
            Err(IntakeError::Store(error)) => return Err(error.into()),
        }
    }
    if json {
        print_json(&reports)?;
    }
    if trouble {
        Err(CommandError::Failed("some rows or files were not imported (see above)".to_string()))
    } else {
        Ok(())
    }
}

/// A progress bar for a large file on a terminal; none in a pipe or under systemd.
fn progress_bar(file: &std::path::Path) -> Option<indicatif::ProgressBar> {
    const LARGE_FILE_BYTES: u64 = 256 * 1024;
    let size = std::fs::metadata(file).ok()?.len();
    if !std::io::stderr().is_terminal() || size < LARGE_FILE_BYTES {
        return None;
    }
    let lines = std::fs::read(file).ok()?.iter().filter(|b| **b == b'\n').count() as u64;
    let bar = indicatif::ProgressBar::new(lines.saturating_sub(1));
    bar.set_message(file.display().to_string());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({eta})") {
        bar.set_style(style);
    }
    Some(bar)
}
