//! The host's side of file streams: consent once per agent and session, browsing, receiving
//! uploads into the download folder, sending downloads; every transfer shown in the customer's
//! window with a Stop button.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_i18n::t;
use tether_net::{read_msg, write_msg};
use tether_protocol::consent::{Answer, Ask, Permission};
use tether_protocol::desk::Participant;
use tether_protocol::files::{Entry, FileMsg};
use tether_protocol::frame::{FILE_REQUEST_MAX_FRAME, FILES_MAX_FRAME};
use tether_protocol::input::{Audit, Grant};

use crate::consent::{Shared, TransferRow, TransferState};
use crate::grants::{AgentConsent, Answerer, Consents};
use tether_files::{Inbox, Progress, TransferError, hash_file, hash_prefix, send_file};

/// Most entries in one listing.
const MAX_ENTRIES: usize = 20_000;

/// The transfers of one session.
pub struct FileAccess {
    shared: Shared,
    next_id: AtomicU64,
    running: Mutex<HashMap<u64, (Participant, Arc<Progress>)>>,
    received: AtomicU64,
}

impl std::fmt::Debug for FileAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAccess").finish_non_exhaustive()
    }
}

impl FileAccess {
    /// No transfers yet; they are shown in `shared`.
    pub fn new(shared: Shared) -> Self {
        Self {
            shared,
            next_id: AtomicU64::new(0),
            running: Mutex::default(),
            received: AtomicU64::new(0),
        }
    }

    /// Shows `agent`'s file access in the window.
    fn show(&self, agent: &Participant, g: Grant) {
        let a = agent.clone();
        self.shared.update(|v| {
            v.files.insert(a, g);
        });
    }

    /// The customer answered `agent`'s file prompt.
    pub fn answer(&self, agent: &AgentConsent, name: &Participant, allow: bool, now: Duration) {
        let answered = agent.gate().answer(Permission::Files, allow, now);
        if let Answer::Grant(g) = answered {
            self.show(name, g);
            agent.changed();
        }
    }

