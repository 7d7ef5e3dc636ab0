//! The console's network side: a tokio runtime on its own thread that runs the agent client,
//! the screen views and (for a local try) the embedded relay and demo host. It talks to the UI
//! over channels and asks for a repaint whenever something changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_protocol::msg::{ServerMsg, SessionId};
use tether_protocol::screen::Rect;
use tokio::sync::mpsc;
use tracing::{info, warn};

use tether_host::clipboard::{ClipboardFactory, ClipboardWorker};
use tether_protocol::input::{AgentMsg, Grant, HostMsg, MAX_CLIPBOARD};

use tether_host::files::{Inbox, Progress};

use crate::asked::Verdict;
use crate::net::{AgentClient, ClientError, InputChannel, ScreenView};
use crate::state::TransferStatus;
use crate::state::{Command, Event, LoginRequest};

/// The latest picture of one session's screen, shared with the UI.
#[derive(Debug, Default)]
pub struct ViewBuffer {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// RGBA pixels.
    pub rgba: Vec<u8>,
    /// Area changed since the UI last took it.
    pub dirty: Option<Rect>,
    /// The size changed since the UI last looked (upload everything).
    pub resized: bool,
    /// Frames received.
    pub frames: u64,
    /// Host capture time (µs since the epoch) of the newest frame not yet presented.
    pub unpresented_capture_us: Option<u64>,
    /// Figures for the overlay.
    pub stats: ViewStats,
}

/// What the stats overlay shows, over the last second.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ViewStats {
    /// Frames per second.
    pub fps: f32,
    /// Capture on the host to decoded here, milliseconds (host and agent clocks).
    pub latency_ms: f32,
    /// Received bits per second.
    pub bits_per_sec: f32,
    /// Codec of the last frame.
    pub codec: &'static str,
    /// Capture on the host to on screen here (texture uploaded), milliseconds, last frame.
    pub present_ms: f32,
}

/// Rolling one-second window of frames.
#[derive(Debug, Default)]
struct Meter {
    frames: std::collections::VecDeque<(std::time::Instant, usize, f32)>,
}

impl Meter {
    fn add(&mut self, bytes: usize, latency_ms: f32) -> (f32, f32, f32) {
        let now = std::time::Instant::now();
        self.frames.push_back((now, bytes, latency_ms));
        while let Some((t, _, _)) = self.frames.front() {
            if now.duration_since(*t).as_secs_f32() > 1.0 {
                self.frames.pop_front();
            } else {
                break;
            }
        }
        let n = self.frames.len() as f32;
        let bytes: usize = self.frames.iter().map(|f| f.1).sum();
        let lat = self.frames.iter().map(|f| f.2).sum::<f32>() / n.max(1.0);
        (n, lat, bytes as f32 * 8.0)
    }
}

/// Pictures by session.
pub type Views = Arc<Mutex<HashMap<SessionId, ViewBuffer>>>;

/// Locks the views, recovering from a poisoned lock (a panicked writer leaves valid pixels).
pub fn lock(views: &Views) -> MutexGuard<'_, HashMap<SessionId, ViewBuffer>> {
    views.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the console starts.
#[derive(Debug, Clone)]
pub enum Startup {
    /// Show the login screen.
    LoginScreen,
    /// Log in to a relay at once.
    Login(LoginRequest),
    /// Start an in-process relay on loopback with a local agent and log in to it.
    Embedded {
        /// Data dir of the embedded relay (default: the user's data dir).
        data_dir: Option<PathBuf>,
    },
}

/// Opens local folders in the desktop's file manager.
pub trait FolderOpener: Send + Sync {
    /// Shows `path`.
    fn open(&self, path: &std::path::Path) -> Result<(), String>;
}

/// The desktop's file manager (through the `open` crate: xdg-open, open, explorer).
#[derive(Debug, Default)]
pub struct SystemFolderOpener;

impl FolderOpener for SystemFolderOpener {
    fn open(&self, path: &std::path::Path) -> Result<(), String> {
        open::that_detached(path).map_err(|e| e.to_string())
    }
}

/// Records folders instead of opening them, for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingFolderOpener(pub Arc<Mutex<Vec<PathBuf>>>);

impl FolderOpener for RecordingFolderOpener {
    fn open(&self, path: &std::path::Path) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .push(path.to_path_buf());
        Ok(())
    }
}

