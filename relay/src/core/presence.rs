//! Who is connected, and coming back: a host or a console whose connection dropped keeps its
//! place for a while and resumes with a single-use token bound to its identity; a relay that
//! restarts hands its sessions to the next one as a [`Snapshot`].
//!
//! - A host that drops is *away*: its session waits [`RESUME_WINDOW_SECS`] for it, then ends.
//! - An agent whose last connection drops is *away* from their sessions for
//!   [`Core::agent_grace`]; then they leave them as if lost (a session nobody else helps with
//!   waits in their queue, then the one it came from).
//! - A console's pass (its resume token) lives while its connection is open and
//!   [`RESUME_WINDOW_SECS`] after.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tether_protocol::chat::StatusNote;
use tether_protocol::msg::{EndReason, RESUME_WINDOW_SECS, Refusal, ServerMsg, SessionId};
use tether_protocol::pairing::same_secret;

use super::{AgentProfile, ConnId, Core, Now, Output, ResumeKey, Session, audit};
use crate::store::Actor;

/// The default of [`Core::agent_grace`]: long enough for a network to come back or a relay to
/// restart, short enough that a customer whose agent is really gone is soon helped by another.
pub const AGENT_GRACE: Duration = Duration::from_secs(30);

/// Where a session's host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum HostLink {
    /// Connected on this connection.
    Here(ConnId),
    /// Its connection dropped: the session waits for it until this time (Unix seconds).
    Away {
        /// When the session ends if the host is not back.
        until: u64,
    },
}

impl HostLink {
    /// Sends `msg` to the host if it is connected (an away host hears nothing).
    pub(super) fn send(&self, msg: ServerMsg, out: &mut Vec<Output>) {
        if let HostLink::Here(c) = self {
            out.push(Output::Send(*c, msg));
        }
    }
}

/// A console's way back after its connection drops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AgentPass {
    key: ResumeKey,
    profile: AgentProfile,
    /// The connection it belongs to while that is open.
    conn: Option<ConnId>,
    /// When it expires, once its connection closed (Unix seconds).
    until: Option<u64>,
}

impl AgentPass {
    pub(super) fn new(key: ResumeKey, profile: &AgentProfile, conn: ConnId) -> Self {
        Self {
            key,
            profile: profile.clone(),
            conn: Some(conn),
            until: None,
        }
    }
}

/// What a relay that stops hands to the next one: the sessions that can come back (their
/// hosts hold resume tokens), the consoles' passes and who was away. Everything in it is
/// restored as away, with fresh deadlines counted from the restart.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken (Unix seconds).
    pub saved_at: u64,
    sessions: Vec<(SessionId, Session)>,
    passes: Vec<AgentPass>,
    next_pid: u64,
}

impl Snapshot {
    /// The number of sessions in it.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

impl Core {
    /// A connection closed: a host's session waits for it to come back (or ends, if it cannot);
    /// an agent's last connection makes them away from their sessions.
    pub fn closed(&mut self, conn: ConnId, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        self.forget_chat_rate(conn);
        if let Some(id) = self.hosts.get(&conn).copied() {
            if self.sessions.get(&id).is_some_and(|s| s.resume.is_some()) {
                self.hosts.remove(&conn);
                self.host_away(id, now, &mut out);
            } else {
                self.end(id, EndReason::CustomerDisconnected, &mut out);
            }
        }
        let Some(agent) = self.agents.remove(&conn) else {
            return out;
        };
        for p in self.passes.iter_mut().filter(|p| p.conn == Some(conn)) {
            p.conn = None;
            p.until = Some(now.unix + RESUME_WINDOW_SECS);
        }
        if self.online(&agent.login) || self.sessions_of(&agent.login).is_empty() {
            return out;
        }
        if self.agent_grace.is_zero() {
            self.drop_agent(&agent.login, now, &mut out);
        } else {
            self.agent_away(
                &agent.login,
                now.unix + self.agent_grace.as_secs(),
                now,
                &mut out,
            );
        }
        out
    }

    /// The sessions an agent is a member of.
    pub(super) fn sessions_of(&self, login: &str) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.member(login).is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The agent's last connection dropped: they keep their place until `until`, and the others
    /// are told.
    fn agent_away(&mut self, login: &str, until: u64, now: Now, out: &mut Vec<Output>) {
        self.away.insert(login.to_string(), until);
        let detail = format!(
            "connection dropped; keeping their place for {} s",
            until.saturating_sub(now.unix)
        );
        self.tell_sessions(
            login,
            StatusNote::AgentAway,
            ("session.agent_away", &detail),
            now,
            out,
        );
    }

