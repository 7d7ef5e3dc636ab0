//! The session's chat in the core: who may say what to whom, where each line goes (a private
//! line never reaches the host or an agent it is not for; the host never learns a masked
//! agent's name or any login), status notes, and the log an agent reads when their tab opens.

use tether_protocol::chat::{
    Audience, CHAT_BURST, CHAT_CHUNK, CHAT_WINDOW_SECS, ChatEntry, ChatLine, HostNote,
    MAX_CHAT_LINES, SUPPORT_NAME, Speaker, StatusNote, check_text,
};
use tether_protocol::msg::{Denied, NOTES_MAX, Refusal, ServerMsg, SessionId};

use super::{ConnId, Core, Now, Output, Session};

impl Session {
    /// Whether agent `login` may read `line`.
    fn readable_by(&self, login: &str, line: &ChatLine) -> bool {
        match line {
            ChatLine::Note(_) => true,
            ChatLine::Message { from, to, .. } => match to {
                Audience::Everyone | Audience::Representatives => true,
                Audience::Agent(a) => {
                    a == login || matches!(from, Speaker::Agent { login: l, .. } if l == login)
                }
            },
        }
    }

    /// The line as the customer's host may see it, if at all.
    fn for_host(&self, line: &ChatLine) -> Option<ChatLine> {
        let ChatLine::Message { from, to, text } = line else {
            return None;
        };
        if *to != Audience::Everyone {
            return None;
        }
        let from = match from {
            Speaker::Customer(n) => Speaker::Customer(n.clone()),
            Speaker::Agent { id, name, .. } => {
                let masked = self.members.iter().any(|m| m.pid == *id && m.masked);
                Speaker::Agent {
                    id: *id,
                    login: String::new(),
                    name: if masked {
                        SUPPORT_NAME.into()
                    } else {
                        name.clone()
                    },
                }
            }
        };
        Some(ChatLine::Message {
            from,
            to: Audience::Everyone,
            text: text.clone(),
        })
    }
}

impl Core {
    /// Counts a line from `conn`; false when it has written too many lately.
    fn chat_allowed(&mut self, conn: ConnId, now: u64) -> bool {
        let (start, count) = self.chat_rate.entry(conn).or_insert((now, 0));
        if now >= *start + CHAT_WINDOW_SECS {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= CHAT_BURST
    }

    /// Forgets a closed connection's chat count.
    pub(super) fn forget_chat_rate(&mut self, conn: ConnId) {
        self.chat_rate.remove(&conn);
    }

    /// Writes a line into session `id`'s log, sends it to whoever may read it and has it
    /// recorded.
    pub(super) fn post(&mut self, id: SessionId, line: ChatLine, now: u64, out: &mut Vec<Output>) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.chat_seq += 1;
        let entry = ChatEntry {
            seq: s.chat_seq,
            at: now,
            line,
        };
        s.chat.push_back(entry.clone());
        if s.chat.len() > MAX_CHAT_LINES {
            s.chat.pop_front();
        }
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        let mut readers: Vec<&str> = s
            .members
            .iter()
            .filter(|m| s.readable_by(&m.login, &entry.line))
            .map(|m| m.login.as_str())
            .collect();
        // The sender of a private line reads it even if they are no longer a member.
        if let ChatLine::Message {
            from: Speaker::Agent { login, .. },
            ..
        } = &entry.line
            && !readers.contains(&login.as_str())
        {
            readers.push(login);
        }
        let msg = ServerMsg::Chat {
            session: id,
            entries: vec![entry.clone()],
        };
        for login in readers {
            self.send_to_login(login, &msg, out);
        }
        if let Some(line) = s.for_host(&entry.line) {
            s.host.send(
                ServerMsg::Chat {
                    session: id,
                    entries: vec![ChatEntry {
                        line,
                        ..entry.clone()
                    }],
                },
                out,
            );
        }
        out.push(Output::Chat { session: id, entry });
    }

    /// Writes a status note.
    pub(super) fn note(
        &mut self,
        id: SessionId,
        note: StatusNote,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        self.post(id, ChatLine::Note(note), now, out);
    }

    /// The peer on `conn` says `text` to `to` in session `id`: an agent who is a member, or the
    /// session's host (always to everyone).
    pub fn say(
        &mut self,
        conn: ConnId,
        id: SessionId,
        to: Audience,
        text: &str,
        now: Now,
    ) -> Result<Vec<Output>, Refusal> {
        let text = check_text(text).map_err(|e| Refusal::NotAllowed(Denied::Chat(e)))?;
        if !self.chat_allowed(conn, now.unix) {
            return Err(Refusal::NotAllowed(Denied::TooFast));
        }
        let (from, to) = if self.hosts.get(&conn) == Some(&id) {
            let s = self.session(id)?;
            (
                Speaker::Customer(s.customer.name.clone()),
                Audience::Everyone,
            )
        } else {
            let (agent, me) = self.membership(conn, id)?;
            if let Audience::Agent(login) = &to {
                let s = self.session(id)?;
                if s.member(login).is_none() {
                    return Err(Refusal::NotAllowed(Denied::NoSuchAgent(login.clone())));
                }
            }
            (
                Speaker::Agent {
                    id: me.pid,
                    login: agent.login,
                    name: agent.display,
                },
                to,
            )
        };
        let mut out = Vec::new();
        self.post(id, ChatLine::Message { from, to, text }, now.unix, &mut out);
        Ok(out)
    }

    /// The host on `conn` reports something for its session's log.
    pub fn host_note(&mut self, conn: ConnId, note: HostNote, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(id) = self.hosts.get(&conn).copied()
            && self.chat_allowed(conn, now.unix)
        {
            self.note(id, StatusNote::Host(note), now.unix, &mut out);
        }
        out
    }

    /// A member replaces session `id`'s notes; every member sees them.
    pub fn set_notes(
        &mut self,
        conn: ConnId,
        id: SessionId,
        text: &str,
    ) -> Result<Vec<Output>, Refusal> {
        let (agent, _) = self.membership(conn, id)?;
        if text.chars().count() > NOTES_MAX {
            return Err(Refusal::NotAllowed(Denied::NotesTooLong));
        }
        let s = self.session_mut(id)?;
        s.notes = (text.to_string(), Some(agent.display.clone()));
        let msg = ServerMsg::Notes {
            session: id,
            text: text.to_string(),
            by: Some(agent.display.clone()),
        };
        let mut out = Vec::new();
        let s = self.session(id)?;
        for m in &s.members {
            self.send_to_login(&m.login, &msg, &mut out);
        }
        out.push(Output::Notes {
            session: id,
            text: text.to_string(),
            by: agent.login,
        });
        Ok(out)
    }

    /// The log of session `id` so far, as the member on `conn` may read it, then its notes.
    pub fn chat_history(&self, conn: ConnId, id: SessionId) -> Result<Vec<Output>, Refusal> {
        let (agent, _) = self.membership(conn, id)?;
        let s = self.session(id)?;
        let lines: Vec<ChatEntry> = s
            .chat
            .iter()
            .filter(|e| s.readable_by(&agent.login, &e.line))
            .cloned()
            .collect();
        let notes = ServerMsg::Notes {
            session: id,
            text: s.notes.0.clone(),
            by: s.notes.1.clone(),
        };
        Ok(lines
            .chunks(CHAT_CHUNK)
            .map(|c| {
                Output::Send(
                    conn,
                    ServerMsg::Chat {
                        session: id,
                        entries: c.to_vec(),
                    },
                )
            })
            .chain(std::iter::once(Output::Send(conn, notes)))
            .collect())
    }
}
