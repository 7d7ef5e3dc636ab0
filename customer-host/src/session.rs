//! The host's connection to the relay: hello, join with the key, then serve the session until it
//! ends.

use tether_net::{ConnectError, close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{
    ClientMsg, EndReason, HELLO_MAGIC, Hello, HostStream, Refusal, Role, ServerMsg, SessionId,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use std::collections::HashMap;
use std::sync::Arc;

use tether_protocol::input::Permission;

use crate::consent::{Decision, Phase, Shared};
use crate::control::{self, ControlDeps};
use tether_desktop::capture::{CaptureError, CapturerFactory};
use tether_desktop::clipboard::ClipboardFactory;
use tether_desktop::info;
use tether_desktop::input::InjectorFactory;

/// The host's OS services, the customer's window state, and what is granted up front.
#[derive(Clone)]
pub struct Services {
    /// Screen capture.
    pub capture: CapturerFactory,
    /// Input injection.
    pub injector: InjectorFactory,
    /// Clipboard access.
    pub clipboard: ClipboardFactory,
    /// The window's view of the session.
    pub shared: Shared,
    /// Permissions granted without asking (`--allow`).
    pub allowed: Vec<Permission>,
    /// Who answers what is not granted up front.
    pub answerer: crate::grants::Answerer,
    /// Opens pushed web addresses.
    pub opener: Arc<dyn tether_desktop::opener::Opener>,
    /// Where files from agents go.
    pub inbox: tether_files::Inbox,
    /// Most files an agent may send in one session.
    pub max_files: u64,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// How to reach the relay and which key to join with.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The session key: 9 digits or the session URL.
    pub key: String,
    /// Relay address, `HOST:PORT`.
    pub relay: String,
    /// SHA-256 of the relay's certificate.
    pub fingerprint: [u8; 32],
}

/// What happens during a session, for the customer's eyes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// Joined a session of this agent.
    Joined {
        /// The session.
        session: SessionId,
        /// The agent whose key it was.
        agent: String,
    },
    /// The agents connected now (empty: waiting for an agent).
    Agents(Vec<String>),
    /// An agent started viewing a monitor.
    ViewerStarted {
        /// Who.
        agent: String,
        /// Which monitor.
        monitor: u8,
    },
    /// An agent stopped viewing.
    ViewerStopped {
        /// Who.
        agent: String,
    },
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The relay ended it.
    Ended(EndReason),
    /// The customer ended it here.
    EndedHere,
}

/// Why the host stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Could not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused the key or the version.
    #[error("{0}")]
    Refused(Refusal),
    /// The connection to the relay broke.
    #[error("lost the connection to the relay: {0}")]
    Lost(String),
    /// The relay broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The screen cannot be captured.
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

async fn read_server(recv: &mut quinn::RecvStream) -> Result<ServerMsg, HostError> {
    match read_msg::<ServerMsg>(recv, CONTROL_MAX_FRAME).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(HostError::Lost("the relay closed the connection".into())),
        Err(e) if e.is_protocol_violation() => Err(HostError::Protocol(e.to_string())),
        Err(e) => Err(HostError::Lost(e.to_string())),
    }
}

/// Streams one agent may have open at once, by kind: a screen stream costs a capturer, a file
/// stream a request read before consent.
pub const MAX_SCREEN_STREAMS: usize = 4;
/// See [`MAX_SCREEN_STREAMS`].
pub const MAX_INPUT_STREAMS: usize = 2;
/// See [`MAX_SCREEN_STREAMS`].
pub const MAX_FILE_STREAMS: usize = 32;

