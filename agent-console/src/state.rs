//! The console's state, apart from drawing. Panels read and edit it and queue [`Command`]s; the
//! backend's [`Event`]s are applied to it with [`ConsoleState::apply`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tether_i18n::t;

use serde::{Deserialize, Serialize};
use tether_protocol::chat::{Audience, ChatEntry, MAX_CHAT_LINES, Script};
use tether_protocol::desk::{AgentInfo, LeftReason, MemberInfo, MemberRole, Target, TeamInfo};
use tether_protocol::files::Entry;
use tether_protocol::input::{Grant, InputEvent};
use tether_protocol::msg::{Refusal, ServerMsg, SessionId, SessionInfo, SessionKey};
use tether_protocol::screen::Quality;

use crate::keys::ModSync;
use crate::queue::{Activity, Queues};
use crate::words;

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
    /// Generate a session key for the agent's own queue, or a team's.
    CreateKey {
        /// The team, or `None` for the agent's own queue.
        team: Option<String>,
        /// Validity in seconds (`None`: the relay's default).
        ttl_secs: Option<u32>,
    },
    /// Ask the relay for an email invitation to a key, for one recipient.
    EmailInvite {
        /// The key's PIN.
        pin: String,
        /// The recipient.
        to: String,
    },
    /// Open a link in the desktop's own program for it (a `mailto:` link: the mail program).
    OpenLink(String),
    /// Accept a waiting session or an invitation.
    Accept(SessionId),
    /// Move a session (the agent owns) to another agent's or a team's queue.
    Transfer {
        /// The session.
        session: SessionId,
        /// Where to.
        to: Target,
    },
    /// Invite another agent or a team into a session.
    Invite {
        /// The session.
        session: SessionId,
        /// Whom.
        to: Target,
        /// Whether they join hidden from the customer.
        masked: bool,
    },
    /// Ask for the teams and agents (for the transfer and invite dialogs).
    Directory,
    /// Send a chat message.
    Say {
        /// The session.
        session: SessionId,
        /// For whom.
        to: Audience,
        /// The text.
        text: String,
    },
    /// Fetch a session's chat log so far.
    ChatHistory(SessionId),
    /// Save a session's notes on the relay.
    SaveNotes {
        /// The session.
        session: SessionId,
        /// The notes.
        text: String,
    },
    /// Write text to a local file (a chat transcript).
    SaveText {
        /// Where.
        path: PathBuf,
        /// What.
        text: String,
    },
    /// Leave a session; the others in it stay.
    Leave(SessionId),
    /// End a session (the agent owns) for everyone.
    EndForAll(SessionId),
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

impl Command {
    /// The session a command acts in, if any.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Command::Leave(s) | Command::EndForAll(s) => Some(*s),
            Command::Say { session, .. } | Command::SaveNotes { session, .. } => Some(*session),
            Command::Transfer { session, .. }
            | Command::Invite { session, .. }
            | Command::View { session, .. }
            | Command::SelectMonitor { session, .. }
            | Command::Control { session, .. }
            | Command::Input { session, .. }
            | Command::ClipboardSync { session, .. }
            | Command::PushUrl { session, .. }
            | Command::ListRemote { session, .. }
            | Command::Upload { session, .. }
            | Command::Download { session, .. }
            | Command::SetQuality { session, .. } => Some(*session),
            _ => None,
        }
    }
}

/// What the backend tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Logged in.
    LoggedIn {
        /// Account name.
        agent: String,
        /// Display name.
        display: String,
        /// The agent's teams.
        teams: Vec<String>,
        /// Relay address.
        relay: String,
        /// Relay fingerprint.
        fingerprint: String,
    },
    /// Login failed.
    LoginFailed(String),
    /// The connection to the relay was lost for good (the relay refused the pass, or did not
    /// come back in time): logging in again is up to the agent.
    Lost(String),
    /// The connection to the relay dropped; the console tries to come back (attempt 1, 2, …).
    Reconnecting {
        /// The attempt about to be made.
        attempt: u32,
        /// Why the connection dropped.
        why: String,
    },
    /// The console is back on the relay with its pass; the relay announces its sessions again.
    Reconnected,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// The customer's connection dropped; the relay waits for it to come back.
    Away,
    /// The console's own connection dropped; it reconnects and then opens the screen again.
    Reconnecting,
}

