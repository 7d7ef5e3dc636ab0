//! The console's state, apart from drawing. Panels read and edit it and queue [`Command`]s; the
//! backend's [`Event`]s are applied to it with [`ConsoleState::apply`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use tether_protocol::files::Entry;
use tether_protocol::input::{Grant, InputEvent};
use tether_protocol::msg::{ServerMsg, SessionId, SessionInfo, SessionKey};
use tether_protocol::screen::Quality;

use crate::keys::ModSync;

/// Login details. Its `Debug` output leaves the password out.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct LoginRequest {
    /// Relay address, `HOST:PORT`.
    pub relay: String,
    /// Pinned certificate fingerprint.
    pub fingerprint: String,
    /// Account name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("relay", &self.relay)
            .field("fingerprint", &self.fingerprint)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What the UI asks the backend to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Log in.
    Login(LoginRequest),
    /// Generate a session key.
    CreateKey,
    /// Leave a session.
    Leave(SessionId),
    /// Start viewing a session's screen.
    View {
        /// The session.
        session: SessionId,
        /// Monitor index.
        monitor: u8,
    },
    /// Switch the viewed monitor.
    SelectMonitor {
        /// The session.
        session: SessionId,
        /// Monitor index.
        monitor: u8,
    },
    /// Ask for control (true) or give it back (false).
    Control {
        /// The session.
        session: SessionId,
        /// Ask or give back.
        on: bool,
    },
    /// Send input (only applied by the host under a grant).
    Input {
        /// The session.
        session: SessionId,
        /// The event.
        event: InputEvent,
    },
    /// Start or stop clipboard sync.
    ClipboardSync {
        /// The session.
        session: SessionId,
        /// Start or stop.
        on: bool,
    },
    /// Ask the customer to open a web address.
    PushUrl {
        /// The session.
        session: SessionId,
        /// The address.
        url: String,
    },
    /// List a folder of the customer's (empty: home).
    ListRemote {
        /// The session.
        session: SessionId,
        /// Absolute path, or empty.
        path: String,
    },
    /// Send a local file or folder to the customer.
    Upload {
        /// The session.
        session: SessionId,
        /// Local path.
        local: PathBuf,
    },
    /// Fetch a file or folder of the customer's.
    Download {
        /// The session.
        session: SessionId,
        /// Absolute path on the customer's computer.
        remote: String,
        /// Whether it is a folder.
        dir: bool,
        /// The local folder it goes into.
        into: PathBuf,
    },
    /// Show a local folder in the desktop's file manager.
    ShowInFolder(PathBuf),
    /// Stop a transfer.
    CancelTransfer(u64),
    /// Change the quality mode of a session's screen.
    SetQuality {
        /// The session.
        session: SessionId,
        /// The mode.
        quality: Quality,
    },
}

/// What the backend tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Logged in.
    LoggedIn {
        /// Account name.
        agent: String,
        /// Relay address.
        relay: String,
        /// Relay fingerprint.
        fingerprint: String,
    },
    /// Login failed.
    LoginFailed(String),
    /// The connection to the relay was lost.
    Lost(String),
    /// A message from the relay.
    Server(ServerMsg),
    /// A screen view failed.
    ViewFailed {
        /// The session.
        session: SessionId,
        /// Why.
        message: String,
    },
    /// Something to tell the agent.
    Notice(String),
    /// The customer's answer about control.
    Control {
        /// The session.
        session: SessionId,
        /// The state.
        grant: Grant,
    },
    /// The customer's answer about clipboard sync.
    ClipboardSync {
        /// The session.
        session: SessionId,
        /// The state.
        grant: Grant,
    },
    /// A folder of the customer's.
    Listing {
        /// The session.
        session: SessionId,
        /// The folder.
        path: String,
        /// Its parent.
        parent: Option<String>,
        /// Its entries.
        entries: Vec<Entry>,
    },
}

/// A folder of the customer's, as browsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDir {
    /// The folder.
    pub path: String,
    /// Its parent.
    pub parent: Option<String>,
    /// Its entries.
    pub entries: Vec<Entry>,
    /// Names of the entries selected for download.
    pub selected: BTreeSet<String>,
}

