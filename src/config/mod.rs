//! Configuration: files and environment → [`RawConfig`] → validated [`Settings`].
//!
//! Layers (docs/design.md §10): built-in defaults, then the main file (`config/factord.toml`), then one
//! file per subsidiary in `subsidiaries/*.toml` beside it, then environment variables
//! `FACTORD__SECTION__KEY`, which win. Validation happens in one place, [`Settings::from_raw`],
//! and collects every problem before it answers, each naming its file (or environment
//! variable) and key, so that `factord check-config` can list them all at once.
//!
//! The layering is done here with the `toml` crate rather than a generic config library: such
//! libraries fold keys to lower case, which would corrupt customer ids in `customer_overrides`,
//! and cannot say which file a bad key came from.
//!
//! Loading configuration never writes anything. Secrets are read from `*_file` (systemd
//! `LoadCredential=`) or `*_env` into [`SecretString`]s and never printed.

mod alerts;
mod keys;
mod raw;
mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use alerts::{AlertSettings, SmtpSettings, WebhookSettings};
pub use keys::accepted_keys;
pub use raw::RawConfig;
pub use settings::*;

/// Prefix of the environment variables that override file settings.
pub const ENV_PREFIX: &str = "FACTORD__";

/// The process environment, passed in rather than read globally so tests can supply their own.
pub type Environment = BTreeMap<String, String>;

/// One problem in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// A file path, or `environment variable NAME`.
    pub source: String,
    /// The key, as a dotted path (`subsidiary[acme-east].factoring.provider`).
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: {}: {}", self.source, self.key, self.message)
        }
    }
}

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        writeln!(f, "configuration has {count} error{}:", if count == 1 { "" } else { "s" })?;
        for issue in &self.issues {
            writeln!(f, "  {issue}")?;
        }
        Ok(())
    }
}

/// Collects issues while the configuration is read and validated.
#[derive(Default)]
pub(crate) struct Issues(Vec<ConfigIssue>);

impl Issues {
    pub(crate) fn push(&mut self, source: impl fmt::Display, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue { source: source.to_string(), key: key.into(), message: message.into() });
    }
}

/// A subsidiary as read, with where it came from so errors can name the file.
pub(crate) struct SourcedSubsidiary {
    pub raw: raw::RawSubsidiary,
    pub source: PathBuf,
    /// Prefix for keys in error messages: `subsidiary[ID].` in the main file, empty in a file
    /// of its own.
    pub key_prefix: String,
}

/// Everything read from the files and environment, before validation.
pub(crate) struct Loaded {
    pub main: RawConfig,
    pub main_path: PathBuf,
    pub subsidiaries: Vec<SourcedSubsidiary>,
    /// Dotted key → environment variable, for the keys the environment set.
    pub env_keys: BTreeMap<String, String>,
}

impl Settings {
    /// Reads, layers and validates the configuration at `path`, with `env` as the environment.
    pub fn load(path: &Path, env: &Environment) -> Result<Settings, ConfigError> {
        let mut issues = Issues::default();
        let loaded = read_layers(path, env, &mut issues);
        let settings = loaded.and_then(|loaded| Settings::from_raw(loaded, env, &mut issues));
        match settings {
            Some(settings) if issues.0.is_empty() => Ok(settings),
            _ => Err(ConfigError { issues: issues.0 }),
        }
    }
}

/// The process environment as a map.
pub fn process_environment() -> Environment {
    std::env::vars().collect()
}

fn read_layers(path: &Path, env: &Environment, issues: &mut Issues) -> Option<Loaded> {
    let source = path.display().to_string();
    let mut table = read_toml(path, issues)?;
    let env_keys = overlay_environment(&mut table, env, issues);
    let ids = subsidiary_ids(&table);

    let mut problems = Vec::new();
    let main: Option<RawConfig> = deserialize_reporting(toml::Value::Table(table), &mut problems);
    for problem in problems {
        let key = name_subsidiaries(&problem.key, &ids);
        // The environment variable that set this key (or a section under it), else the file.
        let var = env_keys.iter().find(|(k, _)| **k == key || k.starts_with(&format!("{key}."))).map(|(_, v)| v);
        match (var, problem.message) {
            (Some(var), None) => issues.push(format!("environment variable {var}"), key, "unknown key"),
            // The value came from the environment and may be a secret: it is not repeated.
            (Some(var), Some(_)) => issues.push(format!("environment variable {var}"), key, "value has the wrong form"),
            (None, None) => issues.push(&source, key, "unknown key"),
            (None, Some(message)) => issues.push(&source, key, message),
        }
    }
    let mut main = main?;

    let mut subsidiaries: Vec<SourcedSubsidiary> = Vec::new();
    for (index, raw) in std::mem::take(&mut main.subsidiary).into_iter().enumerate() {
        let label = raw.id.clone().unwrap_or_else(|| format!("#{}", index + 1));
        subsidiaries.push(SourcedSubsidiary {
            raw,
            source: path.to_path_buf(),
            key_prefix: format!("subsidiary[{label}]."),
        });
    }
    for file in subsidiary_files(path, issues) {
        let Some(table) = read_toml(&file, issues) else { continue };
        let mut problems = Vec::new();
        let raw = deserialize_reporting(toml::Value::Table(table), &mut problems);
        for problem in problems {
            issues.push(file.display(), problem.key, problem.message.unwrap_or_else(|| "unknown key".to_string()));
        }
        if let Some(raw) = raw {
            subsidiaries.push(SourcedSubsidiary { raw, source: file, key_prefix: String::new() });
        }
    }
    Some(Loaded { main, main_path: path.to_path_buf(), subsidiaries, env_keys })
}

