//! The relay's rules as a sans-IO state machine: who is online, which sessions exist and who is
//! in them, the queues customers wait in, and who may do what.
//!
//! The async shell ([`crate::server`]) feeds it what happened (an agent logged in, a host
//! joined, a request arrived, a connection closed, time passed) and carries out what it returns
//! ([`Output`]: messages to send, media streams to cut, records to write). It holds no sockets,
//! no clock and no database, so every rule is tested with plain calls.
//!
//! A session waits in a queue until an agent who sees that queue accepts it and becomes its
//! owner. Members are the agents in it: the owner and the invited (masked members only watch).
//! When the last unmasked member leaves, the session goes back to the queue it came from; when
//! they lose their connection, it waits in the owner's personal queue first and moves on after
//! [`Core::requeue_after`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tether_protocol::chat::{ChatEntry, StatusNote};
use tether_protocol::desk::{
    EntryKind, LeftReason, MemberInfo, MemberRole, Participant, ParticipantId, QueueEntry, QueueId,
    StreamKind, Target, Unqueued, Via,
};
use tether_protocol::msg::{
    CustomerInfo, Denied, EndReason, QUEUE_CHUNK, Refusal, ServerMsg, SessionId, SessionInfo,
};

use serde::{Deserialize, Serialize};

use crate::store::Actor;

mod admission;
mod chat;
mod presence;
#[cfg(test)]
mod tests;

pub use admission::Admission;
pub use presence::{AGENT_GRACE, Snapshot};
use presence::{AgentPass, HostLink};

/// A connection, as numbered by the shell.
pub type ConnId = u64;

/// The time, passed in: monotonic for limits, wall clock for what people read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Since the relay started.
    pub mono: Duration,
    /// Seconds since the Unix epoch.
    pub unix: u64,
}

/// A logged-in agent, as the store knows them at login.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentProfile {
    /// Login name.
    pub login: String,
    /// Display name.
    pub display: String,
    /// Teams they belong to.
    pub teams: BTreeSet<String>,
}

impl AgentProfile {
    /// Whether this agent sees (and may accept from) `queue`.
    pub fn sees(&self, queue: &QueueId) -> bool {
        match queue {
            QueueId::Personal(login) => *login == self.login,
            QueueId::Team(team) => self.teams.contains(team),
            QueueId::General => true,
        }
    }
}

/// Whose queue a key sends its customer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// An agent's personal queue.
    Agent {
        /// Login name.
        login: String,
        /// Display name.
        display: String,
    },
    /// A team's queue.
    Team(String),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message on a connection's control stream.
    Send(ConnId, ServerMsg),
    /// Close a connection (a host that came back on another one).
    Close(ConnId),
    /// Cut the media streams this connection has open in this session (its member left).
    Revoke {
        /// The agent's connection.
        conn: ConnId,
        /// The session.
        session: SessionId,
    },
    /// Record that a session ended.
    Ended {
        /// The session.
        session: SessionId,
        /// Why.
        reason: EndReason,
    },
    /// Keep a session's notes in its record.
    Notes {
        /// The session.
        session: SessionId,
        /// The notes.
        text: String,
        /// Who saved them (login).
        by: String,
    },
    /// Keep a chat line in the session's record.
    Chat {
        /// The session.
        session: SessionId,
        /// The line.
        entry: ChatEntry,
    },
    /// Append to the audit trail (the session's history).
    Audit {
        /// The session concerned.
        session: Option<SessionId>,
        /// Who did it.
        actor: Actor,
        /// What, e.g. `session.accepted`.
        action: &'static str,
        /// Details.
        detail: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    pid: ParticipantId,
    login: String,
    display: String,
    role: MemberRole,
    masked: bool,
}

impl Member {
    fn info(&self) -> MemberInfo {
        MemberInfo {
            id: self.pid,
            login: self.login.clone(),
            display: self.display.clone(),
            role: self.role,
            masked: self.masked,
        }
    }
}

