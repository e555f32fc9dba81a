//! `Settings::load(path, &env)` on real files (docs/design.md §10, docs/reliability.md rules 10 and 12): the
//! environment beats the file, every problem is reported at once with its file (or
//! environment variable) and key, subsidiaries may live in `config/subsidiaries/*.toml`, and
//! no secret shows in `Debug`.

use std::path::{Path, PathBuf};

use factord::config::{ConfigError, ConfigIssue, Connection, Environment, FtpTls, LogFormat, Settings};
use secrecy::ExposeSecret;

/// A temp folder with `config/factord.toml` holding `body` under a `[database]` section that
/// points at an SQLite file inside the folder (unless `body` has its own `[database]`).
struct ConfigDir {
    dir: tempfile::TempDir,
}

impl ConfigDir {
    fn new() -> ConfigDir {
        ConfigDir { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path("data/factord.db").display())
    }

    /// Writes `content` to `relative` (creating folders) and returns its path.
    fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Writes the main file exactly as given.
    fn main_raw(&self, text: &str) -> PathBuf {
        self.write("config/factord.toml", text)
    }

    /// Writes the main file: a `[database]` section on this folder's SQLite file, then `body`.
    fn main(&self, body: &str) -> PathBuf {
        self.main_raw(&format!("[database]\nurl = \"{}\"\n\n{body}\n", self.sqlite_url()))
    }

    fn main_path(&self) -> PathBuf {
        self.path("config/factord.toml")
    }

    /// How `Settings::load` names a file in its issues.
    fn source(&self, relative: &str) -> String {
        self.path(relative).display().to_string()
    }

    fn load(&self, env: &Environment) -> Result<Settings, ConfigError> {
        Settings::load(&self.main_path(), env)
    }

    fn load_ok(&self, env: &Environment) -> Settings {
        match self.load(env) {
            Ok(settings) => settings,
            Err(error) => panic!("config should be valid, got:\n{error}"),
        }
    }

    fn load_err(&self, env: &Environment) -> Vec<ConfigIssue> {
        match self.load(env) {
            Ok(settings) => panic!("config should be refused, got {settings:#?}"),
            Err(error) => {
                assert!(!error.issues.is_empty(), "a ConfigError must name at least one issue");
                error.issues
            }
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> Environment {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn no_env() -> Environment {
    Environment::new()
}

fn listing(issues: &[ConfigIssue]) -> String {
    issues.iter().map(|i| format!("  source={:?} key={:?} message={:?}\n", i.source, i.key, i.message)).collect()
}

/// The issue with exactly this source and key; fails listing every issue otherwise.
fn issue<'a>(issues: &'a [ConfigIssue], source: &str, key: &str) -> &'a ConfigIssue {
    issues
        .iter()
        .find(|i| i.source == source && i.key == key)
        .unwrap_or_else(|| panic!("no issue with source {source:?} and key {key:?}; issues were:\n{}", listing(issues)))
}

/// A complete `[[subsidiary]]` in the main file, factored by the manual provider Capital
/// Depot (no credentials needed). `extra` goes after the top-level keys; `factoring` replaces
/// the `[subsidiary.factoring]` section when given.
fn subsidiary(id: &str, prefix: &str, extra: &str, factoring: Option<&str>) -> String {
    let factoring = factoring.map(str::to_string).unwrap_or_else(|| {
        "[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 0 16 * * Mon-Fri\"\n".to_string()
    });
    format!(
        r#"
[[subsidiary]]
id = "{id}"
name = "{id} LLC"
address = "1 Test Rd, Dallas, TX 75201"
timezone = "America/Chicago"
invoice_prefix = "{prefix}"
noa = "Pay the factor."
{extra}
{factoring}
"#
    )
}

/// The same as a file of its own (`config/subsidiaries/*.toml`): top-level keys and a
/// `[factoring]` section.
fn subsidiary_file(id: &str, prefix: &str, extra: &str) -> String {
    format!(
        r#"id = "{id}"
name = "{id} LLC"
address = "9 Other Ave, Phoenix, AZ 85016"
timezone = "America/Phoenix"
invoice_prefix = "{prefix}"
noa = "Pay the factor."
{extra}

[factoring]
provider = "capital_depot"
schedule = "0 0 16 * * Mon-Fri"
"#
    )
}

// ---------------------------------------------------------------------------------------------
// Layering: defaults, file, environment.

#[test]
fn environment_beats_the_file() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\nlevel = \"info\"\nformat = \"pretty\"\n");
    let file_only = cfg.load_ok(&no_env());
    assert_eq!(file_only.log.level, "info");
    assert_eq!(file_only.database.url, cfg.sqlite_url());
    assert_eq!(file_only.database.max_connections, 8, "built-in default");

    let other_db = format!("sqlite://{}", cfg.path("elsewhere/other.db").display());
    let settings = cfg.load_ok(&env(&[
        ("FACTORD__LOG__LEVEL", "debug"),
        ("FACTORD__LOG__FORMAT", "json"),
        ("FACTORD__DATABASE__URL", &other_db),
        ("FACTORD__DATABASE__MAX_CONNECTIONS", "3"),
        // Not ours: ignored.
        ("FACTORDX__LOG__LEVEL", "error"),
        ("LOG__LEVEL", "error"),
    ]));
    assert_eq!(settings.log.level, "debug");
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.database.url, other_db);
    assert_eq!(settings.database.max_connections, 3, "a number given as text in the environment");
}

