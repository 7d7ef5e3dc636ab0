//! What the relay keeps: agents (argon2id password hashes, display names, teams), session keys
//! (only an HMAC of each PIN), the session history and the audit trail. Everything else the
//! relay knows lives in memory, in [`crate::core`].
//!
//! [`Store`] is the interface the relay and its command line use; [`SqliteStore`] implements it
//! with SQLite through sqlx (the only place with SQL in it).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tether_protocol::chat::{ChatEntry, Script};
use tether_protocol::msg::{EndReason, SessionId};
use tether_protocol::pairing::{KeyRecord, KeyRef};

use crate::core::{AgentProfile, KeyOwner};

mod sqlite;

pub use sqlite::{SqliteStore, random_password, random_pin};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data dir could not be prepared.
    #[error("data dir: {0}")]
    Io(#[from] std::io::Error),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// No agent of that name.
    #[error("no agent named {0:?}")]
    NoSuchAgent(String),
    /// An agent of that name exists.
    #[error("an agent named {0:?} already exists")]
    AgentExists(String),
    /// No team of that name.
    #[error("no team named {0:?}")]
    NoSuchTeam(String),
    /// A team of that name exists.
    #[error("a team named {0:?} already exists")]
    TeamExists(String),
    /// The name is not acceptable.
    #[error("names are 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    BadName,
    /// The display name is not acceptable.
    #[error("display names are 1 to 64 characters, without control characters")]
    BadDisplayName,
    /// The password is not acceptable.
    #[error("passwords must be 8 to 1024 characters")]
    BadPassword,
    /// The key lifetime is not acceptable.
    #[error("key lifetime must be between 1 minute and 7 days")]
    BadTtl,
    /// The agent or team has as many live keys as allowed.
    #[error("{owner} has {limit} live session keys already; use one or let them expire")]
    TooManyKeys {
        /// The agent or team.
        owner: String,
        /// The limit.
        limit: u32,
    },
    /// No session of that id.
    #[error("no session {0}")]
    NoSuchSession(String),
    /// No script of that id.
    #[error("no script {0}")]
    NoSuchScript(i64),
    /// A script's title, text or address is not acceptable.
    #[error("{0}")]
    BadScript(String),
    /// No issue type of that id.
    #[error("no issue type {0}")]
    NoSuchIssueType(i64),
    /// An issue type's title is not acceptable, or the team has it already.
    #[error("{0}")]
    BadIssueType(String),
    /// The relay holds as many live tickets as allowed.
    #[error("too many open requests; try again later")]
    TooManyTickets,
    /// A stored record could not be read back.
    #[error("unreadable record: {0}")]
    Corrupt(String),
}

/// A future a store method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A new agent account.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Login name.
    pub name: String,
    /// Display name (the login name when absent).
    pub display: Option<String>,
    /// Password.
    pub password: String,
}

/// An agent account, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    /// Login name.
    pub name: String,
    /// Display name.
    pub display: String,
    /// Whether the account may log in.
    pub disabled: bool,
    /// Teams.
    pub teams: Vec<String>,
}

/// A team, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    /// The team's name.
    pub name: String,
    /// Its members' login names.
    pub members: Vec<String>,
}

/// Whose queue a new key sends its customer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFor {
    /// An agent's, by login name.
    Agent(String),
    /// A team's, made by an agent (or by an operator on the command line).
    Team {
        /// The team.
        team: String,
        /// The agent who made it, if one did.
        by: Option<String>,
    },
}

/// A new scripted message or address.
#[derive(Debug, Clone)]
pub struct NewScript {
    /// The agent's (`KeyFor::Agent`) or the team's (`KeyFor::Team`) library.
    pub owner: KeyFor,
    /// Title in the menu.
    pub title: String,
    /// Message.
    pub text: String,
    /// Address.
    pub url: Option<String>,
}

/// A key found by its PIN (or a ticket by its secret).
#[derive(Debug, Clone)]
pub struct FoundKey {
    /// Row id.
    pub id: i64,
    /// Whose queue it leads to.
    pub owner: KeyOwner,
    /// State and expiry (a key of a disabled agent counts as expired).
    pub record: KeyRecord,
    /// What the customer wrote, for a ticket.
    pub ticket: Option<Ticket>,
}

