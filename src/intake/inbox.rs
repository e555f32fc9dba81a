//! Inbox pickup (docs/reliability.md rule 6), shared by every inbox folder.
//!
//! The folder is scanned on a timer; inotify only wakes the scanner early (network shares send
//! no events, and a create event arrives while the writer is still writing). A file is taken
//! once its size and mtime have held still for a quiet period. Temp and editor files, hidden
//! files, folders and symlinks are never taken. A taken file is renamed into `processing/`
//! before it is read, so two scanners never both take it; when done it moves to the archive
//! with a result file, or to `failed/` with `<file>.error.txt`. Whatever is left in
//! `processing/` after a crash is finished at the next start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::files::{move_file, safe_file_name, unique_path, write_atomically};

/// One inbox folder and where its files go when done.
#[derive(Clone, Debug)]
pub struct InboxFolder {
    /// The folder ops drop files into.
    pub dir: PathBuf,
    /// Where processed files and their result files go.
    pub archive: PathBuf,
}

impl InboxFolder {
    pub fn processing(&self) -> PathBuf {
        self.dir.join("processing")
    }

    pub fn failed(&self) -> PathBuf {
        self.dir.join("failed")
    }

    /// Creates the folder, `processing/` and `failed/`, and the archive folder.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [self.dir.clone(), self.processing(), self.failed(), self.archive.clone()] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    /// Files left in `processing/` (by a crash), oldest name first.
    pub fn leftovers(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = regular_files(&self.processing())?;
        files.sort();
        Ok(files)
    }

    /// Renames a stable file into `processing/`. `Ok(None)` when another scanner took it first.
    pub fn claim(&self, file: &Path) -> std::io::Result<Option<PathBuf>> {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let target = unique_path(&self.processing(), &safe_file_name(&name));
        match move_file(file, &target) {
            Ok(()) => Ok(Some(target)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Moves a processed file to the archive as `<stamp>-<name>` with `<stamp>-<name>.<suffix>`
    /// beside it holding `result`. The result file is written first, so an archived input
    /// always has its result.
    pub fn archive(&self, processing: &Path, result_suffix: &str, result: &[u8]) -> std::io::Result<PathBuf> {
        let name = stamped_name(processing);
        let target = unique_path(&self.archive, &name);
        let target_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(name);
        write_atomically(&self.archive.join(format!("{target_name}.{result_suffix}")), result)?;
        move_file(processing, &target)?;
        Ok(target)
    }

    /// As [`InboxFolder::archive`], with the result already written (and synced) to `temp` in
    /// the archive folder: renamed beside the archived input first.
    pub fn archive_with(&self, processing: &Path, result_suffix: &str, temp: &Path) -> std::io::Result<PathBuf> {
        let name = stamped_name(processing);
        let target = unique_path(&self.archive, &name);
        let target_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(name);
        std::fs::rename(temp, self.archive.join(format!("{target_name}.{result_suffix}")))?;
        crate::files::sync_dir(&self.archive)?;
        move_file(processing, &target)?;
        Ok(target)
    }

    /// Moves a file that could not be processed to `failed/` with `<file>.error.txt`.
    pub fn fail(&self, processing: &Path, reason: &str) -> std::io::Result<PathBuf> {
        let name = processing.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let target = unique_path(&self.failed(), &name);
        let target_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(name);
        let text = format!(
            "{target_name} could not be processed:\n{reason}\n\nFix the file and drop it into the inbox again.\n"
        );
        write_atomically(&self.failed().join(format!("{target_name}.error.txt")), text.as_bytes())?;
        move_file(processing, &target)?;
        Ok(target)
    }
}

fn stamped_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), name)
}

/// Whether a file name is a temp, editor or hidden file that is never taken.
pub fn is_ignored_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || name.ends_with('~')
        || [".tmp", ".part", ".crdownload", ".swp", ".partial", ".error.txt"].iter().any(|s| lower.ends_with(s))
}

/// Regular files (not folders, not symlinks) directly in `dir` that are not ignored.
fn regular_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        // file_type() does not follow symlinks: a link out of the inbox is never read.
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        if is_ignored_name(&name.to_string_lossy()) {
            continue;
        }
        files.push(entry.path());
    }
    Ok(files)
}

/// What a file looked like when last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Observation {
    len: u64,
    modified: Option<SystemTime>,
}

/// Tracks files between scans and says which have held still for the quiet period.
#[derive(Debug)]
pub struct StableFiles {
    quiet: Duration,
    seen: HashMap<PathBuf, (Observation, Instant)>,
}

