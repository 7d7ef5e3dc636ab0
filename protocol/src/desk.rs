//! The support desk on the wire: who takes part in a session, the queues customers wait in, and
//! the targets of transfers and invitations.
//!
//! Agents are known to each other by login name and display name. The customer's host only ever
//! learns display names, and only of unmasked members; a masked member is a [`Participant`]
//! without a name.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::msg::{CustomerInfo, SessionId};

/// A participant in a session (an agent's membership, or the customer's host), numbered by the
/// relay. A new membership (after a transfer, say) is a new participant: the customer's grants
/// never carry over to it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// What a member is to the session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// The agent in charge: accepted the session (or took it over), may end it for everyone.
    Owner,
    /// An agent who joined on an invitation.
    Invited,
    /// The customer's host.
    Host,
}

/// A member of a session, as agents see it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The membership.
    pub id: ParticipantId,
    /// Login name (empty for the host).
    pub login: String,
    /// Display name (the customer's name for the host).
    pub display: String,
    /// Owner, invited agent or host.
    pub role: MemberRole,
    /// Hidden from the customer: never named to the host, and may only watch.
    pub masked: bool,
}

/// Who opens a stream towards the host: a masked member comes without a name. Shown as the
/// name, or as "a support representative".
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Participant {
    /// The membership; the host keys grants by it.
    pub id: ParticipantId,
    /// The display name, or `None` for a masked member.
    pub name: Option<String>,
}

impl Participant {
    /// The name to show the customer.
    pub fn shown(&self) -> &str {
        self.name.as_deref().unwrap_or("a support representative")
    }
}

impl fmt::Display for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

/// A queue customers wait in.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueId {
    /// One agent's own queue (keys they made, sessions transferred to them), by login.
    Personal(String),
    /// A team's queue, by team name.
    Team(String),
    /// The relay's general queue, seen by every agent.
    General,
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueId::Personal(a) => write!(f, "personal queue of {a}"),
            QueueId::Team(t) => write!(f, "team {t}"),
            QueueId::General => f.write_str("general queue"),
        }
    }
}

/// The key a customer came with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An agent's session key (the agent's display name).
    AgentKey(String),
    /// A team's key (the team's name).
    TeamKey(String),
    /// The portal: its issue form or a help link (the queue's name, as the customer read it).
    Portal(String),
}

/// Why a session is in a queue.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A customer joined and waits for someone to accept.
    Waiting {
        /// How they came.
        via: Via,
    },
    /// An agent transferred the session here.
    Transferred {
        /// Who transferred it (display name).
        from: String,
    },
    /// An invitation to join a session someone is already in.
    Invitation {
        /// Who invites (display name).
        from: String,
        /// Whether the invitee joins masked.
        masked: bool,
    },
    /// The session's agents left or lost their connection; the customer waits again.
    Returned {
        /// Who was last in it (display name).
        from: String,
        /// Whether their connection was lost (rather than them leaving).
        lost: bool,
    },
}

/// One entry of a queue: a session waiting for an agent, or an invitation.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The session.
    pub session: SessionId,
    /// The queue it is in.
    pub queue: QueueId,
    /// The customer's computer.
    pub customer: CustomerInfo,
    /// Since when it waits there, seconds since the Unix epoch.
    pub waiting_since: u64,
    /// Why it is there.
    pub kind: EntryKind,
    /// It just arrived (alert the agent), rather than being listed at login.
    pub arrived: bool,
}

/// Why an entry left a queue.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Unqueued {
    /// An agent accepted it (display name).
    Accepted(String),
    /// It moved to another queue.
    Moved,
    /// The session ended.
    Ended,
}

/// Where a session is transferred or an invitation sent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An agent, by login name (their personal queue).
    Agent(String),
    /// A team, by name (its queue).
    Team(String),
    /// The general queue.
    General,
}

impl Target {
    /// The queue this target means.
    pub fn queue(&self) -> QueueId {
        match self {
            Target::Agent(a) => QueueId::Personal(a.clone()),
            Target::Team(t) => QueueId::Team(t.clone()),
            Target::General => QueueId::General,
        }
    }
}

/// A team, for the transfer and invite dialogs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TeamInfo {
    /// The team's name.
    pub name: String,
    /// Its members online now.
    pub online: u32,
    /// Whether the asking agent is a member.
    pub mine: bool,
}

/// An agent, for the transfer and invite dialogs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// Login name.
    pub login: String,
    /// Display name.
    pub display: String,
    /// Logged in now.
    pub online: bool,
}

/// Why an agent is no longer in a session that goes on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LeftReason {
    /// They left it.
    Left,
    /// They transferred it (to this queue).
    Transferred(QueueId),
}

/// The kinds of media stream, each authorized on its own.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Watching a monitor.
    Screen,
    /// Consent requests, input, clipboard, pushed addresses.
    Input,
    /// One file operation.
    Files,
}

impl StreamKind {
    /// A stable name, for logs and refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Screen => "screen",
            StreamKind::Input => "input",
            StreamKind::Files => "files",
        }
    }
}
