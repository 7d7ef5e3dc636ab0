//! The agent's client: log in, create keys, receive session events, view screens, send input,
//! move files.
//!
//! This is plain async code with no UI in it; the console's backend drives it, and so do the
//! end-to-end tests and the benchmark's headless agent.
//!
//! - this module: [`AgentClient`], the control stream (login, keys, queues, accepting,
//!   transfers, invitations, session events);
//! - [`screen`]: [`ScreenView`], one screen subscription;
//! - [`input`]: [`InputChannel`], one session's input stream;
//! - [`files`]: listings, uploads and downloads, one stream each.

mod files;
mod input;
mod screen;

pub use input::{InputChannel, InputReceiver, InputSender};
pub use screen::{FrameInfo, MAX_FRAME_RECTS, ScreenControl, ScreenView};

use std::time::{SystemTime, UNIX_EPOCH};

use tether_net::{LinkError, close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;

use tether_protocol::desk::Target;
use tether_protocol::msg::{ClientMsg, Role, ServerMsg, SessionId};
use tether_protocol::screen::CodecError;
use tokio::sync::{Mutex, mpsc};

/// What fails on the console's own side.
#[derive(Debug, thiserror::Error)]
pub enum ClientFailure {
    /// A screen update could not be decoded.
    #[error("screen update: {0}")]
    Codec(#[from] CodecError),
    /// A file operation failed.
    #[error("{0}")]
    Files(String),
}

/// Why the client failed: the link's failures, or its own ([`LinkError::Local`]).
pub type ClientError = LinkError<ClientFailure>;

/// A file operation's failure.
pub(crate) fn files_error(e: impl std::fmt::Display) -> ClientError {
    ClientError::Local(ClientFailure::Files(e.to_string()))
}

fn lost(e: impl std::fmt::Display) -> ClientError {
    ClientError::Lost(e.to_string())
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn read_server(recv: &mut quinn::RecvStream) -> Result<ServerMsg, ClientError> {
    match read_msg::<ServerMsg>(recv, CONTROL_MAX_FRAME).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(lost("the relay closed the connection")),
        Err(e) if e.is_protocol_violation() => Err(ClientError::Protocol(e.to_string())),
        Err(e) => Err(lost(e)),
    }
}

/// A logged-in agent.
#[derive(Debug)]
pub struct AgentClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: Mutex<quinn::SendStream>,
    events: mpsc::UnboundedReceiver<Result<ServerMsg, ClientError>>,
    agent: String,
    display: String,
    teams: Vec<String>,
    relay: String,
    fingerprint: [u8; 32],
    pass: Pass,
}

/// A console's way back to the relay after its connection drops: the relay's token and the
/// identity the console made at login.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    token: [u8; 32],
    client: [u8; 32],
}

impl std::fmt::Debug for Pass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pass(<redacted>)")
    }
}

impl AgentClient {
    /// Connects to the relay (pinned) and logs in, as a new console identity.
    pub async fn login(
        relay: &str,
        fingerprint: [u8; 32],
        user: &str,
        password: &str,
    ) -> Result<Self, ClientError> {
        let mut client = [0u8; 32];
        getrandom::fill(&mut client).map_err(|e| lost(format!("no randomness: {e}")))?;
        let login = ClientMsg::Login {
            user: user.to_string(),
            password: tether_protocol::msg::Password(password.to_string()),
            client,
        };
        Self::open(relay, fingerprint, login, client).await
    }

    /// Comes back after the connection dropped: a new connection logs in with the pass the
    /// relay gave last, no password, and the sessions the agent is in open again (as
    /// [`ServerMsg::SessionStarted`]).
    pub async fn resume(
        relay: &str,
        fingerprint: [u8; 32],
        pass: Pass,
    ) -> Result<Self, ClientError> {
        let msg = ClientMsg::ResumeLogin {
            token: pass.token,
            client: pass.client,
        };
        Self::open(relay, fingerprint, msg, pass.client).await
    }

