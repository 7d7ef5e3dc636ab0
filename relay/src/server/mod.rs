//! The relay's async shell: accepts QUIC connections, authenticates them, and drives
//! [`crate::core::Core`] with what happens on them. Media streams are spliced between agent and
//! host without being parsed.
//!
//! - [`conn`]: one connection, from its handshake to its end: the authentication phase under one
//!   deadline, then the agent's or host's control stream.
//! - [`streams`]: routing and splicing an agent's media streams.
//! - [`guard`]: connection slots, the refusal digest, audit-safe names.
//!
//! Before a peer has logged in or joined it costs the relay almost nothing: one slot out of a
//! bounded number per source and in all, one stream, a 64 KiB receive window, one deadline from
//! its first packet to its login, and (for logins) one password check at a time per source,
//! counted before it runs, with a global bound on checks running at once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tether_net::close;
use tether_protocol::msg::{Denied, Refusal, ServerMsg, SessionId};
use tether_protocol::pairing::{self, KeyRef};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{info, warn};

use crate::core::{ConnId, Core, KeyOwner, Now, Output};
use crate::store::{Actor, AuditEvent, Store};
use crate::tls;

mod conn;
mod guard;
mod streams;

/// What the relay spends on peers at most. Every limit is refused with a message that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, in all.
    pub max_connections: u32,
    /// Connections open at once from one source (an IPv4 address or an IPv6 /64).
    pub max_connections_per_source: u32,
    /// Connections not yet logged in or joined, in all.
    pub max_pending: u32,
    /// Connections not yet logged in or joined, from one source.
    pub max_pending_per_source: u32,
    /// Time from a connection's first packet to its login or join.
    pub auth_timeout: Duration,
    /// Messages queued for one peer's control stream; a peer that does not read them is closed.
    pub control_queue: usize,
    /// Password checks (argon2, about 19 MiB each) running at once.
    pub password_checks: usize,
    /// Bidirectional streams a logged-in agent may have open at once.
    pub agent_streams: u32,
    /// Bytes a logged-in or joined connection may have in flight towards the relay, all its
    /// streams together (before: [`tether_net::PRE_AUTH_RECEIVE_WINDOW`]).
    pub receive_window: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_connections_per_source: 200,
            max_pending: 2_000,
            max_pending_per_source: 20,
            auth_timeout: Duration::from_secs(10),
            control_queue: 256,
            password_checks: 2,
            agent_streams: tether_net::AGENT_STREAMS,
            receive_window: tether_net::RECEIVE_WINDOW,
        }
    }
}

/// How long a new media stream has to send its preamble.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often limiters and digests are pruned.
const JANITOR_PERIOD: Duration = Duration::from_secs(30);
/// The store setting that carries the sessions from a relay that stopped to the next one.
const SNAPSHOT_SETTING: &str = "live_sessions";
/// How often the core is told the time (sessions waiting for a dropped owner move on).
const TICK_PERIOD: Duration = Duration::from_secs(1);

/// Where and how the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Folder for the database and the certificate.
    pub data_dir: PathBuf,
    /// Base of session URLs, e.g. `https://relay.example.com`; derived from `listen` if absent.
    pub public_url: Option<String>,
    /// What the relay spends on peers at most.
    pub limits: Limits,
    /// How long a session whose owner lost their connection waits in the owner's personal
    /// queue before it moves to the queue it came from.
    pub requeue_after: Duration,
    /// How long an agent whose connection dropped keeps their place in their sessions.
    pub agent_grace: Duration,
    /// Whether sessions outlive a shutdown, saved for the next relay on the same data dir (an
    /// operator's relay); otherwise they end with it.
    pub keep_sessions: bool,
    /// A certificate chain and key (PEM) to use instead of the self-signed identity, for QUIC
    /// and the portal.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// The web portal (off unless it has an address).
    pub portal: crate::portal::PortalConfig,
    /// The mail server for email invitations; without it, the agent's own mail program sends
    /// them.
    pub smtp: Option<crate::mail::SmtpConfig>,
}