/// A session waiting in a queue for an agent to take it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Waiting {
    queue: QueueId,
    since: u64,
    kind: EntryKind,
    /// Move on to this queue at this time (a dropped owner's session, after the grace period).
    fallback: Option<(u64, QueueId)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Invitation {
    queue: QueueId,
    since: u64,
    from: String,
    masked: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    host: HostLink,
    customer: CustomerInfo,
    started_at: u64,
    origin: QueueId,
    /// The agents in it, in the order they came.
    members: Vec<Member>,
    waiting: Option<Waiting>,
    invitations: Vec<Invitation>,
    /// The place in line last told to the host (0: not in line).
    place: u32,
    /// The chat log's latest lines.
    chat: std::collections::VecDeque<ChatEntry>,
    /// The number of the last chat line.
    chat_seq: u64,
    /// The members' notes, and who saved them last (display name).
    notes: (String, Option<String>),
    /// Whose queue the host was told it waits in (`Joined`'s words).
    host_label: String,
    /// What lets the host come back after its connection drops.
    resume: Option<ResumeKey>,
}

/// A host arriving in a new session.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Whose queue it enters.
    pub owner: KeyOwner,
    /// The customer's computer (and their request from the portal).
    pub customer: CustomerInfo,
    /// It came through the portal (a ticket or a help link).
    pub portal: bool,
    /// What lets it come back after its connection drops.
    pub resume: Option<ResumeKey>,
}

/// A client's resume token and the identity it must come back with (a host's, or a console's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeKey {
    /// The token (random; single use: a resume replaces it).
    pub token: [u8; 32],
    /// The client's identity, given at join or login.
    pub client: [u8; 32],
}

impl Session {
    fn member(&self, login: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.login == login)
    }

    fn owner(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.role == MemberRole::Owner)
    }

    fn helpers(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| !m.masked)
    }
}

/// Who is connected, which sessions exist, and the queues.
#[derive(Debug)]
pub struct Core {
    agents: BTreeMap<ConnId, AgentProfile>,
    hosts: BTreeMap<ConnId, SessionId>,
    sessions: BTreeMap<SessionId, Session>,
    next_pid: u64,
    /// How long a dropped owner's session waits in their personal queue before it moves on.
    pub requeue_after: Duration,
    /// Login and join limits.
    pub admission: Admission,
    /// Chat lines per connection in the current window: (window start, count).
    chat_rate: BTreeMap<ConnId, (u64, u32)>,
    /// How long an agent whose last connection dropped keeps their place in their sessions.
    pub agent_grace: Duration,
    /// Agents whose last connection dropped while in sessions: login, and when their place is
    /// given up (Unix seconds).
    away: BTreeMap<String, u64>,
    /// The consoles' ways back: one per logged-in connection, kept after it drops until it
    /// expires.
    passes: Vec<AgentPass>,
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
    }
}

/// The default of [`Core::requeue_after`].
pub const REQUEUE_AFTER: Duration = Duration::from_secs(60);

fn audit(session: SessionId, actor: Actor, action: &'static str, detail: String) -> Output {
    Output::Audit {
        session: Some(session),
        actor,
        action,
        detail,
    }
}

impl Core {
    /// An empty relay.
    pub fn new() -> Self {
        Self {
            agents: BTreeMap::new(),
            hosts: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_pid: 1,
            requeue_after: REQUEUE_AFTER,
            admission: Admission::new(),
            chat_rate: BTreeMap::new(),
            agent_grace: AGENT_GRACE,
            away: BTreeMap::new(),
            passes: Vec::new(),
        }
    }

    fn pid(&mut self) -> ParticipantId {
        let id = ParticipantId(self.next_pid);
        self.next_pid += 1;
        id
    }

    fn agent(&self, conn: ConnId) -> Result<&AgentProfile, Refusal> {
        self.agents
            .get(&conn)
            .ok_or(Refusal::NotAllowed(Denied::NotLoggedIn))
    }