impl RemoteDir {
    /// The customer's path of an entry.
    pub fn full_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path.trim_end_matches('/'))
    }
}

/// A column of the customer's files to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// By name, case-insensitively.
    #[default]
    Name,
    /// By size.
    Size,
    /// By modification time.
    Modified,
}

/// How the customer's files are sorted; folders always come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileSort {
    /// The column.
    pub key: SortKey,
    /// Largest, newest or Z first.
    pub descending: bool,
}

impl FileSort {
    /// A click on a column header: sort by it, or flip the order if it is sorted by it already.
    pub fn click(&mut self, key: SortKey) {
        if self.key == key {
            self.descending = !self.descending;
        } else {
            self.key = key;
            self.descending = false;
        }
    }

    /// The entries in this order, folders first.
    pub fn sorted<'a>(&self, entries: &'a [Entry]) -> Vec<&'a Entry> {
        let mut v: Vec<&Entry> = entries.iter().collect();
        v.sort_by(|a, b| {
            let by_name = || {
                a.name
                    .to_lowercase()
                    .cmp(&b.name.to_lowercase())
                    .then_with(|| a.name.cmp(&b.name))
            };
            let by = match self.key {
                SortKey::Name => by_name(),
                SortKey::Size => a.size.cmp(&b.size).then_with(by_name),
                SortKey::Modified => a.modified.cmp(&b.modified).then_with(by_name),
            };
            let by = if self.descending { by.reverse() } else { by };
            b.dir.cmp(&a.dir).then(by)
        });
        v
    }
}

/// A transfer as the agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferInfo {
    /// Identifier.
    pub id: u64,
    /// File name (relative path).
    pub name: String,
    /// To the customer (true) or from.
    pub upload: bool,
    /// Bytes done.
    pub done: u64,
    /// Total bytes.
    pub total: u64,
    /// Bytes per second.
    pub rate: f64,
    /// Running, or how it ended.
    pub state: TransferStatus,
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    /// Hashing or moving.
    Running,
    /// Done: where it was saved, and the local folder holding it (downloads).
    Done {
        /// Where it was saved, for people.
        saved: String,
        /// The local folder it is in, for "Show in folder".
        folder: Option<PathBuf>,
    },
    /// Failed, with the reason.
    Failed(String),
}

/// The login form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginForm {
    /// Entered details.
    pub request: LoginRequest,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// How the remote screen is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Fit the window.
    #[default]
    Fit,
    /// One remote pixel per screen pixel.
    Actual,
}

/// The screen of a session tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Waiting for the first picture.
    Connecting,
    /// Pictures arrive.
    Live {
        /// Width of the viewed monitor.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The view failed.
    Failed(String),
}

/// One session in the console.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTab {
    /// What the relay said of it.
    pub info: SessionInfo,
    /// Agents present.
    pub agents: Vec<String>,
    /// Viewed monitor.
    pub monitor: u8,
    /// Scaling.
    pub scale: Scale,
    /// Quality mode.
    pub quality: Quality,
    /// Whether the stats overlay is shown.
    pub overlay: bool,
    /// Remote control.
    pub control: Grant,
    /// Clipboard sync.
    pub clipboard: Grant,
    /// The customer's modifier keys as we set them.
    pub mods: ModSync,
    /// The last pointer position sent.
    pub pointer: Option<(u32, u32)>,
    /// Whether the Transfer Files panel is open.
    pub files_open: bool,
    /// How the customer's files are sorted.
    pub sort: FileSort,
    /// The URL typed to push.
    pub url: String,
    /// The customer's folder being browsed.
    pub remote: Option<RemoteDir>,
    /// Transfers of this session.
    pub transfers: Vec<TransferInfo>,
    /// Screen state.
    pub screen: Screen,
}

impl SessionTab {
    /// A tab title: the customer's user and host.
    pub fn title(&self) -> String {
        let c = &self.info.customer;
        format!("{}@{}", c.user, c.hostname)
    }

    /// The Screen line: "none" before a picture, else "N — WxH".
    pub fn screen_line(&self) -> String {
        match &self.screen {
            Screen::Live { width, height } => {
                format!("{} — {width}x{height}", u32::from(self.monitor) + 1)
            }
            _ => "none".into(),
        }
    }