/// What a customer wrote on the portal, kept with their ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ticket {
    /// Their name.
    pub name: String,
    /// The problem type and description.
    pub request: tether_protocol::msg::Request,
}

/// A problem type of a team's, offered on the portal's issue form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueType {
    /// Row id.
    pub id: i64,
    /// The team whose queue it leads to.
    pub team: String,
    /// What the customer reads.
    pub title: String,
}

/// Most live tickets the relay keeps at once.
pub const MAX_LIVE_TICKETS: i64 = 5000;
/// How long a ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(3600);

/// The start of a session, for the history.
#[derive(Debug, Clone)]
pub struct SessionStart {
    /// The session.
    pub id: SessionId,
    /// The queue the customer entered, as people read it.
    pub origin: String,
    /// The key used.
    pub key_id: Option<i64>,
    /// The customer, summarized.
    pub customer: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// A session in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The session.
    pub id: SessionId,
    /// The queue the customer entered.
    pub origin: String,
    /// The customer, summarized.
    pub customer: String,
    /// Start, seconds since the Unix epoch.
    pub started_at: u64,
    /// End, if it ended.
    pub ended_at: Option<u64>,
    /// Why it ended (the stable name of an [`EndReason`]).
    pub end_reason: Option<String>,
}

/// Who did something, in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An agent by name (for a refused login, the name given, cut and escaped).
    Agent(String),
    /// A customer's host, by address.
    Host(std::net::IpAddr),
    /// A peer not known yet, by address.
    Peer(std::net::IpAddr),
    /// The relay itself.
    Relay,
    /// The command line.
    Cli,
    /// A form this version does not write (older rows).
    Other(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Agent(name) => write!(f, "agent:{name}"),
            Actor::Host(ip) => write!(f, "host:{ip}"),
            Actor::Peer(ip) => write!(f, "peer:{ip}"),
            Actor::Relay => f.write_str("relay"),
            Actor::Cli => f.write_str("cli"),
            Actor::Other(s) => f.write_str(s),
        }
    }
}