#[test]
fn environment_sets_a_section_the_file_does_not_have() {
    let cfg = ConfigDir::new();
    cfg.main("");
    let settings = cfg.load_ok(&env(&[("FACTORD__INTAKE__QUIET_PERIOD", "5s"), ("FACTORD__LOG__LEVEL", "warn")]));
    assert_eq!(settings.intake.quiet_period, std::time::Duration::from_secs(5));
    assert_eq!(settings.log.level, "warn");
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\nlevel = \"info\"\n");
    let issues = cfg.load_err(&env(&[("FACTORD__DATABASE__URL", "mysql://u@h/db")]));
    issue(&issues, "environment variable FACTORD__DATABASE__URL", "database.url");
}

/// A number that does not parse, set from the environment, must be reported against the
/// variable and its key like any other problem.
#[test]
fn an_unparsable_number_from_the_environment_names_the_variable_and_key() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\nlevel = \"info\"\n");
    let issues = cfg.load_err(&env(&[("FACTORD__DATABASE__MAX_CONNECTIONS", "lots")]));
    issue(&issues, "environment variable FACTORD__DATABASE__MAX_CONNECTIONS", "database.max_connections");
}

// ---------------------------------------------------------------------------------------------
// Every problem, all at once.

#[test]
#[expect(clippy::too_many_lines, reason = "one config with every problem, then every message checked")]
fn every_problem_is_reported_at_once_with_its_file_and_key() {
    let cfg = ConfigDir::new();
    let missing_password = cfg.path("credentials/does-not-exist");
    let mut body = String::from(
        r#"
[log]
level = "info"
colour = "x"

[credit]
refresh_schedule = "0 0 25 * * *"

[provider.nope.reports]
delimiter = ";"
"#,
    );
    // One problem per subsidiary, so that each is independent of the others.
    body += &subsidiary(
        "bad-provider",
        "BP-",
        "",
        Some("[subsidiary.factoring]\nprovider = \"nope\"\nschedule = \"0 0 16 * * Mon-Fri\"\n"),
    );
    body += &subsidiary(
        "five-field-cron",
        "CF-",
        "",
        Some("[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 16 * * Mon-Fri\"\n"),
    );
    body += &subsidiary("bad-zone", "TZ-", "", None).replace("America/Chicago", "Mars/Olympus_Mons");
    body += &subsidiary("no-noa", "NN-", "", None).replace("noa = \"Pay the factor.\"", "");
    body += &subsidiary("no-merge", "NM-", "automerge = false", None);
    body += &subsidiary("dup", "DU-", "", None);
    body += &subsidiary("prefix-a", "A-", "", None);
    body += &subsidiary("prefix-b", "A-1", "", None);
    body += &subsidiary(
        "ftp-no-file",
        "FN-",
        "",
        Some(&format!(
            "[subsidiary.factoring]\nprovider = \"triumph\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\npassword_file = \"{}\"\n",
            missing_password.display()
        )),
    );
    body += &subsidiary(
        "ftp-no-env",
        "FE-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"winfactor\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\npassword_env = \"FACTORD_TEST_UNSET_PASSWORD\"\n",
        ),
    );
    body += &subsidiary(
        "ftp-given-api",
        "FA-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"rts\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\npassword_env = \"RTS_PASSWORD\"\n\
             [subsidiary.factoring.api]\nbase_url = \"https://api.example.com\"\n",
        ),
    );
    body += &subsidiary(
        "manual-given-ftp",
        "MF-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"wex_fleetone\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\n",
        ),
    );
    body += &subsidiary(
        "sftp-no-key",
        "SF-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"compass\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nprotocol = \"sftp\"\nhost = \"sftp.example.com\"\nusername = \"acme\"\npassword_env = \"RTS_PASSWORD\"\n",
        ),
    );
    cfg.main(&body);
    cfg.write("config/subsidiaries/x.toml", &subsidiary_file("dup", "DX-", ""));
    cfg.write("config/subsidiaries/y.toml", &subsidiary_file("extra-key", "YK-", "colour = \"red\""));
    cfg.write("config/subsidiaries/z.toml", "id = \"broken\"\nname = \"unterminated\n");

    let issues = cfg.load_err(&env(&[("FACTORD__CREDIT__COLOUR", "blue"), ("RTS_PASSWORD", "rts-pass")]));

    let main = cfg.source("config/factord.toml");
    let expected: Vec<(String, &str)> = vec![
        (main.clone(), "log.colour"),
        ("environment variable FACTORD__CREDIT__COLOUR".to_string(), "credit.colour"),
        (main.clone(), "credit.refresh_schedule"),
        (main.clone(), "provider.nope"),
        (main.clone(), "subsidiary[bad-provider].factoring.provider"),
        (main.clone(), "subsidiary[five-field-cron].factoring.schedule"),
        (main.clone(), "subsidiary[bad-zone].timezone"),
        (main.clone(), "subsidiary[no-noa].noa"),
        (main.clone(), "subsidiary[no-merge].automerge"),
        (cfg.source("config/subsidiaries/x.toml"), "id"),
        (main.clone(), "subsidiary[prefix-b].invoice_prefix"),
        (main.clone(), "subsidiary[ftp-no-file].factoring.ftp.password_file"),
        (main.clone(), "subsidiary[ftp-no-env].factoring.ftp.password_env"),
        (main.clone(), "subsidiary[ftp-given-api].factoring.api"),
        (main.clone(), "subsidiary[manual-given-ftp].factoring.ftp"),
        (main.clone(), "subsidiary[sftp-no-key].factoring.ftp.host_key_sha256"),
        (cfg.source("config/subsidiaries/y.toml"), "colour"),
        (cfg.source("config/subsidiaries/z.toml"), ""),
    ];
    for (source, key) in &expected {
        issue(&issues, source, key);
    }
    let mut got: Vec<(String, String)> = issues.iter().map(|i| (i.source.clone(), i.key.clone())).collect();
    let mut want: Vec<(String, String)> = expected.iter().map(|(s, k)| (s.clone(), k.to_string())).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "exactly the planted problems, each once; issues were:\n{}", listing(&issues));
    for i in &issues {
        assert!(!i.message.trim().is_empty(), "every issue says what is wrong: {i:?}");
    }
}

