//! The console's network side: a tokio runtime on its own thread that runs the agent client,
//! the screen views and (for a local try) the embedded relay and demo host. It talks to the UI
//! over channels and asks for a repaint whenever something changed.
//!
//! - [`Worker`] owns what lives across logins: the UI's channels, the shared views and transfers,
//!   and the one [`Connection`] (client, relay events, views, input streams) while logged in.
//! - Commands are handled by family: [`screen`] (views), [`input`] (consent requests, input,
//!   clipboard), [`files`] (listings and transfers), and the session commands here.

use std::collections::HashMap;
use std::sync::Arc;

use tether_desktop::clipboard::ClipboardFactory;
use tether_desktop::notify::Notifier;
use tether_desktop::opener::Opener;
use tether_i18n::t;
use tether_protocol::input::AgentMsg;
use tether_protocol::msg::{ServerMsg, SessionId};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use std::time::Duration;

use tether_protocol::msg::RESUME_WINDOW_SECS;

use crate::net::{AgentClient, ClientError, Pass};
use crate::state::{Command, Event, LoginRequest};

mod files;
mod input;
mod screen;

pub use files::{TransferEntry, Transfers, lock_transfers};
pub use screen::{ViewBuffer, ViewStats, Views, lock};

/// How the console starts.
#[derive(Debug, Clone)]
pub enum Startup {
    /// Show the login screen.
    LoginScreen,
    /// Log in to a relay at once.
    Login(LoginRequest),
    /// Start an in-process relay on loopback with a local agent and log in to it.
    #[cfg(feature = "embedded-relay")]
    Embedded {
        /// Data dir of the embedded relay (default: the user's data dir).
        data_dir: Option<std::path::PathBuf>,
    },
}

/// What the backend uses of the desktop, and how it starts.
#[derive(Clone)]
pub struct BackendOptions {
    /// Also share this display as a customer and join it.
    #[cfg(feature = "demo")]
    pub demo: bool,
    /// The agent's clipboard.
    pub clipboard: ClipboardFactory,
    /// Shows downloaded files' folders.
    pub opener: Arc<dyn Opener>,
    /// Tells the desktop of customers arriving in the agent's queues.
    pub notifier: Arc<dyn Notifier>,
}

impl BackendOptions {
    /// This desktop's clipboard and file manager.
    pub fn system() -> Self {
        Self {
            #[cfg(feature = "demo")]
            demo: false,
            clipboard: tether_desktop::clipboard::system_clipboard(),
            opener: Arc::new(tether_desktop::opener::SystemOpener),
            notifier: Arc::new(tether_desktop::notify::SystemNotifier),
        }
    }
}

impl std::fmt::Debug for BackendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendOptions").finish_non_exhaustive()
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let worker = Worker {
            sink: Sink { tx: ev_tx, repaint },
            views: views.clone(),
            transfers: transfers.clone(),
            options,
            link: RelayLink::Out,
            customers: files::CustomerLinks::default(),
            clients: watch::channel(None).0,
            local: crate::local::Local::default(),
        };
        let thread = std::thread::Builder::new()
            .name("tether-net".into())
            .spawn(move || rt.block_on(worker.run(startup, cmd_rx)))?;
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

/// Where events for the UI go.
#[derive(Clone)]
pub(crate) struct Sink {
    tx: std::sync::mpsc::Sender<Event>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Sink {
    pub(crate) fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
        (self.repaint)();
    }