    /// The agent on `conn` and their membership of session `id`.
    fn membership(&self, conn: ConnId, id: SessionId) -> Result<(AgentProfile, Member), Refusal> {
        let agent = self.agent(conn)?;
        let me = self
            .session(id)?
            .member(&agent.login)
            .ok_or(Refusal::NotAllowed(Denied::NotInSession))?;
        Ok((agent.clone(), me.clone()))
    }

    fn conns_of<'a>(&'a self, login: &'a str) -> impl Iterator<Item = ConnId> + 'a {
        self.agents
            .iter()
            .filter(move |(_, a)| a.login == login)
            .map(|(c, _)| *c)
    }

    fn online(&self, login: &str) -> bool {
        self.conns_of(login).next().is_some()
    }

    /// The connections of agents who see `queue`.
    fn viewers<'a>(&'a self, queue: &'a QueueId) -> impl Iterator<Item = ConnId> + 'a {
        self.agents
            .iter()
            .filter(move |(_, a)| a.sees(queue))
            .map(|(c, _)| *c)
    }

    fn send_to_login(&self, login: &str, msg: &ServerMsg, out: &mut Vec<Output>) {
        for c in self.conns_of(login) {
            out.push(Output::Send(c, msg.clone()));
        }
    }

    fn session(&self, id: SessionId) -> Result<&Session, Refusal> {
        self.sessions
            .get(&id)
            .ok_or(Refusal::NotAllowed(Denied::NoSuchSession))
    }

    fn session_mut(&mut self, id: SessionId) -> Result<&mut Session, Refusal> {
        self.sessions
            .get_mut(&id)
            .ok_or(Refusal::NotAllowed(Denied::NoSuchSession))
    }

    /// The entries a session has in queues: waiting for an owner, and invitations.
    fn entries(&self, id: SessionId, s: &Session, arrived: bool) -> Vec<QueueEntry> {
        let entry = |queue: &QueueId, since: u64, kind: EntryKind| QueueEntry {
            session: id,
            queue: queue.clone(),
            customer: s.customer.clone(),
            waiting_since: since,
            kind,
            arrived,
        };
        let mut v: Vec<QueueEntry> = s
            .waiting
            .iter()
            .map(|w| entry(&w.queue, w.since, w.kind.clone()))
            .collect();
        v.extend(s.invitations.iter().map(|i| {
            entry(
                &i.queue,
                i.since,
                EntryKind::Invitation {
                    from: i.from.clone(),
                    masked: i.masked,
                },
            )
        }));
        v
    }

    /// Tells the agents who see `entry`'s queue that it arrived (or changed).
    fn announce(&self, entry: QueueEntry, out: &mut Vec<Output>) {
        let msg = ServerMsg::Queue {
            entries: vec![entry.clone()],
        };
        for c in self.viewers(&entry.queue) {
            out.push(Output::Send(c, msg.clone()));
        }
    }

    fn unqueue(&self, id: SessionId, queue: &QueueId, why: Unqueued, out: &mut Vec<Output>) {
        let msg = ServerMsg::Unqueued {
            session: id,
            queue: queue.clone(),
            why,
        };
        for c in self.viewers(queue) {
            out.push(Output::Send(c, msg.clone()));
        }
    }

