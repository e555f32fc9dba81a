//! The shipped config and the `examples/` files work as the README's walkthrough says: the
//! example loads import and are invoiced into packets on the shipped configuration.

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
fn the_example_loads_are_invoiced_on_the_shipped_config() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo.join("config"), &dir.path().join("config"));
    copy_dir(&repo.join("examples/documents"), &dir.path().join("documents"));
    let csv = repo.join("examples/loads.csv");
    let json = repo.join("examples/loads.json");

    factord(dir.path(), &["check-config"]);
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
}
