//! `tether-files`: moving files over QUIC streams: the receiving folder with verified, resumable,
//! non-clobbering writes, and the sending side. Used by the host (uploads from the agent,
//! downloads to the agent) and by the agent console (the mirror image).
//!
//! Disk work runs on blocking threads fed through small bounded channels, so a transfer never
//! stalls the async workers that carry the screen and the keystrokes.
//!
//! Every received file is written to an owner-only temporary file in a private folder inside the
//! receiving folder, named after the file's BLAKE3 and size; it is linked into place under a free
//! name only once its whole hash matches, and removed if it does not. A transfer that is merely
//! interrupted keeps its temporary file, and a retry of the same file continues after the prefix
//! once both sides agree on the prefix's hash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tether_protocol::files::{PathError, safe_relative};

/// Largest file received by default (64 GiB).
pub const DEFAULT_MAX_FILE: u64 = 64 << 30;

/// Bytes per chunk on the wire and on disk.
pub const CHUNK: usize = 1 << 20;
/// Name of the private folder for partial files.
const PARTIAL_DIR: &str = ".tether-partial";

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The path from the other side is not acceptable.
    #[error("refused path: {0}")]
    Path(#[from] PathError),
    /// A folder on the way is a symbolic link or not a folder.
    #[error("refused path: {0} is not a plain folder")]
    Escape(String),
    /// The data did not match the sender's hash; nothing was kept.
    #[error("the file arrived corrupted (BLAKE3 mismatch); nothing was saved")]
    Corrupt,
    /// The transfer was cancelled; nothing was kept.
    #[error("cancelled")]
    Cancelled,
    /// The stream ended early; the verified prefix is kept for a retry.
    #[error("interrupted after {0} bytes; retry to resume")]
    Interrupted(u64),
    /// Over a configured limit.
    #[error("{0}")]
    Limit(String),
    /// Disk trouble.
    #[error("disk: {0}")]
    Io(#[from] io::Error),
}

/// Chunks in flight between a stream and its disk thread.
const PIPE_DEPTH: usize = 4;

/// Progress of one transfer, shared with whoever shows it.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes done (including a resumed prefix).
    pub done: AtomicU64,
    /// Where the data started (a resumed prefix's length, else 0).
    pub resumed_from: AtomicU64,
    /// Total bytes.
    pub total: AtomicU64,
    /// Set to stop the transfer.
    pub cancel: AtomicBool,
}

impl Progress {
    /// A new progress of `total` bytes.
    pub fn new(total: u64) -> Arc<Self> {
        let p = Arc::new(Self::default());
        p.total.store(total, Ordering::Relaxed);
        p
    }

    /// Whether someone asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// How far along, 0 to 1 (see [`fraction`]).
    pub fn fraction(&self) -> f32 {
        fraction(
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// How far a transfer of `total` bytes is after `done`, 0 to 1; an empty file is done at once.
/// Both the console and the customer's window show progress with this.
pub fn fraction(done: u64, total: u64) -> f32 {
    if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0) as f32
    }
}

/// BLAKE3 of the first `len` bytes of a file.
pub fn hash_prefix(path: &Path, len: u64) -> io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path)?.take(len))?;
    Ok(*h.finalize().as_bytes())
}

/// BLAKE3 of a whole file.
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path)?)?;
    Ok(*h.finalize().as_bytes())
}

/// What [`private_dir`] does with a folder that is a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Use the folder it points to (an operator's data dir moved to another disk).
    Follow,
    /// Refuse it (a receiving folder: nothing from the other side goes through a link).
    Refuse,
}