    /// Number of monitors the customer has.
    pub fn monitor_count(&self) -> usize {
        self.info.customer.monitors.len()
    }
}

/// The connection to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Connected.
    Online,
    /// Lost, with the reason.
    Lost(String),
}

/// The logged-in desk.
#[derive(Debug, Clone, PartialEq)]
pub struct Desk {
    /// Account name.
    pub agent: String,
    /// Relay address.
    pub relay: String,
    /// Relay fingerprint.
    pub fingerprint: String,
    /// The last generated key.
    pub key: Option<SessionKey>,
    /// Sessions, in arrival order.
    pub sessions: Vec<SessionTab>,
    /// The tab shown; `None` is the home tab.
    pub selected: Option<SessionId>,
    /// A line of news for the agent.
    pub notice: Option<String>,
    /// The relay link.
    pub link: Link,
}

impl Desk {
    /// The tab of a session.
    pub fn tab_mut(&mut self, id: SessionId) -> Option<&mut SessionTab> {
        self.sessions.iter_mut().find(|t| t.info.id == id)
    }
}

/// Where the console is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Asking for login details.
    Login(LoginForm),
    /// Logging in.
    Connecting(LoginForm),
    /// Logged in.
    Desk(Desk),
}

/// The agent's choices that outlive a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where files fetched from customers go.
    pub download_dir: PathBuf,
    /// Where the file dialog opens to send files (the last folder sent from).
    pub send_dir: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            download_dir: default_download_dir(),
            send_dir: directories::UserDirs::new()
                .map(|u| u.home_dir().to_path_buf())
                .unwrap_or_else(|| PathBuf::from("/")),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The agent's Downloads folder (the home folder's `Downloads` where the desktop names none).
pub fn default_download_dir() -> PathBuf {
    directories::UserDirs::new()
        .and_then(|u| u.download_dir().map(|d| d.to_path_buf()))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Downloads")))
        .unwrap_or_else(std::env::temp_dir)
}

/// The whole console state.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleState {
    /// Where we are.
    pub phase: Phase,
    /// Commands queued by panels for the backend.
    pub outbox: Vec<Command>,
    /// The agent's settings.
    pub settings: Settings,
}

impl ConsoleState {
    /// The login screen, prefilled.
    pub fn login(request: LoginRequest) -> Self {
        Self {
            phase: Phase::Login(LoginForm {
                request,
                error: None,
            }),
            outbox: Vec::new(),
            settings: Settings::default(),
        }
    }

    /// Logging in already (the backend was told to).
    pub fn connecting(request: LoginRequest) -> Self {
        Self {
            phase: Phase::Connecting(LoginForm {
                request,
                error: None,
            }),
            outbox: Vec::new(),
            settings: Settings::default(),
        }
    }

