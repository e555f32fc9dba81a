//! The real `factord` binary (docs/design.md §6): exit codes, what `check-config` and `loads import`
//! print, and the stable `--json` shapes of `loads show`, `loads list` and `status`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{loads_csv, write_config};

/// A temp working directory with `config/factord.toml` on an SQLite file inside it.
struct Workdir {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Workdir {
    fn new() -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("data/factord.db").display());
        let config = write_config(dir.path(), &url, "");
        Workdir { dir, config }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Runs `factord --config <config> ARGS` in the working directory.
    fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_factord"));
        command.current_dir(self.root()).arg("--config").arg(&self.config).args(args);
        run(command)
    }

    /// Runs with `--json` output expected on stdout and exit 0.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_eq!(out.code, 0, "factord {args:?} failed:\n{out}");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("factord {args:?}: stdout is not JSON ({e}):\n{out}"))
    }
}

/// The outcome of one run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `command` with no `FACTORD*` variables inherited from the test runner.
fn run(mut command: Command) -> Run {
    for (name, _) in std::env::vars() {
        if name.starts_with("FACTORD") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run factord");
    Run {
        code: output.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A row for `loads_csv`: load, subsidiary, customer id and name, MC, amount, status.
fn row(load: &str, subsidiary: &str, customer: &str, name: &str, amount: &str, status: &str) -> String {
    format!("{load},{subsidiary},{customer},{name},123456,{amount},{status},2026-11-20,,,PO-1,,")
}

// ---------------------------------------------------------------------------------------------
// check-config

#[test]
fn check_config_accepts_a_valid_config() {
    let wd = Workdir::new();
    let out = wd.run(&["check-config"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("valid"), "{out}");
    assert!(out.stdout.contains("acme-east") && out.stdout.contains("acme-west"), "{out}");

    // The default config path is config/factord.toml under the working directory.
    let mut command = Command::new(env!("CARGO_BIN_EXE_factord"));
    command.current_dir(wd.root()).arg("check-config");
    let out = run(command);
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn check_config_lists_every_error_with_file_and_key_and_exits_2() {
    let wd = Workdir::new();
    let url = format!("sqlite://{}", wd.root().join("data/factord.db").display());
    let config = write_config(wd.root(), &url, "[log]\ncolour = \"x\"\n\n[credit]\nrefresh_schedule = \"0 0 * * *\"\n");
    assert_eq!(config, wd.config);
    let sub = wd.write(
        "config/subsidiaries/south.toml",
        "id = \"acme-south\"\nname = \"ACME South\"\naddress = \"1 Rd\"\ntimezone = \"Nowhere/City\"\n\
         invoice_prefix = \"AS-\"\ninvoicing_method = \"direct\"\n",
    );
    let out = wd.run(&["check-config"]);
    assert_eq!(out.code, 2, "{out}");
    let main = config.display().to_string();
    for (source, key) in [
        (main.as_str(), "log.colour"),
        (main.as_str(), "credit.refresh_schedule"),
        (&sub.display().to_string(), "timezone"),
    ] {
        let needle = format!("{source}: {key}:");
        assert!(out.stderr.contains(&needle), "stderr should name `{needle}`:\n{out}");
    }
    assert!(out.stderr.contains("3 errors"), "{out}");
    assert!(!out.stdout.contains("valid"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// loads import

#[test]
fn loads_import_takes_the_good_rows_and_names_the_bad_ones() {
    let wd = Workdir::new();
    let csv = loads_csv(&[
        &row("L-100", "acme-east", "C-1", "Broker One", "2450.00", ""), // line 2
        &row("L-101", "acme-east", "C-1", "Broker One", "abc", ""),     // line 3: bad amount
        &row("L-102", "acme-west", "C-2", "Shipper Two", "\"$1,234.50\"", "Released"), // line 4
        &row("L-103", "acme-north", "C-3", "Broker Three", "100.00", ""), // line 5: unknown subsidiary
        &row("L-104", "acme-east", "C-4", "", "100.00", ""),            // line 6: no customer_name
        &row("L-105", "acme-west", "C-2", "Shipper Two", "99.99", ""),  // line 7
    ]);
    let file = wd.write("exports/loads.csv", &csv);
    let file_arg = file.display().to_string();

    let out = wd.run(&["loads", "import", &file_arg]);
    assert_eq!(out.code, 1, "rejected rows make an operational failure:\n{out}");
    assert!(out.stdout.contains("3 imported, 0 updated, 0 unchanged, 3 rejected"), "{out}");
    let line_of = |load: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.contains(load))
            .unwrap_or_else(|| panic!("no line for {load}:\n{out}"))
            .to_string()
    };
    let bad_amount = line_of("L-101");
    assert!(bad_amount.contains("row 3") && bad_amount.contains("amount"), "{bad_amount}");
    let bad_subsidiary = line_of("L-103");
    assert!(bad_subsidiary.contains("row 5") && bad_subsidiary.contains("acme-north"), "{bad_subsidiary}");
    let no_name = line_of("L-104");
    assert!(no_name.contains("row 6") && no_name.contains("customer_name"), "{no_name}");
    for good in ["L-100", "L-102", "L-105"] {
        assert!(!out.stdout.contains(&format!("{good} rejected")), "{good} was good:\n{out}");
    }

    let listed = wd.json(&["loads", "list", "--json"]);
    let mut numbers: Vec<&str> =
        listed.as_array().expect("array").iter().map(|l| l["load_number"].as_str().expect("load_number")).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["L-100", "L-102", "L-105"]);
    let l102 = wd.json(&["loads", "show", "L-102", "--json"]);
    assert_eq!(l102["amount_cents"], 123_450, "`$1,234.50` in cents");

    // The same file again: nothing changes.
    let before: Vec<Value> =
        ["L-100", "L-102", "L-105"].iter().map(|l| wd.json(&["loads", "show", l, "--json"])).collect();
    let again = wd.run(&["loads", "import", &file_arg]);
    assert!(again.stdout.contains("0 imported, 0 updated, 3 unchanged, 3 rejected"), "{again}");
    assert_eq!(again.code, 1, "the bad rows are still bad:\n{again}");
    for (load, before) in ["L-100", "L-102", "L-105"].iter().zip(before) {
        let after = wd.json(&["loads", "show", load, "--json"]);
        assert_eq!(after["history"].as_array().expect("history").len(), 1, "{load}: {after:#}");
        assert_eq!(after, before, "{load} unchanged by the second import");
    }
}

#[test]
fn loads_import_of_only_good_rows_exits_0() {
    let wd = Workdir::new();
    let file = wd.write("good.csv", &loads_csv(&[&row("L-1", "acme-east", "C-1", "Broker One", "10.00", "")]));
    let out = wd.run(&["loads", "import", &file.display().to_string()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("1 imported"), "{out}");

    // A file that cannot be read at all is an operational failure, named on stderr.
    let bad = wd.write("bad.csv", "load_number,amount\nL-2,10.00\n");
    let out = wd.run(&["loads", "import", &bad.display().to_string()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("bad.csv") && out.stderr.contains("subsidiary"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// JSON output

fn assert_load_object(load: &Value) {
    let object = load.as_object().unwrap_or_else(|| panic!("a load is an object: {load}"));
    for key in [
        "load_number",
        "subsidiary",
        "customer_id",
        "status",
        "amount_cents",
        "invoice_number",
        "exceptions",
        "waiting_reason",
        "batch_id",
        "factor_reference",
    ] {
        assert!(object.contains_key(key), "missing `{key}` in {load:#}");
    }
    assert!(load["load_number"].is_string(), "{load:#}");
    assert!(load["subsidiary"].is_string(), "{load:#}");
    assert!(load["customer_id"].is_string(), "{load:#}");
    assert!(load["status"].is_string(), "{load:#}");
    assert!(load["amount_cents"].is_i64(), "amount_cents is an integer: {load:#}");
    assert!(load["invoice_number"].is_null() || load["invoice_number"].is_string(), "{load:#}");
    assert!(load["waiting_reason"].is_null() || load["waiting_reason"].is_string(), "{load:#}");
    assert!(load["batch_id"].is_null() || load["batch_id"].is_string() || load["batch_id"].is_i64(), "{load:#}");
    assert!(load["factor_reference"].is_null() || load["factor_reference"].is_string(), "{load:#}");
    for exception in load["exceptions"].as_array().unwrap_or_else(|| panic!("exceptions is an array: {load:#}")) {
        assert!(exception["kind"].is_string() && exception.get("detail").is_some(), "{exception:#}");
    }
}

/// Imports L-1 (acme-east, Released), L-2 (acme-east, Delivered), L-3 (acme-west, Released).
fn workdir_with_loads() -> Workdir {
    let wd = Workdir::new();
    let file = wd.write(
        "loads.csv",
        &loads_csv(&[
            &row("L-1", "acme-east", "C-1", "Broker One", "2450.00", ""),
            &row("L-2", "acme-east", "C-1", "Broker One", "100.00", "Delivered"),
            &row("L-3", "acme-west", "C-2", "Shipper Two", "75.25", ""),
        ]),
    );
    let out = wd.run(&["loads", "import", &file.display().to_string()]);
    assert_eq!(out.code, 0, "{out}");
    wd
}

#[test]
fn loads_show_json_has_the_documented_keys() {
    let wd = workdir_with_loads();
    let load = wd.json(&["loads", "show", "L-1", "--json"]);
    assert_load_object(&load);
    assert_eq!(load["load_number"], "L-1");
    assert_eq!(load["subsidiary"], "acme-east");
    assert_eq!(load["customer_id"], "C-1");
    assert_eq!(load["status"], "Released");
    assert_eq!(load["amount_cents"], 245_000);
    assert_eq!(load["invoice_number"], Value::Null);
    assert_eq!(load["factor_reference"], Value::Null);
    assert_eq!(load["exceptions"], Value::Array(vec![]));
    let history = load["history"].as_array().unwrap_or_else(|| panic!("history is an array: {load:#}"));
    assert_eq!(history.len(), 1, "{load:#}");
    let first = &history[0];
    assert_eq!(first["from"], Value::Null, "{first:#}");
    assert_eq!(first["to"], "Released", "{first:#}");
    assert!(first["at"].is_string(), "{first:#}");
    assert!(first["cause"].is_string(), "{first:#}");

    // The text form is for people, but names the load and its status.
    let out = wd.run(&["loads", "show", "L-1"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("L-1") && out.stdout.contains("Released"), "{out}");
}

#[test]
fn loads_list_json_is_an_array_without_history_and_filters() {
    let wd = workdir_with_loads();
    let all = wd.json(&["loads", "list", "--json"]);
    let all = all.as_array().unwrap_or_else(|| panic!("an array: {all:#}"));
    assert_eq!(all.len(), 3, "{all:#?}");
    for load in all {
        assert_load_object(load);
        assert!(load.get("history").is_none(), "list items have no history: {load:#}");
    }
    let l2 = all.iter().find(|l| l["load_number"] == "L-2").expect("L-2 listed");
    assert_eq!(l2["status"], "Delivered");

    let filtered = wd.json(&["loads", "list", "--status", "Released", "--subsidiary", "acme-east", "--json"]);
    let numbers: Vec<&str> =
        filtered.as_array().expect("array").iter().map(|l| l["load_number"].as_str().expect("string")).collect();
    assert_eq!(numbers, ["L-1"], "{filtered:#}");

    let west = wd.json(&["loads", "list", "--subsidiary", "acme-west", "--json"]);
    let numbers: Vec<&str> =
        west.as_array().expect("array").iter().map(|l| l["load_number"].as_str().expect("string")).collect();
    assert_eq!(numbers, ["L-3"], "{west:#}");

    let none = wd.json(&["loads", "list", "--status", "Completed", "--json"]);
    assert_eq!(none, Value::Array(vec![]));
}

#[test]
fn status_json_has_the_documented_keys() {
    let wd = workdir_with_loads();
    let status = wd.json(&["status", "--json"]);
    let subsidiaries = status["subsidiaries"].as_array().unwrap_or_else(|| panic!("subsidiaries array: {status:#}"));
    assert!(status["last_batches"].is_array(), "{status:#}");
    assert!(status["last_reports"].is_array(), "{status:#}");
    let find =
        |id: &str| subsidiaries.iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("{id} in status: {status:#}"));
    for (id, released) in [("acme-east", 1), ("acme-west", 1)] {
        let s = find(id);
        let counts = s["counts"].as_object().unwrap_or_else(|| panic!("counts object: {s:#}"));
        for name in ["Released", "Queued", "Invoiced", "Financed", "Completed"] {
            assert!(counts.get(name).is_some_and(Value::is_i64), "{id}: counts.{name} is an integer: {s:#}");
        }
        assert_eq!(counts["Released"], released, "{s:#}");
        for name in ["Queued", "Invoiced", "Financed", "Completed"] {
            assert_eq!(counts[name], 0, "{s:#}");
        }
        assert!(s["exceptions"].is_i64(), "{s:#}");
        assert!(s["waiting"].is_i64(), "{s:#}");
    }
}

#[test]
fn status_json_lists_configured_subsidiaries_before_any_load() {
    let wd = Workdir::new();
    let status = wd.json(&["status", "--json"]);
    let ids: Vec<&str> =
        status["subsidiaries"].as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert!(ids.contains(&"acme-east") && ids.contains(&"acme-west"), "{status:#}");
}

// ---------------------------------------------------------------------------------------------
// Exit codes

#[test]
fn exit_codes_follow_the_contract() {
    let wd = Workdir::new();

    let missing = wd.run(&["loads", "show", "NOPE"]);
    assert_eq!(missing.code, 1, "an unknown load is an operational failure:\n{missing}");
    assert!(missing.stderr.contains("NOPE"), "{missing}");
    let missing_json = wd.run(&["loads", "show", "NOPE", "--json"]);
    assert_eq!(missing_json.code, 1, "{missing_json}");

    let unknown = wd.run(&["frobnicate"]);
    assert_eq!(unknown.code, 2, "an unknown subcommand is a usage error:\n{unknown}");

    let bad_status = wd.run(&["loads", "list", "--status", "Lost"]);
    assert_eq!(bad_status.code, 2, "an unknown status is a usage error:\n{bad_status}");

    let ingest = wd.run(&["ingest", "report.csv", "--provider", "otr"]);
    assert_eq!(ingest.code, 1, "a report that is not there is an operational failure:\n{ingest}");
    assert!(ingest.stderr.contains("report.csv"), "{ingest}");
    let ingest = wd.run(&["ingest", "report.csv", "--provider", "nobody"]);
    assert_eq!(ingest.code, 2, "an unknown provider is a usage error:\n{ingest}");

    let unknown_submit = wd.run(&["submit", "--subsidiary", "nowhere"]);
    assert_eq!(unknown_submit.code, 2, "{unknown_submit}");

    let unknown_subsidiary = wd.run(&["invoice", "--subsidiary", "nowhere"]);
    assert_eq!(unknown_subsidiary.code, 2, "an unknown subsidiary is a usage error:\n{unknown_subsidiary}");
    assert!(unknown_subsidiary.stderr.contains("nowhere"), "{unknown_subsidiary}");

    let no_config = {
        let mut command = Command::new(env!("CARGO_BIN_EXE_factord"));
        command.current_dir(wd.root()).args(["--config", "config/none.toml", "status"]);
        run(command)
    };
    assert_eq!(no_config.code, 2, "a missing config is a config error:\n{no_config}");
    assert!(no_config.stderr.contains("none.toml"), "{no_config}");
}

// ---------------------------------------------------------------------------------------------
// closed pipes

/// Runs `factord ARGS` with stdout (and, with `close_stderr`, stderr) a pipe whose reader is
/// already gone, as `factord … | head` once head has exited: every write gets EPIPE.
fn run_into_closed_pipe(wd: &Workdir, args: &[&str], close_stderr: bool) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_factord"));
    command.current_dir(wd.root()).arg("--config").arg(&wd.config).args(args);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    command.stdout(std::process::Stdio::from(writer.try_clone().expect("clone")));
    let stderr = wd.root().join("closed-pipe.stderr");
    if close_stderr {
        command.stderr(std::process::Stdio::from(writer));
    } else {
        command.stderr(std::fs::File::create(&stderr).expect("stderr file"));
    }
    for (name, _) in std::env::vars() {
        if name.starts_with("FACTORD") {
            command.env_remove(name);
        }
    }
    let status = command.status().expect("run factord");
    Run {
        code: status.code().expect("exited, not killed by a signal"),
        stdout: String::new(),
        stderr: if close_stderr { String::new() } else { std::fs::read_to_string(&stderr).unwrap_or_default() },
    }
}

#[test]
fn a_reader_that_went_away_is_a_clean_exit_not_a_panic() {
    let wd = Workdir::new();
    let rows: Vec<String> =
        (0..300).map(|i| row(&format!("L-{i:04}"), "acme-east", "C-1", "Broker One", "100.00", "")).collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = wd.write("many.csv", &loads_csv(&refs));
    let out = wd.run(&["loads", "import", &file.display().to_string()]);
    assert_eq!(out.code, 0, "{out}");

    for args in [
        &["loads", "list"][..],
        &["loads", "list", "--json"],
        &["status"],
        &["check-config"],
        &["loads", "show", "L-0001"],
    ] {
        let out = run_into_closed_pipe(&wd, args, false);
        assert_eq!(out.code, 0, "factord {args:?} | head: {out}");
        assert!(!out.stderr.contains("panicked"), "factord {args:?} | head: {out}");
    }
    // Errors and logs to a closed stderr too (`factord … 2>&1 | head`): the exit code stays
    // the command's own (1 for an unknown load), never 101.
    let out = run_into_closed_pipe(&wd, &["loads", "list"], true);
    assert_eq!(out.code, 0, "{out}");
    let out = run_into_closed_pipe(&wd, &["loads", "show", "NO-SUCH-LOAD"], true);
    assert_eq!(out.code, 1, "{out}");
}

/// The commands listed in a `--help` text's `Commands:` section.
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or(""))
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_describes_every_command_option_and_argument() {
    let help = |args: &[&str]| -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_factord")).args(args).arg("-h").output().expect("factord -h");
        assert!(output.status.success(), "{args:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut checked = 0;
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for line in text.lines() {
            let trimmed = line.trim_start();
            let entry = trimmed.starts_with('-') || trimmed.starts_with('<') || trimmed.starts_with('[');
            if !entry || !line.starts_with("  ") {
                continue;
            }
            // `  --json   Print JSON …`: a name, two or more spaces, then a description.
            let described = trimmed.split_once("  ").is_some_and(|(_, rest)| !rest.trim().is_empty());
            assert!(described, "`factord {} -h`: `{trimmed}` has no description:\n{text}", args.join(" "));
            checked += 1;
        }
        for command in subcommands(&text) {
            let mut next = path.clone();
            next.push(command);
            queue.push(next);
        }
        if !path.is_empty() {
            let about = text.lines().next().unwrap_or("");
            assert!(
                !about.trim().is_empty() && !about.starts_with("Usage"),
                "`factord {}` has no description",
                args.join(" ")
            );
        }
    }
    assert!(checked > 40, "only {checked} entries checked");
}