/// Creates `dir` (and its parents) if missing and makes it owner-only (0700 on Unix); with
/// [`Symlinks::Refuse`], a `dir` that is a symbolic link or not a folder is an error.
pub fn private_dir(dir: &Path, symlinks: Symlinks) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if symlinks == Symlinks::Refuse && (m.file_type().is_symlink() || !m.is_dir()) => {
            return Err(io::Error::other(format!(
                "{} is not a plain folder",
                dir.display()
            )));
        }
        Ok(_) => {}
        Err(_) => fs::create_dir_all(dir)?,
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn open_partial(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

/// A folder that receives files.
#[derive(Debug, Clone)]
pub struct Inbox {
    dir: PathBuf,
    /// Largest file accepted.
    pub max_file: u64,
}

impl Inbox {
    /// Receives into `dir` (created if needed), files up to `max_file` bytes.
    pub fn new(dir: PathBuf, max_file: u64) -> Self {
        Self { dir, max_file }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn partial(&self, size: u64, hash: &[u8; 32]) -> PathBuf {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(PARTIAL_DIR)
            .join(format!("{hex}-{size}.part"))
    }

    /// Checks a name from the other side before anything is written.
    pub fn check_name(name: &str) -> Result<Vec<String>, TransferError> {
        Ok(safe_relative(name)?)
    }

    /// What is already held of this file: the length of its partial file and that prefix's hash.
    pub fn ready(&self, size: u64, hash: &[u8; 32]) -> Result<(u64, [u8; 32]), TransferError> {
        if size > self.max_file {
            return Err(TransferError::Limit(format!(
                "file of {size} bytes is over the {} byte limit",
                self.max_file
            )));
        }
        fs::create_dir_all(&self.dir)?;
        private_dir(&self.dir.join(PARTIAL_DIR), Symlinks::Refuse)?;
        let p = self.partial(size, hash);
        let have = match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => m.len().min(size),
            Ok(_) => return Err(TransferError::Escape(p.display().to_string())),
            Err(_) => 0,
        };
        let prefix = if have > 0 {
            hash_prefix(&p, have)?
        } else {
            *blake3::hash(b"").as_bytes()
        };
        Ok((have, prefix))
    }

    /// Receives `name` (a relative path from the other side) of `size` bytes and BLAKE3 `hash`,
    /// starting at byte `from`, reading from `src`. Returns where it was saved, relative to the
    /// folder.
    pub async fn receive(
        &self,
        name: &str,
        size: u64,
        hash: &[u8; 32],
        from: u64,
        src: &mut quinn::RecvStream,
        progress: &Progress,
    ) -> Result<String, TransferError> {
        let parts = Self::check_name(name)?;
        let partial = self.partial(size, hash);
        // The disk thread: reopens the partial file, hashes the prefix kept, then writes and
        // hashes what the stream brings, in order.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(PIPE_DEPTH);
        let (start_tx, start_rx) = tokio::sync::oneshot::channel::<u64>();
        let path = partial.clone();
        let disk = tokio::task::spawn_blocking(move || -> Result<blake3::Hasher, TransferError> {
            let mut file = open_partial(&path)?;
            let from = from.min(file.metadata()?.len()).min(size);
            file.set_len(from)?;
            let mut hasher = blake3::Hasher::new();
            if from > 0 {
                file.seek(SeekFrom::Start(0))?;
                hasher.update_reader((&mut file).take(from))?;
            }
            file.seek(SeekFrom::Start(from))?;
            let _ = start_tx.send(from);
            // QUIC hands data over packet by packet; write it to disk in large pieces.
            let mut file = io::BufWriter::with_capacity(CHUNK, file);
            while let Some(chunk) = rx.blocking_recv() {
                file.write_all(&chunk)?;
                hasher.update(&chunk);
            }
            file.flush()?;
            Ok(hasher)
        });
        let Ok(from) = start_rx.await else {
            // The disk thread failed before it could start: say why.
            return Err(match disk.await {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => TransferError::Interrupted(0),
                Err(e) => TransferError::Io(io::Error::other(e.to_string())),
            });
        };
        let mut done = from;
        progress.done.store(done, Ordering::Relaxed);
        progress.resumed_from.store(from, Ordering::Relaxed);
        let mut stop: Option<TransferError> = None;
        while done < size {
            if progress.cancelled() {
                stop = Some(TransferError::Cancelled);
                break;
            }
            let want = (size - done).min(CHUNK as u64) as usize;
            match src.read_chunk(want, true).await {
                Ok(Some(chunk)) => {
                    done += chunk.bytes.len() as u64;
                    if tx.send(chunk.bytes).await.is_err() {
                        break;
                    }
                    progress.done.store(done, Ordering::Relaxed);
                }
                Ok(None) => {
                    stop = Some(TransferError::Interrupted(done));
                    break;
                }
                Err(quinn::ReadError::Reset(code))
                    if code.into_inner() == u64::from(tether_protocol::files::CANCEL_CODE) =>
                {
                    stop = Some(TransferError::Cancelled);
                    break;
                }
                Err(_) => {
                    stop = Some(TransferError::Interrupted(done));
                    break;
                }
            }
        }
        drop(tx);
        let written = disk
            .await
            .map_err(|e| TransferError::Io(io::Error::other(e.to_string())))?;
        let remove = |p: PathBuf| async move {
            let _ = tokio::task::spawn_blocking(move || fs::remove_file(p)).await;
        };
        match stop {
            Some(TransferError::Cancelled) => {
                remove(partial).await;
                return Err(TransferError::Cancelled);
            }
            // An interrupted transfer keeps its verified prefix for a retry.
            Some(e) => return Err(e),
            None => {}
        }
        let hasher = written?;
        if hasher.finalize().as_bytes() != hash {
            remove(partial).await;
            return Err(TransferError::Corrupt);
        }
        let inbox = self.clone();
        tokio::task::spawn_blocking(move || inbox.place(&partial, &parts))
            .await
            .map_err(|e| TransferError::Io(io::Error::other(e.to_string())))?
    }

    /// Moves a verified partial file to `parts` under the folder, creating folders on the way
    /// (never through a symbolic link) and never replacing an existing file.
    fn place(&self, partial: &Path, parts: &[String]) -> Result<String, TransferError> {
        let (file_name, folders) = parts
            .split_last()
            .ok_or(TransferError::Path(PathError::Empty))?;
        let mut dir = self.dir.clone();
        for f in folders {
            dir.push(f);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                    return Err(TransferError::Escape(dir.display().to_string()));
                }
                Ok(_) => {}
                Err(_) => fs::create_dir(&dir)?,
            }
        }
        let (stem, ext) = match file_name.rfind('.') {
            Some(i) if i > 0 => (&file_name[..i], &file_name[i..]),
            _ => (file_name.as_str(), ""),
        };
        for n in 0..10_000u32 {
            let candidate = if n == 0 {
                file_name.clone()
            } else {
                format!("{stem} ({n}){ext}")
            };
            let target = dir.join(&candidate);
            match fs::hard_link(partial, &target) {
                Ok(()) => {
                    let _ = fs::remove_file(partial);
                    let mut rel: Vec<String> = folders.to_vec();
                    rel.push(candidate);
                    return Ok(rel.join("/"));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TransferError::Limit("no free name for the file".into()))
    }
}

/// Sends `path` from byte `from` to `dst`, then finishes the stream. The file is read on a
/// blocking thread a few chunks ahead of the stream.
pub async fn send_file(
    path: &Path,
    from: u64,
    dst: &mut quinn::SendStream,
    progress: &Progress,
) -> Result<(), TransferError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(PIPE_DEPTH);
    let p = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let mut file =
            match File::open(&p).and_then(|mut f| f.seek(SeekFrom::Start(from)).map(|_| f)) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            if n == 0 {
                return;
            }
            buf.truncate(n);
            if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                return;
            }
        }
    });
    let mut done = from;
    progress.done.store(done, Ordering::Relaxed);
    progress.resumed_from.store(from, Ordering::Relaxed);
    let result = loop {
        if progress.cancelled() {
            let _ = dst.reset(tether_protocol::files::CANCEL_CODE.into());
            break Err(TransferError::Cancelled);
        }
        match rx.recv().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(TransferError::Io(e)),
            Some(Ok(chunk)) => {
                let n = chunk.len() as u64;
                if dst.write_chunk(chunk).await.is_err() {
                    break Err(TransferError::Interrupted(done));
                }
                done += n;
                progress.done.store(done, Ordering::Relaxed);
            }
        }
    };
    drop(rx);
    let _ = reader.await;
    result?;
    dst.finish().map_err(|_| TransferError::Interrupted(done))?;
    Ok(())
}

