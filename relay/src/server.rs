//! The relay's async shell: accepts QUIC connections, runs the handshake, and drives
//! [`crate::core::Core`] with what happens on them. Media streams are spliced between agent and
//! host without being parsed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tether_net::{ReadError, close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{
    ClientMsg, CustomerInfo, HELLO_MAGIC, Hello, HostStream, OpenStream, Refusal, Role, ServerMsg,
    SessionId, SessionKey,
};
use tether_protocol::pairing::{self, AttemptLimiter};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::core::{ConnId, Core, Output};
use crate::store::{AuditEvent, Store};
use crate::tls;

/// How long a new connection has to open its control stream and say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new media stream has to send its preamble.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Folder for the database and the certificate.
    pub data_dir: PathBuf,
    /// Base of session URLs, e.g. `https://relay.example.com`; derived from `listen` if absent.
    pub public_url: Option<String>,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The session URL for a PIN.
pub fn session_url(base: &str, pin: &str) -> String {
    format!("{}/s/{}", base.trim_end_matches('/'), pin)
}

/// The public URL the relay announces when none is configured.
pub fn default_public_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        hostname().unwrap_or_else(|| "localhost".into())
    } else {
        match listen.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        }
    };
    format!("https://{host}:{}", listen.port())
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes a NUL-terminated name.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|s| !s.is_empty())
}

struct Peer {
    conn: quinn::Connection,
    tx: mpsc::UnboundedSender<ServerMsg>,
}

struct State {
    core: Core,
    peers: HashMap<ConnId, Peer>,
    join_limiter: AttemptLimiter,
    login_limiter: AttemptLimiter,
    next_conn: ConnId,
}

struct Shared {
    store: Store,
    public_url: String,
    started: Instant,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state usable: recover it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mono(&self) -> Duration {
        self.started.elapsed()
    }

    async fn audit(
        &self,
        session: Option<SessionId>,
        actor: &str,
        action: &str,
        detail: &str,
        source: Option<SocketAddr>,
    ) {
        info!(target: "tether_relay::audit", session = ?session, actor, action, detail, "audit");
        let ev = AuditEvent {
            at: now_unix(),
            session,
            actor: actor.to_string(),
            action: action.to_string(),
            detail: detail.to_string(),
            source: source.map(|s| s.to_string()),
        };
        if let Err(e) = self.store.audit(&ev).await {
            warn!(error = %e, "cannot write audit event");
        }
    }