#[test]
fn unknown_key_in_the_main_file() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\nlevel = \"info\"\ncolour = \"x\"\n");
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &cfg.source("config/factord.toml"), "log.colour");
    assert!(found.message.contains("unknown"), "{found:?}");
    assert_eq!(issues.len(), 1, "{}", listing(&issues));
}

#[test]
fn unknown_key_set_by_the_environment_names_the_variable() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\nlevel = \"info\"\n");
    let issues = cfg.load_err(&env(&[("FACTORD__LOG__COLOUR", "blue")]));
    issue(&issues, "environment variable FACTORD__LOG__COLOUR", "log.colour");
    assert_eq!(issues.len(), 1, "the file is not blamed: {}", listing(&issues));
}

/// A misspelt section in a variable name (`LOGS` for `LOG`) is the variable's fault, not the
/// file's: the file does not even have that section.
#[test]
fn unknown_section_set_by_the_environment_names_the_variable() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\nlevel = \"info\"\n");
    let issues = cfg.load_err(&env(&[("FACTORD__LOGS__LEVEL", "debug")]));
    assert!(
        issues.iter().all(|i| i.source == "environment variable FACTORD__LOGS__LEVEL"),
        "the unknown section must be blamed on the variable, not on the file; issues were:\n{}",
        listing(&issues)
    );
    assert!(issues.iter().all(|i| i.key.starts_with("logs")), "{}", listing(&issues));
}

#[test]
fn unknown_provider_id() {
    let cfg = ConfigDir::new();
    cfg.main(&subsidiary(
        "acme-east",
        "AE-",
        "",
        Some("[subsidiary.factoring]\nprovider = \"acme_factoring\"\nschedule = \"0 0 16 * * Mon-Fri\"\n"),
    ));
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &cfg.source("config/factord.toml"), "subsidiary[acme-east].factoring.provider");
    assert!(found.message.contains("acme_factoring"), "{found:?}");
    assert!(found.message.contains("triumph"), "the message lists the known ids: {found:?}");

    let cfg = ConfigDir::new();
    cfg.main("[provider.acme_factoring.reports]\nencoding = \"utf-8\"\n");
    let issues = cfg.load_err(&no_env());
    issue(&issues, &cfg.source("config/factord.toml"), "provider.acme_factoring");
}

/// An unknown or missing provider is one problem among others: the schedule, status sync,
/// batch size and the connection blocks given are still checked in the same run, as are the
/// keys of a `[provider.<id>]` section with an unknown id.
#[test]
fn an_unknown_or_missing_provider_does_not_stop_the_other_keys_being_checked() {
    let cfg = ConfigDir::new();
    let missing_password = cfg.path("credentials/does-not-exist");
    let mut body = String::from(
        "[provider.nope.reports]\nencoding = \"latin9\"\n[provider.nope.statuses]\nsettled = [\"Done\"]\n",
    );
    body += &subsidiary(
        "unknown-provider",
        "UP-",
        "",
        Some(&format!(
            "[subsidiary.factoring]\nprovider = \"acme_factoring\"\nschedule = \"0 16 * * Mon-Fri\"\n\
             status_sync = \"every hour\"\nmax_batch_size = 0\n\
             [subsidiary.factoring.ftp]\ntls = \"sometimes\"\nhost = \"ftp.example.com\"\nusername = \"acme\"\n\
             password_file = \"{}\"\n",
            missing_password.display()
        )),
    );
    body += &subsidiary(
        "no-provider",
        "NP-",
        "",
        Some(
            "[subsidiary.factoring]\n\
             [subsidiary.factoring.api]\nbase_url = \"ftp://api.example.com\"\ntimeout = \"soon\"\n\
             api_key_env = \"FACTORD_TEST_UNSET_KEY\"\n",
        ),
    );
    cfg.main(&body);
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    let expected = [
        "provider.nope",
        "provider.nope.reports.encoding",
        "provider.nope.statuses.settled",
        "subsidiary[unknown-provider].factoring.provider",
        "subsidiary[unknown-provider].factoring.schedule",
        "subsidiary[unknown-provider].factoring.status_sync",
        "subsidiary[unknown-provider].factoring.max_batch_size",
        "subsidiary[unknown-provider].factoring.ftp.tls",
        "subsidiary[unknown-provider].factoring.ftp.password_file",
        "subsidiary[no-provider].factoring.provider",
        "subsidiary[no-provider].factoring.schedule",
        "subsidiary[no-provider].factoring.api.base_url",
        "subsidiary[no-provider].factoring.api.timeout",
        "subsidiary[no-provider].factoring.api.api_key_env",
    ];
    let mut got: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    let mut want = expected.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "every problem, each once; issues were:\n{}", listing(&issues));
    for key in expected {
        let found = issue(&issues, &main, key);
        assert!(!found.message.trim().is_empty(), "{found:?}");
    }
    let unknown = issue(&issues, &main, "subsidiary[unknown-provider].factoring.provider");
    assert!(unknown.message.contains("acme_factoring") && unknown.message.contains("triumph"), "{unknown:?}");
    let size = issue(&issues, &main, "subsidiary[unknown-provider].factoring.max_batch_size");
    assert!(size.message.contains("at least 1"), "{size:?}");
    let password = issue(&issues, &main, "subsidiary[unknown-provider].factoring.ftp.password_file");
    assert!(password.message.contains("does-not-exist"), "names the file: {password:?}");
    let key_env = issue(&issues, &main, "subsidiary[no-provider].factoring.api.api_key_env");
    assert!(key_env.message.contains("FACTORD_TEST_UNSET_KEY"), "names the variable: {key_env:?}");
}

