//! Transfers: each file of an upload or download on a stream of its own, followed by the UI
//! through shared [`TransferEntry`]s.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_files::{Inbox, Progress};
use tether_i18n::t;
use tether_protocol::msg::SessionId;

use super::{Connection, Sink};
use crate::net::AgentClient;
use crate::state::{Event, TransferStatus};

impl Connection {
    /// Lists a folder of the customer's.
    pub(super) fn list(&self, session: SessionId, path: String, sink: &Sink) {
        let c = self.client.clone();
        let sink = sink.clone();
        tokio::spawn(async move {
            match c.list(session, &path, false).await {
                Ok((path, parent, entries)) => sink.send(Event::Listing {
                    session,
                    path,
                    parent,
                    entries,
                }),
                Err(e) => sink.send(Event::Notice(t!(
                    "files-cannot-list",
                    why = crate::words::error(&e)
                ))),
            }
        });
    }

    /// Sends a local file or folder.
    pub(super) fn upload(
        &self,
        session: SessionId,
        local: PathBuf,
        transfers: &Transfers,
        sink: &Sink,
    ) {
        tokio::spawn(upload_all(
            self.client.clone(),
            session,
            local,
            transfers.clone(),
            sink.clone(),
        ));
    }

    /// Fetches a file or folder of the customer's into `into`.
    pub(super) fn download(
        &self,
        session: SessionId,
        (remote, dir): (String, bool),
        into: PathBuf,
        transfers: &Transfers,
        sink: &Sink,
    ) {
        tokio::spawn(download_all(
            self.client.clone(),
            session,
            remote,
            dir,
            transfers.clone(),
            into,
            sink.clone(),
        ));
    }
}

/// Stops a transfer.
pub(super) fn cancel(transfers: &Transfers, id: u64) {
    for t in lock_transfers(transfers).iter().filter(|t| t.id == id) {
        t.progress
            .cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A transfer the backend runs, shared with the UI.
#[derive(Debug)]
pub struct TransferEntry {
    /// Identifier.
    pub id: u64,
    /// The session.
    pub session: SessionId,
    /// File name (relative path).
    pub name: String,
    /// To the customer.
    pub upload: bool,
    /// Bytes done and total; cancel flag.
    pub progress: Arc<Progress>,
    /// When it started moving.
    pub started: std::time::Instant,
    /// Running, or how it ended.
    pub status: TransferStatus,
}

/// Transfers, newest last.
pub type Transfers = Arc<Mutex<Vec<TransferEntry>>>;

/// Locks the transfers, recovering from a poisoned lock.
pub fn lock_transfers(t: &Transfers) -> MutexGuard<'_, Vec<TransferEntry>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

static NEXT_TRANSFER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn new_transfer(
    transfers: &Transfers,
    session: SessionId,
    name: &str,
    upload: bool,
) -> (u64, Arc<Progress>) {
    let id = NEXT_TRANSFER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let progress = Progress::new(0);
    lock_transfers(transfers).push(TransferEntry {
        id,
        session,
        name: name.to_string(),
        upload,
        progress: progress.clone(),
        started: std::time::Instant::now(),
        status: TransferStatus::Running,
    });
    (id, progress)
}

fn end_transfer(transfers: &Transfers, id: u64, status: TransferStatus) {
    if let Some(t) = lock_transfers(transfers).iter_mut().find(|t| t.id == id) {
        t.status = status;
    }
}

/// Sends a file or every file of a folder, one stream per file, in order.
async fn upload_all(
    c: Arc<AgentClient>,
    session: SessionId,
    local: PathBuf,
    transfers: Transfers,
    sink: Sink,
) {
    let l = local.clone();
    let files = match tokio::task::spawn_blocking(move || tether_files::walk(&l, 100_000)).await {
        Ok(Ok(f)) if !f.is_empty() => f,
        Ok(Ok(_)) => {
            return sink.send(Event::Notice(t!(
                "files-nothing-to-send",
                name = local.display().to_string()
            )));
        }
        Ok(Err(e)) => {
            return sink.send(Event::Notice(t!(
                "files-cannot-send",
                name = local.display().to_string(),
                why = e.to_string()
            )));
        }
        Err(e) => return sink.send(Event::Notice(e.to_string())),
    };
    for (path, rel, _) in files {
        let (id, progress) = new_transfer(&transfers, session, &rel, true);
        let status = match c.upload(session, &path, &rel, &progress).await {
            Ok(saved) => TransferStatus::Done {
                saved: t!("files-saved-remote", name = saved.as_str()),
                folder: None,
            },
            Err(e) => TransferStatus::Failed(crate::words::error(&e)),
        };
        let failed = matches!(status, TransferStatus::Failed(_));
        end_transfer(&transfers, id, status);
        sink.repaint();
        if failed && progress.cancelled() {
            break;
        }
    }
}

/// Fetches a file, or every file of a folder (keeping the folder's name), one stream per file.
async fn download_all(
    c: Arc<AgentClient>,
    session: SessionId,
    remote: String,
    dir: bool,
    transfers: Transfers,
    into: PathBuf,
    sink: Sink,
) {
    let inbox = Inbox::new(into, tether_files::DEFAULT_MAX_FILE);
    let jobs: Vec<(String, Option<String>)> = if dir {
        match c.list(session, &remote, true).await {
            Ok((path, _, entries)) => {
                let base = std::path::Path::new(&path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                entries
                    .into_iter()
                    .map(|e| {
                        (
                            format!("{path}/{}", e.name),
                            Some(format!("{base}/{}", e.name)),
                        )
                    })
                    .collect()
            }
            Err(e) => {
                return sink.send(Event::Notice(t!(
                    "files-cannot-list",
                    why = crate::words::error(&e)
                )));
            }
        }
    } else {
        vec![(remote, None)]
    };
    for (path, save_as) in jobs {
        let shown = save_as
            .clone()
            .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(&path).to_string());
        let (id, progress) = new_transfer(&transfers, session, &shown, false);
        let status = match c
            .download(session, &path, save_as.as_deref(), &inbox, &progress)
            .await
        {
            Ok(saved) => {
                let path = inbox.dir().join(saved);
                TransferStatus::Done {
                    saved: path.display().to_string(),
                    folder: path.parent().map(|p| p.to_path_buf()),
                }
            }
            Err(e) => TransferStatus::Failed(crate::words::error(&e)),
        };
        end_transfer(&transfers, id, status);
        sink.repaint();
        if progress.cancelled() {
            break;
        }
    }
}