    /// Carries out what the core asked for.
    async fn apply(&self, outputs: Vec<Output>) {
        let mut later = Vec::new();
        {
            let st = self.state();
            for o in outputs {
                match o {
                    Output::Send(conn, msg) => {
                        if let Some(p) = st.peers.get(&conn) {
                            let _ = p.tx.send(msg);
                        }
                    }
                    other => later.push(other),
                }
            }
        }
        for o in later {
            match o {
                Output::Ended { session, reason } => {
                    if let Err(e) = self
                        .store
                        .session_ended(session, &format!("{reason:?}"), now_unix())
                        .await
                    {
                        warn!(error = %e, "cannot record session end");
                    }
                    self.audit(
                        Some(session),
                        "relay",
                        "session.ended",
                        &reason.to_string(),
                        None,
                    )
                    .await;
                }
                Output::Audit {
                    session,
                    actor,
                    action,
                    detail,
                } => {
                    self.audit(session, &actor, action, &detail, None).await;
                }
                Output::Send(..) => {}
            }
        }
    }
}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    fingerprint: String,
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    accept: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("addr", &self.addr)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Relay {
    /// Opens the store, loads or makes the certificate, and starts listening.
    pub async fn start(cfg: RelayConfig) -> anyhow::Result<Relay> {
        let store = Store::open(&cfg.data_dir)
            .await
            .context("opening the relay database")?;
        let id = tls::load_or_create(&cfg.data_dir)?;
        let server = tether_net::server_config(id.cert, id.key)?;
        let endpoint = quinn::Endpoint::server(server, cfg.listen)
            .with_context(|| format!("cannot listen on {} (UDP)", cfg.listen))?;
        let addr = endpoint.local_addr()?;
        let public_url = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url(addr));
        store.set_setting("public_url", &public_url).await?;
        let shared = Arc::new(Shared {
            store,
            public_url,
            started: Instant::now(),
            state: Mutex::new(State {
                core: Core::new(),
                peers: HashMap::new(),
                join_limiter: AttemptLimiter::new(),
                login_limiter: AttemptLimiter::new(),
                next_conn: 1,
            }),
        });
        let ep = endpoint.clone();
        let sh = shared.clone();
        let accept = tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                tokio::spawn(serve_conn(sh.clone(), incoming));
            }
        });
        info!(%addr, fingerprint = %id.fingerprint, "relay listening");
        Ok(Relay {
            addr,
            fingerprint: id.fingerprint,
            shared,
            endpoint,
            accept,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// SHA-256 fingerprint of the certificate, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The base of session URLs.
    pub fn public_url(&self) -> &str {
        &self.shared.public_url
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Ends every session, tells every peer, and stops.
    pub async fn shutdown(self) {
        let out = self.shared.state().core.shutdown();
        self.shared.apply(out).await;
        // Give the goodbyes a moment to leave before the connections close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.endpoint
            .close(close::SHUTDOWN.into(), b"relay shutting down");
        self.accept.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        self.shared.store.close().await;
    }
}

async fn serve_conn(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            debug!(%remote, error = %e, "handshake failed");
            return;
        }
    };
    let id = {
        let mut st = shared.state();
        st.next_conn += 1;
        st.next_conn
    };
    let (mut send, mut recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => {
            conn.close(close::PROTOCOL.into(), b"no control stream");
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerMsg>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if let Err(e) = write_msg(&mut send, &msg, CONTROL_MAX_FRAME).await {
                debug!(error = %e, "control write failed");
                break;
            }
        }
        let _ = send.finish();
    });
    let peer = Conn {
        shared: shared.clone(),
        conn: conn.clone(),
        id,
        remote,
        tx: Some(tx),
        writer: Some(writer),
    };
    peer.run(&mut recv).await;
}

/// One client connection, after the QUIC handshake.
struct Conn {
    shared: Arc<Shared>,
    conn: quinn::Connection,
    id: ConnId,
    remote: SocketAddr,
    tx: Option<mpsc::UnboundedSender<ServerMsg>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl Conn {
    fn send(&self, msg: ServerMsg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(msg);
        }
    }

