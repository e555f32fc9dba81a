//! The layering the code promises (docs/architecture.md), checked on the source itself: the
//! store depends on nothing above it, and provider knowledge is reached through the catalogue,
//! never by matching on a provider's id.

use std::path::{Path, PathBuf};

use factord::providers::PROVIDERS;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Whether the file is a test module: its parent declares it under `#[cfg(test)]`.
fn is_test_module(path: &Path) -> bool {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) else { return false };
    let parents = [dir.with_extension("rs"), dir.join("mod.rs"), dir.join("lib.rs")];
    parents.iter().filter_map(|p| std::fs::read_to_string(p).ok()).any(|parent| {
        parent.contains(&format!("#[cfg(test)]\nmod {stem};"))
            || parent.contains(&format!("#[cfg(test)]\npub mod {stem};"))
    })
}

/// A file's code without its unit tests (everything from the first `#[cfg(test)]`, or all of a
/// test module) and without comment lines.
fn code_of(path: &Path) -> String {
    if is_test_module(path) {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("read source");
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_store_depends_on_nothing_above_it() {
    const ABOVE: &[&str] = &[
        "reports",
        "providers",
        "invoicing",
        "intake",
        "submit",
        "credit",
        "sync",
        "daemon",
        "cli",
        "http",
        "reload",
        "supervise",
        "rework",
    ];
    let mut found = Vec::new();
    for file in rust_files(&src().join("store")) {
        let code = code_of(&file);
        for module in ABOVE {
            if code.contains(&format!("crate::{module}::")) || code.contains(&format!("crate::{module}}}")) {
                found.push(format!("{} uses crate::{module}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "the store reaches above itself:\n{}", found.join("\n"));
}

#[test]
fn provider_ids_are_written_only_in_the_catalogue() {
    let catalogue = src().join("providers/catalogue.rs");
    let mut found = Vec::new();
    for file in rust_files(&src()).into_iter().filter(|f| *f != catalogue) {
        let code = code_of(&file);
        for provider in PROVIDERS.iter() {
            if code.contains(&format!("\"{}\"", provider.id)) {
                found.push(format!("{} names \"{}\"", file.display(), provider.id));
            }
        }
    }
    assert!(found.is_empty(), "provider ids outside the catalogue (ask the catalogue instead):\n{}", found.join("\n"));
}
