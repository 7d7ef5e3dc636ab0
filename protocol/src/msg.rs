//! Messages.
//!
//! The control stream is the first bidirectional stream a client opens. Its first frame is a
//! [`Hello`], whose layout is frozen across versions so that any relay can read it and answer a
//! peer of another version with a clear [`Refusal::UnsupportedVersion`]. After the hello the client
//! sends [`ClientMsg`] and the relay sends [`ServerMsg`].
//!
//! Media streams start with a routing preamble the relay reads ([`OpenStream`] from an agent,
//! [`HostStream`] towards the host); everything after the preamble is opaque to the relay.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::chat::{Audience, ChatEntry, HostNote};
use crate::desk::{
    AgentInfo, LeftReason, MemberInfo, Participant, ParticipantId, QueueEntry, QueueId, Target,
    TeamInfo, Unqueued,
};
use crate::screen::{FrameUpdate, Quality};

/// Four bytes that open every hello, so that a stray client is told apart from a peer of another
/// version.
pub const HELLO_MAGIC: [u8; 4] = *b"TTHR";

/// The first frame on a control stream. Its layout never changes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Always [`HELLO_MAGIC`].
    pub magic: [u8; 4],
    /// The sender's protocol version.
    pub version: u16,
    /// What the client is.
    pub role: Role,
    /// Free text such as `tether-host 0.1.0`, for logs.
    pub software: String,
}

/// Which program is on the other end of a control stream.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A support agent's console.
    Agent,
    /// A customer's host.
    Host,
}

/// Identifies a support session on a relay.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One monitor of the customer's computer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// Output or monitor name as the OS reports it.
    pub name: String,
    /// Left edge in the virtual desktop.
    pub x: i32,
    /// Top edge in the virtual desktop.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether this is the primary monitor.
    pub primary: bool,
}

/// What the host reports about the customer's computer when it joins.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerInfo {
    /// The customer's name, as they gave it (or their full name on the computer).
    pub name: String,
    /// Operating system, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    /// Host name of the computer.
    pub hostname: String,
    /// Login name of the customer.
    pub user: String,
    /// Every monitor, primary first.
    pub monitors: Vec<MonitorInfo>,
    /// What the customer wrote on the portal's form, when they came through it. Only the relay
    /// sets it (from the ticket); what a host sends here is dropped.
    pub request: Option<Request>,
}

/// A customer's request from the portal: the problem type they picked and their description.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The problem type (a team's issue type), when they picked one.
    pub problem: Option<String>,
    /// What they wrote.
    pub description: String,
}

/// A freshly created session key.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The 9-digit PIN.
    pub pin: String,
    /// The session URL, `https://RELAY/s/PIN`.
    pub url: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The team whose queue the customer lands in; `None` for the agent's personal queue.
    pub team: Option<String>,
}

/// What an agent sees of a session they are in.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session.
    pub id: SessionId,
    /// The customer's computer.
    pub customer: CustomerInfo,
    /// The agents in the session.
    pub members: Vec<MemberInfo>,
    /// This agent's membership.
    pub me: ParticipantId,
    /// Start, seconds since the Unix epoch.
    pub started_at: u64,
    /// The queue the customer first entered.
    pub origin: QueueId,
}

