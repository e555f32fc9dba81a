//! Durable file writes and safe file names (docs/reliability.md rules 8 and 14): write under a temp
//! name, fsync, rename to the final name, fsync the folder, so no reader ever sees half a file
//! and a crash leaves either the old state or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Hex sha256 of a file's bytes: how files are told apart (inbox dedupe, batch manifests,
/// reconciliation).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to `path` atomically. The temp file sits beside the target (same file
/// system, so the rename is atomic) and starts with `.` so inbox scanners ignore it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Writes and fsyncs a file under its final name as given (callers pass a temp name and
/// rename it themselves when the rename must wait for something else, such as a commit).
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Mode of the files factord writes for people to read (the outbox): owner read-write, group
/// read. Set explicitly, whatever the umask (the shipped unit's is 0027).
pub const SHARED_FILE_MODE: u32 = 0o640;
/// Mode of the folders holding them: owner all, group read and enter.
pub const SHARED_DIR_MODE: u32 = 0o750;

/// Creates `dir` and its missing parents, each with [`SHARED_DIR_MODE`] set explicitly.
pub fn create_shared_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d);
        next = d.parent();
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => std::fs::set_permissions(d, std::fs::Permissions::from_mode(SHARED_DIR_MODE))?,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Sets [`SHARED_DIR_MODE`] on `dir` (a folder factord made earlier, under another umask).
pub fn share_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SHARED_DIR_MODE))
}

/// As [`write_synced`], with [`SHARED_FILE_MODE`] set explicitly and the folders made with
/// [`SHARED_DIR_MODE`].
pub fn write_shared(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_shared_dirs(dir)?;
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(SHARED_FILE_MODE).open(path)?;
    // The mode given at creation is cut by the umask; this one is not.
    file.set_permissions(std::fs::Permissions::from_mode(SHARED_FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Moves `from` to `to` by rename (same file system) and makes the move durable.
pub fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsync on a folder, so a rename into it survives a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A file name made safe for writing: letters, digits, `.`, `-` and `_` kept, anything else
/// `_`, no leading dot, at most 120 characters. Names of files factord writes come from ids
/// or from this, never from raw input text.
pub fn safe_file_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(120)
        .collect();
    while safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    if safe.is_empty() { "file".to_string() } else { safe }
}

/// `dir/name`, or `dir/name.2`, `dir/name.3`… if taken: an archived file never overwrites another.
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (2..).map(|n| dir.join(format!("{name}.{n}"))).find(|p| !p.exists()).unwrap_or(first)
}

/// A text cell for a generated CSV, with formula injection escaped (docs/reliability.md rule 13):
/// text starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`.
pub fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert_eq!(safe_file_name("loads (1).csv"), "loads__1_.csv");
        assert_eq!(safe_file_name("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(safe_file_name(".hidden"), "_hidden");
        assert_eq!(safe_file_name(""), "file");
    }

    #[test]
    fn atomic_write_leaves_only_the_final_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/out.txt");
        write_atomically(&path, b"hello").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).expect("list").collect();
        assert_eq!(names.len(), 1);
    }
}
