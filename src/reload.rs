//! Live reload (docs/reliability.md rule 12): on SIGHUP, or when a file under the config folder
//! changes, the daemon reads and validates the whole configuration again. A valid one is
//! applied without a restart and what changed is logged; an invalid one is refused with every
//! error (file, key) and the daemon keeps running on the old one. This module loads, compares
//! and keeps the outcome; [`crate::daemon`] swaps the running components.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::config::{ConfigError, Settings, Subsidiary, process_environment};

/// Reads and validates the configuration at `path` with the process environment.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    Settings::load(path, &process_environment())
}

/// The folders whose `.toml` files make up the configuration: the main file's folder and its
/// `subsidiaries/` folder.
pub fn config_dirs(main_file: &Path) -> Vec<PathBuf> {
    let dir = main_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut dirs = vec![dir.to_path_buf()];
    let subsidiaries = dir.join("subsidiaries");
    if subsidiaries.is_dir() {
        dirs.push(subsidiaries);
    }
    dirs
}

/// Whether a file-system event path is part of the configuration (not an editor's temp file).
pub fn is_config_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.extension().is_some_and(|e| e == "toml") && !crate::intake::inbox::is_ignored_name(&name)
}

fn debug<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

/// What changed between two valid configurations, one line each, for the log. Secrets are
/// never shown (their `Debug` is redacted); a changed credential shows as a changed section.
pub fn changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, a, b) in [
        ("paths", debug(&old.paths), debug(&new.paths)),
        ("intake", debug(&old.intake), debug(&new.intake)),
        ("invoicing", debug(&old.invoicing), debug(&new.invoicing)),
        ("submission", debug(&old.submission), debug(&new.submission)),
        ("credit", debug(&old.credit), debug(&new.credit)),
        ("alerts", debug(&old.alerts), debug(&new.alerts)),
        ("smtp", debug(&old.smtp), debug(&new.smtp)),
    ] {
        if a != b {
            lines.push(format!("[{name}] changed"));
        }
    }
    let by_id = |settings: &Settings| -> BTreeMap<String, String> {
        settings.subsidiaries.iter().map(|s| (s.id.clone(), debug(s))).collect()
    };
    let (before, after) = (by_id(old), by_id(new));
    for (id, text) in &after {
        match before.get(id) {
            None => lines.push(format!("subsidiary {id} added")),
            Some(previous) if previous != text => {
                let (Some(a), Some(b)) = (old.subsidiary(id), new.subsidiary(id)) else { continue };
                lines.push(format!("subsidiary {id} changed: {}", subsidiary_changes(a, b).join(", ")));
            }
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        lines.push(format!("subsidiary {id} removed"));
    }
    let providers: std::collections::BTreeSet<&String> = old.providers.keys().chain(new.providers.keys()).collect();
    for id in providers {
        if old.providers.get(id).map(debug) != new.providers.get(id).map(debug) {
            lines.push(format!("provider {id} report settings changed"));
        }
    }
    lines
}

/// The fields of a subsidiary that changed, naming old and new values where they are plain.
fn subsidiary_changes(a: &Subsidiary, b: &Subsidiary) -> Vec<String> {
    let mut out = Vec::new();
    let factoring = |s: &Subsidiary| {
        s.factoring.as_ref().map(|f| {
            (
                f.provider.id.to_string(),
                f.active,
                f.schedule.as_ref().map(|s| s.expression.clone()).unwrap_or_default(),
                debug(&f.connection),
            )
        })
    };
    match (factoring(a), factoring(b)) {
        (Some((pa, aa, sa, ca)), Some((pb, ab, sb, cb))) => {
            if pa != pb {
                out.push(format!("provider {pa} → {pb}"));
            }
            if aa != ab {
                out.push(format!("active {aa} → {ab}"));
            }
            if sa != sb {
                out.push(format!("schedule `{sa}` → `{sb}`"));
            }
            if ca != cb {
                out.push("connection settings".to_string());
            }
        }
        (None, Some(_)) => out.push("factoring added".to_string()),
        (Some(_), None) => out.push("factoring removed".to_string()),
        (None, None) => {}
    }
    if a.timezone != b.timezone {
        out.push(format!("timezone {} → {}", a.timezone, b.timezone));
    }
    if out.is_empty() {
        out.push("details".to_string());
    }
    out
}

/// Settings a running daemon cannot switch: they are kept until a restart.
pub fn needs_restart(old: &Settings, new: &Settings) -> Vec<String> {
    let mut lines = Vec::new();
    if old.database.url != new.database.url || old.database.max_connections != new.database.max_connections {
        lines.push("[database]".to_string());
    }
    if old.http.as_ref().map(|h| h.listen) != new.http.as_ref().map(|h| h.listen) {
        lines.push("[http] listen".to_string());
    }
    if debug(&old.log) != debug(&new.log) {
        lines.push("[log]".to_string());
    }
    lines
}

/// The outcome of the last reload, for `/readyz`, metrics and logs.
#[derive(Clone, Debug, Default)]
pub struct ReloadOutcome {
    /// `false` after a reload that was refused.
    pub failed: bool,
    pub at: Option<DateTime<Utc>>,
    /// The errors of the refused configuration (file, key: message).
    pub errors: Vec<String>,
    pub reloads: u64,
    pub refused: u64,
}

/// The reload outcome, shared by the daemon and whoever reports on it.
#[derive(Clone, Debug, Default)]
pub struct ReloadState(Arc<Mutex<ReloadOutcome>>);

impl ReloadState {
    fn lock(&self) -> MutexGuard<'_, ReloadOutcome> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn succeeded(&self) {
        let mut state = self.lock();
        state.failed = false;
        state.at = Some(Utc::now());
        state.errors.clear();
        state.reloads += 1;
    }

    pub fn refused(&self, errors: Vec<String>) {
        let mut state = self.lock();
        state.failed = true;
        state.at = Some(Utc::now());
        state.errors = errors;
        state.refused += 1;
    }

    pub fn get(&self) -> ReloadOutcome {
        self.lock().clone()
    }
}