/// A password. Its `Debug` output never shows it, so a logged message cannot leak it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Password(pub String);

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.to_string())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Client to relay, on the control stream after the hello.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    /// Agent login.
    Login {
        /// Account name.
        user: String,
        /// Password; only ever sent inside TLS to a pinned relay.
        password: Password,
        /// A random identity the console made when it started; a resume must present it again.
        client: [u8; 32],
    },
    /// Agent comes back after its connection dropped, with the token the relay gave it last
    /// ([`ServerMsg::LoggedIn`]) and its identity: no password is asked, and its sessions
    /// open again.
    ResumeLogin {
        /// The resume token (single use).
        token: [u8; 32],
        /// The identity given at login.
        client: [u8; 32],
    },
    /// Host joins with a session key (PIN or session URL).
    Join {
        /// What the customer typed or passed on the command line.
        key: String,
        /// The customer's computer.
        customer: CustomerInfo,
        /// A random identity the host made when it started; a resume must present it again.
        client: [u8; 32],
    },
    /// Host comes back to its session after its connection dropped, with the token the relay
    /// gave it last ([`ServerMsg::Joined`] or [`ServerMsg::Resumed`]) and its identity.
    Resume {
        /// The resume token (single use).
        token: [u8; 32],
        /// The identity given at join.
        client: [u8; 32],
    },
    /// Agent asks for a new session key.
    CreateKey {
        /// Validity in seconds; the relay's default (30 min) when absent.
        ttl_secs: Option<u32>,
        /// Make it for this team's queue (the agent must be a member); the agent's own queue
        /// when absent.
        team: Option<String>,
    },
    /// Agent accepts a waiting session or an invitation from one of their queues.
    Accept {
        /// The session.
        session: SessionId,
    },
    /// The session's owner moves it to another agent's or a team's queue, and leaves it.
    Transfer {
        /// The session.
        session: SessionId,
        /// Where to.
        to: Target,
    },
    /// A member invites another agent or a team to join the session.
    Invite {
        /// The session.
        session: SessionId,
        /// Whom.
        to: Target,
        /// Whether the invitee joins hidden from the customer (watching only).
        masked: bool,
    },
    /// Agent leaves a session; the others stay.
    LeaveSession {
        /// The session to leave.
        session: SessionId,
    },
    /// The owner ends a session for everyone.
    EndForAll {
        /// The session.
        session: SessionId,
    },
    /// Agent asks for the teams and agents they can transfer to or invite.
    Directory,
    /// Host ends its session.
    EndSession,
    /// A chat message (a host's always goes to everyone).
    Say {
        /// The session.
        session: SessionId,
        /// For whom.
        to: Audience,
        /// The text (at most [`crate::chat::MAX_CHAT_CHARS`] characters).
        text: String,
    },
    /// Agent asks for a session's chat log so far (it comes as [`ServerMsg::Chat`]).
    ChatHistory {
        /// The session.
        session: SessionId,
    },
    /// Host reports something for the session's log.
    Note(HostNote),
    /// Agent asks for their scripted messages and addresses (their own and their teams').
    Scripts,
    /// Agent asks for an email invitation to one of their live keys, for one recipient. The
    /// relay writes the message; it sends it when it has a mail server, and returns its text
    /// for the agent's own mail program otherwise ([`ServerMsg::Invitation`]).
    EmailInvite {
        /// The key's PIN.
        pin: String,
        /// The one recipient.
        to: String,
    },
    /// A member replaces the session's notes (at most [`NOTES_MAX`] characters).
    SetNotes {
        /// The session.
        session: SessionId,
        /// The notes.
        text: String,
    },
}

/// How long a session waits for its customer's host to come back after its connection drops.
pub const RESUME_WINDOW_SECS: u64 = 120;

/// Most characters of a session's notes.
pub const NOTES_MAX: usize = 20_000;

