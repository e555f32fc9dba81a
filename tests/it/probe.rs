//! `factord providers test` (docs/design.md §4), the real binary against real servers on loopback: an
//! FTP server (libunftp), one refusing writes, an implicit-TLS one, a closed port, the OTR
//! stand-in, and outbox folders. What worked and the first failure in the server's words, one
//! line per subsidiary, exit 1 on any failure, no password in the output, no probe file left.

use std::path::PathBuf;

use libunftp::notification::DataEvent;
use serde_json::Value;

use crate::fakes::api::{Otr, otr_server};
use crate::fakes::ftp::{PASSWORD, Script, ScriptedServer, TestServer, USER, base_name, test_cert};

const WRONG_PASSWORD: &str = "not-the-Pa55word-x9";

/// A working directory with `config/factord.toml` holding `subsidiaries`.
struct Workdir {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Workdir {
    fn new(subsidiaries: &str) -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name).display().to_string();
        let text = format!(
            "[database]\nurl = \"sqlite://{}\"\n\n[paths]\ninbox = \"{}\"\noutbox = \"{}\"\ndocuments = \"{}\"\n\
             archive = \"{}\"\ndata = \"{}\"\n\n{subsidiaries}",
            p("data/factord.db"),
            p("inbox"),
            p("outbox"),
            p("documents"),
            p("archive"),
            p("data"),
        );
        let config = dir.path().join("config/factord.toml");
        std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
        std::fs::write(&config, text).expect("write config");
        Workdir { dir, config }
    }

    fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// `factord --config <config> providers test ARGS`, with `env` set and nothing inherited
    /// from the runner's `FACTORD*` variables. Async, so that servers on the test's runtime
    /// keep answering.
    async fn test(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_factord"));
        command.current_dir(self.dir.path()).arg("--config").arg(&self.config).args(["providers", "test"]).args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("FACTORD") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        let output = command.output().await.expect("run factord");
        Run {
            code: output.status.code().expect("exited"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

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

impl Run {
    /// The stdout line of `subsidiary`.
    fn line(&self, subsidiary: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{subsidiary} ")))
            .unwrap_or_else(|| panic!("no line for {subsidiary}:\n{self}"))
    }

    fn json(&self) -> Vec<Value> {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

/// A factoring subsidiary with `factoring` (its provider and connection tables).
fn subsidiary(id: &str, prefix: &str, factoring: &str) -> String {
    format!(
        "[[subsidiary]]\nid = \"{id}\"\nname = \"{id} LLC\"\naddress = \"1 Main St\"\nusdot = \"1234567\"\n\
         mc = \"765432\"\ntimezone = \"America/Chicago\"\ninvoice_prefix = \"{prefix}\"\nnoa = \"Pay the factor.\"\n\n\
         [subsidiary.factoring]\nschedule = \"0 0 16 * * Mon-Fri\"\n{factoring}\n"
    )
}

/// Triumph over FTP at 127.0.0.1:`port`, the password from `PROBE_FTP_PASSWORD`.
fn ftp_subsidiary(id: &str, port: u16, tls: &str) -> String {
    subsidiary(
        id,
        "AE-",
        &format!(
            "provider = \"triumph\"\n[subsidiary.factoring.ftp]\nhost = \"127.0.0.1\"\nport = {port}\n\
             username = \"{USER}\"\npassword_env = \"PROBE_FTP_PASSWORD\"\ndirectory = \"/incoming\"\ntls = \"{tls}\"\n"
        ),
    )
}

const DIRECT: &str = "[[subsidiary]]\nid = \"acme-west\"\nname = \"ACME West\"\naddress = \"2 Main St\"\n\
                      timezone = \"America/Phoenix\"\ninvoice_prefix = \"AW-\"\ninvoicing_method = \"direct\"\n\n";

/// The probe files the FTP server saw stored, and whether each was deleted afterwards.
fn probe_files(server: &TestServer) -> Vec<(String, bool)> {
    let events = server.events();
    events
        .iter()
        .filter_map(|e| match e {
            DataEvent::Put { path, .. } => Some(base_name(path)),
            _ => None,
        })
        .map(|name| {
            let deleted = events.iter().any(|e| matches!(e, DataEvent::Deleted { path } if base_name(path) == name));
            (name, deleted)
        })
        .collect()
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn ftp_ok_logs_in_lists_and_writes_then_deletes_a_probe_file() {
    let server = TestServer::start(None);
    let wd = Workdir::new(&format!("{}{DIRECT}", ftp_subsidiary("acme-east", server.addr.port(), "none")));

    let out = wd.test(&[], &[("PROBE_FTP_PASSWORD", PASSWORD)]).await;

    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.line("acme-east"),
        format!(
            "acme-east  triumph (ftp)  ok: connected to 127.0.0.1:{} (plain FTP), logged in as {USER}, \
             listed /incoming, wrote and deleted probe file",
            server.addr.port()
        )
    );
    let direct = wd.outbox().join("acme-west/direct");
    assert_eq!(
        out.line("acme-west"),
        format!("acme-west  none (outbox)  ok: {} writable (wrote and deleted probe file)", direct.display())
    );
    assert_eq!(out.stdout.lines().count(), 2, "one line per subsidiary:\n{out}");
    // The probe file went up under a hidden unique name and is gone again.
    let probes = probe_files(&server);
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert!(probes[0].0.starts_with(".factord-probe-") && probes[0].0.ends_with(".tmp"), "{probes:?}");
    assert!(probes[0].1, "deleted: {probes:?}");
    assert!(server.names().is_empty(), "{:?}", server.names());
    assert_eq!(std::fs::read_dir(&direct).expect("direct outbox").count(), 0);

    // One subsidiary by name, as JSON with the documented keys.
    let out = wd.test(&["acme-east", "--json"], &[("PROBE_FTP_PASSWORD", PASSWORD)]).await;
    assert_eq!(out.code, 0, "{out}");
    let results = out.json();
    assert_eq!(results.len(), 1, "{out}");
    let result = results[0].as_object().expect("object");
    let mut keys: Vec<&str> = result.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["active", "error", "ok", "provider", "steps", "subsidiary", "transport"]);
    assert_eq!(result["subsidiary"], "acme-east");
    assert_eq!(result["provider"], "triumph");
    assert_eq!(result["transport"], "ftp");
    assert_eq!(result["active"], true);
    assert_eq!(result["ok"], true);
    assert_eq!(result["error"], Value::Null);
    assert_eq!(result["steps"].as_array().expect("steps").len(), 4, "{out}");
    assert!(server.names().is_empty());
}

#[tokio::test]
async fn ftp_wrong_password_exits_1_with_the_servers_words_and_no_password() {
    let server = TestServer::start(None);
    let wd = Workdir::new(&format!("{}{DIRECT}", ftp_subsidiary("acme-east", server.addr.port(), "none")));

    let out = wd.test(&[], &[("PROBE_FTP_PASSWORD", WRONG_PASSWORD)]).await;

    assert_eq!(out.code, 1, "{out}");
    let line = out.line("acme-east");
    assert!(line.contains("connected to 127.0.0.1") && line.contains("FAILED: authentication failed"), "{out}");
    // libunftp's own reply to a bad password.
    assert!(line.contains("530"), "{out}");
    assert!(!line.contains("logged in"), "{out}");
    assert!(out.line("acme-west").contains(" ok: "), "the other subsidiary is still checked:\n{out}");
    assert!(!out.stdout.contains(WRONG_PASSWORD) && !out.stderr.contains(WRONG_PASSWORD), "{out}");
    assert!(out.stderr.contains("1 connection(s) failed"), "{out}");

    let json = wd.test(&["--json"], &[("PROBE_FTP_PASSWORD", WRONG_PASSWORD)]).await;
    assert_eq!(json.code, 1, "{json}");
    let east = &json.json()[0];
    assert_eq!(east["ok"], false);
    assert!(east["error"].as_str().is_some_and(|e| e.contains("530")), "{json}");
    assert!(!json.stdout.contains(WRONG_PASSWORD), "{json}");
}

#[tokio::test]
async fn an_unreachable_host_fails_at_connect() {
    let port = closed_port();
    let wd = Workdir::new(&ftp_subsidiary("acme-east", port, "explicit"));

    let out = wd.test(&[], &[("PROBE_FTP_PASSWORD", PASSWORD)]).await;

    assert_eq!(out.code, 1, "{out}");
    let line = out.line("acme-east");
    assert!(line.starts_with("acme-east  triumph (ftps)  FAILED: "), "{out}");
    assert!(line.contains(&format!("127.0.0.1:{port}: connect")) && line.contains("refused"), "{out}");
}

#[tokio::test]
async fn a_read_only_directory_fails_at_the_probe_file_in_the_servers_words() {
    let server =
        ScriptedServer::start(Script { stor_reply: Some("550 Permission denied: read-only"), ..Script::default() })
            .await;
    let wd = Workdir::new(&ftp_subsidiary("acme-east", server.port, "none"));

    let out = wd.test(&[], &[("PROBE_FTP_PASSWORD", PASSWORD)]).await;

    assert_eq!(out.code, 1, "{out}");
    let line = out.line("acme-east");
    assert!(line.contains("logged in as acme, listed /incoming; FAILED: rejected: "), "{out}");
    assert!(line.contains("550 Permission denied: read-only"), "{out}");
    assert!(server.commands().iter().any(|c| c.starts_with("STOR .factord-probe-")), "{:?}", server.commands());
    assert!(server.file_names().is_empty());
}

#[tokio::test]
async fn implicit_ftps_is_checked_end_to_end() {
    let cert = test_cert();
    let server = TestServer::start_implicit(&cert);
    let wd = Workdir::new(&ftp_subsidiary("acme-east", server.addr.port(), "implicit"));
    // The test CA stands in for the system's bundle.
    let bundle = cert.cert.display().to_string();

    let out = wd.test(&[], &[("PROBE_FTP_PASSWORD", PASSWORD), ("SSL_CERT_FILE", &bundle)]).await;

    assert_eq!(out.code, 0, "{out}");
    let line = out.line("acme-east");
    assert!(line.starts_with("acme-east  triumph (ftps-implicit)  ok: connected to"), "{out}");
    assert!(line.contains("(implicit TLS)") && line.ends_with("wrote and deleted probe file"), "{out}");
    assert_eq!(probe_files(&server).iter().filter(|(_, deleted)| *deleted).count(), 1);
    assert!(server.names().is_empty());
}

#[tokio::test]
async fn the_outbox_of_a_manual_provider_must_be_writable() {
    let wd = Workdir::new(&subsidiary("acme-east", "AE-", "provider = \"capital_depot\"\n"));
    let out = wd.test(&[], &[]).await;
    assert_eq!(out.code, 0, "{out}");
    let folder = wd.outbox().join("acme-east/capital_depot");
    assert_eq!(
        out.line("acme-east"),
        format!("acme-east  capital_depot (outbox)  ok: {} writable (wrote and deleted probe file)", folder.display())
    );
    assert_eq!(std::fs::read_dir(&folder).expect("outbox folder").count(), 0, "no probe file left");

    // A file where the subsidiary's folder should be: nothing can be written under it.
    std::fs::remove_dir_all(wd.outbox().join("acme-east")).expect("clear");
    std::fs::write(wd.outbox().join("acme-east"), "not a folder").expect("write");
    let out = wd.test(&[], &[]).await;
    assert_eq!(out.code, 1, "{out}");
    let line = out.line("acme-east");
    assert!(line.contains("FAILED: rejected: cannot create") && line.contains("capital_depot"), "{out}");
}

#[tokio::test]
async fn an_inactive_provider_is_not_contacted_and_not_a_failure() {
    let port = closed_port();
    let wd = Workdir::new(
        &ftp_subsidiary("acme-east", port, "none")
            .replace("schedule = \"0 0 16 * * Mon-Fri\"\n", "schedule = \"0 0 16 * * Mon-Fri\"\nactive = false\n"),
    );
    let out = wd.test(&[], &[]).await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.line("acme-east"), "acme-east  triumph (ftp)  inactive (not checked)");
}

#[tokio::test]
async fn an_unknown_subsidiary_is_a_usage_error_naming_it() {
    let wd = Workdir::new(DIRECT);
    let out = wd.test(&["acme-nowhere"], &[]).await;
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("acme-nowhere"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

fn otr_subsidiary(base_url: &str) -> String {
    subsidiary(
        "acme-east",
        "AE-",
        &format!(
            "provider = \"otr\"\n[subsidiary.factoring.api]\nbase_url = \"{base_url}\"\nusername = \"{}\"\n\
             password_env = \"PROBE_OTR_PASSWORD\"\nsubscription_key_env = \"PROBE_OTR_KEY\"\n",
            crate::fakes::api::USERNAME
        ),
    )
}

#[tokio::test]
async fn an_api_login_is_checked_and_a_refused_one_fails_in_the_factors_words() {
    use crate::fakes::api::{PASSWORD as OTR_PASSWORD, SUBSCRIPTION_KEY};
    let (url, state) = otr_server(Otr::default()).await;
    let wd = Workdir::new(&otr_subsidiary(&url));

    let out = wd.test(&[], &[("PROBE_OTR_PASSWORD", OTR_PASSWORD), ("PROBE_OTR_KEY", SUBSCRIPTION_KEY)]).await;
    assert_eq!(out.code, 0, "{out}");
    assert!(out.line("acme-east").starts_with("acme-east  otr (api)  ok: logged in as acme"), "{out}");
    assert_eq!(crate::fakes::api::lock(&state).logins, 1);
    assert_eq!(crate::fakes::api::lock(&state).invoice_posts, 0, "no invoice sent");

    let out = wd.test(&[], &[("PROBE_OTR_PASSWORD", WRONG_PASSWORD), ("PROBE_OTR_KEY", SUBSCRIPTION_KEY)]).await;
    assert_eq!(out.code, 1, "{out}");
    let line = out.line("acme-east");
    assert!(line.contains("FAILED: authentication failed: OTR refused the login"), "{out}");
    // The stand-in echoes the form and the key back: both are scrubbed, its words kept.
    assert!(line.contains("bad login"), "{out}");
    for secret in [WRONG_PASSWORD, SUBSCRIPTION_KEY] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "{secret} leaked:\n{out}");
    }
    assert_eq!(crate::fakes::api::lock(&state).logins, 1);
}