#[test]
fn a_status_word_under_two_outcomes_or_an_unknown_outcome_is_refused() {
    let cfg = ConfigDir::new();
    cfg.main(
        "[provider.otr.statuses]\npurchased = [\"Funded\", \"Approved\"]\nheld = [\" funded \"]\nfunded = [\"Bought\"]\n\
         paid = [\"  \"]\n",
    );
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    let twice = issue(&issues, &main, "provider.otr.statuses.purchased");
    assert!(twice.message.contains("`Funded`") && twice.message.contains("statuses.held"), "{twice:?}");
    let unknown = issue(&issues, &main, "provider.otr.statuses.funded");
    assert!(unknown.message.contains("no_change"), "lists the outcomes: {unknown:?}");
    issue(&issues, &main, "provider.otr.statuses.paid");
    assert_eq!(issues.len(), 3, "{}", listing(&issues));

    // A shipped word given another outcome is an override, not a conflict.
    let cfg = ConfigDir::new();
    cfg.main("[provider.otr.statuses]\nheld = [\"Pending\"]\nno_change = [\"Approved\"]\n");
    let settings = cfg.load_ok(&no_env());
    let map = settings.status_map("otr");
    use factord::providers::statuses::StatusOutcome;
    assert_eq!(map.lookup("pending"), Some(StatusOutcome::Held));
    assert_eq!(map.lookup("Approved"), Some(StatusOutcome::NoChange));
    assert_eq!(map.lookup("Advance Paid"), Some(StatusOutcome::Purchased));
}

#[test]
fn unparsable_cron_expressions() {
    let cfg = ConfigDir::new();
    let mut body = String::from("[credit]\nrefresh_schedule = \"0 * * * *\"\n");
    body += &subsidiary(
        "acme-east",
        "AE-",
        "",
        Some("[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 0 16 * * Funday\"\n"),
    );
    cfg.main(&body);
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    let five = issue(&issues, &main, "credit.refresh_schedule");
    assert!(five.message.contains("6"), "says six fields are expected: {five:?}");
    issue(&issues, &main, "subsidiary[acme-east].factoring.schedule");
    assert_eq!(issues.len(), 2, "{}", listing(&issues));
}

#[test]
fn unknown_time_zone() {
    let cfg = ConfigDir::new();
    cfg.main(&subsidiary("acme-east", "AE-", "", None).replace("America/Chicago", "America/Gotham"));
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &cfg.source("config/factord.toml"), "subsidiary[acme-east].timezone");
    assert!(found.message.contains("America/Gotham"), "{found:?}");
}

#[test]
fn factoring_needs_a_notice_of_assignment_and_automerge() {
    let cfg = ConfigDir::new();
    let mut body = subsidiary("no-noa", "NN-", "", None).replace("noa = \"Pay the factor.\"", "noa = \"   \"");
    body += &subsidiary("no-merge", "NM-", "automerge = false", None);
    // Direct invoicing needs neither.
    body += &subsidiary("direct", "DI-", "invoicing_method = \"direct\"\nautomerge = false", Some(""))
        .replace("noa = \"Pay the factor.\"", "");
    // A direct subsidiary that factors one customer needs both again.
    body += &subsidiary(
        "direct-but-one",
        "DB-",
        "invoicing_method = \"direct\"\ncustomer_overrides = { \"CUST-9\" = \"factoring\" }",
        None,
    )
    .replace("noa = \"Pay the factor.\"", "");
    cfg.main(&body);
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    issue(&issues, &main, "subsidiary[no-noa].noa");
    issue(&issues, &main, "subsidiary[no-merge].automerge");
    issue(&issues, &main, "subsidiary[direct-but-one].noa");
    assert!(!issues.iter().any(|i| i.key.starts_with("subsidiary[direct]")), "{}", listing(&issues));
    assert_eq!(issues.len(), 3, "{}", listing(&issues));
}

