//! The documentation holds to the code: every configuration key the code accepts is in
//! docs/configuration.md and every key there is accepted; every `docs/…` path and every
//! `docs/design.md §N` / `docs/reliability.md rule N` citation in the code and the pages
//! resolves; relative links between the pages lead to a file and a heading that exist. No
//! database is needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use factord::config::{Settings, accepted_keys};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys docs/configuration.md documents: the first cell of every table row under
/// `## Reference`, which must be exactly one key in backticks.
fn documented_keys() -> Vec<String> {
    let page = read(&repo().join("docs/configuration.md"));
    let reference = page.split("\n## Reference\n").nth(1).expect("docs/configuration.md has `## Reference`");
    let reference = reference.split("\n## ").next().unwrap_or(reference);
    let mut keys = Vec::new();
    for line in reference.lines().filter(|l| l.starts_with('|')) {
        let cell = line.split('|').nth(1).unwrap_or("").trim();
        if cell == "key" || cell.chars().all(|c| c == '-') {
            continue;
        }
        let key = cell
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .filter(|k| !k.contains('`') && !k.contains(' '))
            .unwrap_or_else(|| panic!("docs/configuration.md: a reference row names one key in backticks: {line}"));
        keys.push(key.to_string());
    }
    keys
}

#[test]
fn every_accepted_config_key_is_documented_and_every_documented_key_is_accepted() {
    let accepted = accepted_keys();
    let documented = documented_keys();
    assert!(accepted.len() > 50, "the code's keys were read: {accepted:?}");
    let accepted_set: BTreeSet<&String> = accepted.iter().collect();
    let documented_set: BTreeSet<&String> = documented.iter().collect();
    assert_eq!(documented_set.len(), documented.len(), "a key is documented twice in docs/configuration.md");
    let undocumented: Vec<&&String> = accepted_set.difference(&documented_set).collect();
    let unknown: Vec<&&String> = documented_set.difference(&accepted_set).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "accepted by the code but missing from docs/configuration.md: {undocumented:?}\n\
         in docs/configuration.md but not accepted by the code: {unknown:?}"
    );
}

/// A configuration file that sets `key` (placeholders filled in), as TOML.
fn config_setting(key: &str) -> String {
    let segments: Vec<&str> = key
        .split('.')
        .map(|s| match s {
            "<id>" => "triumph",
            "<outcome>" => "purchased",
            "<field>" => "invoice_number",
            other => other,
        })
        .collect();
    let mut leaf = toml::Table::new();
    leaf.insert(segments[segments.len() - 1].to_string(), toml::Value::String("x".into()));
    let mut value = toml::Value::Table(leaf);
    for segment in segments[..segments.len() - 1].iter().rev() {
        let mut table = toml::Table::new();
        // `[[subsidiary]]` is an array of tables.
        let inner = if *segment == "subsidiary" { toml::Value::Array(vec![value]) } else { value };
        table.insert(segment.to_string(), inner);
        value = toml::Value::Table(table);
    }
    toml::to_string(&value).expect("toml")
}

/// The keys the loader reports as unknown in a file that sets `key`.
fn unknown_keys_reported(dir: &Path, key: &str) -> Vec<String> {
    let file = dir.join("factord.toml");
    std::fs::write(&file, config_setting(key)).expect("write config");
    match Settings::load(&file, &Default::default()) {
        Ok(_) => Vec::new(),
        Err(error) => error.issues.iter().filter(|i| i.message == "unknown key").map(|i| i.key.clone()).collect(),
    }
}

/// The key list is the loader's: each key is taken (its value may be refused, never the key),
/// and a key off the list is reported unknown.
#[test]
fn every_listed_key_is_one_the_loader_takes() {
    let dir = tempfile::tempdir().expect("tempdir");
    for key in accepted_keys() {
        let unknown = unknown_keys_reported(dir.path(), &key);
        assert!(unknown.is_empty(), "{key}: the loader reports unknown keys {unknown:?}");
    }
    for key in ["database.urll", "subsidiary.factoring.ftp.hostname", "provider.<id>.reports.sheets"] {
        assert!(!unknown_keys_reported(dir.path(), key).is_empty(), "{key} is unknown to the loader");
    }
}

/// Text files under the folders the code and the pages live in.
fn text_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "fixtures") {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "scripts", "systemd", "config", "docs", ".ci"] {
        walk(&repo().join(dir), &mut files);
    }
    files.extend(["README.md", "CONTRIBUTING.md"].map(|f| repo().join(f)));
    files.retain(|f| std::fs::read_to_string(f).is_ok());
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo()).unwrap_or(path).display().to_string()
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// Headings of a markdown page, without their `#`s.
fn headings(page: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in page.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_string());
        }
    }
    out
}

/// Whether `page` has the section `§N` (a heading `N. …`) or, for `rule`, the numbered rule
/// `N. …`.
fn has_section(page: &str, number: &str) -> bool {
    headings(page).iter().any(|h| h.starts_with(&format!("{number}. ")))
}

fn has_rule(page: &str, number: &str) -> bool {
    page.lines().any(|l| l.starts_with(&format!("{number}. ")))
}

