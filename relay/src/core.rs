//! The relay's session logic as a sans-IO state machine.
//!
//! The async shell ([`crate::server`]) feeds it what happened on connections (an agent logged in,
//! a host joined, a connection closed, a request arrived) and carries out what it returns
//! (messages to send, audit events, session records). It holds no sockets, no clock and no
//! database, so every rule here is tested with plain calls.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::Actor;

use tether_protocol::msg::{
    CustomerInfo, Denied, EndReason, Refusal, ServerMsg, SessionId, SessionInfo,
};

/// A connection, as numbered by the shell.
pub type ConnId = u64;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message on a connection's control stream.
    Send(ConnId, ServerMsg),
    /// Record that a session ended.
    Ended {
        /// The session.
        session: SessionId,
        /// Why.
        reason: EndReason,
    },
    /// Append to the audit trail.
    Audit {
        /// The session concerned.
        session: Option<SessionId>,
        /// Who did it.
        actor: Actor,
        /// What, e.g. `session.left`.
        action: &'static str,
        /// Details.
        detail: String,
    },
}

#[derive(Debug)]
struct Session {
    customer: CustomerInfo,
    host: ConnId,
    /// Agents who have the session open in their console, whether online now or not.
    members: BTreeSet<String>,
    started_at: u64,
}

/// Who is connected and which sessions exist.
#[derive(Debug, Default)]
pub struct Core {
    agents: BTreeMap<ConnId, String>,
    hosts: BTreeMap<ConnId, SessionId>,
    sessions: BTreeMap<SessionId, Session>,
}

impl Core {
    /// An empty relay.
    pub fn new() -> Self {
        Self::default()
    }

