//! Atomic writes that keep a 0600 backup of the previous file.

use super::*;

/// The permission bits a rewrite of `path` keeps: the file's own, or 0600 for a new file.
pub fn mode_to_keep(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600)
}

/// Atomically replaces `path` with `contents` (mode `mode`), keeping a 0600 backup of the old file.
///
/// The backup is `<path>.keyward-backup-<unix-seconds>` (with `-N` added if taken); its path is
/// returned. A symlinked `path` is written where it points, so dotfile managers keep their link.
/// A missing parent directory is created with mode 0700. On error the original is untouched and
/// neither the temp file nor the backup is left behind.
pub fn write_atomic_with_backup(
    path: &Path,
    contents: &str,
    mode: u32,
) -> Result<Option<PathBuf>, AwsFileError> {
    let werr = |source| AwsFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let rerr = |source| AwsFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(rerr)?,
        _ => path.to_path_buf(),
    };
    let Some(file_name) = target.file_name().map(OsStr::to_owned) else {
        return Err(werr(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path does not name a file",
        )));
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Zeroized on drop: the credentials file holds secret keys.
    let old = match std::fs::read(&target) {
        Ok(bytes) => Some(Zeroizing::new(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(rerr(e)),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(werr)?;
    let backup = match &old {
        Some(bytes) => Some(write_backup(dir, &file_name, bytes).map_err(werr)?),
        None => None,
    };
    let replaced = write_temp(dir, &file_name, contents.as_bytes(), mode & 0o777).and_then(|tmp| {
        std::fs::rename(&tmp, &target).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    });
    if let Err(e) = replaced {
        if let Some(b) = &backup {
            let _ = std::fs::remove_file(b);
        }
        return Err(werr(e));
    }
    // Makes the rename durable. Best effort: the new file is already in place, so an error here
    // must not be reported as a write that left the original unchanged.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(backup)
}

fn unix_time() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// `dir/<file_name><suffix>` without going through a lossy string.
fn sibling(dir: &Path, file_name: &OsStr, suffix: &str) -> PathBuf {
    let mut name = file_name.to_owned();
    name.push(suffix);
    dir.join(name)
}

/// Writes `bytes` to a new file `dir/<file_name>.keyward-backup-<unix-seconds>[-N]`, mode 0600.
fn write_backup(dir: &Path, file_name: &OsStr, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let stamp = unix_time().as_secs();
    let names = (0..1000).map(|n| match n {
        0 => sibling(dir, file_name, &format!(".keyward-backup-{stamp}")),
        n => sibling(dir, file_name, &format!(".keyward-backup-{stamp}-{n}")),
    });
    write_first_free(names, bytes, 0o600, "no free backup file name")
}

/// Writes `bytes` to a new hidden temp file beside the target and returns its path.
fn write_temp(dir: &Path, file_name: &OsStr, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let names = (0..16).map(|attempt| {
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(
            ".keyward-tmp-{:010}-{:09}-{attempt}",
            std::process::id(),
            unix_time().subsec_nanos()
        ));
        dir.join(name)
    });
    write_first_free(names, bytes, mode, "no free temporary file name")
}

/// Writes `bytes` (then `mode`) to the first of `names` that does not exist yet, and returns it;
/// a file it could not fill is removed again.
fn write_first_free(
    names: impl Iterator<Item = PathBuf>,
    bytes: &[u8],
    mode: u32,
    none_free: &'static str,
) -> std::io::Result<PathBuf> {
    for path in names {
        match create_new(&path) {
            Ok(file) => {
                return fill(file, bytes, mode)
                    .map(|()| path.clone())
                    .inspect_err(|_| {
                        let _ = std::fs::remove_file(&path);
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        none_free,
    ))
}

/// Creates a file that must not exist yet, readable by its owner only until `fill` sets its mode.
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Sets the file's mode exactly (the umask does not apply), writes `bytes` and fsyncs.
fn fill(mut file: std::fs::File, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}
