//! Owner-only files and folders for secrets (certificate key, database), and the data dir's lock.

use std::fs;
use std::io;
use std::path::Path;

/// Name of the lock file in the data dir.
const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a data dir, held until dropped.
///
/// Everything that creates something once per data dir (the certificate, the PIN secret, the
/// database and its migrations) does it under this lock, so `serve`, `fingerprint` and the other
/// commands started at the same moment on a new data dir agree on one of each. Readers of
/// finished files do not need it.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: fs::File,
}

/// Creates `dir` owner-only if needed and takes its lock, waiting for another process to release
/// it.
pub(crate) fn lock_dir(dir: &Path) -> io::Result<DirLock> {
    // An operator may keep the data dir elsewhere behind a link.
    tether_files::private_dir(dir, tether_files::Symlinks::Follow)?;
    let mut opts = fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(dir.join(LOCK_FILE))?;
    file.lock()?;
    Ok(DirLock { _file: file })
}

/// Creates `path` empty if missing, and restricts it to its owner.
pub(crate) fn private_file(path: &Path) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    drop(opts.open(path)?);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Writes `bytes` to a new owner-only file at `path`, atomically (temporary file and rename).
/// Callers that may race hold the data dir's [`DirLock`].
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