    /// Tells the hosts waiting in `queue` their place in line, where it changed.
    fn update_places(&mut self, queue: &QueueId, out: &mut Vec<Output>) {
        let mut line: Vec<(u64, SessionId)> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| {
                s.waiting
                    .as_ref()
                    .filter(|w| w.queue == *queue)
                    .map(|w| (w.since, *id))
            })
            .collect();
        line.sort_unstable();
        for (i, (_, id)) in line.into_iter().enumerate() {
            let place = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if let Some(s) = self.sessions.get_mut(&id)
                && s.place != place
            {
                s.place = place;
                s.host.send(ServerMsg::InLine { place }, out);
            }
        }
    }

    fn info(&self, id: SessionId, s: &Session, me: ParticipantId) -> SessionInfo {
        SessionInfo {
            id,
            customer: s.customer.clone(),
            members: s.members.iter().map(Member::info).collect(),
            me,
            started_at: s.started_at,
            origin: s.origin.clone(),
        }
    }

    /// Tells the members who is in the session, and the host which unmasked agents help.
    fn members_changed(&self, id: SessionId, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        let msg = ServerMsg::MembersChanged {
            session: id,
            members: s.members.iter().map(Member::info).collect(),
        };
        for m in &s.members {
            self.send_to_login(&m.login, &msg, out);
        }
        s.host.send(
            ServerMsg::AgentsChanged {
                session: id,
                agents: s.helpers().map(|m| m.display.clone()).collect(),
            },
            out,
        );
    }

    /// An agent logged in on `conn` (with `pass`, the key their console may come back with);
    /// they are told every entry of their queues, and the sessions they are in open again.
    pub fn agent_online(
        &mut self,
        conn: ConnId,
        profile: AgentProfile,
        pass: Option<ResumeKey>,
        now: Now,
    ) -> Vec<Output> {
        let mut entries = Vec::new();
        for (id, s) in &self.sessions {
            entries.extend(
                self.entries(*id, s, false)
                    .into_iter()
                    .filter(|e| profile.sees(&e.queue)),
            );
        }
        // Sessions the agent is still in (their console came back, or restarted before the
        // relay noticed the old connection was gone) open again on the new connection, and the
        // list of them follows.
        let mut out: Vec<Output> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| {
                let m = s.member(&profile.login)?;
                Some(Output::Send(
                    conn,
                    ServerMsg::SessionStarted(self.info(*id, s, m.pid)),
                ))
            })
            .collect();
        out.push(Output::Send(
            conn,
            ServerMsg::InSessions {
                sessions: self.sessions_of(&profile.login),
            },
        ));
        if let Some(key) = pass {
            self.passes.push(AgentPass::new(key, &profile, conn));
        }
        let login = profile.login.clone();
        self.agents.insert(conn, profile);
        self.agent_back(&login, now, &mut out);
        entries.sort_by_key(|e| e.waiting_since);
        out.extend(entries.chunks(QUEUE_CHUNK).map(|c| {
            Output::Send(
                conn,
                ServerMsg::Queue {
                    entries: c.to_vec(),
                },
            )
        }));
        out
    }

    /// A host joined with a key: a new session waits in the key's queue.
    pub fn host_joined(
        &mut self,
        conn: ConnId,
        id: SessionId,
        owner: KeyOwner,
        customer: CustomerInfo,
        now: Now,
    ) -> Vec<Output> {
        let arrival = Arrival {
            owner,
            customer,
            portal: false,
            resume: None,
        };
        self.host_joined_via(conn, id, arrival, now)
    }

    /// A host arrived with a key, or through the portal, with what lets it come back.
    pub fn host_joined_via(
        &mut self,
        conn: ConnId,
        id: SessionId,
        arrival: Arrival,
        now: Now,
    ) -> Vec<Output> {
        let Arrival {
            owner,
            customer,
            portal,
            resume,
        } = arrival;
        let (queue, label, via) = match owner {
            KeyOwner::Agent { login, display } => (
                QueueId::Personal(login),
                display.clone(),
                Via::AgentKey(display.clone()),
            ),
            KeyOwner::Team(team) => (
                QueueId::Team(team.clone()),
                team.clone(),
                Via::TeamKey(team.clone()),
            ),
        };
        let via = if portal {
            Via::Portal(label.clone())
        } else {
            via
        };
        let session = Session {
            host: HostLink::Here(conn),
            customer,
            started_at: now.unix,
            origin: queue.clone(),
            members: Vec::new(),
            waiting: Some(Waiting {
                queue: queue.clone(),
                since: now.unix,
                kind: EntryKind::Waiting { via },
                fallback: None,
            }),
            invitations: Vec::new(),
            place: 0,
            chat: std::collections::VecDeque::new(),
            chat_seq: 0,
            notes: (String::new(), None),
            host_label: label.clone(),
            resume,
        };
        let mut out = vec![Output::Send(
            conn,
            ServerMsg::Joined {
                session: id,
                queue: label,
                resume: resume.map(|r| r.token).unwrap_or([0; 32]),
            },
        )];
        for e in self.entries(id, &session, true) {
            self.announce(e, &mut out);
        }
        self.hosts.insert(conn, id);
        self.sessions.insert(id, session);
        self.note(id, StatusNote::Waiting(queue.clone()), now.unix, &mut out);
        self.update_places(&queue, &mut out);
        out.push(audit(
            id,
            Actor::Relay,
            "session.queued",
            format!("waits in the {queue}"),
        ));
        out
    }

    /// The agent on `conn` accepts session `id`: the session waiting in one of their queues
    /// (they become its owner), or an invitation to it (they join as invited).
    pub fn accept(
        &mut self,
        conn: ConnId,
        id: SessionId,
        now: Now,
    ) -> Result<Vec<Output>, Refusal> {
        let agent = self.agent(conn)?.clone();
        let s = self.session(id)?;
        let waiting = s.waiting.as_ref().filter(|w| agent.sees(&w.queue)).cloned();
        // A member may only take charge of a session transferred to them (an invited or masked
        // member becomes its owner, visible to the customer, as a new participant).
        let was_member = s.member(&agent.login).is_some();
        if was_member && waiting.is_none() {
            return Err(Refusal::NotAllowed(Denied::AlreadyInSession));
        }
        let invitation = s.invitations.iter().position(|i| agent.sees(&i.queue));
        let (role, masked, queue, action) = match (waiting, invitation) {
            (Some(w), _) => (MemberRole::Owner, false, w.queue, "session.accepted"),
            (None, Some(i)) => {
                let inv = &s.invitations[i];
                (
                    MemberRole::Invited,
                    inv.masked,
                    inv.queue.clone(),
                    "session.invitation_accepted",
                )
            }
            (None, None) => {
                return Err(Refusal::NotAllowed(match s.owner() {
                    Some(o) if s.waiting.is_none() => Denied::AlreadyAccepted(o.display.clone()),
                    _ => Denied::NotYourQueue,
                }));
            }
        };
        let pid = self.pid();
        let mut out = Vec::new();
        if was_member {
            for c in self.conns_of(&agent.login) {
                out.push(Output::Revoke {
                    conn: c,
                    session: id,
                });
            }
        }
        let s = self.session_mut(id)?;
        s.members.retain(|m| m.login != agent.login);
        if role == MemberRole::Owner {
            s.waiting = None;
            s.place = 0;
        } else {
            s.invitations.retain(|i| i.queue != queue);
        }
        s.members.push(Member {
            pid,
            login: agent.login.clone(),
            display: agent.display.clone(),
            role,
            masked,
        });
        self.unqueue(
            id,
            &queue,
            Unqueued::Accepted(agent.display.clone()),
            &mut out,
        );
        let s = self.session(id)?;
        let started = ServerMsg::SessionStarted(self.info(id, s, pid));
        self.send_to_login(&agent.login, &started, &mut out);
        self.members_changed(id, &mut out);
        let note = StatusNote::Joined {
            name: agent.display.clone(),
            masked,
        };
        self.note(id, note, now.unix, &mut out);
        self.update_places(&queue, &mut out);
        let how = if masked { ", masked" } else { "" };
        out.push(audit(
            id,
            Actor::Agent(agent.login.clone()),
            action,
            format!("from the {queue}{how} at {}", now.unix),
        ));
        Ok(out)
    }

    /// Checks a transfer or invitation target: not the asker, and an agent must be online.
    /// (The shell has checked that a team exists.)
    fn check_target(&self, me: &AgentProfile, to: &Target) -> Result<(), Refusal> {
        match to {
            Target::Agent(login) if *login == me.login => {
                Err(Refusal::NotAllowed(Denied::ToYourself))
            }
            Target::Agent(login) if !self.online(login) => {
                Err(Refusal::NotAllowed(Denied::AgentOffline(login.clone())))
            }
            _ => Ok(()),
        }
    }

    /// Takes `login` out of session `id` and cuts their streams; tells them why.
    fn remove_member(
        &mut self,
        id: SessionId,
        login: &str,
        reason: LeftReason,
        out: &mut Vec<Output>,
    ) -> Option<Member> {
        let s = self.sessions.get_mut(&id)?;
        let i = s.members.iter().position(|m| m.login == login)?;
        let m = s.members.remove(i);
        for c in self.conns_of(login) {
            out.push(Output::Revoke {
                conn: c,
                session: id,
            });
            out.push(Output::Send(
                c,
                ServerMsg::Left {
                    session: id,
                    reason: reason.clone(),
                },
            ));
        }
        Some(m)
    }

    /// Puts a session in `queue` to wait for an owner, and tells that queue's agents.
    fn enqueue(
        &mut self,
        id: SessionId,
        waiting: Waiting,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let queue = waiting.queue.clone();
        let s = self.session_mut(id)?;
        s.waiting = Some(waiting);
        let entry = self
            .entries(id, self.session(id)?, true)
            .into_iter()
            .find(|e| e.queue == queue && !matches!(e.kind, EntryKind::Invitation { .. }));
        if let Some(e) = entry {
            self.announce(e, out);
        }
        self.update_places(&queue, out);
        Ok(())
    }

    /// The owner moves session `id` to another queue and leaves it; the customer waits there
    /// for whoever accepts, who asks the customer again for everything.
    pub fn transfer(
        &mut self,
        conn: ConnId,
        id: SessionId,
        to: &Target,
        now: Now,
    ) -> Result<Vec<Output>, Refusal> {
        let (agent, me) = self.membership(conn, id)?;
        if me.role != MemberRole::Owner {
            return Err(Refusal::NotAllowed(Denied::NotOwner));
        }
        self.check_target(&agent, to)?;
        let queue = to.queue();
        let mut out = Vec::new();
        let note = StatusNote::Transferred {
            by: agent.display.clone(),
            to: queue.clone(),
        };
        self.note(id, note, now.unix, &mut out);
        self.remove_member(
            id,
            &agent.login,
            LeftReason::Transferred(queue.clone()),
            &mut out,
        );
        self.enqueue(
            id,
            Waiting {
                queue: queue.clone(),
                since: now.unix,
                kind: EntryKind::Transferred {
                    from: agent.display.clone(),
                },
                fallback: None,
            },
            &mut out,
        )?;
        self.members_changed(id, &mut out);
        out.push(audit(
            id,
            Actor::Agent(agent.login.clone()),
            "session.transferred",
            format!("to the {queue}"),
        ));
        Ok(out)
    }

    /// A member invites an agent or a team to join session `id`, masked or not; the invitation
    /// waits in the target's queue.
    pub fn invite(
        &mut self,
        conn: ConnId,
        id: SessionId,
        to: &Target,
        masked: bool,
        now: Now,
    ) -> Result<Vec<Output>, Refusal> {
        let (agent, me) = self.membership(conn, id)?;
        if me.masked {
            return Err(Refusal::NotAllowed(Denied::MaskedWatchOnly));
        }
        self.check_target(&agent, to)?;
        let queue = to.queue();
        let s = self.session_mut(id)?;
        s.invitations.retain(|i| i.queue != queue);
        s.invitations.push(Invitation {
            queue: queue.clone(),
            since: now.unix,
            from: agent.display.clone(),
            masked,
        });
        let mut out = Vec::new();
        let entry = self
            .entries(id, self.session(id)?, true)
            .into_iter()
            .find(|e| e.queue == queue && matches!(e.kind, EntryKind::Invitation { .. }));
        if let Some(e) = entry {
            self.announce(e, &mut out);
        }
        let note = StatusNote::Invited {
            by: agent.display.clone(),
            to: queue.clone(),
            masked,
        };
        self.note(id, note, now.unix, &mut out);
        let how = if masked { "masked" } else { "unmasked" };
        out.push(audit(
            id,
            Actor::Agent(agent.login.clone()),
            "session.invited",
            format!("{how}, to the {queue}"),
        ));
        Ok(out)
    }

    /// After a member went: the next unmasked member takes charge if the owner went, and with
    /// no unmasked member left the session waits in a queue again.
    fn after_departure(
        &mut self,
        id: SessionId,
        gone: &Member,
        lost: bool,
        now: Now,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(s) = self.sessions.get_mut(&id) else {
            return out;
        };
        if s.waiting.is_none() && s.helpers().next().is_none() {
            let fallback_of = |q: &QueueId| match q {
                QueueId::Personal(_) => QueueId::General,
                other => other.clone(),
            };
            let (queue, fallback) = if lost && gone.role == MemberRole::Owner {
                let after = now.unix + self.requeue_after.as_secs();
                (
                    QueueId::Personal(gone.login.clone()),
                    Some((after, fallback_of(&s.origin))),
                )
            } else {
                (s.origin.clone(), None)
            };
            let waiting = Waiting {
                queue: queue.clone(),
                since: now.unix,
                kind: EntryKind::Returned {
                    from: gone.display.clone(),
                    lost,
                },
                fallback,
            };
            let _ = self.enqueue(id, waiting, &mut out);
            self.note(id, StatusNote::Waiting(queue.clone()), now.unix, &mut out);
            out.push(audit(
                id,
                Actor::Relay,
                "session.requeued",
                format!("waits in the {queue} again"),
            ));
        } else if gone.role == MemberRole::Owner
            && let Some(next) = s.members.iter_mut().find(|m| !m.masked)
        {
            next.role = MemberRole::Owner;
            let who = next.login.clone();
            out.push(audit(
                id,
                Actor::Agent(who),
                "session.owner",
                "takes charge of the session".into(),
            ));
        }
        self.members_changed(id, &mut out);
        out
    }

    /// An agent leaves a session; the others stay, and a session nobody helps with any more
    /// waits in the queue it came from.
    pub fn leave(&mut self, conn: ConnId, id: SessionId, now: Now) -> Result<Vec<Output>, Refusal> {
        let agent = self.agent(conn)?.clone();
        let s = self.session(id)?;
        if s.member(&agent.login).is_none() {
            return Err(Refusal::NotAllowed(Denied::NotInSession));
        }
        let mut out = Vec::new();
        let gone = self.remove_member(id, &agent.login, LeftReason::Left, &mut out);
        self.note(
            id,
            StatusNote::Left(agent.display.clone()),
            now.unix,
            &mut out,
        );
        out.push(audit(
            id,
            Actor::Agent(agent.login.clone()),
            "session.left",
            "left the session".into(),
        ));
        if let Some(gone) = gone {
            out.extend(self.after_departure(id, &gone, false, now));
        }
        Ok(out)
    }

    /// The owner ends session `id` for everyone.
    pub fn end_for_all(&mut self, conn: ConnId, id: SessionId) -> Result<Vec<Output>, Refusal> {
        let agent = self.agent(conn)?.clone();
        let s = self.session(id)?;
        match s.member(&agent.login) {
            None => return Err(Refusal::NotAllowed(Denied::NotInSession)),
            Some(m) if m.role != MemberRole::Owner => {
                return Err(Refusal::NotAllowed(Denied::NotOwner));
            }
            Some(_) => {}
        }
        let mut out = vec![audit(
            id,
            Actor::Agent(agent.login),
            "session.ended_by_agent",
            "ended the session for everyone".into(),
        )];
        self.end(id, EndReason::AgentEnded, &mut out);
        Ok(out)
    }

    fn end(&mut self, id: SessionId, reason: EndReason, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        let ended = ServerMsg::SessionEnded {
            session: id,
            reason,
        };
        if let HostLink::Here(host) = s.host {
            self.hosts.remove(&host);
            out.push(Output::Send(host, ended.clone()));
        }
        for m in &s.members {
            for c in self.conns_of(&m.login) {
                out.push(Output::Revoke {
                    conn: c,
                    session: id,
                });
                out.push(Output::Send(c, ended.clone()));
            }
        }
        for e in self.entries(id, &s, false) {
            self.unqueue(id, &e.queue, Unqueued::Ended, out);
        }
        if let Some(w) = &s.waiting {
            self.update_places(&w.queue, out);
        }
        out.push(Output::Ended {
            session: id,
            reason,
        });
    }

    /// The customer ended the session from the host.
    pub fn end_by_host(&mut self, conn: ConnId) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(id) = self.hosts.get(&conn).copied() {
            self.end(id, EndReason::CustomerEnded, &mut out);
        }
        out
    }

    /// Time passed: sessions whose grace period in a dropped owner's queue is over move on, and
    /// sessions whose customer did not come back in time end.
    pub fn tick(&mut self, now: Now) -> Vec<Output> {
        let mut ended = self.presence_tick(now);
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.waiting
                    .as_ref()
                    .and_then(|w| w.fallback.as_ref())
                    .is_some_and(|(at, _)| *at <= now.unix)
            })
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in due {
            let Some(w) = self.sessions.get_mut(&id).and_then(|s| s.waiting.take()) else {
                continue;
            };
            let Some((_, next)) = w.fallback.clone() else {
                continue;
            };
            self.unqueue(id, &w.queue, Unqueued::Moved, &mut out);
            self.update_places(&w.queue, &mut out);
            let moved = Waiting {
                queue: next.clone(),
                fallback: None,
                ..w
            };
            let _ = self.enqueue(id, moved, &mut out);
            out.push(audit(
                id,
                Actor::Relay,
                "session.requeued",
                format!("moved to the {next} after waiting"),
            ));
        }
        ended.extend(out);
        ended
    }

    /// The agent logged in on `conn`.
    pub fn agent_of(&self, conn: ConnId) -> Option<&AgentProfile> {
        self.agents.get(&conn)
    }

    /// Whether an agent of this login is online.
    pub fn is_online(&self, login: &str) -> bool {
        self.online(login)
    }

    /// May the agent on `conn` open a stream of `kind` in session `id`? Returns the host's
    /// connection and the agent as the host may see them.
    pub fn stream_route(
        &self,
        conn: ConnId,
        id: SessionId,
        kind: StreamKind,
    ) -> Result<(ConnId, Participant), Refusal> {
        let agent = self.agent(conn)?;
        let s = self.session(id)?;
        let m = s
            .member(&agent.login)
            .ok_or(Refusal::NotAllowed(Denied::NotInSession))?;
        if m.masked && kind != StreamKind::Screen {
            return Err(Refusal::NotAllowed(Denied::MaskedWatchOnly));
        }
        let HostLink::Here(host) = s.host else {
            return Err(Refusal::NotAllowed(Denied::CustomerGone));
        };
        Ok((
            host,
            Participant {
                id: m.pid,
                name: (!m.masked).then(|| m.display.clone()),
            },
        ))
    }

    /// Sessions in progress (waiting or not).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Online agents: login, and how many teams' members are online, by team.
    pub fn online_agents(&self) -> (BTreeSet<String>, BTreeMap<String, u32>) {
        let logins: BTreeSet<String> = self.agents.values().map(|a| a.login.clone()).collect();
        let mut teams: BTreeMap<String, u32> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for a in self.agents.values() {
            if seen.insert(a.login.clone()) {
                for t in &a.teams {
                    *teams.entry(t.clone()).or_default() += 1;
                }
            }
        }
        (logins, teams)
    }
}
