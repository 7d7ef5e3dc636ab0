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
    SessionId, SessionKey,
};
use tether_protocol::pairing::{self, source_key};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::guard::{Slot, audit_name};
use super::{Peer, Shared, now_unix, session_url};
use crate::core::ConnId;
use crate::store::Actor;

/// How long a peer over a connection limit has to read why before it is closed.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);
/// How long a peer's queue may stay full of answers it does not read before it is closed. Until
/// then the relay stops reading its requests (and QUIC flow control stops the peer).
const UNREAD_GRACE: Duration = Duration::from_secs(5);

/// Who a connection turned out to be.
enum Who {
    Agent(String),
    Host {
        owner: String,
        key_id: i64,
        customer: CustomerInfo,
    },
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
        Who::Agent(user) => {
            tether_net::unlock(&conn, shared.limits.agent_streams);
            c.serve_agent(&mut recv, user).await;
        }
        Who::Host {
            owner,
            key_id,
            customer,
        } => {
            // A host opens no stream but its control stream: the relay opens them towards it.
            tether_net::unlock(&conn, 1);
            c.serve_host(&mut recv, owner, key_id, customer).await;
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

    /// Sends a refusal, lets it arrive, and closes the connection.
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
                ClientMsg::Login { user, password } => self.login(user, password).await,
                _ => {
                    self.take()
                        .refuse(Refusal::NotAllowed(Denied::LogInFirst))
                        .await;
                    None
                }
            },
            Role::Host => match self.read_first::<ClientMsg>(recv).await? {
                ClientMsg::Join { key, customer } => self.join(&key, customer).await,
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
    async fn login(&mut self, user: String, password: Password) -> Option<Who> {
        let ip = self.remote.ip();
        let name = audit_name(&user);
        let admitted = {
            let mono = self.shared.mono();
            let mut st = self.shared.state();
            match st.login_limiter.check(ip, mono) {
                Err(r) => Err(r),
                Ok(()) if !st.logins.insert(source_key(ip)) => Err(Refusal::LoginInProgress),
                Ok(()) => {
                    st.login_limiter.fail(ip, mono);
                    Ok(())
                }
            }
        };
        if let Err(r) = admitted {
            self.refuse_audited(&Actor::Agent(name.clone()), "agent.login_refused", r)
                .await;
            return None;
        }
        let ok = {
            let _in_flight = InFlight {
                shared: self.shared.clone(),
                ip,
            };
            match self.shared.password_checks.acquire().await {
                Ok(_permit) => match self.shared.store.verify_agent(&user, &password.0).await {
                    Ok(ok) => ok,
                    Err(e) => {
                        warn!(error = %e, "login check failed");
                        false
                    }
                },
                Err(_) => false,
            }
        };
        if !ok {
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
        }
        self.shared.state().login_limiter.forgive(ip);
        self.send(ServerMsg::LoggedIn {
            agent: user.clone(),
        });
        self.shared
            .audit(
                None,
                &Actor::Agent(name.clone()),
                "agent.login",
                "logged in",
                Some(self.remote),
            )
            .await;
        Some(Who::Agent(user))
    }

    /// Checks a presented key under the source's limit, slowed while keys are being guessed.
    async fn join(&mut self, key: &str, customer: CustomerInfo) -> Option<Who> {
        let actor = Actor::Host(self.remote.ip());
        if let Err(why) = check_customer(&customer) {
            self.take().refuse(Refusal::NotAllowed(why)).await;
            return None;
        }
        match self.check_key(key).await {
            Ok((owner, key_id)) => Some(Who::Host {
                owner,
                key_id,
                customer,
            }),
            Err(r) => {
                self.refuse_audited(&actor, "key.refused", r).await;
                None
            }
        }
    }

    /// Returns the key's owner and id, or why it does not open a session.
    async fn check_key(&self, key: &str) -> Result<(String, i64), Refusal> {
        let ip = self.remote.ip();
        let now = now_unix();
        let delay = {
            let mono = self.shared.mono();
            let mut st = self.shared.state();
            st.join_limiter.check(ip, mono)?;
            st.guesses.delay(mono)
        };
        // While someone guesses keys, joins go one at a time, each after a pause: guessing slows
        // to a trickle, and nobody's key is disabled.
        let _lane = if delay.is_zero() {
            None
        } else {
            let lane = self.shared.slow_lane.lock().await;
            tokio::time::sleep(delay).await;
            Some(lane)
        };
        let result = async {
            let pin = pairing::parse_key(key)?;
            let found = self.shared.store.find_key(&pin).await.map_err(|e| {
                warn!(error = %e, "key lookup failed");
                Refusal::KeyWrong
            })?;
            pairing::check_key(found.as_ref().map(|f| f.record), now)?;
            let found = found.ok_or(Refusal::KeyWrong)?;
            match self.shared.store.use_key(found.id, now).await {
                Ok(true) => Ok((found.agent, found.id)),
                _ => Err(Refusal::KeyUsed),
            }
        }
        .await;
        if let Err(r) = &result {
            let alert = {
                let mono = self.shared.mono();
                let mut st = self.shared.state();
                st.join_limiter.fail(ip, mono);
                match r {
                    Refusal::KeyWrong => st.guesses.record(mono),
                    _ => None,
                }
            };
            if let Some(n) = alert {
                self.shared
                    .audit(
                        None,
                        &Actor::Relay,
                        "key.guessing",
                        &format!(
                            "{n} wrong session keys in the last {} s from all sources: joins are slowed",
                            pairing::GUESS_WINDOW.as_secs()
                        ),
                        Some(self.remote),
                    )
                    .await;
            }
        }
        result
    }

    fn register(&self) {
        if let Some(p) = self.peer() {
            self.shared.state().peers.insert(self.id, p);
        }
    }

    async fn unregister(&self) {
        let out = {
            let mut st = self.shared.state();
            st.peers.remove(&self.id);
            st.core.closed(self.id)
        };
        self.shared.apply(out).await;
    }

    async fn serve_agent(self, recv: &mut quinn::RecvStream, user: String) {
        self.register();
        let out = self.shared.state().core.agent_online(self.id, &user);
        self.shared.apply(out).await;
        let streams = tokio::spawn(super::streams::accept(
            self.shared.clone(),
            self.conn.clone(),
            self.id,
            self.remote,
        ));
        loop {
            let msg = match read_msg::<ClientMsg>(recv, CONTROL_MAX_FRAME).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) if e.is_protocol_violation() => {
                    self.protocol_error(Actor::Agent(user.clone()), &e).await;
                    break;
                }
                Err(_) => break,
            };
            self.agent_msg(&user, msg).await;
        }
        streams.abort();
        self.unregister().await;
        self.conn.close(close::NORMAL.into(), b"bye");
    }

    async fn agent_msg(&self, user: &str, msg: ClientMsg) {
        match msg {
            ClientMsg::CreateKey { ttl_secs } => {
                let ttl = ttl_secs
                    .map(|s| Duration::from_secs(s.into()))
                    .unwrap_or(pairing::DEFAULT_KEY_TTL);
                match self.shared.store.create_key(user, ttl, now_unix()).await {
                    Ok((pin, expires_at)) => {
                        let url = session_url(&self.shared.public_url, &pin);
                        self.shared
                            .audit(
                                None,
                                &Actor::Agent(user.to_string()),
                                "key.created",
                                &format!("expires at {expires_at}"),
                                Some(self.remote),
                            )
                            .await;
                        self.reply(ServerMsg::KeyCreated(SessionKey {
                            pin,
                            url,
                            expires_at,
                        }))
                        .await;
                    }
                    Err(crate::store::StoreError::TooManyKeys { limit, .. }) => {
                        self.reply(ServerMsg::Refused(Refusal::TooManyKeys { limit }))
                            .await
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot create a key");
                        self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::RelayFailed)))
                            .await
                    }
                }
            }
            ClientMsg::LeaveSession { session } => {
                let res = self.shared.state().core.leave_session(self.id, session);
                match res {
                    Ok(out) => self.shared.apply(out).await,
                    Err(r) => self.reply(ServerMsg::Refused(r)).await,
                }
            }
            ClientMsg::Login { .. } => {
                self.reply(ServerMsg::Refused(Refusal::NotAllowed(
                    Denied::AlreadyLoggedIn,
                )))
                .await
            }
            ClientMsg::Join { .. } | ClientMsg::EndSession => {
                self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::HostsOnly)))
                    .await
            }
        }
    }

    async fn serve_host(
        self,
        recv: &mut quinn::RecvStream,
        owner: String,
        key_id: i64,
        customer: CustomerInfo,
    ) {
        let actor = Actor::Host(self.remote.ip());
        let mut sid = [0u8; 8];
        if getrandom::fill(&mut sid).is_err() {
            return self.refuse(Refusal::NotAllowed(Denied::RelayFailed)).await;
        }
        let session = SessionId(u64::from_le_bytes(sid));
        let summary = customer_summary(&customer);
        if let Err(e) = self
            .shared
            .store
            .session_started(session, &owner, Some(key_id), &summary, now_unix())
            .await
        {
            warn!(error = %e, "cannot record session start");
        }
        self.shared
            .audit(
                Some(session),
                &actor,
                "session.started",
                &format!("customer {summary} joined with a key of {owner}"),
                Some(self.remote),
            )
            .await;
        self.register();
        let out =
            self.shared
                .state()
                .core
                .host_joined(self.id, session, &owner, customer, now_unix());
        self.shared.apply(out).await;
        loop {
            match read_msg::<ClientMsg>(recv, CONTROL_MAX_FRAME).await {
                Ok(Some(ClientMsg::EndSession)) => {
                    let out = self.shared.state().core.end_by_host(self.id);
                    self.shared.apply(out).await;
                }
                Ok(Some(_)) => {
                    self.reply(ServerMsg::Refused(Refusal::NotAllowed(Denied::AgentsOnly)))
                        .await
                }
                Ok(None) => break,
                Err(e) if e.is_protocol_violation() => {
                    self.protocol_error(Actor::Host(self.remote.ip()), &e).await;
                    break;
                }
                Err(_) => break,
            }
        }
        self.unregister().await;
        self.conn.close(close::NORMAL.into(), b"bye");
    }
}

/// A password check under way for a source; the source may try again once it is dropped.
struct InFlight {
    shared: Arc<Shared>,
    ip: std::net::IpAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.state().logins.remove(&source_key(self.ip));
    }
}

fn check_customer(c: &CustomerInfo) -> Result<(), Denied> {
    let short = |s: &str| s.len() <= 256;
    if !(short(&c.os) && short(&c.hostname) && short(&c.user))
        || c.monitors.len() > 16
        || c.monitors.iter().any(|m| !short(&m.name))
    {
        return Err(Denied::CustomerInfoTooLarge);
    }
    Ok(())
}

fn customer_summary(c: &CustomerInfo) -> String {
    let monitors: Vec<String> = c
        .monitors
        .iter()
        .map(|m| format!("{}x{}", m.width, m.height))
        .collect();
    format!(
        "{}@{} ({}; monitors {})",
        c.user,
        c.hostname,
        c.os,
        monitors.join(", ")
    )
}