    fn conns_of<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = ConnId> + 'a {
        self.agents
            .iter()
            .filter(move |(_, n)| n.as_str() == agent)
            .map(|(c, _)| *c)
    }

    fn present(&self, s: &Session) -> Vec<String> {
        s.members
            .iter()
            .filter(|m| self.conns_of(m).next().is_some())
            .cloned()
            .collect()
    }

    fn info(&self, id: SessionId, s: &Session) -> SessionInfo {
        SessionInfo {
            id,
            customer: s.customer.clone(),
            agents: self.present(s),
            started_at: s.started_at,
        }
    }

    /// Tells the host and every online member who is present now.
    fn announce(&self, id: SessionId, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        let agents = self.present(s);
        out.push(Output::Send(
            s.host,
            ServerMsg::AgentsChanged {
                session: id,
                agents: agents.clone(),
            },
        ));
        for m in &s.members {
            for c in self.conns_of(m) {
                out.push(Output::Send(
                    c,
                    ServerMsg::AgentsChanged {
                        session: id,
                        agents: agents.clone(),
                    },
                ));
            }
        }
    }

    /// An agent logged in on `conn`. Sessions waiting for it open in its console.
    pub fn agent_online(&mut self, conn: ConnId, agent: &str) -> Vec<Output> {
        let first = self.conns_of(agent).next().is_none();
        self.agents.insert(conn, agent.to_string());
        let mut out = Vec::new();
        let mine: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.members.contains(agent))
            .map(|(id, _)| *id)
            .collect();
        for id in mine {
            if let Some(s) = self.sessions.get(&id) {
                out.push(Output::Send(
                    conn,
                    ServerMsg::SessionStarted(self.info(id, s)),
                ));
            }
            if first {
                self.announce(id, &mut out);
                out.push(Output::Audit {
                    session: Some(id),
                    actor: Actor::Agent(agent.to_string()),
                    action: "session.agent_returned",
                    detail: "agent is back online".into(),
                });
            }
        }
        out
    }

    /// A host joined with a key of `owner`'s: a new session in `owner`'s personal queue, opened
    /// at once in `owner`'s console if online.
    pub fn host_joined(
        &mut self,
        conn: ConnId,
        id: SessionId,
        owner: &str,
        customer: CustomerInfo,
        now: u64,
    ) -> Vec<Output> {
        let session = Session {
            customer,
            host: conn,
            members: BTreeSet::from([owner.to_string()]),
            started_at: now,
        };
        let mut out = vec![Output::Send(
            conn,
            ServerMsg::Joined {
                session: id,
                agent: owner.to_string(),
            },
        )];
        for c in self.conns_of(owner) {
            out.push(Output::Send(
                c,
                ServerMsg::SessionStarted(self.info(id, &session)),
            ));
        }
        self.hosts.insert(conn, id);
        self.sessions.insert(id, session);
        self.announce(id, &mut out);
        out
    }

    fn end(&mut self, id: SessionId, reason: EndReason, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        self.hosts.remove(&s.host);
        out.push(Output::Send(
            s.host,
            ServerMsg::SessionEnded {
                session: id,
                reason,
            },
        ));
        for m in &s.members {
            for c in self.conns_of(m) {
                out.push(Output::Send(
                    c,
                    ServerMsg::SessionEnded {
                        session: id,
                        reason,
                    },
                ));
            }
        }
        out.push(Output::Ended {
            session: id,
            reason,
        });
    }

    /// An agent leaves a session. When the last member leaves, the session ends.
    pub fn leave_session(&mut self, conn: ConnId, id: SessionId) -> Result<Vec<Output>, Refusal> {
        let agent = self
            .agents
            .get(&conn)
            .cloned()
            .ok_or(Refusal::NotAllowed(Denied::NotLoggedIn))?;
        let Some(s) = self.sessions.get_mut(&id) else {
            return Err(Refusal::NotAllowed(Denied::NoSuchSession));
        };
        if !s.members.remove(&agent) {
            return Err(Refusal::NotAllowed(Denied::NotInSession));
        }
        let mut out = vec![Output::Audit {
            session: Some(id),
            actor: Actor::Agent(agent.to_string()),
            action: "session.left",
            detail: "agent left the session".into(),
        }];
        let empty = s.members.is_empty();
        for c in self.conns_of(&agent) {
            out.push(Output::Send(
                c,
                ServerMsg::SessionEnded {
                    session: id,
                    reason: EndReason::AgentLeft,
                },
            ));
        }
        if empty {
            self.end(id, EndReason::AgentLeft, &mut out);
        } else {
            self.announce(id, &mut out);
        }
        Ok(out)
    }

    /// The customer ended the session from the host.
    pub fn end_by_host(&mut self, conn: ConnId) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(id) = self.hosts.get(&conn).copied() {
            self.end(id, EndReason::CustomerEnded, &mut out);
        }
        out
    }

    /// A connection closed.
    pub fn closed(&mut self, conn: ConnId) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(id) = self.hosts.get(&conn).copied() {
            self.end(id, EndReason::CustomerDisconnected, &mut out);
        }
        if let Some(agent) = self.agents.remove(&conn)
            && self.conns_of(&agent).next().is_none()
        {
            let theirs: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.members.contains(&agent))
                .map(|(id, _)| *id)
                .collect();
            for id in theirs {
                out.push(Output::Audit {
                    session: Some(id),
                    actor: Actor::Agent(agent.to_string()),
                    action: "session.agent_lost",
                    detail: "agent connection lost; the customer waits".into(),
                });
                self.announce(id, &mut out);
            }
        }
        out
    }

    /// The agent logged in on `conn`.
    pub fn agent_of(&self, conn: ConnId) -> Option<&str> {
        self.agents.get(&conn).map(String::as_str)
    }

    /// May the agent on `conn` open media streams (screen, input) of session `id`? Returns the host's connection.
    pub fn stream_route(&self, conn: ConnId, id: SessionId) -> Result<(ConnId, String), Refusal> {
        let agent = self
            .agents
            .get(&conn)
            .ok_or(Refusal::NotAllowed(Denied::NotLoggedIn))?;
        let s = self
            .sessions
            .get(&id)
            .ok_or(Refusal::NotAllowed(Denied::NoSuchSession))?;
        if !s.members.contains(agent) {
            return Err(Refusal::NotAllowed(Denied::NotInSession));
        }
        Ok((s.host, agent.clone()))
    }

    /// The relay is shutting down: every session ends.
    pub fn shutdown(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end(id, EndReason::RelayShutdown, &mut out);
        }
        out
    }

    /// Sessions in progress.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends_to(out: &[Output], conn: ConnId) -> Vec<ServerMsg> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(c, m) if *c == conn => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    const S: SessionId = SessionId(7);

    #[test]
    fn a_customer_waits_for_an_offline_agent() {
        let mut core = Core::new();
        let out = core.host_joined(1, S, "alice", CustomerInfo::default(), 100);
        assert!(
            matches!(sends_to(&out, 1)[..], [ServerMsg::Joined { .. }, ServerMsg::AgentsChanged { ref agents, .. }] if agents.is_empty())
        );
        let out = core.agent_online(2, "alice");
        assert!(
            matches!(&sends_to(&out, 2)[..], [ServerMsg::SessionStarted(info), ..] if info.id == S && info.agents == ["alice"])
        );
        assert!(
            matches!(&sends_to(&out, 1)[..], [ServerMsg::AgentsChanged { agents, .. }] if agents == &["alice"])
        );
        // Bob is not in the session and cannot view it.
        core.agent_online(3, "bob");
        assert!(core.stream_route(3, S).is_err());
        assert_eq!(core.stream_route(2, S), Ok((1, "alice".into())));
        assert!(core.leave_session(3, S).is_err());
    }

    #[test]
    fn an_agent_whose_connection_drops_comes_back_to_the_session() {
        let mut core = Core::new();
        core.agent_online(2, "alice");
        core.host_joined(1, S, "alice", CustomerInfo::default(), 100);
        let out = core.closed(2);
        assert!(
            matches!(&sends_to(&out, 1)[..], [ServerMsg::AgentsChanged { agents, .. }] if agents.is_empty())
        );
        assert_eq!(core.session_count(), 1);
        let out = core.agent_online(4, "alice");
        assert!(matches!(
            &sends_to(&out, 4)[..],
            [ServerMsg::SessionStarted(_), ..]
        ));
    }

    #[test]
    fn the_last_agent_leaving_ends_the_session() {
        let mut core = Core::new();
        core.agent_online(2, "alice");
        core.host_joined(1, S, "alice", CustomerInfo::default(), 100);
        let out = core.leave_session(2, S).expect("leave");
        assert!(sends_to(&out, 1).contains(&ServerMsg::SessionEnded {
            session: S,
            reason: EndReason::AgentLeft
        }));
        assert!(out.contains(&Output::Ended {
            session: S,
            reason: EndReason::AgentLeft
        }));
        assert_eq!(core.session_count(), 0);
        assert!(core.stream_route(2, S).is_err());
    }

    #[test]
    fn the_host_leaving_ends_the_session_for_agents() {
        let mut core = Core::new();
        core.agent_online(2, "alice");
        core.host_joined(1, S, "alice", CustomerInfo::default(), 100);
        let out = core.closed(1);
        assert!(sends_to(&out, 2).contains(&ServerMsg::SessionEnded {
            session: S,
            reason: EndReason::CustomerDisconnected
        }));
        core.host_joined(5, SessionId(8), "alice", CustomerInfo::default(), 100);
        let out = core.end_by_host(5);
        assert!(sends_to(&out, 2).contains(&ServerMsg::SessionEnded {
            session: SessionId(8),
            reason: EndReason::CustomerEnded
        }));
        core.host_joined(6, SessionId(9), "alice", CustomerInfo::default(), 100);
        let out = core.shutdown();
        assert!(sends_to(&out, 6).contains(&ServerMsg::SessionEnded {
            session: SessionId(9),
            reason: EndReason::RelayShutdown
        }));
    }
}