/// The numbers of a list such as `§5, §6 and §10`, `§2–§3`, `6–7` or `8 and 14` at the start
/// of `text` (`§` required when `section`).
fn numbers_at(mut text: &str, section: bool) -> Vec<String> {
    let mut numbers = Vec::new();
    loop {
        let item = if section { text.strip_prefix('§') } else { Some(text) };
        let Some(item) = item else { break };
        let digits = item.find(|c: char| !c.is_ascii_digit()).unwrap_or(item.len());
        if digits == 0 {
            break;
        }
        // A section may carry a letter (`§8a`).
        let end =
            if section && item[digits..].starts_with(|c: char| c.is_ascii_lowercase()) { digits + 1 } else { digits };
        numbers.push(item[..end].to_string());
        let rest = &item[end..];
        let next = [", ", "–", "-", " and "].iter().find_map(|sep| rest.strip_prefix(sep));
        match next {
            Some(next) => text = next,
            None => break,
        }
    }
    numbers
}

#[test]
fn every_docs_path_and_citation_resolves() {
    let mut problems = Vec::new();
    for file in text_files() {
        let text = read(&file);
        let name = relative(&file);
        // Citations by the old names, without the file in the repository.
        if name != "tests/it/docs.rs" {
            for word in ["DESIGN", "RELIABILITY", "STYLE", "CRATES"] {
                for old in [format!("{word} §"), format!("{word}.md"), format!("{word} rule"), format!("{word} \"")] {
                    if text.contains(&old) {
                        problems.push(format!("{name}: `{old}…` cites a page by its old name; write docs/…"));
                    }
                }
            }
        }
        for (at, _) in text.match_indices("docs/") {
            if text[..at].chars().next_back().is_some_and(|c| is_path_char(c) || c == ':') {
                continue; // part of a longer path or a URL
            }
            let len = text[at..].find(|c: char| !is_path_char(c)).unwrap_or(text.len() - at);
            let path = text[at..at + len].trim_end_matches(['.', '-']);
            if !repo().join(path).exists() {
                problems.push(format!("{name}: {path} does not exist"));
                continue;
            }
            // What follows the path: a citation, possibly after the path's own markdown link.
            let mut rest = &text[at + path.len()..];
            if let Some(after_link) = rest.strip_prefix("](") {
                rest = after_link.split_once(')').map_or("", |(_, r)| r);
            }
            if !path.ends_with(".md") {
                continue;
            }
            let page = read(&repo().join(path));
            if let Some(list) = rest.strip_prefix(' ').filter(|r| r.starts_with('§')) {
                for number in &numbers_at(list, true) {
                    if !has_section(&page, number) {
                        problems.push(format!("{name}: {path} §{number}: no such section"));
                    }
                }
            } else if let Some(list) = rest.strip_prefix(" rules ").or_else(|| rest.strip_prefix(" rule ")) {
                for number in &numbers_at(list, false) {
                    if !has_rule(&page, number) {
                        problems.push(format!("{name}: {path} rule {number}: no such rule"));
                    }
                }
            } else if let Some(quoted) = rest.strip_prefix(", \"").and_then(|r| r.split_once('"')).map(|(q, _)| q)
                && !headings(&page).iter().any(|h| h == quoted)
            {
                problems.push(format!("{name}: {path}, \"{quoted}\": no such heading"));
            }
        }
    }
    // Within the design page, a bare `§N` is one of its own sections.
    let design = read(&repo().join("docs/design.md"));
    for (at, _) in design.match_indices('§') {
        for number in numbers_at(&design[at..], true) {
            if !has_section(&design, &number) {
                problems.push(format!("docs/design.md: §{number}: no such section"));
            }
        }
    }
    assert!(problems.is_empty(), "references that do not resolve:\n{}", problems.join("\n"));
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn relative_links_between_the_pages_resolve() {
    let mut pages: Vec<PathBuf> =
        text_files().into_iter().filter(|f| f.extension().is_some_and(|e| e == "md")).collect();
    pages.retain(|p| !p.starts_with(repo().join("src")) && !p.starts_with(repo().join("tests")));
    assert!(pages.len() > 10, "{pages:?}");
    let mut problems = Vec::new();
    let mut links = 0;
    for page in &pages {
        let text = read(page);
        let name = relative(page);
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            for (at, _) in line.match_indices("](") {
                let Some((target, _)) = line[at + 2..].split_once(')') else { continue };
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                links += 1;
                let (file, fragment) = target.split_once('#').map_or((target, None), |(f, a)| (f, Some(a)));
                let linked = if file.is_empty() { page.clone() } else { page.parent().expect("page dir").join(file) };
                if !linked.exists() {
                    problems.push(format!("{name}: ({target}): {} does not exist", relative(&linked)));
                    continue;
                }
                if let Some(fragment) = fragment {
                    let anchors: Vec<String> = headings(&read(&linked)).iter().map(|h| anchor(h)).collect();
                    if !anchors.iter().any(|a| a == fragment) {
                        problems.push(format!("{name}: ({target}): no heading #{fragment} in {}", relative(&linked)));
                    }
                }
            }
        }
    }
    assert!(links > 50, "links were found: {links}");
    assert!(problems.is_empty(), "links that do not resolve:\n{}", problems.join("\n"));
}