    /// An away agent is online again: their sessions are told.
    pub(super) fn agent_back(&mut self, login: &str, now: Now, out: &mut Vec<Output>) {
        if self.away.remove(login).is_none() {
            return;
        }
        let said = ("session.agent_back", "connection back");
        self.tell_sessions(login, StatusNote::AgentBack, said, now, out);
    }

    /// Writes a note about the agent (by their display name) in each of their sessions, and
    /// audits `action` with `detail`.
    fn tell_sessions(
        &mut self,
        login: &str,
        note: fn(String) -> StatusNote,
        (action, detail): (&'static str, &str),
        now: Now,
        out: &mut Vec<Output>,
    ) {
        for id in self.sessions_of(login) {
            let Some(name) = self.sessions[&id].member(login).map(|m| m.display.clone()) else {
                continue;
            };
            self.note(id, note(name), now.unix, out);
            let actor = Actor::Agent(login.to_string());
            out.push(audit(id, actor, action, detail.to_string()));
        }
    }

    /// The agent is gone for good: they leave every session they were in, as lost.
    fn drop_agent(&mut self, login: &str, now: Now, out: &mut Vec<Output>) {
        self.away.remove(login);
        for id in self.sessions_of(login) {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            let Some(i) = s.members.iter().position(|m| m.login == login) else {
                continue;
            };
            let gone = s.members.remove(i);
            self.note(id, StatusNote::Lost(gone.display.clone()), now.unix, out);
            out.push(audit(
                id,
                Actor::Agent(login.to_string()),
                "session.agent_lost",
                "connection lost".into(),
            ));
            out.extend(self.after_departure(id, &gone, true, now));
        }
    }

    /// The host of session `id` lost its connection: the session waits for it to come back,
    /// for [`RESUME_WINDOW_SECS`], and its members are told.
    fn host_away(&mut self, id: SessionId, now: Now, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.host = HostLink::Away {
            until: now.unix + RESUME_WINDOW_SECS,
        };
        let logins: Vec<String> = s.members.iter().map(|m| m.login.clone()).collect();
        for login in logins {
            self.send_to_login(&login, &ServerMsg::CustomerAway { session: id }, out);
        }
        self.note(id, StatusNote::CustomerAway, now.unix, out);
        out.push(audit(
            id,
            Actor::Relay,
            "session.customer_away",
            format!("the customer's connection dropped; waiting {RESUME_WINDOW_SECS} s"),
        ));
    }

    /// A host on `conn` comes back with `token` and its `client` identity: it takes its
    /// session's place (an old connection still open is closed), gets `next` as its next token,
    /// and the members are told to open its screens again. Grants are not carried over: they
    /// lived in the host's streams, which are new.
    pub fn resume(
        &mut self,
        conn: ConnId,
        token: [u8; 32],
        client: [u8; 32],
        next: [u8; 32],
        now: Now,
    ) -> Result<(SessionId, Vec<Output>), Refusal> {
        let id = self
            .sessions
            .iter()
            .find(|(_, s)| s.resume.is_some_and(|r| same_secret(&r.token, &token)))
            .map(|(id, _)| *id)
            .ok_or(Refusal::KeyWrong)?;
        let mut out = Vec::new();
        let s = self.sessions.get_mut(&id).ok_or(Refusal::KeyWrong)?;
        if !s.resume.is_some_and(|r| same_secret(&r.client, &client)) {
            return Err(Refusal::KeyWrong);
        }
        let old = std::mem::replace(&mut s.host, HostLink::Here(conn));
        s.resume = Some(ResumeKey {
            token: next,
            client,
        });
        s.place = 0;
        let queue = s.host_label.clone();
        let waiting = s.waiting.as_ref().map(|w| w.queue.clone());
        let logins: Vec<String> = s.members.iter().map(|m| m.login.clone()).collect();
        // The relay had not noticed the old connection was gone.
        if let HostLink::Here(old) = old
            && self.hosts.remove(&old).is_some()
        {
            out.push(Output::Close(old));
        }
        self.hosts.insert(conn, id);
        out.push(Output::Send(
            conn,
            ServerMsg::Resumed {
                session: id,
                queue,
                resume: next,
            },
        ));
        self.members_changed(id, &mut out);
        if let Some(q) = waiting {
            self.update_places(&q, &mut out);
        }
        for login in logins {
            self.send_to_login(&login, &ServerMsg::CustomerBack { session: id }, &mut out);
        }
        self.note(id, StatusNote::CustomerBack, now.unix, &mut out);
        out.push(audit(
            id,
            Actor::Relay,
            "session.resumed",
            "the customer's host came back".into(),
        ));
        Ok((id, out))
    }

    /// A console comes back with `token` and its `client` identity: the pass is spent (the
    /// shell logs the agent in with a new one through [`Core::agent_online`]), and an old
    /// connection the relay still thought open is closed.
    pub fn agent_resume(
        &mut self,
        token: [u8; 32],
        client: [u8; 32],
        now: Now,
    ) -> Result<(AgentProfile, Vec<Output>), Refusal> {
        let i = self
            .passes
            .iter()
            .position(|p| same_secret(&p.key.token, &token))
            .ok_or(Refusal::KeyWrong)?;
        let pass = &self.passes[i];
        if !same_secret(&pass.key.client, &client) || pass.until.is_some_and(|t| t <= now.unix) {
            return Err(Refusal::KeyWrong);
        }
        let pass = self.passes.remove(i);
        let mut out = Vec::new();
        if let Some(old) = pass.conn
            && self.agents.remove(&old).is_some()
        {
            out.push(Output::Close(old));
        }
        Ok((pass.profile, out))
    }

    /// Time passed: away hosts and agents whose time is up are gone for good, and expired
    /// passes are forgotten.
    pub(super) fn presence_tick(&mut self, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        let gone: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s.host, HostLink::Away { until } if until <= now.unix))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.end(id, EndReason::CustomerDisconnected, &mut out);
        }
        let late: Vec<String> = self
            .away
            .iter()
            .filter(|(_, until)| **until <= now.unix)
            .map(|(login, _)| login.clone())
            .collect();
        for login in late {
            self.drop_agent(&login, now, &mut out);
        }
        self.passes.retain(|p| p.until.is_none_or(|t| t > now.unix));
        out
    }

    /// The relay is stopping: sessions whose host cannot come back end (all of them unless
    /// `keep`); the others, the consoles' passes and the participant numbers go into the
    /// snapshot for the next relay.
    pub fn shutdown(&mut self, now: Now, keep: bool) -> (Vec<Output>, Snapshot) {
        let mut out = Vec::new();
        let ends: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| !keep || s.resume.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ends {
            self.end(id, EndReason::RelayShutdown, &mut out);
        }
        let sessions: Vec<(SessionId, Session)> =
            std::mem::take(&mut self.sessions).into_iter().collect();
        for (id, _) in &sessions {
            out.push(audit(
                *id,
                Actor::Relay,
                "session.suspended",
                "the relay is restarting; the session waits for the next one".into(),
            ));
        }
        self.hosts.clear();
        let snapshot = Snapshot {
            saved_at: now.unix,
            sessions,
            passes: std::mem::take(&mut self.passes),
            next_pid: self.next_pid,
        };
        (out, snapshot)
    }

    /// Takes over what the previous relay left: every session waits for its host and its
    /// agents, as if their connections had just dropped.
    pub fn restore(&mut self, snapshot: Snapshot, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        self.next_pid = self.next_pid.max(snapshot.next_pid);
        for mut p in snapshot.passes {
            p.conn = None;
            p.until = Some(now.unix + RESUME_WINDOW_SECS);
            self.passes.push(p);
        }
        let mut logins = std::collections::BTreeSet::new();
        for (id, mut s) in snapshot.sessions {
            s.host = HostLink::Away {
                until: now.unix + RESUME_WINDOW_SECS,
            };
            s.place = 0;
            logins.extend(s.members.iter().map(|m| m.login.clone()));
            self.sessions.insert(id, s);
            out.push(audit(
                id,
                Actor::Relay,
                "session.restored",
                format!(
                    "taken over after a restart; waiting {RESUME_WINDOW_SECS} s for the customer"
                ),
            ));
        }
        let grace = self.agent_grace.max(Duration::from_secs(1)).as_secs();
        for login in logins {
            self.away.insert(login, now.unix + grace);
        }
        out
    }
}
