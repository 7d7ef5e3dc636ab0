//! One connection, from its first packet to its end.
//!
//! Everything before a login or join (handshake, the control stream, hello, credentials or key)
//! runs under one deadline ([`super::Limits::auth_timeout`]); a peer over a connection limit is
//! told so and closed; a login waits for its source's previous check and is counted before the
//! password is checked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tether_net::{ReadError, close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{
    ClientMsg, CustomerInfo, Denied, HELLO_MAGIC, Hello, Password, Refusal, Role, ServerMsg,
    SessionId,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

mod agent;
mod host;

use super::guard::{Slot, audit_name};
use super::{Admitted, Peer, Shared, Use};
use crate::core::{AgentProfile, ConnId, KeyOwner, ResumeKey};
use crate::store::Actor;

/// How long a peer over a connection limit has to read why before it is closed.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);
/// How long a peer's queue may stay full of answers it does not read before it is closed. Until
/// then the relay stops reading its requests (and QUIC flow control stops the peer).
const UNREAD_GRACE: Duration = Duration::from_secs(5);

/// Who a connection turned out to be.
enum Who {
    /// A logged-in agent, with the pass their console may come back with.
    Agent(AgentProfile, ResumeKey),
    Host {
        owner: KeyOwner,
        key_id: Option<i64>,
        customer: CustomerInfo,
        client: [u8; 32],
    },
    /// A host back in its session after its connection dropped.
    Resumed(SessionId),
}

/// Serves one incoming connection until it ends. `slot` is its place under the connection
/// limits, or the limit it is over.
pub(super) async fn serve(
    shared: Arc<Shared>,
    incoming: quinn::Incoming,
    slot: Result<Slot, Refusal>,
) {
    let remote = incoming.remote_address();
    let deadline = Instant::now()
        + match slot {
            Ok(_) => shared.limits.auth_timeout,
            Err(_) => REFUSAL_GRACE,
        };
    let Some((conn, send, mut recv)) = handshake(incoming, deadline).await else {
        return;
    };
    let id = {
        let mut st = shared.state();
        st.next_conn += 1;
        st.next_conn
    };
    let mut c = Conn::new(shared.clone(), conn.clone(), id, remote, send);
    let mut slot = match slot {
        Ok(s) => s,
        Err(r) => {
            let actor = Actor::Peer(remote.ip());
            return c.refuse_audited(&actor, "peer.connection_refused", r).await;
        }
    };
    let Some(who) = c.authenticate_by(deadline, &mut recv).await else {
        return;
    };
    slot.authenticated();
    match who {
        Who::Agent(user, pass) => {
            tether_net::unlock(
                &conn,
                shared.limits.agent_streams,
                shared.limits.receive_window,
            );
            c.serve_agent(&mut recv, user, pass).await;
        }
        Who::Host {
            owner,
            key_id,
            customer,
            client,
        } => {
            // A host opens no stream but its control stream: the relay opens them towards it.
            tether_net::unlock(&conn, 1, shared.limits.receive_window);
            c.serve_host(&mut recv, owner, key_id, customer, client)
                .await;
        }
        Who::Resumed(session) => {
            tether_net::unlock(&conn, 1, shared.limits.receive_window);
            c.serve_resumed_host(&mut recv, session).await;
        }
    }
    drop(slot);
}

/// The QUIC handshake and the control stream, both before `deadline`.
async fn handshake(
    incoming: quinn::Incoming,
    deadline: Instant,
) -> Option<(quinn::Connection, quinn::SendStream, quinn::RecvStream)> {
    let remote = incoming.remote_address();
    let conn = match tokio::time::timeout_at(deadline, incoming).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            debug!(%remote, error = %e, "handshake failed");
            return None;
        }
        Err(_) => {
            debug!(%remote, "handshake took too long");
            return None;
        }
    };
    match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
        Ok(Ok((send, recv))) => Some((conn, send, recv)),
        _ => {
            conn.close(close::OVERLOAD.into(), b"no control stream in time");
            None
        }
    }
}