    async fn open(
        relay: &str,
        fingerprint: [u8; 32],
        first: ClientMsg,
        client: [u8; 32],
    ) -> Result<Self, ClientError> {
        let (endpoint, conn) = tether_net::connect(relay, fingerprint).await?;
        let software = format!("tether-console {}", env!("CARGO_PKG_VERSION"));
        let (mut send, mut recv) = match tether_net::hello(&conn, Role::Agent, &software).await {
            Ok(s) => s,
            Err(e) => {
                conn.close(close::NORMAL.into(), b"refused");
                return Err(e.into());
            }
        };
        write_msg(&mut send, &first, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)?;
        let (agent, display, teams, token) = match read_server(&mut recv).await? {
            ServerMsg::LoggedIn {
                agent,
                display,
                teams,
                resume,
            } => (agent, display, teams, resume),
            ServerMsg::Refused(r) => {
                conn.close(close::NORMAL.into(), b"refused");
                return Err(ClientError::Refused(r));
            }
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut reader = tether_net::spawn_reader::<ServerMsg>(recv, CONTROL_MAX_FRAME);
        tokio::spawn(async move {
            loop {
                let m = match reader.recv().await {
                    Some(Ok(m)) => Ok(m),
                    Some(Err(e)) if e.is_protocol_violation() => {
                        Err(ClientError::Protocol(e.to_string()))
                    }
                    Some(Err(e)) => Err(lost(e)),
                    None => Err(lost("the relay closed the connection")),
                };
                let stop = m.is_err();
                if tx.send(m).is_err() || stop {
                    break;
                }
            }
        });
        Ok(Self {
            endpoint,
            conn,
            send: Mutex::new(send),
            events: rx,
            agent,
            display,
            teams,
            relay: relay.to_string(),
            fingerprint,
            pass: Pass { token, client },
        })
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// What this console comes back with if the connection drops (single use: a resumed
    /// client has a new one).
    pub fn pass(&self) -> Pass {
        self.pass
    }

    /// The agent's account name.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The agent's display name.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The teams the agent belongs to.
    pub fn teams(&self) -> &[String] {
        &self.teams
    }

    /// The relay address this client connected to.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The relay's pinned fingerprint.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The next message from the relay; an error when the connection is gone.
    pub async fn next_event(&mut self) -> Result<ServerMsg, ClientError> {
        match self.events.recv().await {
            Some(r) => r,
            None => Err(lost("connection closed")),
        }
    }

    async fn send(&self, msg: &ClientMsg) -> Result<(), ClientError> {
        let mut send = self.send.lock().await;
        write_msg(&mut send, msg, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)
    }

    /// Takes the stream of relay messages, for a caller that waits on it apart from sending.
    /// [`AgentClient::next_event`] reports a lost connection afterwards.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<Result<ServerMsg, ClientError>> {
        let (_tx, rx) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.events, rx)
    }

    /// Asks for a new session key for the agent's own queue, or for a team's; it arrives as
    /// [`ServerMsg::KeyCreated`].
    pub async fn create_key(
        &self,
        ttl_secs: Option<u32>,
        team: Option<String>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMsg::CreateKey { ttl_secs, team }).await
    }

    /// Asks for an email invitation to a key; the answer is [`ServerMsg::Invitation`].
    pub async fn email_invite(&self, pin: String, to: String) -> Result<(), ClientError> {
        self.send(&ClientMsg::EmailInvite { pin, to }).await
    }

    /// Accepts a waiting session or an invitation; the session arrives as
    /// [`ServerMsg::SessionStarted`] (or a refusal, if another agent was first).
    pub async fn accept(&self, session: SessionId) -> Result<(), ClientError> {
        self.send(&ClientMsg::Accept { session }).await
    }

    /// Transfers a session (this agent owns) to another agent's or a team's queue.
    pub async fn transfer(&self, session: SessionId, to: Target) -> Result<(), ClientError> {
        self.send(&ClientMsg::Transfer { session, to }).await
    }

    /// Invites another agent or a team to join a session, masked or not.
    pub async fn invite(
        &self,
        session: SessionId,
        to: Target,
        masked: bool,
    ) -> Result<(), ClientError> {
        self.send(&ClientMsg::Invite {
            session,
            to,
            masked,
        })
        .await
    }

    /// Leaves a session; the others in it stay.
    pub async fn leave(&self, session: SessionId) -> Result<(), ClientError> {
        self.send(&ClientMsg::LeaveSession { session }).await
    }

    /// Ends a session (this agent owns) for everyone.
    pub async fn end_for_all(&self, session: SessionId) -> Result<(), ClientError> {
        self.send(&ClientMsg::EndForAll { session }).await
    }

    /// Says something in a session's chat.
    pub async fn say(
        &self,
        session: SessionId,
        to: tether_protocol::chat::Audience,
        text: String,
    ) -> Result<(), ClientError> {
        self.send(&ClientMsg::Say { session, to, text }).await
    }

    /// Asks for the agent's scripted messages and addresses; they arrive as
    /// [`ServerMsg::Scripts`].
    pub async fn scripts(&self) -> Result<(), ClientError> {
        self.send(&ClientMsg::Scripts).await
    }

    /// Saves a session's notes on the relay.
    pub async fn set_notes(&self, session: SessionId, text: String) -> Result<(), ClientError> {
        self.send(&ClientMsg::SetNotes { session, text }).await
    }

    /// Asks for a session's chat log so far; it arrives as [`ServerMsg::Chat`].
    pub async fn chat_history(&self, session: SessionId) -> Result<(), ClientError> {
        self.send(&ClientMsg::ChatHistory { session }).await
    }

    /// Asks for the teams and agents; they arrive as [`ServerMsg::Directory`].
    pub async fn directory(&self) -> Result<(), ClientError> {
        self.send(&ClientMsg::Directory).await
    }

    /// The QUIC connection (for tests that misbehave on purpose).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        self.conn.close(close::NORMAL.into(), b"bye");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle())
            .await;
    }
}
