//! The shipped config and the `examples/` files work as the README's walkthrough says: the
//! example loads import, are invoiced into packets, submitted to the outbox, and the example
//! purchase and payment reports move them on, on the shipped configuration.

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

fn factord(dir: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_factord"))
        .args(args)
        .current_dir(dir)
        .env_remove("FACTORD_CONFIG")
        .output()
        .expect("run factord");
    assert!(
        output.status.success(),
        "factord {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
#[expect(clippy::too_many_lines, reason = "the README's walkthrough, one step after the other, in its order")]
fn the_example_loads_are_invoiced_submitted_and_financed_on_the_shipped_config() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo.join("config"), &dir.path().join("config"));
    copy_dir(&repo.join("examples/documents"), &dir.path().join("documents"));
    let csv = repo.join("examples/loads.csv");
    let json = repo.join("examples/loads.json");

    factord(dir.path(), &["check-config"]);
    // `providers test` prints what docs/cli.md shows for the shipped config.
    let probe = factord(dir.path(), &["providers", "test"]);
    let page = std::fs::read_to_string(repo.join("docs/cli.md")).expect("docs/cli.md");
    for line in String::from_utf8_lossy(&probe.stdout).lines() {
        assert!(page.contains(&format!("\n{line}\n")), "docs/cli.md shows {line:?}");
    }
    factord(dir.path(), &["loads", "import", &csv.display().to_string(), &json.display().to_string()]);
    factord(dir.path(), &["invoice"]);
    let status: serde_json::Value =
        serde_json::from_slice(&factord(dir.path(), &["status", "--json"]).stdout).expect("status json");
    let counts = |id: &str| {
        status["subsidiaries"].as_array().expect("array").iter().find(|s| s["id"] == id).expect("subsidiary")["counts"]
            .clone()
    };
    assert_eq!(counts("acme-east")["Queued"], 5, "{status:#}");
    for (subsidiary, invoice) in [("acme-east", "AE-1"), ("acme-east", "AE-3"), ("acme-east", "AE-5")] {
        let packet = dir.path().join(format!("data/packets/{subsidiary}/{invoice}.pdf"));
        let pages = lopdf::Document::load(&packet).expect("packet").get_pages().len();
        assert_eq!(pages, 3, "{} = invoice + RC + POD", packet.display());
    }

    // The walkthrough goes on: submit now, then the factor's example reports.
    factord(dir.path(), &["submit"]);
    let ingest = |file: &str| -> serde_json::Value {
        let path = repo.join("examples/reports").join(file).display().to_string();
        let output = factord(dir.path(), &["ingest", &path, "--provider", "capital_depot", "--json"]);
        serde_json::from_slice(&output.stdout).expect("ingest json")
    };
    let purchase = ingest("purchase-1130.csv");
    assert_eq!(purchase["kind"], "purchase", "{purchase:#}");
    assert_eq!((purchase["rows"].as_u64(), purchase["applied"].as_u64()), (Some(5), Some(5)), "{purchase:#}");
    let payments = ingest("payments-1205.csv");
    assert_eq!((payments["kind"].as_str(), payments["applied"].as_u64()), (Some("payment"), Some(2)), "{payments:#}");
    let show = |load: &str| -> serde_json::Value {
        serde_json::from_slice(&factord(dir.path(), &["loads", "show", load, "--json"]).stdout).expect("show json")
    };
    assert_eq!(show("L-1001")["status"], "Completed");
    let l1002 = show("L-1002");
    assert_eq!(l1002["status"], "Financed");
    assert_eq!(l1002["exceptions"][0]["kind"], "short_paid", "{l1002:#}");
    assert_eq!(show("L-1003")["status"], "Financed");
    let l1005 = show("L-1005");
    assert_eq!((l1005["status"].as_str(), l1005["exceptions"][0]["kind"].as_str()), (Some("Invoiced"), Some("held")));

    // The README's money step: reconcile, aging and the journal run on the example data.
    let reconcile: serde_json::Value =
        serde_json::from_slice(&factord(dir.path(), &["reconcile", "--json"]).stdout).expect("reconcile json");
    assert_eq!(reconcile["invoices"].as_array().map(Vec::len), Some(5), "{reconcile:#}");
    assert_eq!(reconcile["totals"]["paid"], "3450.00", "L-1001 paid in full, L-1002 $1,000.00: {reconcile:#}");
    factord(dir.path(), &["aging", "--by", "customer"]);
    let journal =
        factord(dir.path(), &["export", "journal", "--from", "2026-01-01", "--to", "2027-12-31", "--format", "csv"]);
    assert!(String::from_utf8_lossy(&journal.stdout).lines().count() > 1, "the journal has lines");
    let adjusted: serde_json::Value = serde_json::from_slice(
        &factord(
            dir.path(),
            &[
                "loads",
                "adjust",
                "L-1003",
                "--fee",
                "15.00",
                "--reserve",
                "-15.00",
                "--reason",
                "wire fee taken from the reserve",
                "--json",
            ],
        )
        .stdout,
    )
    .expect("adjust json");
    assert_eq!(adjusted["figures"], "holds", "{adjusted:#}");
    let reconcile: serde_json::Value =
        serde_json::from_slice(&factord(dir.path(), &["reconcile", "--json"]).stdout).expect("reconcile json");
    let ae3 = reconcile["invoices"].as_array().and_then(|i| i.iter().find(|f| f["load_number"] == "L-1003")).cloned();
    let ae3 = ae3.unwrap_or_default();
    assert_eq!((ae3["fee"].as_str(), ae3["reserve_held"].as_str()), (Some("108.00"), Some("47.00")), "{ae3:#}");
    // docs/money.md's other examples, on the same data (factord() checks each succeeds).
    factord(
        dir.path(),
        &["loads", "adjust", "L-1002", "--reserve-released", "37.50", "--date", "2026-12-05", "--reason", "statement"],
    );
    factord(
        dir.path(),
        &["loads", "adjust", "L-1001", "--advance", "-2.50", "--fee", "2.50", "--reason", "a wire fee", "--json"],
    );

    // The README's rework step: `exceptions`, then ops release L-1005 and hold L-1003.
    let listed: serde_json::Value =
        serde_json::from_slice(&factord(dir.path(), &["exceptions", "--json"]).stdout).expect("exceptions json");
    let resolve = listed[1]["resolve"].as_str().unwrap_or_default();
    assert!(resolve.starts_with("cleared when the factor's status moves on"), "the factor's own hold: {resolve}");
    let listed: Vec<(&str, &str)> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| Some((e["load_number"].as_str()?, e["kind"].as_str()?)))
        .collect();
    assert_eq!(listed, [("L-1004", "rejected"), ("L-1005", "held"), ("L-1002", "short_paid")]);
    factord(dir.path(), &["loads", "release", "L-1005", "--reason", "Capital Depot finished its verification"]);
    assert_eq!(show("L-1005")["exceptions"], serde_json::json!([]));
    factord(dir.path(), &["loads", "hold", "L-1003", "--reason", "broker disputes the rate"]);
    assert_eq!(show("L-1003")["exceptions"][0]["detail"], "held by ops: broker disputes the rate");

    // Then L-1004, which the factor rejected, gets a new POD, is retried and sent alone.
    factord(dir.path(), &["loads", "docs", "L-1004", "--pod", "documents/L-1004-pod.pdf", "--reason", "rescanned POD"]);
    factord(dir.path(), &["loads", "retry", "L-1004", "--reason", "POD rescanned"]);
    let l1004 = show("L-1004");
    assert_eq!(
        (l1004["status"].as_str(), l1004["invoice_number"].as_str()),
        (Some("Queued"), Some("AE-4")),
        "{l1004:#}"
    );
    factord(dir.path(), &["submit", "--loads", "L-1004"]);
    let l1004 = show("L-1004");
    assert_eq!(
        (l1004["status"].as_str(), l1004["invoice_number"].as_str(), l1004["batch_id"].as_str()),
        (Some("Invoiced"), Some("AE-4"), Some("acme-east-2")),
        "{l1004:#}"
    );

    // And AE-5 is voided: held until ops have told Capital Depot, then invoiced afresh as AE-6.
    factord(dir.path(), &["loads", "void", "L-1005", "--reason", "billed the wrong amount"]);
    let l1005 = show("L-1005");
    assert_eq!((l1005["status"].as_str(), l1005["exceptions"][0]["kind"].as_str()), (Some("Released"), Some("held")));
    factord(dir.path(), &["loads", "release", "L-1005", "--reason", "Capital Depot told"]);
    factord(dir.path(), &["invoice"]);
    let l1005 = show("L-1005");
    assert_eq!(
        (l1005["status"].as_str(), l1005["invoice_number"].as_str()),
        (Some("Queued"), Some("AE-6")),
        "{l1005:#}"
    );
    assert_eq!(l1005["void_invoices"][0]["invoice_number"], "AE-5", "{l1005:#}");
}