    /// Takes the queued commands.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.outbox)
    }

    /// The desk, if logged in.
    pub fn desk_mut(&mut self) -> Option<&mut Desk> {
        match &mut self.phase {
            Phase::Desk(d) => Some(d),
            _ => None,
        }
    }

    /// Applies a backend event.
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::LoggedIn {
                agent,
                relay,
                fingerprint,
            } => {
                self.phase = Phase::Desk(Desk {
                    agent,
                    relay,
                    fingerprint,
                    key: None,
                    sessions: Vec::new(),
                    selected: None,
                    notice: None,
                    link: Link::Online,
                });
            }
            Event::LoginFailed(message) => self.login_failed(message),
            Event::Lost(reason) => {
                if let Some(d) = self.desk_mut() {
                    d.link = Link::Lost(reason);
                    d.sessions.clear();
                    d.selected = None;
                }
            }
            Event::Notice(n) => {
                if let Some(d) = self.desk_mut() {
                    d.notice = Some(n);
                }
            }
            Event::ViewFailed { session, message } => {
                if let Some(t) = self.desk_mut().and_then(|d| d.tab_mut(session)) {
                    t.screen = Screen::Failed(message);
                }
            }
            Event::Server(msg) => self.apply_server(msg),
            Event::Control { session, grant } => self.control_changed(session, grant),
            Event::Listing {
                session,
                path,
                parent,
                entries,
            } => {
                if let Some(t) = self.desk_mut().and_then(|d| d.tab_mut(session)) {
                    t.remote = Some(RemoteDir {
                        path,
                        parent,
                        entries,
                        selected: BTreeSet::new(),
                    });
                }
            }
            Event::ClipboardSync { session, grant } => self.clipboard_changed(session, grant),
        }
    }

    /// Back to the login form, with what was typed (but the password) and why.
    fn login_failed(&mut self, message: String) {
        let request = match &self.phase {
            Phase::Login(f) | Phase::Connecting(f) => f.request.clone(),
            Phase::Desk(d) => LoginRequest {
                relay: d.relay.clone(),
                fingerprint: d.fingerprint.clone(),
                user: d.agent.clone(),
                password: String::new(),
            },
        };
        self.phase = Phase::Login(LoginForm {
            request: LoginRequest {
                password: String::new(),
                ..request
            },
            error: Some(message),
        });
    }

    /// The customer's answer about remote control (or its end), told in the notice line.
    fn control_changed(&mut self, session: SessionId, grant: Grant) {
        let Some(d) = self.desk_mut() else { return };
        let Some(t) = d.tab_mut(session) else { return };
        t.control = grant;
        if grant != Grant::On {
            t.mods = ModSync::default();
        }
        let who = t.title();
        d.notice = Some(match grant {
            Grant::On => format!("{who} allowed remote control"),
            Grant::Denied => format!("{who} denied remote control"),
            Grant::Off => "Remote control ended".into(),
            Grant::Asked => format!("Asking {who} for control…"),
        });
    }

    fn clipboard_changed(&mut self, session: SessionId, grant: Grant) {
        let Some(d) = self.desk_mut() else { return };
        let Some(t) = d.tab_mut(session) else { return };
        t.clipboard = grant;
        if grant == Grant::Denied {
            d.notice = Some("The customer denied clipboard sync".into());
        }
    }

    fn apply_server(&mut self, msg: ServerMsg) {
        let mut commands = Vec::new();
        let Some(d) = self.desk_mut() else { return };
        match msg {
            ServerMsg::KeyCreated(key) => {
                d.key = Some(key);
                d.selected = None;
            }
            ServerMsg::SessionStarted(info) => {
                let id = info.id;
                if d.tab_mut(id).is_none() {
                    // The primary monitor comes first in the customer's list.
                    d.sessions.push(SessionTab {
                        agents: info.agents.clone(),
                        info,
                        monitor: 0,
                        scale: Scale::Fit,
                        quality: Quality::Auto,
                        overlay: false,
                        control: Grant::Off,
                        clipboard: Grant::Off,
                        mods: ModSync::default(),
                        pointer: None,
                        files_open: false,
                        sort: FileSort::default(),
                        url: String::new(),
                        remote: None,
                        transfers: Vec::new(),
                        screen: Screen::Connecting,
                    });
                    commands.push(Command::View {
                        session: id,
                        monitor: 0,
                    });
                }
                d.selected = Some(id);
            }
            ServerMsg::SessionEnded { session, reason } => {
                if let Some(pos) = d.sessions.iter().position(|t| t.info.id == session) {
                    let tab = d.sessions.remove(pos);
                    d.notice = Some(format!("Session with {} ended: {reason}", tab.title()));
                }
                if d.selected == Some(session) {
                    d.selected = d.sessions.last().map(|t| t.info.id);
                }
            }
            ServerMsg::AgentsChanged { session, agents } => {
                if let Some(t) = d.tab_mut(session) {
                    t.agents = agents;
                }
            }
            ServerMsg::Refused(r) => d.notice = Some(format!("Refused: {r}")),
            ServerMsg::Welcome { .. } | ServerMsg::LoggedIn { .. } | ServerMsg::Joined { .. } => {}
        }
        self.outbox.extend(commands);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_protocol::msg::{CustomerInfo, EndReason, MonitorInfo};

    fn desk() -> ConsoleState {
        let mut s = ConsoleState::connecting(LoginRequest::default());
        s.apply(Event::LoggedIn {
            agent: "alice".into(),
            relay: "r:1".into(),
            fingerprint: "f".into(),
        });
        s
    }

    fn info(id: u64) -> SessionInfo {
        SessionInfo {
            id: SessionId(id),
            customer: CustomerInfo {
                os: "Linux".into(),
                hostname: "pc".into(),
                user: "carol".into(),
                monitors: vec![MonitorInfo {
                    name: "a".into(),
                    x: 0,
                    y: 0,
                    width: 1920,
                    height: 1080,
                    primary: true,
                }],
            },
            agents: vec!["alice".into()],
            started_at: 0,
        }
    }

    #[test]
    fn a_session_opens_its_own_tab_and_starts_viewing() {
        let mut s = desk();
        s.apply(Event::Server(ServerMsg::SessionStarted(info(1))));
        assert_eq!(
            s.take_commands(),
            vec![Command::View {
                session: SessionId(1),
                monitor: 0
            }]
        );
        let d = s.desk_mut().expect("desk");
        assert_eq!(d.selected, Some(SessionId(1)));
        assert_eq!(d.sessions[0].screen_line(), "none");
        d.sessions[0].screen = Screen::Live {
            width: 1920,
            height: 1080,
        };
        assert_eq!(d.sessions[0].screen_line(), "1 — 1920x1080");
        // A repeated announcement (agent came back) opens no second tab.
        s.apply(Event::Server(ServerMsg::SessionStarted(info(1))));
        assert!(s.take_commands().is_empty());
        s.apply(Event::Server(ServerMsg::SessionEnded {
            session: SessionId(1),
            reason: EndReason::CustomerEnded,
        }));
        let d = s.desk_mut().expect("desk");
        assert!(d.sessions.is_empty());
        assert_eq!(d.selected, None);
        assert!(
            d.notice
                .as_deref()
                .unwrap_or("")
                .contains("the customer ended the session")
        );
    }

    #[test]
    fn login_details_never_show_the_password_in_logs() {
        let req = LoginRequest {
            relay: "r:1".into(),
            fingerprint: "f".into(),
            user: "alice".into(),
            password: "hunter2 hunter2".into(),
        };
        for shown in [
            format!("{req:?}"),
            format!("{:?}", Command::Login(req.clone())),
            format!("{:?}", ConsoleState::connecting(req)),
        ] {
            assert!(
                !shown.contains("hunter2") && shown.contains("alice"),
                "{shown}"
            );
        }
    }

    #[test]
    fn folders_come_first_whatever_the_order() {
        let e = |name: &str, dir, size, modified| Entry {
            name: name.into(),
            dir,
            size,
            modified: Some(modified),
        };
        let entries = vec![
            e("b.txt", false, 30, 3),
            e("Zeta", true, 0, 1),
            e("a.txt", false, 10, 9),
            e("alpha", true, 0, 5),
        ];
        let names = |s: &FileSort| -> Vec<String> {
            s.sorted(&entries).iter().map(|e| e.name.clone()).collect()
        };
        let mut sort = FileSort::default();
        assert_eq!(names(&sort), ["alpha", "Zeta", "a.txt", "b.txt"]);
        sort.click(SortKey::Size);
        assert_eq!(names(&sort), ["alpha", "Zeta", "a.txt", "b.txt"]);
        sort.click(SortKey::Size);
        assert!(sort.descending);
        assert_eq!(names(&sort), ["Zeta", "alpha", "b.txt", "a.txt"]);
        sort.click(SortKey::Modified);
        assert_eq!(names(&sort), ["Zeta", "alpha", "b.txt", "a.txt"]);
        sort.click(SortKey::Modified);
        assert_eq!(names(&sort), ["alpha", "Zeta", "a.txt", "b.txt"]);
    }

    #[test]
    fn a_failed_login_returns_to_the_form_without_the_password() {
        let mut s = ConsoleState::connecting(LoginRequest {
            relay: "r:1".into(),
            fingerprint: "f".into(),
            user: "bob".into(),
            password: "secret".into(),
        });
        s.apply(Event::LoginFailed("wrong user name or password".into()));
        match s.phase {
            Phase::Login(f) => {
                assert_eq!(f.request.user, "bob");
                assert!(f.request.password.is_empty());
                assert_eq!(f.error.as_deref(), Some("wrong user name or password"));
            }
            other => panic!("{other:?}"),
        }
    }
}