/// What the backend uses of the desktop, and how it starts.
#[derive(Clone)]
pub struct BackendOptions {
    /// Also share this display as a customer and join it.
    pub demo: bool,
    /// The agent's clipboard.
    pub clipboard: ClipboardFactory,
    /// Shows downloaded files' folders.
    pub opener: Arc<dyn FolderOpener>,
}

impl BackendOptions {
    /// This desktop's clipboard and file manager.
    pub fn system(demo: bool) -> Self {
        Self {
            demo,
            clipboard: tether_host::clipboard::system_clipboard(),
            opener: Arc::new(SystemFolderOpener),
        }
    }
}

impl std::fmt::Debug for BackendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendOptions")
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

/// The UI's handle on the backend.
pub struct Backend {
    cmd_tx: mpsc::UnboundedSender<Command>,
    ev_rx: std::sync::mpsc::Receiver<Event>,
    views: Views,
    transfers: Transfers,
    _thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    /// Starts the backend thread. `repaint` is called whenever the UI should look again.
    pub fn start(
        startup: Startup,
        options: BackendOptions,
        repaint: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = std::sync::mpsc::channel();
        let views: Views = Arc::default();
        let transfers: Transfers = Arc::default();
        let t = transfers.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let v = views.clone();
        let thread = std::thread::Builder::new()
            .name("tether-net".into())
            .spawn(move || {
                rt.block_on(run(
                    startup,
                    options,
                    cmd_rx,
                    Sink { tx: ev_tx, repaint },
                    v,
                    t,
                ));
            })?;
        Ok(Self {
            cmd_tx,
            ev_rx,
            views,
            transfers,
            _thread: thread,
        })
    }

    /// Sends a command.
    pub fn send(&self, cmd: Command) {
        let _ = self.cmd_tx.send(cmd);
    }

    /// Events that arrived since the last call.
    pub fn events(&self) -> Vec<Event> {
        self.ev_rx.try_iter().collect()
    }

    /// The screens.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// The transfers.
    pub fn transfers(&self) -> &Transfers {
        &self.transfers
    }
}

#[derive(Clone)]
struct Sink {
    tx: std::sync::mpsc::Sender<Event>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Sink {
    fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
        (self.repaint)();
    }
}

struct InputTask {
    tx: mpsc::UnboundedSender<AgentMsg>,
    task: tokio::task::JoinHandle<()>,
}

struct ViewTask {
    control: crate::net::ScreenControl,
    task: tokio::task::JoinHandle<()>,
}