/// A key that is unknown (`message` is `None`) or whose value has the wrong type.
struct Problem {
    key: String,
    message: Option<String>,
}

/// Deserializes `value`, reporting every unknown key and every value of the wrong type rather
/// than stopping at the first: a badly typed value is reported, removed, and the rest tried
/// again. `None` only when the document as a whole has the wrong shape.
fn deserialize_reporting<T: serde::de::DeserializeOwned>(
    mut value: toml::Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    // Each round removes one bad value, so the rounds are bounded by the number of values.
    for _ in 0..256 {
        let mut unknown = Vec::new();
        let mut collect = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
        let ignoring = serde_ignored::Deserializer::new(value.clone(), &mut collect);
        match serde_path_to_error::deserialize::<_, T>(ignoring) {
            Ok(parsed) => {
                problems.extend(unknown.iter().map(|key| Problem { key: bracket_indices(key), message: None }));
                return Some(parsed);
            }
            Err(error) => {
                let key = bracket_indices(&error.path().to_string());
                let message = one_line(&error.inner().to_string());
                let removed = remove_path(&mut value, error.path());
                problems.push(Problem { key, message: Some(message) });
                if !removed {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the value at `path` from a TOML document; `false` if there is nothing to remove.
fn remove_path(value: &mut toml::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().filter(|s| !matches!(s, Segment::Unknown)).collect();
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut node = value;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Map { key }, toml::Value::Table(table)) => table.get_mut(key.as_str()),
            (Segment::Seq { index }, toml::Value::Array(array)) => array.get_mut(*index),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    match (last, node) {
        (Segment::Map { key }, toml::Value::Table(table)) => table.remove(key.as_str()).is_some(),
        (Segment::Seq { index }, toml::Value::Array(array)) if *index < array.len() => {
            array.remove(*index);
            true
        }
        _ => false,
    }
}

/// The `id` of each `[[subsidiary]]` in the main file, by position, for naming keys.
fn subsidiary_ids(table: &toml::Table) -> Vec<Option<String>> {
    match table.get("subsidiary") {
        Some(toml::Value::Array(items)) => {
            items.iter().map(|item| item.get("id").and_then(toml::Value::as_str).map(str::to_string)).collect()
        }
        _ => Vec::new(),
    }
}

/// `subsidiary[0].x` → `subsidiary[acme-east].x`, the form used in every other message.
fn name_subsidiaries(key: &str, ids: &[Option<String>]) -> String {
    let Some(rest) = key.strip_prefix("subsidiary[") else { return key.to_string() };
    let Some((index, tail)) = rest.split_once(']') else { return key.to_string() };
    match index.parse::<usize>().ok().and_then(|i| ids.get(i)).and_then(Option::as_deref) {
        Some(id) => format!("subsidiary[{id}]{tail}"),
        None => key.to_string(),
    }
}

fn read_toml(path: &Path, issues: &mut Issues) -> Option<toml::Table> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            issues.push(path.display(), "", format!("cannot read the file: {error}"));
            return None;
        }
    };
    match text.parse::<toml::Table>() {
        Ok(table) => Some(table),
        Err(error) => {
            issues.push(path.display(), "", format!("not valid TOML: {}", one_line(&error.to_string())));
            None
        }
    }
}

/// `config/subsidiaries/*.toml` beside the main file, in name order.
fn subsidiary_files(main: &Path, issues: &mut Issues) -> Vec<PathBuf> {
    let dir = main.parent().unwrap_or(Path::new(".")).join("subsidiaries");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            issues.push(dir.display(), "", format!("cannot list the folder: {error}"));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    files.sort();
    files
}

/// Applies `FACTORD__SECTION__KEY=value` on top of the file's table. Values stay text; the
/// raw structs accept numbers and booleans written as text. Returns key → variable name.
fn overlay_environment(table: &mut toml::Table, env: &Environment, issues: &mut Issues) -> BTreeMap<String, String> {
    let mut applied = BTreeMap::new();
    for (name, value) in env.iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)) {
        let path: Vec<String> = name[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
        let source = format!("environment variable {name}");
        if path.iter().any(String::is_empty) {
            issues.push(source, "", "malformed name: expected FACTORD__SECTION__KEY");
            continue;
        }
        if path[0] == "subsidiary" {
            issues.push(source, path.join("."), "subsidiaries cannot be set from the environment; use a file");
            continue;
        }
        let key = path.join(".");
        match set_path(table, &path, value) {
            Ok(()) => {
                applied.insert(key, name.clone());
            }
            Err(segment) => issues.push(&source, &key, format!("`{segment}` is not a section")),
        }
    }
    applied
}

/// Sets `path` in `table` to the text `value`, creating sections on the way. Fails with the
/// segment that names a value rather than a section.
fn set_path(table: &mut toml::Table, path: &[String], value: &str) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), toml::Value::String(value.to_string()));
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => Err(first.clone()),
            }
        }
    }
}

/// serde_ignored prints sequence indices as `.0.` and optional sections as `?`; ops read
/// `subsidiary[0].factoring.retries` more easily.
fn bracket_indices(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('.').filter(|s| *s != "?" && !s.is_empty()) {
        if !out.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