impl StableFiles {
    pub fn new(quiet: Duration) -> StableFiles {
        StableFiles { quiet, seen: HashMap::new() }
    }

    /// Scans `dir` at time `now` and returns the files whose size and mtime have not changed
    /// for the quiet period, in name order. `now` is a parameter so tests control time.
    pub fn scan(&mut self, dir: &Path, now: Instant) -> std::io::Result<Vec<PathBuf>> {
        let files = regular_files(dir)?;
        let mut ready = Vec::new();
        let mut still_present = HashMap::new();
        for file in files {
            let Ok(meta) = std::fs::symlink_metadata(&file) else { continue };
            let observation = Observation { len: meta.len(), modified: meta.modified().ok() };
            let since = match self.seen.get(&file) {
                Some((previous, since)) if *previous == observation => *since,
                _ => now,
            };
            if now.duration_since(since) >= self.quiet && self.seen.contains_key(&file) {
                ready.push(file.clone());
            }
            still_present.insert(file, (observation, since));
        }
        for file in &ready {
            still_present.remove(file);
        }
        self.seen = still_present;
        ready.sort();
        Ok(ready)
    }

    /// When the earliest file seen but not yet taken will have held still for the quiet period
    /// (if it does not change meanwhile): the scanner wakes then, so a file is taken when its own
    /// quiet period ends, not at the next timed scan.
    pub fn next_due(&self) -> Option<Instant> {
        self.seen.values().map(|(_, since)| *since + self.quiet).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_and_editor_files_are_ignored() {
        for name in
            ["~$loads.xlsx", ".~lock.loads.csv#", "loads.csv.tmp", "x.part", "y.crdownload", ".hidden", "a.csv~"]
        {
            assert!(is_ignored_name(name), "{name}");
        }
        assert!(!is_ignored_name("loads.csv"));
    }

    #[test]
    fn a_file_is_ready_only_after_holding_still() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("loads.csv");
        std::fs::write(&file, "load_number\n").expect("write");
        let quiet = Duration::from_secs(2);
        let mut stable = StableFiles::new(quiet);
        let t0 = Instant::now();
        assert!(stable.scan(dir.path(), t0).expect("scan").is_empty(), "first sight is never ready");
        assert!(stable.scan(dir.path(), t0 + Duration::from_secs(1)).expect("scan").is_empty());
        // The writer appends: the clock restarts.
        std::fs::write(&file, "load_number\nL-1\n").expect("write");
        assert!(stable.scan(dir.path(), t0 + Duration::from_secs(3)).expect("scan").is_empty());
        assert!(stable.scan(dir.path(), t0 + Duration::from_secs(4)).expect("scan").is_empty());
        assert_eq!(stable.scan(dir.path(), t0 + Duration::from_secs(5)).expect("scan"), vec![file]);
    }

    #[test]
    fn the_scanner_knows_when_the_next_file_will_be_ready() {
        let dir = tempfile::tempdir().expect("tempdir");
        let quiet = Duration::from_secs(2);
        let mut stable = StableFiles::new(quiet);
        let t0 = Instant::now();
        assert_eq!(stable.scan(dir.path(), t0).expect("scan"), Vec::<PathBuf>::new());
        assert_eq!(stable.next_due(), None, "nothing waiting");
        std::fs::write(dir.path().join("a.csv"), "x").expect("write");
        stable.scan(dir.path(), t0 + Duration::from_millis(300)).expect("scan");
        std::fs::write(dir.path().join("b.csv"), "y").expect("write");
        stable.scan(dir.path(), t0 + Duration::from_millis(900)).expect("scan");
        assert_eq!(stable.next_due(), Some(t0 + Duration::from_millis(300) + quiet), "the earliest file's own end");
        let ready = stable.scan(dir.path(), t0 + Duration::from_millis(2300)).expect("scan");
        assert_eq!(ready, vec![dir.path().join("a.csv")]);
        assert_eq!(stable.next_due(), Some(t0 + Duration::from_millis(900) + quiet));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_folders_are_not_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::NamedTempFile::new().expect("outside");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link.csv")).expect("symlink");
        std::fs::create_dir(dir.path().join("processing")).expect("mkdir");
        let mut stable = StableFiles::new(Duration::ZERO);
        let t0 = Instant::now();
        stable.scan(dir.path(), t0).expect("scan");
        assert!(stable.scan(dir.path(), t0 + Duration::from_secs(1)).expect("scan").is_empty());
    }
}