/// `HOST:PORT` at which customers reach the QUIC listener: the public URL's host and the
/// listener's port.
pub fn relay_addr(public_url: &str, quic_port: u16) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = if let Some(end) = authority.find(']') {
        &authority[..=end]
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    format!("{host}:{quic_port}")
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

/// A connection the core can send to.
struct Peer {
    conn: quinn::Connection,
    tx: mpsc::Sender<ServerMsg>,
}

impl Peer {
    /// Queues a message; a peer whose queue is full is not reading and is closed.
    fn send(&self, msg: ServerMsg) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(msg) {
            warn!(remote = %self.conn.remote_address(), "closing a peer that does not read its messages");
            self.conn.close(
                close::OVERLOAD.into(),
                b"too many unread messages: the peer does not read them",
            );
        }
    }
}

struct State {
    core: Core,
    peers: HashMap<ConnId, Peer>,
    /// One switch per agent connection and session, turned on to cut that member's media
    /// streams when they leave the session.
    revokers: HashMap<(ConnId, SessionId), watch::Sender<bool>>,
    digest: guard::RefusalDigest,
    next_conn: ConnId,
}

impl State {
    /// The switch that cuts `conn`'s streams of `session`.
    fn revoker(&mut self, conn: ConnId, session: SessionId) -> watch::Receiver<bool> {
        self.revokers
            .entry((conn, session))
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Delivers the core's messages and revocations, in order; returns what needs the store.
    fn deliver(&mut self, outputs: Vec<Output>) -> Vec<Output> {
        let mut later = Vec::new();
        for o in outputs {
            match o {
                Output::Send(conn, msg) => {
                    if let Some(p) = self.peers.get(&conn) {
                        p.send(msg);
                    }
                }
                Output::Revoke { conn, session } => self.revoke(conn, session),
                Output::Close(conn) => {
                    if let Some(p) = self.peers.get(&conn) {
                        p.conn
                            .close(close::NORMAL.into(), b"resumed on a new connection");
                    }
                }
                other => later.push(other),
            }
        }
        later
    }

    fn revoke(&mut self, conn: ConnId, session: SessionId) {
        if let Some(tx) = self.revokers.remove(&(conn, session)) {
            let _ = tx.send(true);
        }
    }
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    public_url: String,
    /// Sessions outlive a shutdown ([`RelayConfig::keep_sessions`]).
    keep_sessions: bool,
    started: Instant,
    limits: Limits,
    slots: guard::Slots,
    /// Password checks running at once.
    password_checks: Semaphore,
    /// While keys are being guessed, joins wait here one after another.
    slow_lane: tokio::sync::Mutex<()>,
    /// Sends email invitations, when a mail server is configured.
    mailer: Option<crate::mail::Mailer>,
    /// Email invitations per agent.
    mails: Mutex<crate::mail::MailLimiter>,
    state: Mutex<State>,
}

/// Whether a key check uses the key up (a host joining) or only looks (the portal's key page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// A host joins: the key is used.
    Consume,
    /// The portal shows what a key will do: nothing changes.
    Peek,
}

/// A key, ticket or help link that opens a session.
#[derive(Debug, Clone)]
pub(crate) struct Admitted {
    /// Whose queue the customer enters.
    pub(crate) owner: KeyOwner,
    /// The key row (none for a help link).
    pub(crate) key_id: Option<i64>,
    /// What the customer wrote, for a ticket.
    pub(crate) ticket: Option<crate::store::Ticket>,
}

impl Shared {
    /// Checks what a customer gave (a PIN, ticket, session or ticket URL, or help link) from
    /// `remote`: against the source's failure limit first, one at a time after a pause while
    /// keys are being guessed, then the key itself; a failure counts against the source (and a
    /// wrong key against the guess rate), whether a host or the portal asked.
    pub(crate) async fn admit_key(
        &self,
        remote: SocketAddr,
        key: &str,
        how: Use,
    ) -> Result<Admitted, Refusal> {
        let ip = remote.ip();
        let now = self.now();
        let delay = {
            let mut st = self.state();
            st.core.admission.begin_join(ip, now.mono)?
        };
        // While someone guesses keys, joins go one at a time, each after a pause: guessing slows
        // to a trickle, and nobody's key is disabled.
        let _lane = if delay.is_zero() {
            None
        } else {
            let lane = self.slow_lane.lock().await;
            tokio::time::sleep(delay).await;
            Some(lane)
        };
        let result = self.find_admitted(key, how, now.unix).await;
        if let Err(r) = &result {
            let alert = {
                let mono = self.mono();
                self.state().core.admission.join_failed(ip, r, mono)
            };
            if let Some(n) = alert {
                self.audit(
                    None,
                    &Actor::Relay,
                    "key.guessing",
                    &format!(
                        "{n} wrong session keys in the last {} s from all sources: joins are slowed",
                        pairing::GUESS_WINDOW.as_secs()
                    ),
                    Some(remote),
                )
                .await;
            }
        }
        result
    }