/// Relay to client, on the control stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ServerMsg {
    /// The hello was accepted.
    Welcome {
        /// Version the relay speaks.
        version: u16,
    },
    /// A request was refused; for hello, login and join the connection closes after it.
    Refused(Refusal),
    /// Login succeeded.
    LoggedIn {
        /// Account name.
        agent: String,
        /// Display name.
        display: String,
        /// The teams the agent belongs to.
        teams: Vec<String>,
        /// The token to log in again with if the connection drops (single use; it expires
        /// [`RESUME_WINDOW_SECS`] after the connection is lost).
        resume: [u8; 32],
    },
    /// After a login, once the sessions the agent is still in were announced again
    /// ([`ServerMsg::SessionStarted`]): the whole list. A console that comes back closes the tabs
    /// of sessions not in it (they ended, or the agent left them, while it was away).
    InSessions {
        /// The sessions.
        sessions: Vec<SessionId>,
    },
    /// A key was created for this agent.
    KeyCreated(SessionKey),
    /// An email invitation, sent by the relay (`sent`), or to send from the agent's own mail
    /// program.
    Invitation {
        /// The recipient.
        to: String,
        /// Whether the relay sent it.
        sent: bool,
        /// The subject.
        subject: String,
        /// The text.
        body: String,
    },
    /// The host joined: the customer waits in a queue.
    Joined {
        /// The session.
        session: SessionId,
        /// Whose queue it waits in, for the customer: an agent's display name or a team's name.
        queue: String,
        /// The token to resume the session with if the connection drops (single use; it expires
        /// [`RESUME_WINDOW_SECS`] after the connection is lost).
        resume: [u8; 32],
    },
    /// The host is back in its session after a dropped connection.
    Resumed {
        /// The session.
        session: SessionId,
        /// Whose queue it came through, as in [`ServerMsg::Joined`].
        queue: String,
        /// The next resume token (the one used is spent).
        resume: [u8; 32],
    },
    /// A member's session lost its customer's connection; the relay waits for them to come back.
    CustomerAway {
        /// The session.
        session: SessionId,
    },
    /// The customer is back: screens and input must be opened again (grants start over).
    CustomerBack {
        /// The session.
        session: SessionId,
    },
    /// The host's place in line while no agent has accepted it (1 is next).
    InLine {
        /// The place.
        place: u32,
    },
    /// Entries of this agent's queues: new, changed, or listed at login (at most
    /// [`QUEUE_CHUNK`] per message).
    Queue {
        /// The entries.
        entries: Vec<QueueEntry>,
    },
    /// An entry left one of this agent's queues.
    Unqueued {
        /// The session.
        session: SessionId,
        /// The queue.
        queue: QueueId,
        /// Why.
        why: Unqueued,
    },
    /// This agent is now in a session: open its tab.
    SessionStarted(SessionInfo),
    /// A session ended for everyone.
    SessionEnded {
        /// The session.
        session: SessionId,
        /// Why.
        reason: EndReason,
    },
    /// This agent is no longer in a session that goes on.
    Left {
        /// The session.
        session: SessionId,
        /// Why.
        reason: LeftReason,
    },
    /// The agents in a session changed (sent to its agents).
    MembersChanged {
        /// The session.
        session: SessionId,
        /// The agents in it now.
        members: Vec<MemberInfo>,
    },
    /// The agents helping the customer changed (sent to the host): display names of the unmasked
    /// members only.
    AgentsChanged {
        /// The session.
        session: SessionId,
        /// Display names.
        agents: Vec<String>,
    },
    /// Lines of a session's chat: new, or the log so far (at most [`crate::chat::CHAT_CHUNK`]
    /// per message). Each reader gets only the lines meant for them.
    Chat {
        /// The session.
        session: SessionId,
        /// The lines, in order.
        entries: Vec<ChatEntry>,
    },
    /// The agent's scripted messages and addresses.
    Scripts(Vec<crate::chat::Script>),
    /// A session's notes (on opening its tab, and whenever a member saves them).
    Notes {
        /// The session.
        session: SessionId,
        /// The notes.
        text: String,
        /// Who saved them last (display name), if anyone did.
        by: Option<String>,
    },
    /// The answer to [`ClientMsg::Directory`].
    Directory {
        /// Teams.
        teams: Vec<TeamInfo>,
        /// Agents (at most [`DIRECTORY_MAX`]).
        agents: Vec<AgentInfo>,
    },
}

/// Most queue entries in one [`ServerMsg::Queue`], so a message stays far below the control
/// frame limit.
pub const QUEUE_CHUNK: usize = 32;

/// Most agents (and teams) in one [`ServerMsg::Directory`].
pub const DIRECTORY_MAX: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_never_shows_its_password_in_logs() {
        let m = ClientMsg::Login {
            user: "alice".into(),
            password: "hunter2 hunter2".into(),
            client: [7; 32],
        };
        let shown = format!("{m:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
        // The wire form is the plain string, as before.
        let bytes = postcard::to_stdvec(&Password("pw".into())).expect("encode");
        assert_eq!(bytes, postcard::to_stdvec("pw").expect("encode"));
    }
}

/// Why a session ended for the receiver.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The customer ended the session.
    CustomerEnded,
    /// The customer's host lost its connection.
    CustomerDisconnected,
    /// The (last) agent left the session.
    AgentLeft,
    /// The owner ended the session for everyone.
    AgentEnded,
    /// The relay is shutting down.
    RelayShutdown,
}

impl EndReason {
    /// A stable name, for records.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CustomerEnded => "customer_ended",
            EndReason::CustomerDisconnected => "customer_disconnected",
            EndReason::AgentLeft => "agent_left",
            EndReason::AgentEnded => "agent_ended",
            EndReason::RelayShutdown => "relay_shutdown",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::CustomerEnded => "the customer ended the session",
            EndReason::CustomerDisconnected => "the customer's connection was lost",
            EndReason::AgentLeft => "the agent left the session",
            EndReason::AgentEnded => "the support agent ended the session",
            EndReason::RelayShutdown => "the relay shut down",
        })
    }
}