/// One client connection, after the QUIC handshake.
struct Conn {
    shared: Arc<Shared>,
    conn: quinn::Connection,
    id: ConnId,
    remote: SocketAddr,
    tx: Option<mpsc::Sender<ServerMsg>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl Conn {
    /// Starts the writer of the control stream, fed by a bounded queue.
    fn new(
        shared: Arc<Shared>,
        conn: quinn::Connection,
        id: ConnId,
        remote: SocketAddr,
        mut send: quinn::SendStream,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<ServerMsg>(shared.limits.control_queue.max(1));
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if let Err(e) = write_msg(&mut send, &msg, CONTROL_MAX_FRAME).await {
                    debug!(error = %e, "control write failed");
                    break;
                }
            }
            let _ = send.finish();
        });
        Self {
            shared,
            conn,
            id,
            remote,
            tx: Some(tx),
            writer: Some(writer),
        }
    }

    fn peer(&self) -> Option<Peer> {
        self.tx.as_ref().map(|tx| Peer {
            conn: self.conn.clone(),
            tx: tx.clone(),
        })
    }

    fn send(&self, msg: ServerMsg) {
        if let Some(p) = self.peer() {
            p.send(msg);
        }
    }

    /// Answers the peer's own request: waits while its queue is full (so its requests are not
    /// read meanwhile), and closes a peer that leaves it full for [`UNREAD_GRACE`].
    async fn reply(&self, msg: ServerMsg) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg)
            && tokio::time::timeout(UNREAD_GRACE, tx.send(msg))
                .await
                .is_err()
        {
            warn!(remote = %self.remote, "closing a peer that does not read its answers");
            self.conn.close(
                close::OVERLOAD.into(),
                b"too many unread messages: the peer does not read them",
            );
        }
    }

    /// Records the refusal in the audit trail (digested per source), then refuses.
    async fn refuse_audited(&mut self, actor: &Actor, action: &'static str, refusal: Refusal) {
        self.shared
            .audit_refusal(
                actor,
                action,
                refusal.kind(),
                &refusal.to_string(),
                self.remote,
            )
            .await;
        self.take().refuse(refusal).await;
    }

    /// Sends a refusal, lets it arrive, and closes the connection.
    async fn refuse(mut self, refusal: Refusal) {
        debug!(remote = %self.remote, %refusal, "refused");
        self.send(ServerMsg::Refused(refusal.clone()));
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = tokio::time::timeout(REFUSAL_GRACE, w).await;
        }
        // The client closes once it has read the refusal; don't wait long for it.
        let _ = tokio::time::timeout(REFUSAL_GRACE, self.conn.closed()).await;
        self.conn
            .close(close::REFUSED.into(), refusal.to_string().as_bytes());
    }

    async fn protocol_error(&self, actor: Actor, err: &ReadError) {
        self.shared
            .close_for_protocol(&self.conn, &actor, self.remote, err)
            .await;
    }

    /// Reads one message of the authentication phase; `None` when the peer is gone or was closed.
    async fn read_first<T: serde::de::DeserializeOwned>(
        &self,
        recv: &mut quinn::RecvStream,
    ) -> Option<T> {
        match read_msg::<T>(recv, CONTROL_MAX_FRAME).await {
            Ok(Some(m)) => Some(m),
            Ok(None) => None,
            Err(e) if e.is_protocol_violation() => {
                self.protocol_error(Actor::Peer(self.remote.ip()), &e).await;
                None
            }
            Err(_) => None,
        }
    }

    /// [`Conn::authenticate`] before `deadline`; a peer still not logged in then is audited and
    /// closed.
    async fn authenticate_by(
        &mut self,
        deadline: Instant,
        recv: &mut quinn::RecvStream,
    ) -> Option<Who> {
        if let Ok(who) = tokio::time::timeout_at(deadline, self.authenticate(recv)).await {
            return who;
        }
        let why = format!(
            "did not log in or join within {} s",
            self.shared.limits.auth_timeout.as_secs()
        );
        self.shared
            .audit_refusal(
                &Actor::Peer(self.remote.ip()),
                "peer.auth_timeout",
                "timeout",
                &why,
                self.remote,
            )
            .await;
        self.conn.close(close::OVERLOAD.into(), why.as_bytes());
        None
    }

    /// The hello, then a login or a join. `None` if the peer was refused or went away.
    async fn authenticate(&mut self, recv: &mut quinn::RecvStream) -> Option<Who> {
        let hello: Hello = self.read_first(recv).await?;
        if hello.magic != HELLO_MAGIC {
            self.take().refuse(Refusal::NotTether).await;
            return None;
        }
        if hello.version != tether_protocol::PROTOCOL_VERSION {
            let r = Refusal::UnsupportedVersion {
                ours: tether_protocol::PROTOCOL_VERSION,
                theirs: hello.version,
            };
            self.refuse_audited(&Actor::Peer(self.remote.ip()), "peer.version_refused", r)
                .await;
            return None;
        }
        self.send(ServerMsg::Welcome {
            version: tether_protocol::PROTOCOL_VERSION,
        });
        match hello.role {
            Role::Agent => match self.read_first::<ClientMsg>(recv).await? {
                ClientMsg::Login {
                    user,
                    password,
                    client,
                } => self.login(user, password, client).await,
                ClientMsg::ResumeLogin { token, client } => self.resume_login(token, client).await,
                _ => {
                    self.take()
                        .refuse(Refusal::NotAllowed(Denied::LogInFirst))
                        .await;
                    None
                }
            },
            Role::Host => match self.read_first::<ClientMsg>(recv).await? {
                ClientMsg::Join {
                    key,
                    customer,
                    client,
                } => self.join(&key, customer, client).await,
                ClientMsg::Resume { token, client } => self.resume(token, client).await,
                _ => {
                    self.take()
                        .refuse(Refusal::NotAllowed(Denied::JoinFirst))
                        .await;
                    None
                }
            },
        }
    }

    /// Moves the connection out for a refusal (the caller returns `None` right after).
    fn take(&mut self) -> Conn {
        Conn {
            shared: self.shared.clone(),
            conn: self.conn.clone(),
            id: self.id,
            remote: self.remote,
            tx: self.tx.take(),
            writer: self.writer.take(),
        }
    }

    /// Checks a login: the source's limit, one check at a time per source, the attempt counted
    /// before the password is checked, and a bounded number of checks at once in all.
    async fn login(&mut self, user: String, password: Password, client: [u8; 32]) -> Option<Who> {
        let ip = self.remote.ip();
        let name = audit_name(&user);
        let admitted = {
            let mono = self.shared.mono();
            self.shared.state().core.admission.begin_login(ip, mono)
        };
        if let Err(r) = admitted {
            self.refuse_audited(&Actor::Agent(name.clone()), "agent.login_refused", r)
                .await;
            return None;
        }
        let profile = {
            let mut in_flight = InFlight {
                shared: self.shared.clone(),
                ip,
                ok: false,
            };
            let profile = match self.shared.password_checks.acquire().await {
                Ok(_permit) => match self.shared.store.login(user, password.0).await {
                    Ok(p) => p,
                    Err(e) => {
                        warn!(error = %e, "login check failed");
                        None
                    }
                },
                Err(_) => None,
            };
            in_flight.ok = profile.is_some();
            profile
        };
        let Some(profile) = profile else {
            self.shared
                .audit(
                    None,
                    &Actor::Agent(name.clone()),
                    "agent.login_failed",
                    "wrong user name or password",
                    Some(self.remote),
                )
                .await;
            self.take().refuse(Refusal::BadCredentials).await;
            return None;
        };
        let pass = self.logged_in(&profile, client).await?;
        self.shared
            .audit(
                None,
                &Actor::Agent(name.clone()),
                "agent.login",
                "logged in",
                Some(self.remote),
            )
            .await;
        Some(Who::Agent(profile, pass))
    }

    /// Tells the console it is logged in, with a new pass to come back with.
    async fn logged_in(&mut self, profile: &AgentProfile, client: [u8; 32]) -> Option<ResumeKey> {
        let mut token = [0u8; 32];
        if getrandom::fill(&mut token).is_err() {
            self.take()
                .refuse(Refusal::NotAllowed(Denied::RelayFailed))
                .await;
            return None;
        }
        self.send(ServerMsg::LoggedIn {
            agent: profile.login.clone(),
            display: profile.display.clone(),
            teams: profile.teams.iter().cloned().collect(),
            resume: token,
        });
        Some(ResumeKey { token, client })
    }

    /// A console comes back with its pass: limited like a join (a wrong token counts as a wrong
    /// key), and no password is checked.
    async fn resume_login(&mut self, token: [u8; 32], client: [u8; 32]) -> Option<Who> {
        let ip = self.remote.ip();
        let now = self.shared.now();
        let actor = Actor::Peer(ip);
        let resumed = {
            let mut st = self.shared.state();
            match st.core.admission.begin_join(ip, now.mono) {
                Err(r) => Err(r),
                Ok(_) => match st.core.agent_resume(token, client, now) {
                    Ok((profile, out)) => {
                        let later = st.deliver(out);
                        Ok((profile, later))
                    }
                    Err(r) => {
                        st.core.admission.join_failed(ip, &r, now.mono);
                        Err(r)
                    }
                },
            }
        };
        let (profile, later) = match resumed {
            Ok(r) => r,
            Err(r) => {
                self.refuse_audited(&actor, "agent.resume_refused", r).await;
                return None;
            }
        };
        self.shared.finish(later).await;
        let pass = self.logged_in(&profile, client).await?;
        self.shared
            .audit(
                None,
                &Actor::Agent(profile.login.clone()),
                "agent.resumed",
                "came back after a dropped connection",
                Some(self.remote),
            )
            .await;
        Some(Who::Agent(profile, pass))
    }

    /// Checks a presented key under the source's limit, slowed while keys are being guessed.
    /// A host comes back with its resume token: limited like a join (a wrong token counts as a
    /// wrong key), then the core puts it back in its session, registered at once so that the
    /// core's first messages reach it.
    async fn resume(&mut self, token: [u8; 32], client: [u8; 32]) -> Option<Who> {
        let actor = Actor::Host(self.remote.ip());
        let ip = self.remote.ip();
        let now = self.shared.now();
        let admitted = {
            let mut st = self.shared.state();
            st.core.admission.begin_join(ip, now.mono)
        };
        if let Err(r) = admitted {
            self.refuse_audited(&actor, "session.resume_refused", r)
                .await;
            return None;
        }
        let mut next = [0u8; 32];
        if getrandom::fill(&mut next).is_err() {
            let r = Refusal::NotAllowed(Denied::RelayFailed);
            self.take().refuse(r).await;
            return None;
        }
        self.register();
        let resumed = {
            let mut st = self.shared.state();
            match st.core.resume(self.id, token, client, next, now) {
                Ok((session, out)) => Ok((session, st.deliver(out))),
                Err(r) => {
                    st.peers.remove(&self.id);
                    let mono = self.shared.mono();
                    st.core.admission.join_failed(ip, &r, mono);
                    Err(r)
                }
            }
        };
        match resumed {
            Ok((session, later)) => {
                self.shared.finish(later).await;
                Some(Who::Resumed(session))
            }
            Err(r) => {
                self.refuse_audited(&actor, "session.resume_refused", r)
                    .await;
                None
            }
        }
    }

    async fn join(
        &mut self,
        key: &str,
        mut customer: CustomerInfo,
        client: [u8; 32],
    ) -> Option<Who> {
        let actor = Actor::Host(self.remote.ip());
        // What the customer asked on the portal comes from their ticket, never from the host.
        customer.request = None;
        if let Err(why) = check_customer(&customer) {
            self.take().refuse(Refusal::NotAllowed(why)).await;
            return None;
        }
        match self.shared.admit_key(self.remote, key, Use::Consume).await {
            Ok(Admitted {
                owner,
                key_id,
                ticket,
            }) => {
                if let Some(t) = ticket {
                    if !t.name.trim().is_empty() {
                        customer.name = t.name;
                    }
                    customer.request = Some(t.request);
                }
                Some(Who::Host {
                    owner,
                    key_id,
                    customer,
                    client,
                })
            }
            Err(r) => {
                self.refuse_audited(&actor, "key.refused", r).await;
                None
            }
        }
    }

    fn register(&self) {
        if let Some(p) = self.peer() {
            self.shared.state().peers.insert(self.id, p);
        }
    }

    async fn unregister(&self) {
        let now = self.shared.now();
        let later = {
            let mut st = self.shared.state();
            st.peers.remove(&self.id);
            st.revokers.retain(|(c, _), _| *c != self.id);
            let out = st.core.closed(self.id, now);
            st.deliver(out)
        };
        self.shared.finish(later).await;
    }

    /// Reads the next request on the control stream; `None` when it ends or breaks the
    /// protocol (then the peer is closed).
    async fn next_request(&self, recv: &mut quinn::RecvStream, actor: Actor) -> Option<ClientMsg> {
        match read_msg::<ClientMsg>(recv, CONTROL_MAX_FRAME).await {
            Ok(Some(m)) => Some(m),
            Ok(None) => None,
            Err(e) if e.is_protocol_violation() => {
                self.protocol_error(actor, &e).await;
                None
            }
            Err(_) => None,
        }
    }

    /// Carries out what the core decides, or answers its refusal.
    async fn outcome(
        &self,
        f: impl FnOnce(&mut crate::core::Core) -> Result<Vec<crate::core::Output>, Refusal>,
    ) {
        if let Err(r) = self.shared.try_decide(f).await {
            self.reply(ServerMsg::Refused(r)).await
        }
    }
}

/// A password check under way for a source; the source may try again once it is dropped (and
/// is forgiven its failures if the check succeeded).
struct InFlight {
    shared: Arc<Shared>,
    ip: std::net::IpAddr,
    ok: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared
            .state()
            .core
            .admission
            .end_login(self.ip, self.ok);
    }
}

fn check_customer(c: &CustomerInfo) -> Result<(), Denied> {
    let short = |s: &str| s.len() <= 256;
    if !(short(&c.name) && short(&c.os) && short(&c.hostname) && short(&c.user))
        || c.monitors.len() > 16
        || c.monitors.iter().any(|m| !short(&m.name))
    {
        return Err(Denied::CustomerInfoTooLarge);
    }
    Ok(())
}