impl Actor {
    /// Reads the stored form back.
    pub fn parse(s: &str) -> Actor {
        let ip = |v: &str| v.parse::<std::net::IpAddr>().ok();
        match s.split_once(':') {
            Some(("agent", name)) => Actor::Agent(name.to_string()),
            Some(("host", a)) if ip(a).is_some() => ip(a).map_or(Actor::Relay, Actor::Host),
            Some(("peer", a)) if ip(a).is_some() => ip(a).map_or(Actor::Relay, Actor::Peer),
            _ => match s {
                "relay" => Actor::Relay,
                "cli" => Actor::Cli,
                other => Actor::Other(other.to_string()),
            },
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The session concerned, if any.
    pub session: Option<SessionId>,
    /// Who.
    pub actor: Actor,
    /// What, as a dotted name such as `key.refused`.
    pub action: String,
    /// Details for people.
    pub detail: String,
    /// Source address, if from the network.
    pub source: Option<String>,
}

/// The relay's persistent state.
pub trait Store: Send + Sync {
    /// Number of agents.
    fn agent_count(&self) -> StoreFuture<'_, u64>;
    /// Adds an agent with an argon2id hash of the password.
    fn add_agent(&self, agent: NewAgent, now: u64) -> StoreFuture<'_, ()>;
    /// Replaces an agent's password.
    fn set_password(&self, name: String, password: String) -> StoreFuture<'_, ()>;
    /// Disables (or enables again) an agent: a disabled agent cannot log in, and their keys
    /// open nothing.
    fn set_disabled(&self, name: String, disabled: bool) -> StoreFuture<'_, ()>;
    /// Checks a login. `None` for an unknown name, a wrong password or a disabled account; each
    /// takes the time of a hash, so none is told apart by timing.
    fn login(&self, name: String, password: String) -> StoreFuture<'_, Option<AgentProfile>>;
    /// Every agent, by name.
    fn agents(&self) -> StoreFuture<'_, Vec<AgentRow>>;
    /// Adds a team.
    fn add_team(&self, name: String, now: u64) -> StoreFuture<'_, ()>;
    /// Adds an agent to a team (`member`) or removes them from it.
    fn set_member(&self, team: String, agent: String, member: bool) -> StoreFuture<'_, ()>;
    /// Every team with its members, by name.
    fn teams(&self) -> StoreFuture<'_, Vec<TeamRow>>;
    /// Creates a key valid for `ttl`. Returns the PIN and the expiry.
    fn create_key(&self, owner: KeyFor, ttl: Duration, now: u64) -> StoreFuture<'_, (String, u64)>;
    /// Finds the newest key with this PIN.
    fn find_key(&self, pin: String) -> StoreFuture<'_, Option<FoundKey>>;
    /// Marks a live, unexpired key used. False if it was not (a race lost to another join).
    fn use_key(&self, id: i64, now: u64) -> StoreFuture<'_, bool>;
    /// Records the start of a session.
    fn session_started(&self, start: SessionStart) -> StoreFuture<'_, ()>;
    /// Records the end of a session.
    fn session_ended(&self, id: SessionId, reason: EndReason, now: u64) -> StoreFuture<'_, ()>;
    /// Sessions started at or after `since`, oldest first.
    fn sessions(&self, since: u64) -> StoreFuture<'_, Vec<SessionRow>>;
    /// A session and its audit events, oldest first.
    fn session(&self, id: SessionId) -> StoreFuture<'_, Option<(SessionRow, Vec<AuditEvent>)>>;
    /// Appends an audit event.
    fn audit(&self, event: AuditEvent) -> StoreFuture<'_, ()>;
    /// The newest `limit` audit events, oldest first.
    fn audit_events(&self, limit: u32) -> StoreFuture<'_, Vec<AuditEvent>>;
    /// Keeps a chat line of a session.
    fn chat_line(&self, session: SessionId, entry: ChatEntry) -> StoreFuture<'_, ()>;
    /// A session's chat log, in order.
    fn chat(&self, session: SessionId) -> StoreFuture<'_, Vec<ChatEntry>>;
    /// Replaces a session's notes.
    fn set_notes(
        &self,
        session: SessionId,
        text: String,
        by: String,
        now: u64,
    ) -> StoreFuture<'_, ()>;
    /// Adds a scripted message or address for a team or an agent; returns its id.
    fn add_script(&self, script: NewScript) -> StoreFuture<'_, i64>;
    /// Removes a script.
    fn remove_script(&self, id: i64) -> StoreFuture<'_, ()>;
    /// Every script, with its id (for the command line).
    fn all_scripts(&self) -> StoreFuture<'_, Vec<(i64, Script)>>;
    /// The scripts an agent may use: their own and their teams'.
    fn scripts_for(&self, agent: String, teams: Vec<String>) -> StoreFuture<'_, Vec<Script>>;
    /// A session's notes and who saved them last, if any were saved.
    fn notes(&self, session: SessionId) -> StoreFuture<'_, Option<(String, String)>>;
    /// Reads a setting.
    fn setting(&self, name: String) -> StoreFuture<'_, Option<String>>;
    /// Writes a setting.
    fn set_setting(&self, name: String, value: String) -> StoreFuture<'_, ()>;
    /// Reads a setting and removes it, at once.
    fn take_setting(&self, name: String) -> StoreFuture<'_, Option<String>>;
    /// Closes the store, flushing what is pending.
    fn close(&self) -> StoreFuture<'_, ()>;
    /// Adds a problem type to a team's issue form.
    fn add_issue_type(&self, team: String, title: String) -> StoreFuture<'_, i64>;
    /// Removes a problem type.
    fn remove_issue_type(&self, id: i64) -> StoreFuture<'_, ()>;
    /// Every problem type, by team then title.
    fn issue_types(&self) -> StoreFuture<'_, Vec<IssueType>>;
    /// Makes a one-time ticket into `owner`'s queue; returns it and its expiry.
    fn create_ticket(
        &self,
        owner: KeyFor,
        ticket: Ticket,
        now: u64,
    ) -> StoreFuture<'_, (String, u64)>;
    /// The queue a help link leads to: an enabled agent's or a team's.
    fn link_owner(&self, link: KeyRef) -> StoreFuture<'_, Option<KeyOwner>>;
}

/// Opens (creating and migrating if needed) the relay's store in `data_dir`.
pub async fn open(data_dir: &std::path::Path) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(std::sync::Arc::new(SqliteStore::open(data_dir).await?))
}