/// Why the relay refused a request. Each has a message a person can act on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The client speaks another protocol version.
    #[error("unsupported protocol version {theirs}: this relay speaks version {ours}")]
    UnsupportedVersion {
        /// The relay's version.
        ours: u16,
        /// The client's version.
        theirs: u16,
    },
    /// The first frame was not a Tether hello.
    #[error("not a tether client")]
    NotTether,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many failed attempts from this address.
    #[error("too many failed attempts from this address; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt is accepted.
        retry_after_secs: u32,
    },
    /// The key is not 9 digits or a session URL.
    #[error("that is not a session key: expected 9 digits or a session URL")]
    KeyMalformed,
    /// No such key.
    #[error("wrong session key")]
    KeyWrong,
    /// The key expired.
    #[error("this session key has expired; ask your support agent for a new one")]
    KeyExpired,
    /// The key was already used.
    #[error("this session key has already been used; ask your support agent for a new one")]
    KeyUsed,
    /// Another login from this address is being checked now.
    #[error("another login from your address is being checked; try again in a moment")]
    LoginInProgress,
    /// The relay takes no more connections (from this address, or at all).
    #[error("{}", if *from_your_address {
        format!("too many connections from your address (at most {limit}); close some and try again")
    } else {
        format!("the relay is full ({limit} connections); try again later")
    })]
    TooManyConnections {
        /// Whether the limit is the one per source address.
        from_your_address: bool,
        /// The limit.
        limit: u32,
    },
    /// The agent has as many live keys as allowed.
    #[error("you have {limit} session keys waiting already; use one or let them expire")]
    TooManyKeys {
        /// The limit.
        limit: u32,
    },
    /// The request is not allowed for this peer.
    #[error("not allowed: {0}")]
    NotAllowed(Denied),
}

/// Why a request is not allowed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Only a login comes first on an agent's connection.
    #[error("log in first")]
    LogInFirst,
    /// Only a join comes first on a host's connection.
    #[error("join with a session key first")]
    JoinFirst,
    /// The peer is logged in already.
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// The request is a host's.
    #[error("only a customer's host can do that")]
    HostsOnly,
    /// The request is an agent's.
    #[error("only an agent can do that")]
    AgentsOnly,
    /// No agent is logged in on this connection.
    #[error("not logged in")]
    NotLoggedIn,
    /// The session does not exist (any more).
    #[error("no such session")]
    NoSuchSession,
    /// The asker is not a member of the session.
    #[error("you are not in that session")]
    NotInSession,
    /// The customer's host is not connected.
    #[error("the customer is not connected")]
    CustomerGone,
    /// The host's description of the computer is too long.
    #[error("customer information is too large")]
    CustomerInfoTooLarge,
    /// Another agent accepted it first.
    #[error("already accepted by {0}")]
    AlreadyAccepted(String),
    /// The session is not in one of the asker's queues.
    #[error("that session is not in one of your queues")]
    NotYourQueue,
    /// Only the session's owner may do that.
    #[error("only the agent in charge of the session can do that")]
    NotOwner,
    /// A masked member may only watch.
    #[error("a masked member can only watch")]
    MaskedWatchOnly,
    /// The asker is in the session already.
    #[error("you are in that session already")]
    AlreadyInSession,
    /// No team of that name.
    #[error("no team named {0}")]
    NoSuchTeam(String),
    /// No agent of that name.
    #[error("no agent named {0}")]
    NoSuchAgent(String),
    /// The agent is not logged in.
    #[error("{0} is not online")]
    AgentOffline(String),
    /// The asker is not in that team.
    #[error("you are not in team {0}")]
    NotInTeam(String),
    /// Too many chat lines or notes in a short time.
    #[error("too many messages at once; wait a moment")]
    TooFast,
    /// The notes are longer than allowed.
    #[error("notes are limited to {NOTES_MAX} characters")]
    NotesTooLong,
    /// A chat message was not taken.
    #[error("{0}")]
    Chat(crate::chat::ChatError),
    /// A transfer or invitation to oneself.
    #[error("you cannot transfer or invite to yourself")]
    ToYourself,
    /// The relay failed (its database, say); the details are in its log.
    #[error("the relay could not do that right now; try again")]
    RelayFailed,
    /// The key is not one of the asker's live keys.
    #[error("that is not one of your live session keys")]
    NotYourKey,
    /// The address is not one email address.
    #[error("that is not an email address")]
    BadEmail,
    /// The mail server did not take the message.
    #[error("the mail server did not take the invitation: {0}")]
    MailFailed(String),
}