    /// Sends a refusal, lets it arrive, and closes the connection.
    async fn refuse(mut self, refusal: Refusal) {
        debug!(remote = %self.remote, %refusal, "refused");
        self.send(ServerMsg::Refused(refusal.clone()));
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.await;
        }
        // The client closes once it has read the refusal; don't wait long for it.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.closed()).await;
        self.conn
            .close(close::REFUSED.into(), refusal.to_string().as_bytes());
    }

    async fn protocol_error(&self, role: &str, err: &ReadError) {
        warn!(remote = %self.remote, error = %err, "closing peer after a protocol error");
        self.shared
            .audit(
                None,
                &format!("{role}:{}", self.remote.ip()),
                "peer.protocol_error",
                &err.to_string(),
                Some(self.remote),
            )
            .await;
        self.conn
            .close(close::PROTOCOL.into(), err.to_string().as_bytes());
    }

    async fn run(self, recv: &mut quinn::RecvStream) {
        let hello: Hello = match read_msg(recv, CONTROL_MAX_FRAME).await {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) if e.is_protocol_violation() => return self.protocol_error("peer", &e).await,
            Err(_) => return,
        };
        if hello.magic != HELLO_MAGIC {
            return self.refuse(Refusal::NotTether).await;
        }
        if hello.version != tether_protocol::PROTOCOL_VERSION {
            let r = Refusal::UnsupportedVersion {
                ours: tether_protocol::PROTOCOL_VERSION,
                theirs: hello.version,
            };
            self.shared
                .audit(
                    None,
                    &format!("peer:{}", self.remote.ip()),
                    "peer.version_refused",
                    &r.to_string(),
                    Some(self.remote),
                )
                .await;
            return self.refuse(r).await;
        }
        self.send(ServerMsg::Welcome {
            version: tether_protocol::PROTOCOL_VERSION,
        });
        match hello.role {
            Role::Agent => self.run_agent(recv).await,
            Role::Host => self.run_host(recv).await,
        }
    }

    fn register(&self) {
        if let Some(tx) = &self.tx {
            self.shared.state().peers.insert(
                self.id,
                Peer {
                    conn: self.conn.clone(),
                    tx: tx.clone(),
                },
            );
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

    async fn run_agent(self, recv: &mut quinn::RecvStream) {
        let ip = self.remote.ip();
        let (user, password) = match read_msg::<ClientMsg>(recv, CONTROL_MAX_FRAME).await {
            Ok(Some(ClientMsg::Login { user, password })) => (user, password),
            Ok(Some(_)) => {
                return self
                    .refuse(Refusal::NotAllowed("log in first".into()))
                    .await;
            }
            Ok(None) => return,
            Err(e) if e.is_protocol_violation() => return self.protocol_error("agent", &e).await,
            Err(_) => return,
        };
        let limited = {
            let mono = self.shared.mono();
            self.shared.state().login_limiter.check(ip, mono)
        };
        if let Err(r) = limited {
            self.shared
                .audit(
                    None,
                    &format!("agent:{user}"),
                    "agent.login_refused",
                    &r.to_string(),
                    Some(self.remote),
                )
                .await;
            return self.refuse(r).await;
        }
        let ok = match self.shared.store.verify_agent(&user, &password).await {
            Ok(ok) => ok,
            Err(e) => {
                warn!(error = %e, "login check failed");
                false
            }
        };
        if !ok {
            let mono = self.shared.mono();
            self.shared.state().login_limiter.fail(ip, mono);
            self.shared
                .audit(
                    None,
                    &format!("agent:{user}"),
                    "agent.login_failed",
                    "wrong user name or password",
                    Some(self.remote),
                )
                .await;
            return self.refuse(Refusal::BadCredentials).await;
        }
        self.send(ServerMsg::LoggedIn {
            agent: user.clone(),
        });
        self.register();
        self.shared
            .audit(
                None,
                &format!("agent:{user}"),
                "agent.login",
                "logged in",
                Some(self.remote),
            )
            .await;
        let out = self.shared.state().core.agent_online(self.id, &user);
        self.shared.apply(out).await;

        let streams = tokio::spawn(accept_agent_streams(
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
                    self.protocol_error("agent", &e).await;
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
                                &format!("agent:{user}"),
                                "key.created",
                                &format!("expires at {expires_at}"),
                                Some(self.remote),
                            )
                            .await;
                        self.send(ServerMsg::KeyCreated(SessionKey {
                            pin,
                            url,
                            expires_at,
                        }));
                    }
                    Err(e) => self.send(ServerMsg::Refused(Refusal::NotAllowed(e.to_string()))),
                }
            }
            ClientMsg::LeaveSession { session } => {
                let res = self.shared.state().core.leave_session(self.id, session);
                match res {
                    Ok(out) => self.shared.apply(out).await,
                    Err(r) => self.send(ServerMsg::Refused(r)),
                }
            }
            ClientMsg::Login { .. } => self.send(ServerMsg::Refused(Refusal::NotAllowed(
                "already logged in".into(),
            ))),
            ClientMsg::Join { .. } | ClientMsg::EndSession => self.send(ServerMsg::Refused(
                Refusal::NotAllowed("agents cannot do that".into()),
            )),
        }
    }

    /// Checks a presented key. On success returns the session id, the owner and the key id.
    async fn check_join(&self, key: &str) -> Result<(String, i64), Refusal> {
        let ip = self.remote.ip();
        let now = now_unix();
        {
            let mono = self.shared.mono();
            self.shared.state().join_limiter.check(ip, mono)?;
        }
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
            let mono = self.shared.mono();
            self.shared.state().join_limiter.fail(ip, mono);
            if *r == Refusal::KeyWrong {
                match self.shared.store.count_wrong_guess(now).await {
                    Ok(burnt) => {
                        for agent in burnt {
                            self.shared
                                .audit(
                                    None,
                                    &format!("agent:{agent}"),
                                    "key.burnt",
                                    "a key of this agent was burnt after too many wrong guesses",
                                    Some(self.remote),
                                )
                                .await;
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot count a wrong guess"),
                }
            }
        }
        result
    }

    async fn run_host(self, recv: &mut quinn::RecvStream) {
        let (key, customer) = match read_msg::<ClientMsg>(recv, CONTROL_MAX_FRAME).await {
            Ok(Some(ClientMsg::Join { key, customer })) => (key, customer),
            Ok(Some(_)) => {
                return self
                    .refuse(Refusal::NotAllowed("join with a session key first".into()))
                    .await;
            }
            Ok(None) => return,
            Err(e) if e.is_protocol_violation() => return self.protocol_error("host", &e).await,
            Err(_) => return,
        };
        let actor = format!("host:{}", self.remote.ip());
        if let Err(why) = check_customer(&customer) {
            return self.refuse(Refusal::NotAllowed(why.into())).await;
        }
        let (agent, key_id) = match self.check_join(&key).await {
            Ok(x) => x,
            Err(r) => {
                self.shared
                    .audit(
                        None,
                        &actor,
                        "key.refused",
                        &r.to_string(),
                        Some(self.remote),
                    )
                    .await;
                return self.refuse(r).await;
            }
        };
        let mut sid = [0u8; 8];
        if getrandom::fill(&mut sid).is_err() {
            return self
                .refuse(Refusal::NotAllowed("relay cannot make a session id".into()))
                .await;
        }
        let session = SessionId(u64::from_le_bytes(sid));
        let summary = customer_summary(&customer);
        if let Err(e) = self
            .shared
            .store
            .session_started(session, &agent, Some(key_id), &summary, now_unix())
            .await
        {
            warn!(error = %e, "cannot record session start");
        }
        self.shared
            .audit(
                Some(session),
                &actor,
                "session.started",
                &format!("customer {summary} joined with a key of {agent}"),
                Some(self.remote),
            )
            .await;
        self.register();
        let out =
            self.shared
                .state()
                .core
                .host_joined(self.id, session, &agent, customer, now_unix());
        self.shared.apply(out).await;
        loop {
            match read_msg::<ClientMsg>(recv, CONTROL_MAX_FRAME).await {
                Ok(Some(ClientMsg::EndSession)) => {
                    let out = self.shared.state().core.end_by_host(self.id);
                    self.shared.apply(out).await;
                }
                Ok(Some(_)) => self.send(ServerMsg::Refused(Refusal::NotAllowed(
                    "hosts cannot do that".into(),
                ))),
                Ok(None) => break,
                Err(e) if e.is_protocol_violation() => {
                    self.protocol_error("host", &e).await;
                    break;
                }
                Err(_) => break,
            }
        }
        self.unregister().await;
        self.conn.close(close::NORMAL.into(), b"bye");
    }
}