/// Open streams per agent and kind.
#[derive(Debug, Default, Clone)]
struct StreamCaps(Arc<std::sync::Mutex<HashMap<(String, &'static str), usize>>>);

/// A stream's place under its agent's cap; given back when dropped.
struct StreamSlot {
    caps: StreamCaps,
    key: (String, &'static str),
}

impl StreamCaps {
    fn take(&self, agent: &str, kind: &'static str, max: usize) -> Option<StreamSlot> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry((agent.to_string(), kind)).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            caps: self.clone(),
            key: (agent.to_string(), kind),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut m = self.caps.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Most files received in one session by default.
pub const DEFAULT_MAX_FILES: u64 = 100_000;

/// Largest file received by default (64 GiB).
pub const DEFAULT_MAX_FILE: u64 = 64 << 30;

/// `~/Downloads/Tether`, where files from the other side go by default.
pub fn default_download_dir() -> std::path::PathBuf {
    directories::UserDirs::new()
        .and_then(|u| u.download_dir().map(|d| d.to_path_buf()))
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join("Downloads")))
        .unwrap_or_else(std::env::temp_dir)
        .join("Tether")
}

/// Joins the session and serves the screen headless, granting nothing: every request for control
/// or the clipboard is denied. Ends when the session ends, `end` turns true, or the relay goes away.
pub async fn run(
    opts: HostOptions,
    factory: CapturerFactory,
    events: mpsc::UnboundedSender<HostEvent>,
    end: watch::Receiver<bool>,
) -> Result<Outcome, HostError> {
    let (shared, decisions) = Shared::new(Arc::new(|| {}));
    let services = Services {
        // Nobody can answer: every request is denied.
        answerer: crate::grants::Answerer::nobody(shared.clone()),
        capture: factory,
        injector: tether_desktop::input::system_injector(),
        clipboard: tether_desktop::clipboard::system_clipboard(),
        shared,
        allowed: Vec::new(),
        opener: Arc::new(tether_desktop::opener::SystemOpener),
        inbox: tether_files::Inbox::new(default_download_dir(), DEFAULT_MAX_FILE),
        max_files: DEFAULT_MAX_FILES,
    };
    let mut decisions = decisions;
    run_with(opts, services, &mut decisions, events, end).await
}

/// Joins the session and serves it with these services until it ends, `end` turns true, the
/// customer ends it, or the relay goes away.
pub async fn run_with(
    opts: HostOptions,
    services: Services,
    decisions: &mut mpsc::UnboundedReceiver<Decision>,
    events: mpsc::UnboundedSender<HostEvent>,
    mut end: watch::Receiver<bool>,
) -> Result<Outcome, HostError> {
    let factory = services.capture.clone();
    let f = factory.clone();
    let monitors = tokio::task::spawn_blocking(move || f().and_then(|mut c| c.monitors()))
        .await
        .map_err(|e| HostError::Capture(CaptureError::Failed(e.to_string())))??;
    let customer = info::customer_info(monitors);
    let (endpoint, conn) = tether_net::connect(&opts.relay, opts.fingerprint).await?;
    let result = session(&conn, opts, customer, services, decisions, events, &mut end).await;
    match &result {
        Ok(_) => conn.close(close::NORMAL.into(), b"bye"),
        Err(HostError::Protocol(e)) => conn.close(close::PROTOCOL.into(), e.as_bytes()),
        Err(_) => conn.close(close::NORMAL.into(), b"bye"),
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
    result
}

async fn session(
    conn: &quinn::Connection,
    opts: HostOptions,
    customer: tether_protocol::msg::CustomerInfo,
    services: Services,
    decisions: &mut mpsc::UnboundedReceiver<Decision>,
    events: mpsc::UnboundedSender<HostEvent>,
    end: &mut watch::Receiver<bool>,
) -> Result<Outcome, HostError> {
    let factory = services.capture.clone();
    let shared = services.shared.clone();
    let monitors = customer.monitors.clone();
    let lost = |e: &dyn std::fmt::Display| HostError::Lost(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: tether_protocol::PROTOCOL_VERSION,
        role: Role::Host,
        software: format!("tether-host {}", env!("CARGO_PKG_VERSION")),
    };
    write_msg(&mut send, &hello, CONTROL_MAX_FRAME)
        .await
        .map_err(|e| lost(&e))?;
    match read_server(&mut recv).await? {
        ServerMsg::Welcome { .. } => {}
        ServerMsg::Refused(r) => return Err(HostError::Refused(r)),
        other => return Err(HostError::Protocol(format!("unexpected {other:?}"))),
    }
    let join = ClientMsg::Join {
        key: opts.key.clone(),
        customer,
    };
    write_msg(&mut send, &join, CONTROL_MAX_FRAME)
        .await
        .map_err(|e| lost(&e))?;
    match read_server(&mut recv).await? {
        ServerMsg::Joined { session, agent } => {
            shared.update(|v| {
                v.owner = Some(agent.clone());
                v.phase = Phase::Waiting;
            });
            let _ = events.send(HostEvent::Joined { session, agent });
        }
        ServerMsg::Refused(r) => return Err(HostError::Refused(r)),
        other => return Err(HostError::Protocol(format!("unexpected {other:?}"))),
    }

    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let m = read_server(&mut recv).await;
            let stop = m.is_err();
            if ctl_tx.send(m).is_err() || stop {
                break;
            }
        }
    });
    let mut viewers = tokio::task::JoinSet::new();
    let mut controls: HashMap<String, mpsc::UnboundedSender<Decision>> = HashMap::new();
    let files = Arc::new(crate::filesvc::FileAccess::new(shared.clone()));
    let consents = crate::grants::Consents::new(&services.allowed);
    let answerer = services.answerer.clone();
    let caps = StreamCaps::default();
    let mut decisions_open = true;
    let mut end_here = false;
    let outcome = loop {
        if end_here {
            let _ = write_msg(&mut send, &ClientMsg::EndSession, CONTROL_MAX_FRAME).await;
            let _ = send.finish();
            // Wait briefly for the relay to confirm, so agents hear it from the relay.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while let Some(m) = ctl_rx.recv().await {
                    if matches!(m, Ok(ServerMsg::SessionEnded { .. }) | Err(_)) {
                        break;
                    }
                }
            })
            .await;
            break Ok(Outcome::EndedHere);
        }
        tokio::select! {
            m = ctl_rx.recv() => match m {
                Some(Ok(ServerMsg::AgentsChanged { agents, .. })) => {
                    shared.update(|v| {
                        v.phase = match (agents.is_empty(), &v.phase) {
                            (false, _) => Phase::Connected,
                            (true, Phase::Connected | Phase::AgentAway) => Phase::AgentAway,
                            (true, _) => Phase::Waiting,
                        };
                        v.agents = agents.clone();
                    });
                    let _ = events.send(HostEvent::Agents(agents));
                }
                Some(Ok(ServerMsg::SessionEnded { reason, .. })) => break Ok(Outcome::Ended(reason)),
                Some(Ok(ServerMsg::Refused(r))) => warn!(%r, "relay refused a request"),
                Some(Ok(other)) => debug!(?other, "ignored control message"),
                Some(Err(e)) => break Err(e),
                None => break Err(HostError::Lost("control stream ended".into())),
            },
            s = conn.accept_bi() => match s {
                Ok((mut s, mut r)) => {
                    let pre = read_msg::<HostStream>(&mut r, CONTROL_MAX_FRAME).await;
                    let (who, kind, max) = match &pre {
                        Ok(Some(HostStream::Screen { agent, .. })) => (agent.clone(), "screen", MAX_SCREEN_STREAMS),
                        Ok(Some(HostStream::Input { agent })) => (agent.clone(), "input", MAX_INPUT_STREAMS),
                        Ok(Some(HostStream::Files { agent })) => (agent.clone(), "file", MAX_FILE_STREAMS),
                        _ => (String::new(), "", usize::MAX),
                    };
                    let slot = caps.take(&who, kind, max);
                    if slot.is_none() {
                        shared.log(format!("{who}: refused a {kind} stream: {max} are open already"));
                        let _ = s.reset(tether_net::close::REFUSED.into());
                        let _ = r.stop(tether_net::close::REFUSED.into());
                        continue;
                    }
                    match pre {
                        Ok(Some(HostStream::Screen { agent, monitor })) => {
                            let events = events.clone();
                            let factory = factory.clone();
                            let shared = shared.clone();
                            viewers.spawn(async move {
                                let _slot = slot;
                                shared.update(|v| v.viewers.push((agent.clone(), monitor)));
                                let _ = events.send(HostEvent::ViewerStarted { agent: agent.clone(), monitor });
                                if let Err(e) = crate::screen::serve(s, r, monitor, factory).await {
                                    warn!(error = %e, %agent, "screen stream ended with an error");
                                }
                                shared.update(|v| {
                                    if let Some(i) = v.viewers.iter().position(|(a, m)| *a == agent && *m == monitor) {
                                        v.viewers.remove(i);
                                    }
                                });
                                let _ = events.send(HostEvent::ViewerStopped { agent });
                            });
                        }
                        Ok(Some(HostStream::Input { agent })) => {
                            let (tx, rx) = mpsc::unbounded_channel();
                            controls.insert(agent.clone(), tx);
                            let deps = ControlDeps {
                                injector: services.injector.clone(),
                                clipboard: services.clipboard.clone(),
                                monitors: monitors.clone(),
                                shared: shared.clone(),
                                consent: consents.of(&agent),
                                consents: consents.clone(),
                                answerer: answerer.clone(),
                                opener: services.opener.clone(),
                            };
                            viewers.spawn(async move {
                                let _slot = slot;
                                control::serve(s, r, agent, deps, rx).await
                            });
                        }
                        Ok(Some(HostStream::Files { agent })) => {
                            let deps = crate::filesvc::FileDeps {
                                inbox: services.inbox.clone(),
                                shared: shared.clone(),
                                access: files.clone(),
                                consent: consents.of(&agent),
                                consents: consents.clone(),
                                answerer: answerer.clone(),
                                max_files: services.max_files,
                            };
                            viewers.spawn(async move {
                                let _slot = slot;
                                crate::filesvc::serve(s, r, agent, deps).await
                            });
                        }
                        Ok(None) => {}
                        Err(e) => break Err(HostError::Protocol(e.to_string())),
                    }
                }
                Err(e) => break Err(lost(&e)),
            },
            changed = end.changed() => {
                if changed.is_err() || *end.borrow() {
                    end_here = true;
                }
            }
            d = decisions.recv(), if decisions_open => match d {
                Some(Decision::EndSession) => end_here = true,
                Some(Decision::CancelTransfer(id)) => files.cancel(id),
                Some(Decision::Answer { agent, permission: Permission::Files, allow }) => {
                    files.answer(&consents.of(&agent), &agent, allow, consents.now())
                }
                Some(Decision::Revoke { agent, permission: Permission::Files }) => {
                    files.revoke(&consents.of(&agent), &agent)
                }
                Some(d @ (Decision::Answer { .. } | Decision::Revoke { .. })) => {
                    let agent = match &d {
                        Decision::Answer { agent, .. } | Decision::Revoke { agent, .. } => agent.as_str(),
                        _ => "",
                    };
                    if let Some(tx) = controls.get(agent) {
                        let _ = tx.send(d);
                    }
                }
                // Only meaningful between sessions.
                Some(Decision::Connect(_) | Decision::NewSession | Decision::CloseWindow) => {}
                None => decisions_open = false,
            }
        }
    };
    reader.abort();
    viewers.abort_all();
    outcome
}