#[test]
fn duplicate_subsidiary_ids_name_the_second_file() {
    let cfg = ConfigDir::new();
    cfg.main(&subsidiary("acme-east", "AE-", "", None));
    let x = cfg.write("config/subsidiaries/x.toml", &subsidiary_file("acme-east", "AX-", ""));
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &x.display().to_string(), "id");
    assert!(found.message.contains("acme-east"), "{found:?}");
    assert!(found.message.contains("factord.toml"), "names where the first one is: {found:?}");
    assert_eq!(issues.len(), 1, "{}", listing(&issues));
}

#[test]
fn invoice_prefixes_must_not_start_one_another() {
    let cfg = ConfigDir::new();
    let mut body = subsidiary("acme-a", "A-", "", None);
    body += &subsidiary("acme-a1", "A-1", "", None);
    body += &subsidiary("acme-b", "B-", "", None);
    cfg.main(&body);
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &cfg.source("config/factord.toml"), "subsidiary[acme-a1].invoice_prefix");
    assert!(found.message.contains("A-"), "{found:?}");
    assert_eq!(issues.len(), 1, "{}", listing(&issues));

    // Equal prefixes, one of them in a file of its own.
    let cfg = ConfigDir::new();
    cfg.main(&subsidiary("acme-a", "AE-", "", None));
    let w = cfg.write("config/subsidiaries/w.toml", &subsidiary_file("acme-w", "AE-", ""));
    let issues = cfg.load_err(&no_env());
    issue(&issues, &w.display().to_string(), "invoice_prefix");
}

#[test]
fn active_ftp_provider_with_a_missing_password_file() {
    let cfg = ConfigDir::new();
    let missing = cfg.path("run/credentials/triumph-ftp");
    cfg.main(&subsidiary(
        "acme-east",
        "AE-",
        "",
        Some(&format!(
            "[subsidiary.factoring]\nprovider = \"triumph\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\npassword_file = \"{}\"\n",
            missing.display()
        )),
    ));
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &cfg.source("config/factord.toml"), "subsidiary[acme-east].factoring.ftp.password_file");
    assert!(found.message.contains("triumph-ftp"), "names the file: {found:?}");
}

#[test]
fn active_providers_with_an_unset_password_variable() {
    let cfg = ConfigDir::new();
    let mut body = subsidiary(
        "acme-ftp",
        "AF-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"sunbelt\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\npassword_env = \"SUNBELT_FTP_PASSWORD\"\n",
        ),
    );
    body += &subsidiary(
        "acme-api",
        "AA-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"otr\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.api]\nbase_url = \"https://api.example.com\"\nusername = \"acme\"\n\
             password_env = \"OTR_PASSWORD\"\nsubscription_key_env = \"OTR_SUBSCRIPTION_KEY\"\n",
        ),
    );
    cfg.main(&body);
    // An empty variable is as good as unset.
    let issues = cfg.load_err(&env(&[("OTR_SUBSCRIPTION_KEY", "")]));
    let main = cfg.source("config/factord.toml");
    let ftp = issue(&issues, &main, "subsidiary[acme-ftp].factoring.ftp.password_env");
    assert!(ftp.message.contains("SUNBELT_FTP_PASSWORD"), "{ftp:?}");
    issue(&issues, &main, "subsidiary[acme-api].factoring.api.password_env");
    issue(&issues, &main, "subsidiary[acme-api].factoring.api.subscription_key_env");
    assert_eq!(issues.len(), 3, "{}", listing(&issues));

    // With the variables set, the same file is valid.
    let settings = cfg.load_ok(&env(&[
        ("SUNBELT_FTP_PASSWORD", "pw1"),
        ("OTR_PASSWORD", "pw2"),
        ("OTR_SUBSCRIPTION_KEY", "key3"),
    ]));
    assert_eq!(settings.subsidiaries.len(), 2);
}

#[test]
fn connection_block_must_match_the_provider_transport() {
    let cfg = ConfigDir::new();
    let mut body = subsidiary(
        "ftp-given-api",
        "FA-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"triumph\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.api]\nbase_url = \"https://api.example.com\"\nusername = \"acme\"\n",
        ),
    );
    body += &subsidiary(
        "manual-given-ftp",
        "MF-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\n",
        ),
    );
    body += &subsidiary(
        "api-given-ftp",
        "AF-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"apex\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.api]\nbase_url = \"https://api.example.com\"\napi_key_env = \"APEX_KEY\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\n",
        ),
    );
    cfg.main(&body);
    let issues = cfg.load_err(&env(&[("APEX_KEY", "k")]));
    let main = cfg.source("config/factord.toml");
    let api = issue(&issues, &main, "subsidiary[ftp-given-api].factoring.api");
    assert!(api.message.contains("FTP"), "{api:?}");
    issue(&issues, &main, "subsidiary[manual-given-ftp].factoring.ftp");
    issue(&issues, &main, "subsidiary[api-given-ftp].factoring.ftp");
}