fn check_customer(c: &CustomerInfo) -> Result<(), &'static str> {
    let short = |s: &str| s.len() <= 256;
    if !(short(&c.os) && short(&c.hostname) && short(&c.user)) || c.monitors.len() > 16 {
        return Err("customer information is too large");
    }
    if c.monitors.iter().any(|m| !short(&m.name)) {
        return Err("customer information is too large");
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

async fn accept_agent_streams(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    id: ConnId,
    remote: SocketAddr,
) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        tokio::spawn(route_stream(
            shared.clone(),
            conn.clone(),
            id,
            remote,
            send,
            recv,
        ));
    }
}

/// Reads an agent's stream preamble, checks it, opens the matching stream to the host and splices
/// the two.
async fn route_stream(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    id: ConnId,
    remote: SocketAddr,
    mut a_send: quinn::SendStream,
    mut a_recv: quinn::RecvStream,
) {
    let open = match tokio::time::timeout(
        PREAMBLE_TIMEOUT,
        read_msg::<OpenStream>(&mut a_recv, CONTROL_MAX_FRAME),
    )
    .await
    {
        Ok(Ok(Some(o))) => o,
        Ok(Err(e)) if e.is_protocol_violation() => {
            warn!(%remote, error = %e, "bad stream preamble; closing peer");
            shared
                .audit(
                    None,
                    &format!("agent:{}", remote.ip()),
                    "peer.protocol_error",
                    &e.to_string(),
                    Some(remote),
                )
                .await;
            conn.close(close::PROTOCOL.into(), e.to_string().as_bytes());
            return;
        }
        _ => return,
    };
    let session = match &open {
        OpenStream::Screen { session, .. }
        | OpenStream::Input { session }
        | OpenStream::Files { session } => *session,
    };
    let route = {
        let st = shared.state();
        st.core.stream_route(id, session).and_then(|(host, agent)| {
            st.peers
                .get(&host)
                .map(|p| (p.conn.clone(), agent))
                .ok_or(Refusal::NotAllowed("customer is gone".into()))
        })
    };
    let (host_conn, agent) = match route {
        Ok(r) => r,
        Err(r) => {
            shared
                .audit(
                    Some(session),
                    &format!("agent@{}", remote.ip()),
                    "stream.refused",
                    &r.to_string(),
                    Some(remote),
                )
                .await;
            let _ = a_send.reset(close::REFUSED.into());
            return;
        }
    };
    let Ok((mut h_send, h_recv)) = host_conn.open_bi().await else {
        let _ = a_send.reset(close::REFUSED.into());
        return;
    };
    let preamble = match open {
        OpenStream::Screen { monitor, .. } => HostStream::Screen {
            agent: agent.clone(),
            monitor,
        },
        OpenStream::Input { .. } => HostStream::Input {
            agent: agent.clone(),
        },
        OpenStream::Files { .. } => HostStream::Files {
            agent: agent.clone(),
        },
    };
    if write_msg(&mut h_send, &preamble, CONTROL_MAX_FRAME)
        .await
        .is_err()
    {
        let _ = a_send.reset(close::REFUSED.into());
        return;
    }
    debug!(%session, %agent, "media stream routed");
    tokio::join!(pump(a_recv, h_send), pump(h_recv, a_send));
}