impl Refusal {
    /// The kind of refusal, as a stable name (for counting and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnsupportedVersion { .. } => "unsupported_version",
            Refusal::NotTether => "not_tether",
            Refusal::BadCredentials => "bad_credentials",
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::KeyMalformed => "key_malformed",
            Refusal::KeyWrong => "key_wrong",
            Refusal::KeyExpired => "key_expired",
            Refusal::KeyUsed => "key_used",
            Refusal::LoginInProgress => "login_in_progress",
            Refusal::TooManyConnections { .. } => "too_many_connections",
            Refusal::TooManyKeys { .. } => "too_many_keys",
            Refusal::NotAllowed(_) => "not_allowed",
        }
    }
}

/// First frame of a media stream an agent opens towards the relay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum OpenStream {
    /// Subscribe to the screen of a session.
    Screen {
        /// The session.
        session: SessionId,
        /// Index into [`CustomerInfo::monitors`].
        monitor: u8,
    },
    /// The agent's input stream of a session: consent requests, input, clipboard.
    Input {
        /// The session.
        session: SessionId,
    },
    /// One file operation (browse, upload or download) in a session.
    Files {
        /// The session.
        session: SessionId,
    },
}

impl OpenStream {
    /// The session the stream belongs to.
    pub fn session(&self) -> SessionId {
        match self {
            OpenStream::Screen { session, .. }
            | OpenStream::Input { session }
            | OpenStream::Files { session } => *session,
        }
    }

    /// Which kind of stream it is.
    pub fn kind(&self) -> crate::desk::StreamKind {
        use crate::desk::StreamKind;
        match self {
            OpenStream::Screen { .. } => StreamKind::Screen,
            OpenStream::Input { .. } => StreamKind::Input,
            OpenStream::Files { .. } => StreamKind::Files,
        }
    }

    /// The preamble the relay sends the host for this stream, naming the participant as the
    /// host may see them.
    pub fn for_host(self, who: Participant) -> HostStream {
        match self {
            OpenStream::Screen { monitor, .. } => HostStream::Screen {
                viewer: who,
                monitor,
            },
            OpenStream::Input { .. } => HostStream::Input { agent: who },
            OpenStream::Files { .. } => HostStream::Files { agent: who },
        }
    }
}

/// First frame of a media stream the relay opens towards a host.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum HostStream {
    /// A member subscribes to a screen.
    Screen {
        /// Who watches.
        viewer: Participant,
        /// Index into [`CustomerInfo::monitors`].
        monitor: u8,
    },
    /// An agent's input stream.
    Input {
        /// The agent.
        agent: Participant,
    },
    /// One of an agent's file operations.
    Files {
        /// The agent.
        agent: Participant,
    },
}

impl HostStream {
    /// Who opened it.
    pub fn who(&self) -> &Participant {
        match self {
            HostStream::Screen { viewer, .. } => viewer,
            HostStream::Input { agent } | HostStream::Files { agent } => agent,
        }
    }
}

/// Host to viewer, on a screen stream. Opaque to the relay. A frame is one or more messages, the
/// last marked as such; other encodings (a video codec) are further variants.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ScreenMsg {
    /// A part of a frame update.
    Update(FrameUpdate),
}

impl ScreenMsg {
    /// Bytes of picture it carries, for flow control.
    pub fn picture_len(&self) -> usize {
        match self {
            ScreenMsg::Update(u) => {
                u.data.len() + u.glyphs.len() + u.lossy.iter().map(|j| j.data.len()).sum::<usize>()
            }
        }
    }

    /// Asks the viewer to acknowledge the frame at once (on a frame's last part).
    pub fn ask_ack(&mut self) {
        match self {
            ScreenMsg::Update(u) => u.ack = true,
        }
    }
}

/// Viewer to host, on a screen stream. Opaque to the relay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ViewerMsg {
    /// The viewer has presented the update with this sequence number and every one before it
    /// (sent when the host asks, see [`crate::screen::FrameUpdate::ack`]).
    Ack {
        /// Sequence number of the last part.
        seq: u64,
    },
    /// Switch this viewer to another monitor.
    SelectMonitor {
        /// Index into [`CustomerInfo::monitors`].
        monitor: u8,
    },
    /// Change this viewer's quality mode.
    SetQuality {
        /// The mode.
        quality: Quality,
    },
}
