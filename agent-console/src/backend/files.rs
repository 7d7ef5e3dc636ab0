//! Transfers: each file of an upload or download on a stream of its own, followed by the UI
//! through shared [`TransferEntry`]s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tether_files::{Inbox, Progress};
use tether_i18n::t;
use tether_protocol::msg::SessionId;
use tokio::sync::watch;

use super::{Connection, Ctx, Sink};
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
    pub(super) fn upload(&self, session: SessionId, local: PathBuf, ctx: &Ctx<'_>) {
        tokio::spawn(upload_all(
            self.follow(session, ctx),
            session,
            local,
            ctx.transfers.clone(),
        ));
    }

    /// Fetches a file or folder of the customer's into `into`.
    pub(super) fn download(
        &self,
        session: SessionId,
        (remote, dir): (String, bool),
        into: PathBuf,
        ctx: &Ctx<'_>,
    ) {
        tokio::spawn(download_all(
            self.follow(session, ctx),
            session,
            (remote, dir),
            ctx.transfers.clone(),
            into,
        ));
    }

    fn follow(&self, session: SessionId, ctx: &Ctx<'_>) -> Links {
        Links {
            client: self.client.clone(),
            clients: ctx.clients.subscribe(),
            customer: ctx.customers.watch(session),
            sink: ctx.sink.clone(),
        }
    }
}

/// What a transfer follows to go on after a drop: the console's client (replaced when the
/// console comes back) and the customer's link.
struct Links {
    client: Arc<AgentClient>,
    clients: watch::Receiver<Option<Arc<AgentClient>>>,
    customer: watch::Receiver<CustomerLink>,
    sink: Sink,
}

impl Links {
    /// After a transfer failed (not cancelled): whether to try again, because the console came
    /// back on a new connection, or the customer came back since `returns`.
    async fn again(&mut self, returns: u64) -> bool {
        if !self.client.is_closed() {
            return came_back(&mut self.customer, returns, &self.sink).await;
        }
        self.sink
            .send(Event::Notice(t!("files-waiting-connection")));
        let old = self.client.clone();
        let window = Duration::from_secs(tether_protocol::msg::RESUME_WINDOW_SECS);
        let next = tokio::time::timeout(
            window,
            self.clients
                .wait_for(|c| c.as_ref().is_none_or(|c| !Arc::ptr_eq(c, &old))),
        )
        .await;
        match next {
            Ok(Ok(c)) => match c.clone() {
                Some(c) => {
                    self.client = c;
                    true
                }
                None => false,
            },
            _ => false,
        }
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
async fn upload_all(mut links: Links, session: SessionId, local: PathBuf, transfers: Transfers) {
    let sink = links.sink.clone();
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
        let status = loop {
            let returns = links.customer.borrow().returns;
            let c = links.client.clone();
            match c.upload(session, &path, &rel, &progress).await {
                Ok(saved) => {
                    break TransferStatus::Done {
                        saved: t!("files-saved-remote", name = saved.as_str()),
                        folder: None,
                    };
                }
                // A connection dropped: once it is back, go on from what the customer verified.
                Err(_) if !progress.cancelled() && links.again(returns).await => continue,
                Err(e) => break TransferStatus::Failed(crate::words::error(&e)),
            }
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
    mut links: Links,
    session: SessionId,
    (remote, dir): (String, bool),
    transfers: Transfers,
    into: PathBuf,
) {
    let sink = links.sink.clone();
    let c = links.client.clone();
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
        let status = loop {
            let returns = links.customer.borrow().returns;
            let c = links.client.clone();
            match c
                .download(session, &path, save_as.as_deref(), &inbox, &progress)
                .await
            {
                Ok(saved) => {
                    let path = inbox.dir().join(saved);
                    break TransferStatus::Done {
                        saved: path.display().to_string(),
                        folder: path.parent().map(|p| p.to_path_buf()),
                    };
                }
                // Back from a dropped connection: the inbox keeps the verified prefix.
                Err(_) if !progress.cancelled() && links.again(returns).await => continue,
                Err(e) => break TransferStatus::Failed(crate::words::error(&e)),
            }
        };
        end_transfer(&transfers, id, status);
        sink.repaint();
        if progress.cancelled() {
            break;
        }
    }
}

/// A session's customer link, as the relay reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CustomerLink {
    /// The customer's connection dropped and has not come back yet.
    pub(super) away: bool,
    /// How many times it came back.
    pub(super) returns: u64,
}

/// Every session's customer link.
#[derive(Debug, Clone, Default)]
pub(super) struct CustomerLinks(Arc<Mutex<HashMap<SessionId, watch::Sender<CustomerLink>>>>);

impl CustomerLinks {
    fn with(&self, session: SessionId, f: impl FnOnce(&watch::Sender<CustomerLink>)) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(map
            .entry(session)
            .or_insert_with(|| watch::channel(CustomerLink::default()).0));
    }

    /// Follows a session's customer link.
    pub(super) fn watch(&self, session: SessionId) -> watch::Receiver<CustomerLink> {
        let mut rx = None;
        self.with(session, |tx| rx = Some(tx.subscribe()));
        rx.unwrap_or_else(|| watch::channel(CustomerLink::default()).1)
    }

    /// The relay says the customer's connection dropped.
    pub(super) fn away(&self, session: SessionId) {
        self.with(session, |tx| tx.send_modify(|l| l.away = true));
    }

    /// The relay says the customer is back.
    pub(super) fn back(&self, session: SessionId) {
        self.with(session, |tx| {
            tx.send_modify(|l| {
                l.away = false;
                l.returns += 1;
            })
        });
    }

    /// The session is over for this console.
    pub(super) fn forget(&self, session: SessionId) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&session);
    }
}

/// How long after a transfer fails the relay may take to say the customer's connection dropped
/// (both hear of it at once: the relay resets the transfer when it gives the connection up).
const AWAY_NOTICE: Duration = Duration::from_secs(2);

/// After a transfer failed: whether it failed because the customer's connection dropped and the
/// customer came back since `returns` (within the relay's resume window). A failure for any
/// other reason is reported after [`AWAY_NOTICE`].
async fn came_back(link: &mut watch::Receiver<CustomerLink>, returns: u64, sink: &Sink) -> bool {
    let dropped = matches!(
        tokio::time::timeout(
            AWAY_NOTICE,
            link.wait_for(|l| l.away || l.returns > returns),
        )
        .await,
        Ok(Ok(_))
    );
    if !dropped {
        return false;
    }
    sink.send(Event::Notice(t!("files-waiting-customer")));
    let window = Duration::from_secs(tether_protocol::msg::RESUME_WINDOW_SECS);
    let wait = link.wait_for(|l| !l.away && l.returns > returns);
    matches!(tokio::time::timeout(window, wait).await, Ok(Ok(_)))
}