#[test]
fn sftp_needs_the_host_key_fingerprint() {
    let cfg = ConfigDir::new();
    let sftp = "[subsidiary.factoring]\nprovider = \"compass\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
                [subsidiary.factoring.ftp]\nprotocol = \"sftp\"\nhost = \"sftp.example.com\"\nusername = \"acme\"\npassword_env = \"PW\"\n";
    cfg.main(&subsidiary("acme-east", "AE-", "", Some(sftp)));
    let issues = cfg.load_err(&env(&[("PW", "pw")]));
    issue(&issues, &cfg.source("config/factord.toml"), "subsidiary[acme-east].factoring.ftp.host_key_sha256");
    assert_eq!(issues.len(), 1, "{}", listing(&issues));

    let malformed = format!("{sftp}host_key_sha256 = \"MD5:12:34\"\n");
    cfg.main(&subsidiary("acme-east", "AE-", "", Some(&malformed)));
    let issues = cfg.load_err(&env(&[("PW", "pw")]));
    issue(&issues, &cfg.source("config/factord.toml"), "subsidiary[acme-east].factoring.ftp.host_key_sha256");

    let with_key = format!("{sftp}host_key_sha256 = \"SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFA\"\n");
    cfg.main(&subsidiary("acme-east", "AE-", "", Some(&with_key)));
    let settings = cfg.load_ok(&env(&[("PW", "pw")]));
    let factoring = settings.subsidiary("acme-east").expect("acme-east").factoring.as_ref().expect("factoring");
    let Connection::Ftp(ftp) = &factoring.connection else { panic!("expected an FTP connection: {factoring:?}") };
    assert_eq!(ftp.port, 22, "sftp's default port");
}

#[test]
fn unknown_key_in_a_subsidiary_file_names_that_file() {
    let cfg = ConfigDir::new();
    cfg.main("");
    let file = cfg.write(
        "config/subsidiaries/west.toml",
        &subsidiary_file("acme-west", "AW-", "").replace("[factoring]\n", "[factoring]\nretries = 3\n"),
    );
    let issues = cfg.load_err(&no_env());
    issue(&issues, &file.display().to_string(), "factoring.retries");
    assert_eq!(issues.len(), 1, "{}", listing(&issues));
}

/// Unknown keys inside optional sections (`[http]`, a subsidiary's `[factoring]`) are named by
/// their plain dotted path, as ops wrote them.
#[test]
fn unknown_keys_in_optional_sections_have_plain_dotted_keys() {
    let cfg = ConfigDir::new();
    let mut body = String::from("[http]\nlisten = \"127.0.0.1:9464\"\nlisen = \"x\"\n");
    body += &subsidiary(
        "acme-east",
        "AE-",
        "",
        Some("[subsidiary.factoring]\nprovider = \"capital_depot\"\nschedule = \"0 0 16 * * Mon-Fri\"\nretries = 3\n"),
    );
    cfg.main(&body);
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    issue(&issues, &main, "http.lisen");
    let retries = issues.iter().find(|i| i.key.ends_with("retries")).unwrap_or_else(|| panic!("{}", listing(&issues)));
    assert!(
        ["subsidiary[acme-east].factoring.retries", "subsidiary[0].factoring.retries"].contains(&retries.key.as_str()),
        "key should be a plain dotted path; issues were:\n{}",
        listing(&issues)
    );
    assert_eq!(retries.source, main);
}

#[test]
fn invalid_toml_names_the_file() {
    // In a subsidiary file: the other files are still checked.
    let cfg = ConfigDir::new();
    cfg.main("[log]\ncolour = \"x\"\n");
    let broken =
        cfg.write("config/subsidiaries/broken.toml", "id = \"acme-west\"\n[factoring\nprovider = \"triumph\"\n");
    let issues = cfg.load_err(&no_env());
    let found = issue(&issues, &broken.display().to_string(), "");
    assert!(found.message.contains("TOML"), "{found:?}");
    issue(&issues, &cfg.source("config/factord.toml"), "log.colour");

    // In the main file.
    let cfg = ConfigDir::new();
    cfg.main_raw("[database\nurl = \"sqlite://data/factord.db\"\n");
    let issues = cfg.load_err(&no_env());
    issue(&issues, &cfg.source("config/factord.toml"), "");

    // A missing main file.
    let cfg = ConfigDir::new();
    let issues = cfg.load_err(&no_env());
    issue(&issues, &cfg.source("config/factord.toml"), "");
}

/// A value of the wrong type is one more problem: it names its key, and the file's other
/// problems are still reported with it.
#[test]
fn a_value_of_the_wrong_type_names_its_key_and_does_not_hide_the_others() {
    let cfg = ConfigDir::new();
    let mut body = String::from("[log]\ncolour = \"x\"\n");
    body += &subsidiary("acme-east", "AE-", "automerge = \"maybe\"", None);
    body += &subsidiary("acme-tz", "TZ-", "", None).replace("America/Chicago", "Nowhere/City");
    cfg.main(&body);
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    issue(&issues, &main, "subsidiary[acme-east].automerge");
    issue(&issues, &main, "log.colour");
    issue(&issues, &main, "subsidiary[acme-tz].timezone");
}

#[test]
fn a_value_of_the_wrong_type_in_a_subsidiary_file_names_its_key() {
    let cfg = ConfigDir::new();
    cfg.main("");
    let file =
        cfg.write("config/subsidiaries/west.toml", &subsidiary_file("acme-west", "AW-", "automerge = \"maybe\""));
    let issues = cfg.load_err(&no_env());
    issue(&issues, &file.display().to_string(), "automerge");
}

// ---------------------------------------------------------------------------------------------
// What valid files produce.