/// Every regular file under `root` (a file or a folder), with `/`-separated paths relative to
/// the parent of `root` (so a folder keeps its name). Symbolic links are not followed.
pub fn walk(root: &Path, limit: usize) -> Result<Vec<(PathBuf, String, u64)>, TransferError> {
    let base = root.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p)?;
        if m.is_dir() {
            for e in fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        } else if m.is_file() {
            let rel = p.strip_prefix(&base).unwrap_or(&p);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((p.clone(), rel.join("/"), m.len()));
            if out.len() > limit {
                return Err(TransferError::Limit(format!("more than {limit} files")));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_files_are_placed_without_clobbering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inbox = Inbox::new(dir.path().join("in"), 1 << 30);
        let hash = *blake3::hash(b"abc").as_bytes();
        let (have, _) = inbox.ready(3, &hash).expect("ready");
        assert_eq!(have, 0);
        for expected in ["a/b.txt", "a/b (1).txt", "a/b (2).txt"] {
            let partial = inbox.partial(3, &hash);
            fs::write(&partial, b"abc").expect("write");
            let saved = inbox
                .place(&partial, &["a".into(), "b.txt".into()])
                .expect("place");
            assert_eq!(saved, expected);
            assert!(!partial.exists());
        }
        assert_eq!(
            fs::read(dir.path().join("in/a/b (1).txt")).expect("read"),
            b"abc"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_folder_on_the_way_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        let inbox = Inbox::new(dir.path().join("in"), 1 << 30);
        let hash = *blake3::hash(b"x").as_bytes();
        inbox.ready(1, &hash).expect("ready");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("in/evil")).expect("symlink");
        let partial = inbox.partial(1, &hash);
        fs::write(&partial, b"x").expect("write");
        let r = inbox.place(&partial, &["evil".into(), "f".into()]);
        assert!(matches!(r, Err(TransferError::Escape(_))), "{r:?}");
        assert!(
            fs::read_dir(outside.path()).expect("read").next().is_none(),
            "nothing written outside"
        );
    }

    #[test]
    fn partial_files_are_private_and_prefixes_are_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inbox = Inbox::new(dir.path().to_path_buf(), 1 << 30);
        let hash = [7u8; 32];
        inbox.ready(10, &hash).expect("ready");
        let p = inbox.partial(10, &hash);
        drop(open_partial(&p).expect("open"));
        fs::write(&p, b"hello").expect("write");
        let (have, prefix) = inbox.ready(10, &hash).expect("ready");
        assert_eq!(have, 5);
        assert_eq!(prefix, *blake3::hash(b"hello").as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0);
            let dmode = fs::metadata(p.parent().expect("parent"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(dmode & 0o077, 0);
        }
        assert!(matches!(
            Inbox::new(dir.path().to_path_buf(), 4).ready(10, &hash),
            Err(TransferError::Limit(_))
        ));
    }
}