/// One session in the console.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTab {
    /// What the relay said of it.
    pub info: SessionInfo,
    /// The agents in it now.
    pub members: Vec<MemberInfo>,
    /// When the agent last sent the customer a chat message (or opened the tab), seconds
    /// since the Unix epoch: the tab's marker shows how long the customer has waited for a word.
    pub last_said: u64,
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
    /// The chat log, in order.
    pub chat: Vec<ChatEntry>,
    /// The message being typed.
    pub message: String,
    /// Whom it goes to.
    pub to: Audience,
    /// The notes as being edited.
    pub notes: String,
    /// The notes as the relay has them, and who saved them.
    pub notes_saved: (String, Option<String>),
    /// Whether the right navigation (details, attendees, notes) is shown.
    pub nav_open: bool,
    /// Whether the screen is shown in the full-screen viewer window.
    pub popped_out: bool,
}

impl SessionTab {
    /// A tab title: the customer's name.
    pub fn title(&self) -> String {
        let c = &self.info.customer;
        if c.name.trim().is_empty() {
            format!("{}@{}", c.user, c.hostname)
        } else {
            c.name.clone()
        }
    }

    /// This agent's login, as a member of the session.
    pub fn my_login(&self) -> &str {
        self.members
            .iter()
            .find(|m| m.id == self.info.me)
            .map(|m| m.login.as_str())
            .unwrap_or_default()
    }