/// Copies one direction of a media stream, opaque. A reset or a stop is passed on with its
/// code, so the two ends see each other's intent (a cancelled transfer stays cancelled).
async fn pump(mut from: quinn::RecvStream, mut to: quinn::SendStream) {
    loop {
        tokio::select! {
            chunk = from.read_chunk(1 << 20, true) => match chunk {
                Ok(Some(c)) => {
                    if to.write_chunk(c.bytes).await.is_err() {
                        let code = to.stopped().await.ok().flatten().unwrap_or(close::NORMAL.into());
                        let _ = from.stop(code);
                        return;
                    }
                }
                Ok(None) => {
                    let _ = to.finish();
                    return;
                }
                Err(quinn::ReadError::Reset(code)) => {
                    let _ = to.reset(code);
                    return;
                }
                Err(_) => {
                    let _ = to.reset(close::NORMAL.into());
                    return;
                }
            },
            stopped = to.stopped() => {
                let code = stopped.ok().flatten().unwrap_or(close::NORMAL.into());
                let _ = from.stop(code);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_from_the_public_base() {
        assert_eq!(
            session_url("https://r.example/", "123456789"),
            "https://r.example/s/123456789"
        );
        assert_eq!(
            default_public_url("127.0.0.1:4433".parse().expect("addr")),
            "https://127.0.0.1:4433"
        );
    }
}