    pub(crate) fn repaint(&self) {
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

/// One login: the client, the relay's events, and the tasks serving its sessions. Dropping it
/// stops them all.
struct Connection {
    client: Arc<AgentClient>,
    events: mpsc::UnboundedReceiver<Result<ServerMsg, ClientError>>,
    viewers: HashMap<SessionId, ViewTask>,
    inputs: HashMap<SessionId, InputTask>,
}

impl Connection {
    /// Stops what serves a session (it ended, or the agent left it).
    fn forget(&mut self, session: SessionId, views: &Views) {
        if let Some(v) = self.viewers.remove(&session) {
            v.task.abort();
        }
        if let Some(i) = self.inputs.remove(&session) {
            i.task.abort();
        }
        lock(views).remove(&session);
    }
}

/// What a connection's commands report to and share with the rest of the console.
struct Ctx<'a> {
    sink: &'a Sink,
    views: &'a Views,
    transfers: &'a Transfers,
    clipboard: &'a ClipboardFactory,
    customers: &'a files::CustomerLinks,
    clients: &'a Clients,
}

/// The client logged in now, for transfers that outlive a dropped connection (`None` once the
/// console is out).
type Clients = watch::Sender<Option<Arc<AgentClient>>>;

impl Connection {
    /// Carries out a command that needs the relay.
    async fn command(&mut self, cmd: Command, ctx: &Ctx<'_>) {
        let sink = ctx.sink;
        match cmd {
            Command::Leave(session) => {
                self.forget(session, ctx.views);
                self.desk(cmd_of(self.client.leave(session).await), sink);
            }
            Command::CreateKey { team, ttl_secs } => {
                self.desk(cmd_of(self.client.create_key(ttl_secs, team).await), sink)
            }
            Command::EmailInvite { pin, to } => {
                self.desk(cmd_of(self.client.email_invite(pin, to).await), sink)
            }
            Command::Accept(session) => self.desk(cmd_of(self.client.accept(session).await), sink),
            Command::Transfer { session, to } => {
                self.desk(cmd_of(self.client.transfer(session, to).await), sink)
            }
            Command::Invite {
                session,
                to,
                masked,
            } => self.desk(cmd_of(self.client.invite(session, to, masked).await), sink),
            Command::EndForAll(session) => {
                self.desk(cmd_of(self.client.end_for_all(session).await), sink)
            }
            Command::Directory => self.desk(cmd_of(self.client.directory().await), sink),
            Command::Say { session, to, text } => {
                self.desk(cmd_of(self.client.say(session, to, text).await), sink)
            }
            Command::SaveNotes { session, text } => {
                self.desk(cmd_of(self.client.set_notes(session, text).await), sink)
            }
            Command::ChatHistory(session) => {
                self.desk(cmd_of(self.client.chat_history(session).await), sink)
            }
            Command::ListRemote { session, path } => self.list(session, path, sink),
            Command::Upload { session, local } => self.upload(session, local, ctx),
            Command::Download {
                session,
                remote,
                dir,
                into,
            } => self.download(session, (remote, dir), into, ctx),
            Command::View { session, monitor } => {
                self.view(session, monitor, ctx.views, sink).await
            }
            Command::SetQuality { session, quality } => {
                self.set_quality(session, quality, sink).await
            }
            Command::SelectMonitor { session, monitor } => {
                self.select_monitor(session, monitor, sink).await
            }
            cmd => match input_msg(cmd) {
                Some(Ok((session, msg))) => {
                    self.send_input(session, msg, sink, ctx.clipboard).await
                }
                Some(Err(why)) => sink.send(Event::Notice(why)),
                None => {}
            },
        }
    }
}

/// A desk request's failure to send, as a notice (the relay's answer comes as an event).
fn cmd_of(r: Result<(), ClientError>) -> Option<String> {
    r.err().map(|e| crate::words::error(&e))
}

impl Connection {
    fn desk(&self, failed: Option<String>, sink: &Sink) {
        if let Some(why) = failed {
            sink.send(Event::Notice(why));
        }
    }
}

/// The message on the session's input stream that a command stands for (`None` if it is not
/// an input command), or why it is not sent.
fn input_msg(cmd: Command) -> Option<Result<(SessionId, AgentMsg), String>> {
    let (session, msg) = match cmd {
        Command::Control { session, on: true } => (session, AgentMsg::RequestControl),
        Command::Control { session, on: false } => (session, AgentMsg::ReleaseControl),
        Command::Input { session, event } => (session, AgentMsg::Input(event)),
        Command::ClipboardSync { session, on: true } => (session, AgentMsg::RequestClipboard),
        Command::ClipboardSync { session, on: false } => (session, AgentMsg::StopClipboard),
        Command::PushUrl { session, url } => match tether_protocol::files::check_url(&url) {
            Ok(url) => (session, AgentMsg::PushUrl { url }),
            Err(e) => return Some(Err(t!("session-not-pushed", why = e.to_string()))),
        },
        _ => return None,
    };
    Some(Ok((session, msg)))
}

impl Drop for Connection {
    fn drop(&mut self) {
        for v in self.viewers.values() {
            v.task.abort();
        }
        for i in self.inputs.values() {
            i.task.abort();
        }
    }
}

/// The backend's link to the relay.
enum RelayLink {
    /// Not logged in.
    Out,
    /// Logged in.
    Up(Connection),
    /// The connection dropped: coming back with the pass.
    Down(Comeback),
}

/// A console on its way back to the relay after its connection dropped.
struct Comeback {
    relay: String,
    fingerprint: [u8; 32],
    pass: Pass,
    /// The attempt to make next (1, 2, …) and when.
    attempt: u32,
    at: tokio::time::Instant,
    /// The pass expires on the relay: no point trying after this.
    give_up: tokio::time::Instant,
    why: String,
}

impl Comeback {
    /// Schedules attempt `n`, after a backoff.
    fn schedule(&mut self, n: u32) {
        let mut jitter = [0u8; 1];
        let _ = getrandom::fill(&mut jitter);
        self.attempt = n;
        self.at = tokio::time::Instant::now() + tether_net::backoff(n, jitter[0]);
    }
}

/// What woke the worker on the relay's side.
enum Wake {
    Event(Box<Option<Result<ServerMsg, ClientError>>>),
    Retry,
}

/// The backend's state, owned by its thread.
struct Worker {
    sink: Sink,
    views: Views,
    transfers: Transfers,
    options: BackendOptions,
    link: RelayLink,
    /// Each session's customer link as the relay reports it, for transfers that wait for the
    /// customer to come back (kept across reconnections).
    customers: files::CustomerLinks,
    clients: Clients,
    local: crate::local::Local,
}

impl Worker {
    async fn run(mut self, startup: Startup, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut pending = self.first_login(startup).await.map(Command::Login);
        loop {
            let cmd = match pending.take() {
                Some(c) => c,
                None => {
                    let relay = async {
                        match &mut self.link {
                            RelayLink::Up(c) => Wake::Event(Box::new(c.events.recv().await)),
                            RelayLink::Down(back) => {
                                tokio::time::sleep_until(back.at).await;
                                Wake::Retry
                            }
                            RelayLink::Out => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        c = commands.recv() => match c {
                            Some(c) => c,
                            None => break,
                        },
                        wake = relay => {
                            match wake {
                                Wake::Event(ev) => self.relay_event(*ev).await,
                                Wake::Retry => self.retry().await,
                            }
                            continue;
                        }
                    }
                }
            };
            self.command(cmd).await;
        }
        self.local.stop().await;
        if let RelayLink::Up(c) = std::mem::replace(&mut self.link, RelayLink::Out) {
            c.client.close().await;
        }
    }

    /// The connection dropped: the views stop, and the console starts coming back with its
    /// pass (a relay that broke the protocol is not tried again).
    fn dropped(&mut self, e: &ClientError) {
        let why = crate::words::error(e);
        lock(&self.views).clear();
        let old = std::mem::replace(&mut self.link, RelayLink::Out);
        let RelayLink::Up(c) = old else { return };
        if matches!(e, ClientError::Protocol(_)) {
            self.out_for_good();
            self.sink.send(Event::Lost(why));
            return;
        }
        let now = tokio::time::Instant::now();
        let mut back = Comeback {
            relay: c.client.relay().to_string(),
            fingerprint: c.client.fingerprint(),
            pass: c.client.pass(),
            attempt: 1,
            at: now,
            give_up: now + Duration::from_secs(RESUME_WINDOW_SECS),
            why: why.clone(),
        };
        back.schedule(1);
        self.sink.send(Event::Reconnecting { attempt: 1, why });
        self.link = RelayLink::Down(back);
    }

    /// The console is out: transfers waiting for it give up.
    fn out_for_good(&self) {
        self.clients.send_replace(None);
    }

    /// One attempt to come back: back on the relay, refused for good, or another try later.
    async fn retry(&mut self) {
        let RelayLink::Down(mut back) = std::mem::replace(&mut self.link, RelayLink::Out) else {
            return;
        };
        let tried = tokio::time::timeout(
            tether_net::MAX_BACKOFF,
            AgentClient::resume(&back.relay, back.fingerprint, back.pass),
        )
        .await;
        match tried {
            Ok(Ok(c)) => {
                info!(
                    agent = c.agent(),
                    attempt = back.attempt,
                    "back on the relay"
                );
                self.sink.send(Event::Reconnected);
                self.connected(c).await;
            }
            Ok(Err(e @ ClientError::Refused(_))) => {
                warn!(error = %e, "the relay did not take the pass");
                self.out_for_good();
                self.sink.send(Event::Lost(crate::words::error(&e)));
            }
            failed if tokio::time::Instant::now() >= back.give_up => {
                let why = match failed {
                    Ok(Err(e)) => crate::words::error(&e),
                    _ => back.why.clone(),
                };
                self.out_for_good();
                self.sink.send(Event::Lost(why));
            }
            _ => {
                back.schedule(back.attempt + 1);
                self.sink.send(Event::Reconnecting {
                    attempt: back.attempt,
                    why: back.why.clone(),
                });
                self.link = RelayLink::Down(back);
            }
        }
    }

    /// The login to try first, after starting the local relay when asked to.
    async fn first_login(&mut self, startup: Startup) -> Option<LoginRequest> {
        match startup {
            Startup::LoginScreen => None,
            Startup::Login(req) => Some(req),
            #[cfg(feature = "embedded-relay")]
            Startup::Embedded { data_dir } => match self.local.start_relay(data_dir).await {
                Ok(req) => Some(req),
                Err(e) => {
                    self.sink.send(Event::LoginFailed(format!(
                        "cannot start the embedded relay: {e:#}"
                    )));
                    None
                }
            },
        }
    }

    /// A message from the relay, or the end of the connection.
    async fn relay_event(&mut self, ev: Option<Result<ServerMsg, ClientError>>) {
        match ev.unwrap_or_else(|| Err(ClientError::Lost("connection closed".into()))) {
            Ok(msg) => {
                if let (ServerMsg::KeyCreated(key), RelayLink::Up(c)) = (&msg, &self.link) {
                    self.local.key_created(key, &c.client);
                }
                let conn = match &mut self.link {
                    RelayLink::Up(c) => Some(c),
                    _ => None,
                };
                match (&msg, conn) {
                    (
                        ServerMsg::SessionEnded { session, .. } | ServerMsg::Left { session, .. },
                        Some(c),
                    ) => {
                        self.customers.forget(*session);
                        c.forget(*session, &self.views)
                    }
                    // No picture or input while the customer is away: both start again when
                    // they are back.
                    (ServerMsg::CustomerAway { session }, Some(c)) => {
                        self.customers.away(*session);
                        c.forget(*session, &self.views);
                    }
                    (ServerMsg::CustomerBack { session }, _) => {
                        self.customers.back(*session);
                    }
                    (ServerMsg::Queue { entries }, c) => {
                        let c_login = c.as_ref().map(|c| c.client.agent()).unwrap_or_default();
                        for e in entries.iter().filter(|e| e.arrived) {
                            self.options.notifier.notify(
                                &tether_i18n::t!("notify-waiting", name = e.customer.name.as_str()),
                                &format!(
                                    "{} — {}: {}",
                                    crate::ui::queue_title(&e.queue, c_login),
                                    e.customer.os,
                                    crate::ui::describe(&e.kind)
                                ),
                            );
                        }
                    }
                    _ => {}
                }
                self.sink.send(Event::Server(msg));
            }
            Err(e) => {
                warn!(error = %e, "lost the relay");
                self.dropped(&e);
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Login(req) => self.login(req).await,
            Command::OpenLink(link) => {
                if let Err(e) = self.options.opener.open(std::ffi::OsStr::new(&link)) {
                    self.sink.send(Event::Notice(e.to_string()));
                }
            }
            Command::ShowInFolder(folder) => {
                if let Err(e) = self.options.opener.open(folder.as_os_str()) {
                    self.sink.send(Event::Notice(e.to_string()));
                }
            }
            Command::CancelTransfer(id) => files::cancel(&self.transfers, id),
            Command::SaveText { path, text } => {
                let sink = self.sink.clone();
                tokio::task::spawn_blocking(move || {
                    let said = match std::fs::write(&path, text) {
                        Ok(()) => t!("chat-saved", path = path.display().to_string()),
                        Err(e) => t!(
                            "cannot-save",
                            path = path.display().to_string(),
                            why = e.to_string()
                        ),
                    };
                    sink.send(Event::Notice(said));
                });
            }
            cmd => {
                if let RelayLink::Up(c) = &mut self.link {
                    let ctx = Ctx {
                        sink: &self.sink,
                        views: &self.views,
                        transfers: &self.transfers,
                        clipboard: &self.options.clipboard,
                        customers: &self.customers,
                        clients: &self.clients,
                    };
                    c.command(cmd, &ctx).await;
                }
            }
        }
    }

    async fn login(&mut self, req: LoginRequest) {
        let Ok(fp) = tether_net::parse_fingerprint(&req.fingerprint) else {
            self.sink.send(Event::LoginFailed(
                "the relay fingerprint must be 64 hex digits".into(),
            ));
            return;
        };
        match AgentClient::login(&req.relay, fp, &req.user, &req.password).await {
            Ok(c) => {
                self.sink.send(Event::LoggedIn {
                    agent: c.agent().to_string(),
                    display: c.display().to_string(),
                    teams: c.teams().to_vec(),
                    relay: req.relay.clone(),
                    fingerprint: req.fingerprint.clone(),
                });
                info!(agent = c.agent(), relay = %req.relay, "logged in");
                self.local.logged_in(&c, &self.options).await;
                self.connected(c).await;
            }
            Err(e) => self.sink.send(Event::LoginFailed(crate::words::error(&e))),
        }
    }

    /// A client logged in (or back): its events are served from now on.
    async fn connected(&mut self, mut c: AgentClient) {
        let events = c.take_events();
        if let Err(e) = c.scripts().await {
            warn!(error = %e, "cannot ask for scripts");
        }
        let client = Arc::new(c);
        self.clients.send_replace(Some(client.clone()));
        self.link = RelayLink::Up(Connection {
            client,
            events,
            viewers: HashMap::new(),
            inputs: HashMap::new(),
        });
    }
}