    /// Whether this agent is in charge of the session.
    pub fn owner(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.id == self.info.me && m.role == MemberRole::Owner)
    }

    /// Whether this agent watches hidden from the customer.
    pub fn masked(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.id == self.info.me && m.masked)
    }

    /// The Users line: every agent, with their part and whether the customer sees them.
    pub fn users_line(&self) -> String {
        self.members
            .iter()
            .filter(|m| m.role != MemberRole::Host)
            .map(|m| {
                let mut marks = Vec::new();
                if m.role == MemberRole::Owner {
                    marks.push(t!("users-owner"));
                }
                marks.push(t!(if m.masked {
                    "nav-masked"
                } else {
                    "nav-unmasked"
                }));
                let you = if m.id == self.info.me {
                    format!(", {}", t!("nav-you"))
                } else {
                    String::new()
                };
                format!("{} ({}{you})", m.display, marks.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The Screen line: "none" before a picture, else "N — WxH".
    pub fn screen_line(&self) -> String {
        match &self.screen {
            Screen::Live { width, height } => {
                format!("{} — {width}x{height}", u32::from(self.monitor) + 1)
            }
            _ => t!("screen-none"),
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
    /// Dropped: reconnecting, at this attempt, with the reason it dropped.
    Reconnecting {
        /// The attempt being made (1, 2, …).
        attempt: u32,
        /// Why the connection dropped.
        why: String,
    },
    /// Lost for good, with the reason.
    Lost(String),
}

/// The teams and agents, for the transfer and invite dialogs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    /// Teams.
    pub teams: Vec<TeamInfo>,
    /// Agents.
    pub agents: Vec<AgentInfo>,
}

/// A dialog over the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskDialog {
    /// Choose where a session goes.
    Transfer {
        /// The session.
        session: SessionId,
        /// The choice so far.
        to: Option<Target>,
    },
    /// Choose whom to invite into a session.
    Invite {
        /// The session.
        session: SessionId,
        /// The choice so far.
        to: Option<Target>,
        /// Whether they join hidden from the customer.
        masked: bool,
    },
    /// Confirm ending a session for everyone.
    ConfirmEnd {
        /// The session.
        session: SessionId,
    },
}

/// The logged-in desk.
#[derive(Debug, Clone, PartialEq)]
pub struct Desk {
    /// Account name.
    pub agent: String,
    /// Display name.
    pub display: String,
    /// The agent's teams.
    pub teams: Vec<String>,
    /// The agent's queues and alerts.
    pub queues: Queues,
    /// Teams and agents, once asked for.
    pub directory: Option<Directory>,
    /// The dialog open over the desk.
    pub dialog: Option<DeskDialog>,
    /// The team the next key is for (`None`: the agent's own queue).
    pub key_team: Option<String>,
    /// How long the next key is valid, in minutes.
    pub key_minutes: u32,
    /// The address typed for an email invitation.
    pub invite_to: String,
    /// Invitations asked of the relay and not answered yet (the addresses as typed).
    pub invites_asked: Vec<String>,
    /// Scripted messages and addresses for the Chat box.
    pub scripts: Vec<Script>,
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

    /// The key under which this agent's own settings (favourites) are kept.
    pub fn settings_key(&self) -> String {
        format!("{}@{}", self.agent, self.relay)
    }

    /// Closes a session's tab (ended, left or transferred) and says why.
    fn close_tab(&mut self, session: SessionId, why: impl FnOnce(&SessionTab) -> String) {
        if let Some(pos) = self.sessions.iter().position(|t| t.info.id == session) {
            let tab = self.sessions.remove(pos);
            self.notice = Some(why(&tab));
        }
        if self.selected == Some(session) {
            self.selected = self.sessions.last().map(|t| t.info.id);
        }
        if matches!(&self.dialog, Some(DeskDialog::Transfer { session: s, .. } | DeskDialog::Invite { session: s, .. } | DeskDialog::ConfirmEnd { session: s }) if *s == session)
        {
            self.dialog = None;
        }
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
    Desk(Box<Desk>),
}

/// The agent's choices that outlive a session, kept in the console's settings file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where files fetched from customers go.
    pub download_dir: PathBuf,
    /// Where the file dialog opens to send files (the last folder sent from).
    pub send_dir: PathBuf,
    /// Favourite team queues, per agent (`agent@relay`).
    pub favourites: BTreeMap<String, BTreeSet<String>>,
    /// When session tabs' markers turn amber and red.
    pub activity: Activity,
    /// The Chat box's text size, in points.
    pub chat_font: f32,
    /// The console's language, `en` or `fr` (`None`: the system's).
    pub lang: Option<String>,
    /// How new session tabs scale the remote screen: the agent's last choice.
    pub scale: Scale,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            download_dir: default_download_dir(),
            send_dir: directories::UserDirs::new()
                .map(|u| u.home_dir().to_path_buf())
                .unwrap_or_else(|| PathBuf::from("/")),
            favourites: BTreeMap::new(),
            activity: Activity::default(),
            chat_font: 14.0,
            lang: None,
            scale: Scale::Fit,
        }
    }
}

/// Most bytes of a settings file read.
const SETTINGS_MAX: u64 = 1 << 20;

impl Settings {
    /// The settings file's default place (the user's configuration folder).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "Tether", "tether-console")
            .map(|p| p.config_dir().join("settings.json"))
    }

    /// Reads settings; a missing, oversized or unreadable file gives the defaults (and says why
    /// in the log).
    pub fn load(path: &std::path::Path) -> Settings {
        let read = || -> Result<Settings, String> {
            let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
            if meta.len() > SETTINGS_MAX {
                return Err(format!("larger than {SETTINGS_MAX} bytes"));
            }
            let text = std::fs::read(path).map_err(|e| e.to_string())?;
            serde_json::from_slice(&text).map_err(|e| e.to_string())
        };
        match read() {
            Ok(s) => s,
            Err(e) => {
                if path.exists() {
                    tracing::warn!(path = %path.display(), error = %e, "settings not read; using the defaults");
                }
                Settings::default()
            }
        }
    }

    /// Writes settings (owner-only, replaced whole so a crash never leaves half a file).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, &text)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The favourite teams of an agent.
    pub fn favourites_of(&self, key: &str) -> BTreeSet<String> {
        self.favourites.get(key).cloned().unwrap_or_default()
    }

    /// Stars or unstars a team for an agent.
    pub fn toggle_favourite(&mut self, key: &str, team: &str) {
        let set = self.favourites.entry(key.to_string()).or_default();
        if !set.remove(team) {
            set.insert(team.to_string());
        }
        if set.is_empty() {
            self.favourites.remove(key);
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

    /// Takes the queued commands. A chat message the customer reads restarts its tab's marker.
    pub fn take_commands(&mut self) -> Vec<Command> {
        let commands = std::mem::take(&mut self.outbox);
        if let Some(d) = self.desk_mut() {
            let now = now_unix();
            for c in &commands {
                match c {
                    Command::Say {
                        session,
                        to: Audience::Everyone,
                        ..
                    } => {
                        if let Some(t) = d.tab_mut(*session) {
                            t.last_said = now;
                        }
                    }
                    Command::EmailInvite { to, .. } => d.invites_asked.push(to.clone()),
                    _ => {}
                }
            }
        }
        commands
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
                display,
                teams,
                relay,
                fingerprint,
            } => {
                self.phase = Phase::Desk(Box::new(Desk {
                    agent,
                    display,
                    teams,
                    queues: Queues::default(),
                    directory: None,
                    dialog: None,
                    key_team: None,
                    key_minutes: KEY_MINUTES[1],
                    invite_to: String::new(),
                    invites_asked: Vec::new(),
                    scripts: Vec::new(),
                    relay,
                    fingerprint,
                    key: None,
                    sessions: Vec::new(),
                    selected: None,
                    notice: None,
                    link: Link::Online,
                }));
            }
            Event::LoginFailed(message) => self.login_failed(message),
            Event::Lost(reason) => {
                if let Some(d) = self.desk_mut() {
                    d.link = Link::Lost(reason);
                    d.sessions.clear();
                    d.selected = None;
                    d.queues = Queues::default();
                    d.dialog = None;
                }
            }
            Event::Reconnecting { attempt, why } => {
                if let Some(d) = self.desk_mut() {
                    d.link = Link::Reconnecting { attempt, why };
                    // The relay lists the queues again once back; tabs wait for it.
                    d.queues = Queues::default();
                    d.dialog = None;
                    for t in &mut d.sessions {
                        t.screen = Screen::Reconnecting;
                        t.control = Grant::Off;
                        t.clipboard = Grant::Off;
                        t.mods = ModSync::default();
                    }
                }
            }
            Event::Reconnected => {
                if let Some(d) = self.desk_mut() {
                    d.link = Link::Online;
                    d.notice = Some(t!("desk-reconnected"));
                }
            }
            Event::Notice(n) => {
                if let Some(d) = self.desk_mut() {
                    d.notice = Some(n);
                }
            }
            Event::ViewFailed { session, message } => {
                // A view that broke because the customer went away waits for them instead.
                if let Some(t) = self.desk_mut().and_then(|d| d.tab_mut(session))
                    && t.screen != Screen::Away
                {
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
            Grant::On => t!("control-allowed", who = who),
            Grant::Denied => t!("control-denied", who = who),
            Grant::Off => t!("control-ended"),
            Grant::Asked => t!("control-asking", who = who),
        });
    }

    fn clipboard_changed(&mut self, session: SessionId, grant: Grant) {
        let Some(d) = self.desk_mut() else { return };
        let Some(t) = d.tab_mut(session) else { return };
        t.clipboard = grant;
        if grant == Grant::Denied {
            d.notice = Some(t!("clipboard-denied"));
        }
    }

    fn apply_server(&mut self, msg: ServerMsg) {
        let mut commands = Vec::new();
        let scale = self.settings.scale;
        let Some(d) = self.desk_mut() else { return };
        match msg {
            ServerMsg::KeyCreated(key) => {
                d.key = Some(key);
                d.selected = None;
            }
            ServerMsg::Invitation {
                to,
                sent,
                subject,
                body,
            } => {
                // Only an answer to an invitation this console asked for opens anything.
                let asked = d
                    .invites_asked
                    .iter()
                    .position(|a| a.to_lowercase().contains(&to.to_lowercase()));
                if let Some(i) = asked {
                    d.invites_asked.remove(i);
                    if sent {
                        d.notice = Some(t!("home-invite-sent", to = to.as_str()));
                    } else {
                        d.notice = Some(t!("home-invite-mail-program", to = to.as_str()));
                        commands.push(Command::OpenLink(mailto(&to, &subject, &body)));
                    }
                }
            }
            ServerMsg::SessionStarted(info) => {
                let id = info.id;
                d.queues.started(id);
                match d.tab_mut(id) {
                    // Announced again with the same membership (the relay repeats itself).
                    Some(t) if t.info.me == info.me => t.members = info.members.clone(),
                    // A new membership (a masked member took charge): the old streams were cut
                    // and the customer's grants were to the old one.
                    Some(t) => {
                        *t = SessionTab::new(info);
                        t.scale = scale;
                        commands.push(Command::View {
                            session: id,
                            monitor: 0,
                        });
                        commands.push(Command::ChatHistory(id));
                    }
                    None => {
                        let mut tab = SessionTab::new(info);
                        tab.scale = scale;
                        d.sessions.push(tab);
                        // The primary monitor comes first in the customer's list.
                        commands.push(Command::View {
                            session: id,
                            monitor: 0,
                        });
                        commands.push(Command::ChatHistory(id));
                    }
                }
                d.selected = Some(id);
            }
            ServerMsg::SessionEnded { session, reason } => {
                d.close_tab(session, |t| {
                    t!("session-ended", who = t.title(), why = end_words(reason))
                });
            }
            ServerMsg::Left { session, reason } => d.close_tab(session, |t| match &reason {
                LeftReason::Left => t!("session-left", who = t.title()),
                LeftReason::Transferred(q) => {
                    t!(
                        "session-transferred",
                        who = t.title(),
                        queue = q.to_string()
                    )
                }
            }),
            ServerMsg::CustomerAway { session } => {
                if let Some(t) = d.tab_mut(session) {
                    t.screen = Screen::Away;
                    t.control = Grant::Off;
                    t.clipboard = Grant::Off;
                }
            }
            // The customer is back on a new connection: open its screen again (what was
            // granted ended with the old one).
            ServerMsg::CustomerBack { session } => {
                if let Some(t) = d.tab_mut(session) {
                    t.screen = Screen::Connecting;
                    t.control = Grant::Off;
                    t.clipboard = Grant::Off;
                    commands.push(Command::View {
                        session,
                        monitor: t.monitor,
                    });
                }
            }
            ServerMsg::MembersChanged { session, members } => {
                if let Some(t) = d.tab_mut(session) {
                    t.members = members;
                }
            }
            ServerMsg::Queue { entries } => {
                for e in entries {
                    d.queues.upsert(e);
                }
            }
            ServerMsg::Unqueued {
                session,
                queue,
                why,
            } => {
                if let Some(n) = d.queues.departure_notice(session, &why, &d.display) {
                    d.notice = Some(n);
                }
                d.queues.remove(session, &queue);
            }
            ServerMsg::Notes { session, text, by } => {
                if let Some(t) = d.tab_mut(session) {
                    // Edits not saved yet are kept; otherwise the notes follow the relay's.
                    if t.notes == t.notes_saved.0 {
                        t.notes = text.clone();
                    }
                    t.notes_saved = (text, by);
                }
            }
            ServerMsg::Chat { session, entries } => {
                if let Some(t) = d.tab_mut(session) {
                    t.chat_arrived(entries);
                }
            }
            ServerMsg::Scripts(s) => d.scripts = s,
            ServerMsg::Directory { teams, agents } => {
                d.directory = Some(Directory { teams, agents });
            }
            ServerMsg::Refused(Refusal::NotAllowed(why)) => {
                d.notice = Some(capitalized(&words::denied(&why)))
            }
            ServerMsg::Refused(r) => d.notice = Some(t!("refused", why = words::refusal(&r))),
            ServerMsg::InSessions { sessions } => {
                let gone: Vec<SessionId> = d
                    .sessions
                    .iter()
                    .map(|t| t.info.id)
                    .filter(|id| !sessions.contains(id))
                    .collect();
                for id in gone {
                    d.close_tab(id, |t| t!("session-ended-while-away", who = t.title()));
                }
                // Back after a dropped connection: each screen and chat log opens again.
                for t in d
                    .sessions
                    .iter_mut()
                    .filter(|t| t.screen == Screen::Reconnecting)
                {
                    t.screen = Screen::Connecting;
                    commands.push(Command::View {
                        session: t.info.id,
                        monitor: t.monitor,
                    });
                    commands.push(Command::ChatHistory(t.info.id));
                }
            }
            ServerMsg::Welcome { .. }
            | ServerMsg::LoggedIn { .. }
            | ServerMsg::Joined { .. }
            | ServerMsg::Resumed { .. }
            | ServerMsg::InLine { .. }
            | ServerMsg::AgentsChanged { .. } => {}
        }
        self.outbox.extend(commands);
    }
}

impl SessionTab {
    /// A new tab for a session the agent is now in.
    pub fn new(info: SessionInfo) -> Self {
        SessionTab {
            members: info.members.clone(),
            info,
            last_said: now_unix(),
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
            chat: Vec::new(),
            message: String::new(),
            to: Audience::Everyone,
            notes: String::new(),
            notes_saved: (String::new(), None),
            nav_open: true,
            popped_out: false,
        }
    }

    /// Lines of the chat arrived (new ones, or the log so far): kept once each, in order.
    pub fn chat_arrived(&mut self, entries: Vec<ChatEntry>) {
        for e in entries {
            match self.chat.binary_search_by_key(&e.seq, |c| c.seq) {
                Ok(_) => {}
                Err(i) => self.chat.insert(i, e),
            }
        }
        let extra = self.chat.len().saturating_sub(MAX_CHAT_LINES);
        self.chat.drain(..extra);
    }

    /// The whole chat as text, for an export.
    pub fn transcript(&self) -> String {
        self.chat.iter().map(|e| e.transcript() + "\n").collect()
    }
}

/// A member for tests: an agent by login, display name "Login".
#[cfg(test)]
pub(crate) fn test_member(id: u64, login: &str, role: MemberRole, masked: bool) -> MemberInfo {
    let mut display = login.to_string();
    if let Some(f) = display.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    MemberInfo {
        id: tether_protocol::desk::ParticipantId(id),
        login: login.into(),
        display,
        role,
        masked,
    }
}

/// Why a session ended, in the console's language.
fn end_words(reason: tether_protocol::msg::EndReason) -> String {
    use tether_protocol::msg::EndReason::*;
    t!(match reason {
        CustomerEnded => "end-customer-ended",
        CustomerDisconnected => "end-customer-lost",
        AgentLeft => "end-agent-left",
        AgentEnded => "end-agent-ended",
        RelayShutdown => "end-relay-shutdown",
    })
}

/// A message with its first letter in capitals.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Validities a key can be made with, in minutes (30 minutes is the relay's default).
pub const KEY_MINUTES: [u32; 6] = [15, 30, 60, 240, 1440, 10080];

/// A `mailto:` link with a subject and a text, percent-encoded (RFC 6068).
pub fn mailto(to: &str, subject: &str, body: &str) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    let body = body.replace('\n', "\r\n");
    format!(
        "mailto:{}?subject={}&body={}",
        enc(to),
        enc(subject),
        enc(&body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_protocol::desk::{ParticipantId, QueueId};
    use tether_protocol::msg::{CustomerInfo, EndReason, MonitorInfo};

    fn desk() -> ConsoleState {
        let mut s = ConsoleState::connecting(LoginRequest::default());
        s.apply(Event::LoggedIn {
            agent: "alice".into(),
            display: "Alice A.".into(),
            teams: vec!["Support".into()],
            relay: "r:1".into(),
            fingerprint: "f".into(),
        });
        s
    }

    fn info(id: u64) -> SessionInfo {
        SessionInfo {
            id: SessionId(id),
            customer: CustomerInfo {
                name: "Carol Customer".into(),
                os: "Linux".into(),
                hostname: "pc".into(),
                user: "carol".into(),
                request: None,
                monitors: vec![MonitorInfo {
                    name: "a".into(),
                    x: 0,
                    y: 0,
                    width: 1920,
                    height: 1080,
                    primary: true,
                }],
            },
            members: vec![crate::state::test_member(
                1,
                "alice",
                MemberRole::Owner,
                false,
            )],
            me: ParticipantId(1),
            origin: QueueId::Personal("alice".into()),
            started_at: 0,
        }
    }

    #[test]
    fn a_session_opens_its_own_tab_and_starts_viewing() {
        let mut s = desk();
        s.apply(Event::Server(ServerMsg::SessionStarted(info(1))));
        assert_eq!(
            s.take_commands(),
            vec![
                Command::View {
                    session: SessionId(1),
                    monitor: 0
                },
                Command::ChatHistory(SessionId(1))
            ]
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
        // A new membership in the same session (taking charge of it) starts the tab afresh.
        let mut owner = info(1);
        owner.me = ParticipantId(9);
        s.apply(Event::Server(ServerMsg::SessionStarted(owner)));
        assert_eq!(
            s.take_commands(),
            vec![
                Command::View {
                    session: SessionId(1),
                    monitor: 0
                },
                Command::ChatHistory(SessionId(1))
            ]
        );
        assert_eq!(s.desk_mut().expect("desk").sessions.len(), 1);
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
    fn settings_are_kept_per_agent_and_a_broken_file_gives_the_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub").join("settings.json");
        let mut s = Settings::default();
        s.toggle_favourite("alice@r:1", "Support");
        s.toggle_favourite("bob@r:1", "Billing");
        s.activity.amber_after_mins = 3;
        s.save(&path).expect("save");
        let back = Settings::load(&path);
        assert_eq!(back, s);
        assert!(back.favourites_of("alice@r:1").contains("Support"));
        assert!(!back.favourites_of("alice@r:1").contains("Billing"));
        let mut unstarred = back.clone();
        unstarred.toggle_favourite("alice@r:1", "Support");
        assert!(unstarred.favourites_of("alice@r:1").is_empty());
        std::fs::write(&path, b"{ not json").expect("write");
        assert_eq!(Settings::load(&path).activity, Activity::default());
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

    #[test]
    fn a_dropped_connection_keeps_the_tabs_and_the_relay_list_reopens_them() {
        let mut s = desk();
        s.apply(Event::Server(ServerMsg::SessionStarted(info(1))));
        s.apply(Event::Server(ServerMsg::SessionStarted(info(2))));
        s.take_commands();
        s.apply(Event::Reconnecting {
            attempt: 2,
            why: "timed out".into(),
        });
        let d = s.desk_mut().expect("desk");
        assert_eq!(
            d.link,
            Link::Reconnecting {
                attempt: 2,
                why: "timed out".into()
            }
        );
        assert_eq!(d.sessions.len(), 2);
        assert!(d.sessions.iter().all(|t| t.screen == Screen::Reconnecting));
        s.apply(Event::Reconnected);
        // The relay announces the session still there, then the list: the other one ended.
        s.apply(Event::Server(ServerMsg::SessionStarted(info(1))));
        s.apply(Event::Server(ServerMsg::InSessions {
            sessions: vec![SessionId(1)],
        }));
        assert_eq!(
            s.take_commands(),
            vec![
                Command::View {
                    session: SessionId(1),
                    monitor: 0
                },
                Command::ChatHistory(SessionId(1))
            ]
        );
        let d = s.desk_mut().expect("desk");
        assert_eq!(d.link, Link::Online);
        assert_eq!(d.sessions.len(), 1);
        assert_eq!(d.sessions[0].screen, Screen::Connecting);
        assert!(
            d.notice.as_deref().is_some_and(|n| n.contains("ended")),
            "{:?}",
            d.notice
        );
    }
}