async fn run(
    startup: Startup,
    options: BackendOptions,
    mut cmd_rx: mpsc::UnboundedReceiver<Command>,
    sink: Sink,
    views: Views,
    transfers: Transfers,
) {
    let demo = options.demo;
    let mut embedded = None;
    let mut client: Option<Arc<AgentClient>> = None;
    let mut events: Option<mpsc::UnboundedReceiver<Result<ServerMsg, ClientError>>> = None;
    let mut viewers: HashMap<SessionId, ViewTask> = HashMap::new();
    let mut inputs: HashMap<SessionId, InputTask> = HashMap::new();
    let clipboard = options.clipboard.clone();
    let mut demo_host: Option<tokio::task::JoinHandle<()>> = None;
    let mut demo_pending = demo;

    let first_login = match startup {
        Startup::LoginScreen => None,
        Startup::Login(req) => Some(req),
        Startup::Embedded { data_dir } => match crate::embedded::start(data_dir).await {
            Ok(e) => {
                let req = e.login_request();
                embedded = Some(e);
                Some(req)
            }
            Err(e) => {
                sink.send(Event::LoginFailed(format!(
                    "cannot start the embedded relay: {e:#}"
                )));
                None
            }
        },
    };
    let mut pending = first_login.map(Command::Login);

    loop {
        let cmd = match pending.take() {
            Some(c) => Some(c),
            None => tokio::select! {
                c = cmd_rx.recv() => match c {
                    Some(c) => Some(c),
                    None => break,
                },
                ev = async {
                    match events.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match ev.unwrap_or_else(|| Err(ClientError::Lost("connection closed".into()))) {
                        Ok(msg) => {
                            if let (true, ServerMsg::KeyCreated(key)) = (demo_pending, &msg) {
                                demo_pending = false;
                                if let Some(c) = &client {
                                    demo_host = Some(crate::embedded::start_demo_host(key.pin.clone(), c.relay().to_string(), c.fingerprint()));
                                }
                            }
                            if let ServerMsg::SessionEnded { session, .. } = &msg {
                                if let Some(v) = viewers.remove(session) {
                                    v.task.abort();
                                }
                                if let Some(i) = inputs.remove(session) {
                                    i.task.abort();
                                }
                                lock(&views).remove(session);
                            }
                            sink.send(Event::Server(msg));
                        }
                        Err(e) => {
                            let reason = e.to_string();
                            warn!(%reason, "lost the relay");
                            events = None;
                            client = None;
                            for (_, v) in viewers.drain() {
                                v.task.abort();
                            }
                            for (_, i) in inputs.drain() {
                                i.task.abort();
                            }
                            lock(&views).clear();
                            sink.send(Event::Lost(reason));
                        }
                    }
                    None
                }
            },
        };
        let Some(cmd) = cmd else { continue };
        match cmd {
            Command::Login(req) => {
                let Ok(fp) = tether_net::parse_fingerprint(&req.fingerprint) else {
                    sink.send(Event::LoginFailed(
                        "the relay fingerprint must be 64 hex digits".into(),
                    ));
                    continue;
                };
                match AgentClient::login(&req.relay, fp, &req.user, &req.password).await {
                    Ok(mut c) => {
                        events = Some(c.take_events());
                        sink.send(Event::LoggedIn {
                            agent: c.agent().to_string(),
                            relay: req.relay.clone(),
                            fingerprint: req.fingerprint.clone(),
                        });
                        info!(agent = c.agent(), relay = %req.relay, "logged in");
                        if demo_pending {
                            let _ = c.create_key(None).await;
                        }
                        client = Some(Arc::new(c));
                    }
                    Err(e) => sink.send(Event::LoginFailed(e.to_string())),
                }
            }
            Command::CreateKey => {
                if let Some(c) = client.as_ref()
                    && let Err(e) = c.create_key(None).await
                {
                    sink.send(Event::Notice(e.to_string()));
                }
            }
            Command::Control { session, on } => {
                let msg = if on {
                    AgentMsg::RequestControl
                } else {
                    AgentMsg::ReleaseControl
                };
                send_input(&client, &mut inputs, session, msg, &sink, &clipboard).await;
            }
            Command::Input { session, event } => {
                send_input(
                    &client,
                    &mut inputs,
                    session,
                    AgentMsg::Input(event),
                    &sink,
                    &clipboard,
                )
                .await;
            }
            Command::ClipboardSync { session, on } => {
                let msg = if on {
                    AgentMsg::RequestClipboard
                } else {
                    AgentMsg::StopClipboard
                };
                send_input(&client, &mut inputs, session, msg, &sink, &clipboard).await;
            }
            Command::PushUrl { session, url } => match tether_protocol::files::check_url(&url) {
                Ok(url) => {
                    send_input(
                        &client,
                        &mut inputs,
                        session,
                        AgentMsg::PushUrl { url },
                        &sink,
                        &clipboard,
                    )
                    .await
                }
                Err(e) => sink.send(Event::Notice(format!("Not pushed: {e}"))),
            },
            Command::ListRemote { session, path } => {
                let Some(c) = client.clone() else { continue };
                let sink = sink.clone();
                tokio::spawn(async move {
                    match c.list(session, &path, false).await {
                        Ok((path, parent, entries)) => sink.send(Event::Listing {
                            session,
                            path,
                            parent,
                            entries,
                        }),
                        Err(e) => sink.send(Event::Notice(format!(
                            "Cannot list the customer's folder: {e}"
                        ))),
                    }
                });
            }
            Command::Upload { session, local } => {
                let Some(c) = client.clone() else { continue };
                tokio::spawn(upload_all(
                    c,
                    session,
                    local,
                    transfers.clone(),
                    sink.clone(),
                ));
            }
            Command::Download {
                session,
                remote,
                dir,
                into,
            } => {
                let Some(c) = client.clone() else { continue };
                tokio::spawn(download_all(
                    c,
                    session,
                    remote,
                    dir,
                    transfers.clone(),
                    into,
                    sink.clone(),
                ));
            }
            Command::ShowInFolder(folder) => {
                if let Err(e) = options.opener.open(&folder) {
                    sink.send(Event::Notice(format!(
                        "Cannot show {}: {e}",
                        folder.display()
                    )));
                }
            }
            Command::CancelTransfer(id) => {
                for t in lock_transfers(&transfers).iter().filter(|t| t.id == id) {
                    t.progress
                        .cancel
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Command::Leave(session) => {
                if let Some(v) = viewers.remove(&session) {
                    v.task.abort();
                }
                if let Some(i) = inputs.remove(&session) {
                    i.task.abort();
                }
                lock(&views).remove(&session);
                if let Some(c) = client.as_ref()
                    && let Err(e) = c.leave(session).await
                {
                    sink.send(Event::Notice(e.to_string()));
                }
            }
            Command::View { session, monitor } => {
                let Some(c) = client.as_ref() else { continue };
                match c.view(session, monitor).await {
                    Ok(view) => {
                        let control = view.control();
                        let task =
                            tokio::spawn(run_view(view, session, views.clone(), sink.clone()));
                        if let Some(old) = viewers.insert(session, ViewTask { control, task }) {
                            old.task.abort();
                        }
                    }
                    Err(e) => sink.send(Event::ViewFailed {
                        session,
                        message: e.to_string(),
                    }),
                }
            }
            Command::SetQuality { session, quality } => {
                if let Some(v) = viewers.get(&session)
                    && let Err(e) = v.control.set_quality(quality).await
                {
                    sink.send(Event::ViewFailed {
                        session,
                        message: e.to_string(),
                    });
                }
            }
            Command::SelectMonitor { session, monitor } => {
                if let Some(v) = viewers.get(&session)
                    && let Err(e) = v.control.select_monitor(monitor).await
                {
                    sink.send(Event::ViewFailed {
                        session,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    if let Some(h) = demo_host {
        h.abort();
    }
    if let Some(c) = client {
        c.close().await;
    }
    if let Some(e) = embedded {
        e.shutdown().await;
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
    let files =
        match tokio::task::spawn_blocking(move || tether_host::files::walk(&l, 100_000)).await {
            Ok(Ok(f)) if !f.is_empty() => f,
            Ok(Ok(_)) => {
                return sink.send(Event::Notice(format!(
                    "Nothing to send in {}",
                    local.display()
                )));
            }
            Ok(Err(e)) => {
                return sink.send(Event::Notice(format!(
                    "Cannot send {}: {e}",
                    local.display()
                )));
            }
            Err(e) => return sink.send(Event::Notice(e.to_string())),
        };
    for (path, rel, _) in files {
        let (id, progress) = new_transfer(&transfers, session, &rel, true);
        let status = match c.upload(session, &path, &rel, &progress).await {
            Ok(saved) => TransferStatus::Done {
                saved: format!("saved as {saved} on the customer's computer"),
                folder: None,
            },
            Err(e) => TransferStatus::Failed(e.to_string()),
        };
        let failed = matches!(status, TransferStatus::Failed(_));
        end_transfer(&transfers, id, status);
        (sink.repaint)();
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
    let inbox = Inbox::new(into, tether_host::session::DEFAULT_MAX_FILE);
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
            Err(e) => return sink.send(Event::Notice(format!("Cannot list {remote}: {e}"))),
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
            Err(e) => TransferStatus::Failed(e.to_string()),
        };
        end_transfer(&transfers, id, status);
        (sink.repaint)();
        if progress.cancelled() {
            break;
        }
    }
}

/// Sends a message on a session's input stream, opening the stream first if needed.
async fn send_input(
    client: &Option<Arc<AgentClient>>,
    inputs: &mut HashMap<SessionId, InputTask>,
    session: SessionId,
    msg: AgentMsg,
    sink: &Sink,
    clipboard: &ClipboardFactory,
) {
    if inputs.get(&session).is_none_or(|i| i.task.is_finished()) {
        let Some(c) = client.as_ref() else { return };
        match c.input(session).await {
            Ok(chan) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(run_input(
                    chan,
                    session,
                    rx,
                    sink.clone(),
                    clipboard.clone(),
                ));
                inputs.insert(session, InputTask { tx, task });
            }
            Err(e) => {
                sink.send(Event::Notice(format!(
                    "cannot reach the customer's input: {e}"
                )));
                return;
            }
        }
    }
    if let Some(i) = inputs.get(&session) {
        let _ = i.tx.send(msg);
    }
}

/// One session's input stream: sends the agent's messages in order, reports the customer's
/// answers, and syncs the clipboard while that is allowed.
async fn run_input(
    chan: InputChannel,
    session: SessionId,
    mut rx: mpsc::UnboundedReceiver<AgentMsg>,
    sink: Sink,
    clipboard: ClipboardFactory,
) {
    let (mut send, mut recv) = chan.split();
    let (host_tx, mut host_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let m = recv.next().await;
            let stop = m.is_err();
            if host_tx.send(m).is_err() || stop {
                break;
            }
        }
    });
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<String>();
    let notice = sink.clone();
    let clip = ClipboardWorker::start(
        clipboard,
        move |t| local_tx.send(t).is_ok(),
        move |e| notice.send(Event::Notice(e)),
    );
    let mut asked = crate::asked::Asked::new();
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    asked.sent(&m);
                    if send.send(&m).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            h = host_rx.recv() => match h {
                Some(Ok(m)) => match asked.received(m) {
                    Verdict::Accept(HostMsg::Control(grant)) => sink.send(Event::Control { session, grant }),
                    Verdict::Accept(HostMsg::ClipboardSync(grant)) => {
                        clip.watch(grant == Grant::On);
                        sink.send(Event::ClipboardSync { session, grant });
                    }
                    Verdict::Accept(HostMsg::Clipboard { text }) => {
                        clip.set(text);
                        sink.send(Event::Notice("Clipboard text received from the customer".into()));
                    }
                    Verdict::Accept(HostMsg::Refused(why)) => sink.send(Event::Notice(why)),
                    Verdict::Accept(HostMsg::UrlOpened(url)) => sink.send(Event::Notice(format!("The customer's browser opened {url}"))),
                    Verdict::Ignore(what) => warn!(%session, what, "ignored a message from the customer's host"),
                },
                Some(Err(_)) | None => break,
            },
            t = local_rx.recv() => match t {
                Some(text) if asked.clipboard() == Grant::On => {
                    if text.len() > MAX_CLIPBOARD {
                        sink.send(Event::Notice(format!("Clipboard text of {} bytes not sent: the limit is {MAX_CLIPBOARD} bytes", text.len())));
                    } else if send.send(&AgentMsg::Clipboard { text }).await.is_err() {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    clip.watch(false);
    reader.abort();
    sink.send(Event::Control {
        session,
        grant: Grant::Off,
    });
    sink.send(Event::ClipboardSync {
        session,
        grant: Grant::Off,
    });
}

/// Receives one session's frames into its [`ViewBuffer`].
async fn run_view(mut view: ScreenView, session: SessionId, views: Views, sink: Sink) {
    let mut meter = Meter::default();
    loop {
        let frame = match view.next_frame().await {
            Ok(f) => f,
            Err(e) => {
                sink.send(Event::ViewFailed {
                    session,
                    message: e.to_string(),
                });
                return;
            }
        };
        {
            let fb = view.framebuffer();
            let mut map = lock(&views);
            let vb = map.entry(session).or_default();
            if frame.resized || vb.width != fb.width() || vb.height != fb.height() {
                vb.width = fb.width();
                vb.height = fb.height();
                vb.rgba = fb.region_rgba(&Rect {
                    x: 0,
                    y: 0,
                    w: fb.width(),
                    h: fb.height(),
                });
                vb.resized = true;
                vb.dirty = None;
            } else {
                let pitch = vb.width as usize * 4;
                for r in &frame.rects {
                    let rgba = fb.region_rgba(r);
                    let row = r.w as usize * 4;
                    for (i, line) in rgba.chunks_exact(row).enumerate() {
                        let off = (r.y as usize + i) * pitch + r.x as usize * 4;
                        vb.rgba[off..off + row].copy_from_slice(line);
                    }
                }
                if let Some(d) = frame.dirty() {
                    vb.dirty = Some(vb.dirty.map_or(d, |old| old.union(&d)));
                }
            }
            vb.frames += 1;
            let latency = frame.decoded_us.saturating_sub(frame.timing.captured_us) as f32 / 1000.0;
            let (fps, latency_ms, bits_per_sec) = meter.add(frame.bytes, latency);
            vb.unpresented_capture_us = Some(frame.timing.captured_us);
            vb.stats = ViewStats {
                fps,
                latency_ms,
                bits_per_sec,
                codec: if frame.lossy {
                    "JPEG + lossless"
                } else {
                    "lossless"
                },
                present_ms: vb.stats.present_ms,
            };
        }
        (sink.repaint)();
    }
}