    async fn find_admitted(&self, key: &str, how: Use, unix: u64) -> Result<Admitted, Refusal> {
        let key = pairing::parse_ref(key)?;
        let Some(secret) = key.secret() else {
            let owner = self.store.link_owner(key.clone()).await.map_err(|e| {
                warn!(error = %e, "help link lookup failed");
                Refusal::NotAllowed(Denied::RelayFailed)
            })?;
            return match (owner, key) {
                (Some(owner), _) => Ok(Admitted {
                    owner,
                    key_id: None,
                    ticket: None,
                }),
                (None, KeyRef::Team(t)) => Err(Refusal::NotAllowed(Denied::NoSuchTeam(t))),
                (None, KeyRef::Agent(a)) => Err(Refusal::NotAllowed(Denied::NoSuchAgent(a))),
                (None, _) => Err(Refusal::KeyMalformed),
            };
        };
        let found = self.store.find_key(secret.to_string()).await.map_err(|e| {
            warn!(error = %e, "key lookup failed");
            Refusal::KeyWrong
        })?;
        let record = found.as_ref().map(|f| f.record);
        self.state().core.admission.check_key(record, unix)?;
        let found = found.ok_or(Refusal::KeyWrong)?;
        if how == Use::Consume && !matches!(self.store.use_key(found.id, unix).await, Ok(true)) {
            return Err(Refusal::KeyUsed);
        }
        Ok(Admitted {
            owner: found.owner,
            key_id: Some(found.id),
            ticket: found.ticket,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state usable: recover it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mono(&self) -> Duration {
        self.started.elapsed()
    }

    /// The base of session URLs.
    pub(crate) fn public_url(&self) -> &str {
        &self.public_url
    }

    pub(crate) fn now(&self) -> Now {
        Now {
            mono: self.mono(),
            unix: now_unix(),
        }
    }

    pub(crate) async fn audit(
        &self,
        session: Option<SessionId>,
        actor: &Actor,
        action: &str,
        detail: &str,
        source: Option<SocketAddr>,
    ) {
        info!(target: "tether_relay::audit", session = ?session, %actor, action, detail, "audit");
        let ev = AuditEvent {
            at: now_unix(),
            session,
            actor: actor.clone(),
            action: action.to_string(),
            detail: detail.to_string(),
            source: source.map(|s| s.to_string()),
        };
        if let Err(e) = self.store.audit(ev).await {
            warn!(error = %e, "cannot write audit event");
        }
    }

    /// Closes a peer that broke the protocol, with the error as the reason, and audits it.
    async fn close_for_protocol(
        &self,
        conn: &quinn::Connection,
        actor: &Actor,
        remote: SocketAddr,
        err: &(dyn std::fmt::Display + Sync),
    ) {
        warn!(%remote, error = %err, "closing peer after a protocol error");
        let why = err.to_string();
        self.audit_refusal(actor, "peer.protocol_error", "protocol", &why, remote)
            .await;
        conn.close(tether_net::close::PROTOCOL.into(), why.as_bytes());
    }

    /// Audits a refusal, unless this source has had many of this kind lately: those are counted
    /// and audited as one line when the digest's window closes.
    async fn audit_refusal(
        &self,
        actor: &Actor,
        action: &'static str,
        kind: &'static str,
        detail: &str,
        source: SocketAddr,
    ) {
        let now = self.mono();
        if self.state().digest.note(source.ip(), action, kind, now) {
            self.audit(None, actor, action, detail, Some(source)).await;
        }
    }

    /// Runs a core decision and delivers its messages and revocations under the same lock, so
    /// every peer gets its messages in the order the core made them even when decisions race;
    /// then records what needs the store.
    async fn decide(&self, f: impl FnOnce(&mut Core) -> Vec<Output>) {
        let later = {
            let mut st = self.state();
            let out = f(&mut st.core);
            st.deliver(out)
        };
        self.finish(later).await;
    }

    /// [`Shared::decide`] for a decision that may be refused.
    async fn try_decide(
        &self,
        f: impl FnOnce(&mut Core) -> Result<Vec<Output>, tether_protocol::msg::Refusal>,
    ) -> Result<(), tether_protocol::msg::Refusal> {
        let later = {
            let mut st = self.state();
            let out = f(&mut st.core)?;
            st.deliver(out)
        };
        self.finish(later).await;
        Ok(())
    }

    /// Records session ends and audit events the core asked for.
    async fn finish(&self, later: Vec<Output>) {
        for o in later {
            match o {
                Output::Ended { session, reason } => {
                    if let Err(e) = self.store.session_ended(session, reason, now_unix()).await {
                        warn!(error = %e, "cannot record session end");
                    }
                    self.audit(
                        Some(session),
                        &Actor::Relay,
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
                Output::Notes { session, text, by } => {
                    if let Err(e) = self.store.set_notes(session, text, by, now_unix()).await {
                        warn!(error = %e, "cannot record session notes");
                    }
                }
                Output::Chat { session, entry } => {
                    if let Err(e) = self.store.chat_line(session, entry).await {
                        warn!(error = %e, "cannot record a chat line");
                    }
                }
                Output::Send(..) | Output::Revoke { .. } | Output::Close(_) => {}
            }
        }
    }

    /// Forgets old failures and writes the digest's counts (all of them with `all`).
    async fn janitor(&self, all: bool) {
        let now = self.mono();
        let flushed = {
            let mut st = self.state();
            st.core.admission.prune(now);
            st.digest.flush(now, all)
        };
        for (source, action, kind, n) in flushed {
            self.audit(
                None,
                &Actor::Peer(source),
                action,
                &format!("{n} more refusals ({kind}) from {source} not listed one by one"),
                None,
            )
            .await;
        }
    }
}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    fingerprint: String,
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    portal_addrs: Vec<SocketAddr>,
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
        let store = crate::store::open(&cfg.data_dir)
            .await
            .context("opening the relay database")?;
        let (certs, key, fingerprint) = match &cfg.tls_files {
            Some((cert, key)) => tls::load_pem(cert, key)?,
            None => {
                let id = tls::load_or_create(&cfg.data_dir)?;
                (vec![id.cert], id.key, id.fingerprint)
            }
        };
        let server = tether_net::server_config(certs.clone(), key.clone_key())?;
        let endpoint = tether_net::server_endpoint(server, cfg.listen)
            .with_context(|| format!("cannot listen on {} (UDP)", cfg.listen))?;
        let addr = endpoint.local_addr()?;
        // The portal's listeners are bound now, so that the default public URL can name them.
        let https = match cfg.portal.listen {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a} (TCP, portal)"))?,
            ),
            None => None,
        };
        let plain = match cfg.portal.listen_http {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a} (TCP, portal over HTTP)"))?,
            ),
            None => None,
        };
        let public_url = match (&cfg.public_url, &https) {
            (Some(u), _) => u.trim_end_matches('/').to_string(),
            (None, Some(l)) => default_public_url(l.local_addr()?),
            (None, None) => default_public_url(addr),
        };
        store
            .set_setting("public_url".into(), public_url.clone())
            .await?;
        let mut core = Core::new();
        core.requeue_after = cfg.requeue_after;
        core.agent_grace = cfg.agent_grace;
        // What the previous relay left when it stopped: its sessions wait for their people.
        let restored = match store.take_setting(SNAPSHOT_SETTING.into()).await? {
            Some(json) => match serde_json::from_str::<crate::core::Snapshot>(&json) {
                Ok(snapshot) => {
                    info!(
                        sessions = snapshot.session_count(),
                        saved_at = snapshot.saved_at,
                        "taking over the previous relay's sessions"
                    );
                    core.restore(
                        snapshot,
                        Now {
                            mono: Duration::ZERO,
                            unix: now_unix(),
                        },
                    )
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the previous relay's sessions");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let shared = Arc::new(Shared {
            store,
            public_url,
            keep_sessions: cfg.keep_sessions,
            started: Instant::now(),
            limits: cfg.limits,
            slots: guard::Slots::new(cfg.limits),
            password_checks: Semaphore::new(cfg.limits.password_checks.max(1)),
            slow_lane: tokio::sync::Mutex::new(()),
            mailer: match &cfg.smtp {
                Some(s) => Some(crate::mail::Mailer::new(s)?),
                None => None,
            },
            mails: Mutex::new(crate::mail::MailLimiter::default()),
            state: Mutex::new(State {
                core,
                peers: HashMap::new(),
                revokers: HashMap::new(),
                digest: guard::RefusalDigest::default(),
                next_conn: 1,
            }),
        });
        shared.finish(restored).await;
        let ep = endpoint.clone();
        let sh = shared.clone();
        let accept = tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let slot = sh.slots.take(incoming.remote_address().ip());
                tokio::spawn(conn::serve(sh.clone(), incoming, slot));
            }
        });
        let sh = shared.clone();
        let janitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(JANITOR_PERIOD);
            loop {
                tick.tick().await;
                sh.janitor(false).await;
            }
        });
        let sh = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK_PERIOD);
            loop {
                tick.tick().await;
                let now = sh.now();
                sh.decide(|core| core.tick(now)).await;
            }
        });
        let mut tasks = vec![accept, janitor, ticker];
        let mut portal_addrs = Vec::new();
        if https.is_some() || plain.is_some() {
            let parts = || crate::portal::PortalParts {
                relay_addr: relay_addr(&shared.public_url, addr.port()),
                fingerprint: fingerprint.clone(),
            };
            let assets = Arc::new(crate::portal::Assets::load(&cfg.portal, &parts())?);
            let listeners = [
                (
                    https,
                    Some(crate::portal::listen::tls_acceptor(certs, key)?),
                ),
                (plain, None),
            ];
            for (tcp, tls) in listeners {
                let Some(tcp) = tcp else { continue };
                let secure = tls.is_some();
                let portal = crate::portal::Portal::new(
                    shared.clone(),
                    &cfg.portal,
                    assets.clone(),
                    parts(),
                    secure,
                )?;
                let router = crate::portal::router(Arc::new(portal));
                let listener = crate::portal::listen::Listener::new(tcp, tls)?;
                let local = axum::serve::Listener::local_addr(&listener)?;
                info!(%local, https = secure, "portal listening");
                portal_addrs.push(local);
                tasks.push(tokio::spawn(async move {
                    let app = router
                        .into_make_service_with_connect_info::<crate::portal::listen::PeerAddr>();
                    if let Err(e) = axum::serve(listener, app).await {
                        warn!(error = %e, "portal stopped");
                    }
                }));
            }
        }
        info!(%addr, %fingerprint, "relay listening");
        Ok(Relay {
            addr,
            fingerprint,
            shared,
            endpoint,
            tasks,
            portal_addrs,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The portal's addresses: HTTPS first (when on), then plain HTTP.
    pub fn portal_addrs(&self) -> &[SocketAddr] {
        &self.portal_addrs
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
    pub fn store(&self) -> &dyn Store {
        self.shared.store.as_ref()
    }

    /// Connections open now, and of those not logged in or joined yet.
    pub fn connections(&self) -> (u32, u32) {
        self.shared.slots.open()
    }

    /// Stops: no new connections; the sessions that can come back are saved for the next
    /// relay (the others end and their peers are told); every connection closes saying the
    /// relay restarts, so that hosts and consoles come back with their tokens; the store is
    /// flushed and closed.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        let now = self.shared.now();
        let (later, snapshot) = {
            let mut st = self.shared.state();
            let (out, snapshot) = st.core.shutdown(now, self.shared.keep_sessions);
            (st.deliver(out), snapshot)
        };
        self.shared.finish(later).await;
        let saved = match serde_json::to_string(&snapshot) {
            Ok(json) => self
                .shared
                .store
                .set_setting(SNAPSHOT_SETTING.into(), json)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match saved {
            Ok(()) => info!(
                sessions = snapshot.session_count(),
                "saved the sessions for the next relay"
            ),
            Err(e) => warn!(error = %e, "cannot save the sessions for the next relay"),
        }
        // Give the goodbyes of sessions that ended a moment to leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.endpoint
            .close(close::SHUTDOWN.into(), b"relay restarting");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        self.shared.janitor(true).await;
        if let Err(e) = self.shared.store.close().await {
            warn!(error = %e, "cannot close the database");
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