    /// The customer took file access back from `agent`: its running transfers stop.
    pub fn revoke(&self, agent: &AgentConsent, name: &Participant) {
        agent.gate().revoke(Permission::Files);
        agent.changed();
        self.show(name, Grant::Off);
        if let Ok(r) = self.running.lock() {
            for (a, p) in r.values() {
                if a == name {
                    p.cancel.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Stops one transfer.
    pub fn cancel(&self, id: u64) {
        if let Ok(r) = self.running.lock()
            && let Some((_, p)) = r.get(&id)
        {
            p.cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// What the file service needs.
#[derive(Clone)]
pub struct FileDeps {
    /// Where uploads go.
    pub inbox: Inbox,
    /// The customer's window.
    pub shared: Shared,
    /// Transfers of the session.
    pub access: Arc<FileAccess>,
    /// This agent's permissions.
    pub consent: Arc<AgentConsent>,
    /// The session's clock for consent.
    pub consents: Consents,
    /// Who answers the file prompt.
    pub answerer: Answerer,
    /// Most files received in one session.
    pub max_files: u64,
}

impl std::fmt::Debug for FileDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDeps")
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

/// Why file access was not given.
enum NoAccess {
    /// Nobody can answer on this computer.
    Nobody,
    /// The customer said no (now, or a moment ago).
    Declined,
}

impl FileDeps {
    /// Waits until file access is decided for `agent`.
    async fn consent(&self, agent: &Participant) -> Result<(), NoAccess> {
        loop {
            let notified = self.consent.notified();
            let ask = self
                .consent
                .gate()
                .request(Permission::Files, self.consents.now());
            match ask {
                Ask::Granted => return Ok(()),
                Ask::AllowedUpFront => {
                    self.shared.log(t!(
                        "act-agent-line",
                        agent = agent.to_string(),
                        line = crate::activity::audit(&Audit::AllowedUpFront(Permission::Files))
                    ));
                    self.access.show(agent, Grant::On);
                    return Ok(());
                }
                Ask::CoolingDown(_) => return Err(NoAccess::Declined),
                Ask::Prompt => {
                    self.access.show(agent, Grant::Asked);
                    if let Some(allow) = self.answerer.ask(agent, Permission::Files, None) {
                        self.access
                            .answer(&self.consent, agent, allow, self.consents.now());
                        return match allow {
                            true => Ok(()),
                            false => Err(NoAccess::Nobody),
                        };
                    }
                }
                Ask::Pending => {}
            }
            notified.await;
            match self.consent.gate().grant(Permission::Files) {
                Grant::On => return Ok(()),
                Grant::Denied => return Err(NoAccess::Declined),
                Grant::Off | Grant::Asked => {}
            }
        }
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Lists `path` (or the home folder), one level or recursively.
fn listing(path: &str, recursive: bool) -> Result<FileMsg, String> {
    let dir = if path.is_empty() {
        home()
    } else {
        PathBuf::from(path)
    };
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let mut entries = Vec::new();
    if recursive {
        let files = tether_files::walk(&dir, MAX_ENTRIES).map_err(|e| e.to_string())?;
        let base = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (path, rel, size) in files {
            let rel = rel
                .strip_prefix(&format!("{base}/"))
                .unwrap_or(&rel)
                .to_string();
            entries.push(Entry {
                name: rel,
                dir: false,
                size,
                modified: std::fs::symlink_metadata(&path)
                    .ok()
                    .and_then(|m| modified_secs(&m)),
            });
        }
    } else {
        for e in
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        {
            let Ok(e) = e else { continue };
            let Ok(m) = e.metadata() else { continue };
            entries.push(Entry {
                name: e.file_name().to_string_lossy().into_owned(),
                dir: m.is_dir(),
                size: if m.is_file() { m.len() } else { 0 },
                modified: modified_secs(&m),
            });
            if entries.len() >= MAX_ENTRIES {
                break;
            }
        }
        entries.sort_by(|a, b| {
            b.dir
                .cmp(&a.dir)
                .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
        });
    }
    Ok(FileMsg::Listing {
        path: dir.display().to_string(),
        parent: dir.parent().map(|p| p.display().to_string()),
        entries,
    })
}

/// Last modification of a file, seconds since the Unix epoch.
fn modified_secs(m: &std::fs::Metadata) -> Option<u64> {
    m.modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

async fn reply(send: &mut quinn::SendStream, msg: &FileMsg) -> bool {
    write_msg(send, msg, FILES_MAX_FRAME).await.is_ok()
}

/// Serves one file stream of `agent`.
pub async fn serve(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    agent: Participant,
    deps: FileDeps,
) {
    let first = match read_msg::<FileMsg>(&mut recv, FILE_REQUEST_MAX_FRAME).await {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(e) => {
            if e.is_protocol_violation() {
                let line = t!("act-bad-file-request", why = e.to_string());
                deps.shared
                    .log(t!("act-agent-line", agent = agent.to_string(), line = line));
                let _ = recv.stop(tether_net::close::PROTOCOL.into());
            }
            return;
        }
    };
    if let Err(no) = deps.consent(&agent).await {
        let why = match no {
            NoAccess::Nobody => {
                "the customer did not allow file access (nobody can answer on this computer)"
            }
            NoAccess::Declined => "the customer did not allow file access",
        };
        let _ = reply(&mut send, &FileMsg::Error(why.into())).await;
        let _ = send.finish();
        return;
    }
    match first {
        FileMsg::List { path, recursive } => {
            let res = tokio::task::spawn_blocking(move || listing(&path, recursive))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            let msg = res.unwrap_or_else(FileMsg::Error);
            let _ = reply(&mut send, &msg).await;
            let _ = send.finish();
        }
        FileMsg::Put { name, size, hash } => {
            receive(send, recv, agent, deps, name, size, hash).await
        }
        FileMsg::Get { path } => transmit(send, recv, agent, deps, path).await,
        other => {
            let _ = reply(
                &mut send,
                &FileMsg::Error(format!("unexpected request {other:?}")),
            )
            .await;
        }
    }
}

struct Row {
    id: u64,
    progress: Arc<Progress>,
    deps: FileDeps,
    ticker: tokio::task::JoinHandle<()>,
}

impl Row {
    fn start(deps: &FileDeps, agent: &Participant, name: &str, incoming: bool, total: u64) -> Row {
        let id = deps.access.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let progress = Progress::new(total);
        if let Ok(mut r) = deps.access.running.lock() {
            r.insert(id, (agent.clone(), progress.clone()));
        }
        let row = TransferRow {
            id,
            agent: agent.clone(),
            name: name.to_string(),
            incoming,
            done: 0,
            total,
            state: TransferState::Running,
        };
        deps.shared.update(|v| v.transfers.push(row));
        let (shared, p) = (deps.shared.clone(), progress.clone());
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let done = p.done.load(Ordering::Relaxed);
                shared.update(|v| {
                    if let Some(r) = v.transfers.iter_mut().find(|r| r.id == id) {
                        r.done = done;
                    }
                });
            }
        });
        Row {
            id,
            progress,
            deps: deps.clone(),
            ticker,
        }
    }

    fn finish(self, state: TransferState) {
        self.ticker.abort();
        if let Ok(mut r) = self.deps.access.running.lock() {
            r.remove(&self.id);
        }
        let done = self.progress.done.load(Ordering::Relaxed);
        let id = self.id;
        self.deps.shared.update(|v| {
            if let Some(r) = v.transfers.iter_mut().find(|r| r.id == id) {
                r.done = done;
                r.state = state;
            }
        });
    }
}

async fn receive(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    agent: Participant,
    deps: FileDeps,
    name: String,
    size: u64,
    hash: [u8; 32],
) {
    if deps.access.received.fetch_add(1, Ordering::Relaxed) >= deps.max_files {
        let line = t!(
            "act-too-many-files",
            name = name.as_str(),
            max = deps.max_files
        );
        deps.shared
            .log(t!("act-agent-line", agent = agent.to_string(), line = line));
        let _ = reply(
            &mut send,
            &FileMsg::Error(format!(
                "over the limit of {} files per session",
                deps.max_files
            )),
        )
        .await;
        return;
    }
    if let Err(e) = tether_protocol::files::safe_relative(&name) {
        let line = t!(
            "act-refused-path",
            name = name.as_str(),
            why = e.to_string()
        );
        deps.shared
            .log(t!("act-agent-line", agent = agent.to_string(), line = line));
        let _ = reply(
            &mut send,
            &FileMsg::Error(format!("refused path {name:?}: {e}")),
        )
        .await;
        return;
    }
    let ready = {
        let inbox = deps.inbox.clone();
        tokio::task::spawn_blocking(move || inbox.ready(size, &hash)).await
    };
    let (have, prefix_hash) = match ready {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let _ = reply(&mut send, &FileMsg::Error(e.to_string())).await;
            return;
        }
        Err(e) => {
            let _ = reply(&mut send, &FileMsg::Error(e.to_string())).await;
            return;
        }
    };
    if !reply(&mut send, &FileMsg::Ready { have, prefix_hash }).await {
        return;
    }
    let from = match read_msg::<FileMsg>(&mut recv, FILE_REQUEST_MAX_FRAME).await {
        Ok(Some(FileMsg::Start { from })) => from,
        _ => return,
    };
    let row = Row::start(&deps, &agent, &name, true, size);
    let res = deps
        .inbox
        .receive(&name, size, &hash, from, &mut recv, &row.progress)
        .await;
    match res {
        Ok(saved) => {
            deps.shared.log(t!(
                "act-received",
                agent = agent.to_string(),
                name = saved.as_str(),
                size = size
            ));
            deps.shared
                .report(tether_protocol::chat::HostNote::FileReceived {
                    name: saved.clone(),
                    size,
                });
            let _ = reply(&mut send, &FileMsg::Done { saved_as: saved }).await;
            let _ = send.finish();
            row.finish(TransferState::Done);
        }
        Err(e) => {
            let line = t!(
                "act-upload-failed",
                name = name.as_str(),
                why = e.to_string()
            );
            deps.shared
                .log(t!("act-agent-line", agent = agent.to_string(), line = line));
            if matches!(e, TransferError::Cancelled) {
                let _ = recv.stop(tether_protocol::files::CANCEL_CODE.into());
                let _ = send.reset(tether_protocol::files::CANCEL_CODE.into());
            } else {
                let _ = reply(&mut send, &FileMsg::Error(e.to_string())).await;
                let _ = send.finish();
            }
            row.finish(TransferState::Failed(e.to_string()));
        }
    }
}

async fn transmit(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    agent: Participant,
    deps: FileDeps,
    path: String,
) {
    let p = PathBuf::from(&path);
    let meta = tokio::task::spawn_blocking(move || -> Result<(PathBuf, u64, [u8; 32]), String> {
        let p = p
            .canonicalize()
            .map_err(|e| format!("cannot open {}: {e}", p.display()))?;
        let m = std::fs::metadata(&p).map_err(|e| e.to_string())?;
        if !m.is_file() {
            return Err(format!("{} is not a regular file", p.display()));
        }
        let h = hash_file(&p).map_err(|e| e.to_string())?;
        Ok((p, m.len(), h))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (p, size, hash) = match meta {
        Ok(m) => m,
        Err(e) => {
            let _ = reply(&mut send, &FileMsg::Error(e)).await;
            return;
        }
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    if !reply(
        &mut send,
        &FileMsg::Meta {
            name: name.clone(),
            size,
            hash,
        },
    )
    .await
    {
        return;
    }
    let (have, prefix) = match read_msg::<FileMsg>(&mut recv, FILE_REQUEST_MAX_FRAME).await {
        Ok(Some(FileMsg::Ready { have, prefix_hash })) => (have, prefix_hash),
        _ => return,
    };
    let from = if have > 0 && have <= size && prefix_matches(&p, have, prefix).await {
        have
    } else {
        0
    };
    if !reply(&mut send, &FileMsg::Start { from }).await {
        return;
    }
    let row = Row::start(&deps, &agent, &name, false, size);
    match send_file(&p, from, &mut send, &row.progress).await {
        Ok(()) => {
            deps.shared.log(t!(
                "act-fetched",
                agent = agent.to_string(),
                name = p.display().to_string(),
                size = size
            ));
            deps.shared
                .report(tether_protocol::chat::HostNote::FileSent {
                    name: name.clone(),
                    size,
                });
            row.finish(TransferState::Done);
        }
        Err(e) => {
            let line = t!(
                "act-download-failed",
                name = p.display().to_string(),
                why = e.to_string()
            );
            deps.shared
                .log(t!("act-agent-line", agent = agent.to_string(), line = line));
            row.finish(TransferState::Failed(e.to_string()));
        }
    }
}

async fn prefix_matches(path: &Path, have: u64, prefix: [u8; 32]) -> bool {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || hash_prefix(&p, have).map(|h| h == prefix).unwrap_or(false))
        .await
        .unwrap_or(false)
}