#[test]
fn a_subsidiary_in_its_own_file_is_loaded_with_its_source() {
    let cfg = ConfigDir::new();
    let password = cfg.write("credentials/triumph-ftp", "west-ftp-password\n");
    cfg.main(&subsidiary("acme-east", "AE-", "", None));
    let west = cfg.write(
        "config/subsidiaries/west.toml",
        &format!(
            r#"id = "acme-west"
name = "ACME Freight West LLC"
address = "2200 Camelback Rd, Phoenix, AZ 85016"
usdot = "7654321"
timezone = "America/Phoenix"
invoice_prefix = "AW-"
noa = "Notice of assignment: pay Triumph."
customer_overrides = {{ "Cust-9" = "direct" }}

[factoring]
provider = "triumph"
schedule = "0 30 15 * * Mon-Fri"

[factoring.ftp]
host = "ftp.triumph.example"
username = "acmewest"
password_file = "{}"
directory = "/incoming"
"#,
            password.display()
        ),
    );
    // Not a .toml file: not read.
    cfg.write("config/subsidiaries/README.txt", "not config");

    let settings = cfg.load_ok(&no_env());
    assert_eq!(settings.subsidiaries.len(), 2);
    assert_eq!(settings.config_path, cfg.main_path());
    let east = settings.subsidiary("acme-east").expect("acme-east");
    assert_eq!(east.source, cfg.main_path());
    let west_sub = settings.subsidiary("acme-west").expect("acme-west");
    assert_eq!(west_sub.source, west);
    assert_eq!(west_sub.name, "ACME Freight West LLC");
    assert_eq!(west_sub.timezone, chrono_tz::America::Phoenix);
    assert_eq!(west_sub.usdot.as_deref(), Some("7654321"));
    assert_eq!(west_sub.invoice_prefix, "AW-");
    assert_eq!(west_sub.method_for("Cust-9").as_str(), "direct", "customer ids keep their case");
    assert_eq!(west_sub.method_for("CUST-9").as_str(), "factoring");
    let factoring = west_sub.factoring.as_ref().expect("factoring");
    assert_eq!(factoring.provider.id, "triumph");
    assert!(factoring.active, "active by default");
    assert_eq!(factoring.schedule.as_ref().expect("schedule").expression, "0 30 15 * * Mon-Fri");
    let Connection::Ftp(ftp) = &factoring.connection else { panic!("expected FTP: {factoring:?}") };
    assert_eq!(ftp.host, "ftp.triumph.example");
    assert_eq!(ftp.port, 21);
    assert_eq!(ftp.tls, FtpTls::Explicit, "explicit TLS by default");
    assert_eq!(ftp.directory, "/incoming");
    assert_eq!(
        ftp.password.as_ref().expect("password read").expose_secret(),
        "west-ftp-password",
        "read from the file, trailing newline dropped"
    );
}

#[test]
fn an_inactive_provider_needs_no_credentials() {
    let cfg = ConfigDir::new();
    let mut body =
        subsidiary("acme-ftp", "AF-", "", Some("[subsidiary.factoring]\nprovider = \"triumph\"\nactive = false\n"));
    body += &subsidiary(
        "acme-api",
        "AA-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"otr\"\nactive = \"false\"\n[subsidiary.factoring.api]\nusername = \"acme\"\n",
        ),
    );
    body += &subsidiary(
        "acme-ftp2",
        "AG-",
        "",
        Some(
            "[subsidiary.factoring]\nprovider = \"rts\"\nactive = false\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.rts.example\"\npassword_env = \"NOT_SET_ANYWHERE\"\n",
        ),
    );
    cfg.main(&body);
    let settings = cfg.load_ok(&no_env());
    for id in ["acme-ftp", "acme-api", "acme-ftp2"] {
        let factoring = settings.subsidiary(id).expect(id).factoring.as_ref().expect("factoring");
        assert!(!factoring.active, "{id} is inactive");
        assert!(factoring.schedule.is_none());
    }

    // The same provider, active, is refused for want of them.
    let cfg = ConfigDir::new();
    cfg.main(&subsidiary(
        "acme-ftp",
        "AF-",
        "",
        Some("[subsidiary.factoring]\nprovider = \"triumph\"\nactive = true\n"),
    ));
    let issues = cfg.load_err(&no_env());
    let main = cfg.source("config/factord.toml");
    issue(&issues, &main, "subsidiary[acme-ftp].factoring.schedule");
    issue(&issues, &main, "subsidiary[acme-ftp].factoring.ftp");
}

// ---------------------------------------------------------------------------------------------
// Secrets (docs/reliability.md rule 10).

#[test]
fn secrets_never_show_in_debug_output() {
    let cfg = ConfigDir::new();
    let ftp_password = cfg.write("credentials/triumph-ftp", "s3cr3t-FTP-pass\n");
    let subscription_key = cfg.write("credentials/otr-subscription", "OTR-subKEY-4242");
    let db_password = cfg.write("credentials/db", "pg-FILE-pass-77\n");
    let mut body = String::from("[log]\nlevel = \"info\"\n");
    body += &subsidiary(
        "acme-east",
        "AE-",
        "",
        Some(&format!(
            "[subsidiary.factoring]\nprovider = \"triumph\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme-ftp-user\"\npassword_file = \"{}\"\n",
            ftp_password.display()
        )),
    );
    body += &subsidiary(
        "acme-west",
        "AW-",
        "",
        Some(&format!(
            "[subsidiary.factoring]\nprovider = \"otr\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.api]\nbase_url = \"https://api.otr.example/carrier-tms/2\"\nusername = \"acme-otr-user\"\n\
             password_env = \"OTR_PASSWORD\"\nsubscription_key_file = \"{}\"\n",
            subscription_key.display()
        )),
    );
    cfg.main_raw(&format!(
        "[database]\nurl = \"postgres://factord:pg-URL-pw-55@db.example.com:5432/factord\"\npassword_file = \"{}\"\n{body}",
        db_password.display()
    ));
    let settings = cfg.load_ok(&env(&[("OTR_PASSWORD", "otr-ENV-pass-31")]));

    // The secrets were read...
    let west = settings.subsidiary("acme-west").expect("acme-west");
    let Connection::Api(api) = &west.factoring.as_ref().expect("factoring").connection else { panic!("expected API") };
    assert_eq!(api.password.as_ref().expect("password").expose_secret(), "otr-ENV-pass-31");
    assert_eq!(api.subscription_key.as_ref().expect("subscription key").expose_secret(), "OTR-subKEY-4242");
    assert_eq!(settings.database.password.as_ref().expect("db password").expose_secret(), "pg-FILE-pass-77");

    // ...and never printed.
    for text in [format!("{settings:?}"), format!("{settings:#?}"), format!("{:?}", settings.database)] {
        for secret in ["s3cr3t-FTP-pass", "OTR-subKEY-4242", "otr-ENV-pass-31", "pg-FILE-pass-77", "pg-URL-pw-55"] {
            assert!(!text.contains(secret), "`{secret}` leaked into Debug output:\n{text}");
        }
        // Non-secret parts stay readable for ops.
        assert!(text.contains("db.example.com"), "{text}");
    }
    let debug = format!("{settings:?}");
    assert!(debug.contains("acme-otr-user") && debug.contains("acme-ftp-user"), "usernames are not secret: {debug}");
    let database = format!("{:?}", settings.database);
    assert!(database.contains("postgres://factord:"), "{database}");
    assert!(database.contains("REDACTED"), "{database}");
}

#[test]
fn a_database_url_password_is_redacted_in_debug() {
    let cfg = ConfigDir::new();
    cfg.main_raw("[database]\nurl = \"postgres://u:pw-in-url-9@host/db\"\n");
    let settings = cfg.load_ok(&no_env());
    assert!(settings.database.is_postgres());
    assert_eq!(settings.database.url, "postgres://u:pw-in-url-9@host/db", "the real URL is kept for connecting");
    let database = format!("{:?}", settings.database);
    assert!(!database.contains("pw-in-url-9"), "{database}");
    assert!(database.contains("u:[REDACTED]@host/db"), "{database}");
    assert!(!format!("{settings:?}").contains("pw-in-url-9"));
}

/// sqlx also takes the password as a query parameter (`?password=`); that form must not leak
/// either.
#[test]
fn a_database_password_in_the_query_string_is_redacted_in_debug() {
    let cfg = ConfigDir::new();
    cfg.main_raw("[database]\nurl = \"postgres://u@host/db?sslmode=require&password=pw-in-query-8\"\n");
    let settings = cfg.load_ok(&no_env());
    let debug = format!("{settings:?}");
    assert!(!debug.contains("pw-in-query-8"), "the query-string password leaked:\n{debug}");
}

#[test]
fn config_errors_do_not_print_secret_values() {
    let cfg = ConfigDir::new();
    // A secret file whose content is fine but whose subsidiary has another problem, and a
    // database URL that is refused: neither message may carry the secret.
    let password = cfg.write("credentials/ftp", "never-print-me-1\n");
    let body = subsidiary(
        "acme-east",
        "AE-",
        "",
        Some(&format!(
            "[subsidiary.factoring]\nprovider = \"triumph\"\nschedule = \"0 0 16 * * Mon-Fri\"\n\
             [subsidiary.factoring.ftp]\nhost = \"ftp.example.com\"\nusername = \"acme\"\npassword_file = \"{}\"\npassword_env = \"ALSO_SET\"\n",
            password.display()
        )),
    );
    cfg.main_raw(&format!("[database]\nurl = \"mysql://u:never-print-me-2@h/db\"\n{body}"));
    let error = cfg.load(&env(&[("ALSO_SET", "never-print-me-3")])).expect_err("refused");
    let text = format!("{error}\n{error:?}");
    issue(&error.issues, &cfg.source("config/factord.toml"), "database.url");
    issue(&error.issues, &cfg.source("config/factord.toml"), "subsidiary[acme-east].factoring.ftp.password_file");
    for secret in ["never-print-me-1", "never-print-me-2", "never-print-me-3"] {
        assert!(!text.contains(secret), "`{secret}` leaked into the error:\n{text}");
    }
}

#[test]
fn config_error_display_lists_every_issue_with_file_and_key() {
    let cfg = ConfigDir::new();
    cfg.main("[log]\ncolour = \"x\"\nformat = \"xml\"\n");
    let error = cfg.load(&no_env()).expect_err("refused");
    let text = error.to_string();
    let main = cfg.source("config/factord.toml");
    assert!(text.contains("2 errors"), "{text}");
    assert!(text.contains(&format!("{main}: log.colour:")), "{text}");
    assert!(text.contains(&format!("{main}: log.format:")), "{text}");
}
