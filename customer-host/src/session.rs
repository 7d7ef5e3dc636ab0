//! The host's connection to the relay: hello, join with the key, then serve the session until it
//! ends.

use tether_i18n::t;
use tether_net::{LinkError, close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{ClientMsg, EndReason, HostStream, Role, ServerMsg, SessionId};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use std::collections::HashMap;
use std::sync::Arc;

use tether_protocol::desk::{Participant, ParticipantId};
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
    /// How the relay's certificate is checked.
    pub trust: tether_net::Trust,
    /// The name the customer gave (their full name on this computer when absent).
    pub name: Option<String>,
    /// How long to try to come back to the session after the connection drops.
    pub reconnect_for: std::time::Duration,
}

/// What happens during a session, for the customer's eyes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// Joined: waiting in a queue.
    Joined {
        /// The session.
        session: SessionId,
        /// Whose queue: the agent whose key it was, or the team.
        queue: String,
    },
    /// The place in line (1 is next).
    InLine(u32),
    /// The agents helping now (empty: waiting for one).
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
    /// The connection dropped; trying to come back (the attempt's number).
    Reconnecting(u32),
    /// Back in the session on a new connection.
    Resumed,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The relay ended it.
    Ended(EndReason),
    /// The customer ended it here.
    EndedHere,
}

/// Why the host stopped: the link's failures, or the screen cannot be captured
/// ([`LinkError::Local`]).
pub type HostError = LinkError<CaptureError>;

async fn read_server(recv: &mut quinn::RecvStream) -> Result<ServerMsg, HostError> {
    tether_net::read_next(recv, CONTROL_MAX_FRAME).await
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
struct StreamCaps(Arc<std::sync::Mutex<HashMap<(ParticipantId, &'static str), usize>>>);

/// A stream's place under its agent's cap; given back when dropped.
struct StreamSlot {
    caps: StreamCaps,
    key: (ParticipantId, &'static str),
}

impl StreamCaps {
    fn take(&self, agent: ParticipantId, kind: &'static str, max: usize) -> Option<StreamSlot> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry((agent, kind)).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            caps: self.clone(),
            key: (agent, kind),
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
        .map_err(|e| HostError::Local(CaptureError::Failed(e.to_string())))?
        .map_err(HostError::Local)?;
    let customer = info::customer_info(opts.name.clone(), monitors);
    // This host's identity for the session: a resume must come from it.
    let mut client = [0u8; 32];
    getrandom::fill(&mut client)
        .map_err(|e| HostError::Local(CaptureError::Failed(format!("random: {e}"))))?;
    let (mut endpoint, conn) = tether_net::connect_trusting(&opts.relay, &opts.trust).await?;
    let monitors = customer.monitors.clone();
    let joined = join(
        &conn,
        &opts.key,
        customer,
        client,
        &services.shared,
        &events,
    )
    .await;
    let (send, recv, session_id, mut token) = match joined {
        Ok(j) => j,
        Err(e) => {
            conn.close(close::NORMAL.into(), b"bye");
            return Err(e);
        }
    };
    let mut link = Link {
        conn,
        send,
        recv: Some(recv),
    };
    let result = loop {
        let res = session(
            &mut link,
            session_id,
            &monitors,
            services.clone(),
            decisions,
            events.clone(),
            &mut end,
        )
        .await;
        let Err(HostError::Lost(why)) = res else {
            break res;
        };
        // The connection dropped: come back to the session with the token.
        warn!(%why, "connection lost; resuming the session");
        link.conn.close(close::NORMAL.into(), b"lost");
        let back = reconnect(
            &opts,
            token,
            client,
            &services.shared,
            &events,
            decisions,
            &mut end,
        )
        .await;
        match back {
            Ok(Resumed::Back(ep, l, next)) => {
                endpoint = ep;
                link = l;
                token = next;
            }
            Ok(Resumed::EndedHere) => break Ok(Outcome::EndedHere),
            Err(e) => break Err(e),
        }
    };
    match &result {
        Ok(_) => link.conn.close(close::NORMAL.into(), b"bye"),
        Err(HostError::Protocol(e)) => link.conn.close(close::PROTOCOL.into(), e.as_bytes()),
        Err(_) => link.conn.close(close::NORMAL.into(), b"bye"),
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
    result
}

/// A viewer listed in the customer's window from its creation to its drop.
struct ShownViewer {
    shared: Shared,
    events: mpsc::UnboundedSender<HostEvent>,
    viewer: Participant,
    monitor: u8,
}

impl ShownViewer {
    fn new(
        shared: Shared,
        events: mpsc::UnboundedSender<HostEvent>,
        viewer: Participant,
        monitor: u8,
    ) -> Self {
        shared.update(|v| v.viewers.push((viewer.clone(), monitor)));
        let _ = events.send(HostEvent::ViewerStarted {
            agent: viewer.to_string(),
            monitor,
        });
        ShownViewer {
            shared,
            events,
            viewer,
            monitor,
        }
    }
}

impl Drop for ShownViewer {
    fn drop(&mut self) {
        let (viewer, monitor) = (&self.viewer, self.monitor);
        self.shared.update(|v| {
            if let Some(i) = v
                .viewers
                .iter()
                .position(|(a, m)| a == viewer && *m == monitor)
            {
                v.viewers.remove(i);
            }
        });
        let _ = self.events.send(HostEvent::ViewerStopped {
            agent: viewer.to_string(),
        });
    }
}

/// A connection to the relay with its control stream, in a session.
struct Link {
    conn: quinn::Connection,
    send: quinn::SendStream,
    /// Taken by the session that reads it.
    recv: Option<quinn::RecvStream>,
}

/// How a reconnection went.
enum Resumed {
    /// Back in the session: the endpoint, the link and the next token.
    Back(quinn::Endpoint, Link, [u8; 32]),
    /// The customer ended the session while it was away.
    EndedHere,
}

/// Tries to come back to the session until the relay takes the token, refuses it, the
/// resume window closes, or the customer ends the session. The window says what happens.
async fn reconnect(
    opts: &HostOptions,
    token: [u8; 32],
    client: [u8; 32],
    shared: &Shared,
    events: &mpsc::UnboundedSender<HostEvent>,
    decisions: &mut mpsc::UnboundedReceiver<Decision>,
    end: &mut watch::Receiver<bool>,
) -> Result<Resumed, HostError> {
    let give_up = tokio::time::Instant::now() + opts.reconnect_for;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        shared.update(|v| v.connection_lost(attempt));
        let _ = events.send(HostEvent::Reconnecting(attempt));
        let mut j = [0u8; 1];
        let _ = getrandom::fill(&mut j);
        let pause = tokio::time::sleep(tether_net::backoff(attempt, j[0]));
        tokio::pin!(pause);
        // Wait out the pause; the customer may end the session meanwhile.
        loop {
            tokio::select! {
                _ = &mut pause => break,
                d = decisions.recv() => {
                    if matches!(d, Some(Decision::EndSession) | None) {
                        return Ok(Resumed::EndedHere);
                    }
                }
                changed = end.changed() => {
                    if changed.is_err() || *end.borrow() {
                        return Ok(Resumed::EndedHere);
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(HostError::Lost(format!(
                "the connection did not come back within {} s",
                opts.reconnect_for.as_secs()
            )));
        }
        let tried =
            tokio::time::timeout(tether_net::MAX_BACKOFF, resume(opts, token, client)).await;
        match tried {
            Ok(Ok(back)) => {
                let _ = events.send(HostEvent::Resumed);
                shared.update(|v| {
                    v.phase = if v.agents.is_empty() {
                        Phase::Waiting
                    } else {
                        Phase::Connected
                    };
                });
                return Ok(back);
            }
            // The relay does not know the token (the session ended, or it restarted).
            Ok(Err(HostError::Refused(r))) => {
                debug!(%r, "resume refused");
                return Err(HostError::Lost("the session could not be resumed".into()));
            }
            Ok(Err(e)) => debug!(error = %e, attempt, "resume attempt failed"),
            Err(_) => debug!(attempt, "resume attempt timed out"),
        }
    }
}

/// One attempt to come back: connect, say hello, present the token.
async fn resume(
    opts: &HostOptions,
    token: [u8; 32],
    client: [u8; 32],
) -> Result<Resumed, HostError> {
    let (endpoint, conn) = tether_net::connect_trusting(&opts.relay, &opts.trust).await?;
    let software = format!("tether-host {}", env!("CARGO_PKG_VERSION"));
    let (mut send, mut recv) = tether_net::hello(&conn, Role::Host, &software).await?;
    write_msg(
        &mut send,
        &ClientMsg::Resume { token, client },
        CONTROL_MAX_FRAME,
    )
    .await
    .map_err(|e| HostError::Lost(e.to_string()))?;
    match read_server(&mut recv).await? {
        ServerMsg::Resumed { resume, .. } => {
            let link = Link {
                conn,
                send,
                recv: Some(recv),
            };
            Ok(Resumed::Back(endpoint, link, resume))
        }
        ServerMsg::Refused(r) => Err(HostError::Refused(r)),
        other => Err(HostError::Protocol(format!("unexpected {other:?}"))),
    }
}

/// Says hello, joins with the key, and shows whom the customer waits for.
async fn join(
    conn: &quinn::Connection,
    key: &str,
    customer: tether_protocol::msg::CustomerInfo,
    client: [u8; 32],
    shared: &Shared,
    events: &mpsc::UnboundedSender<HostEvent>,
) -> Result<(quinn::SendStream, quinn::RecvStream, SessionId, [u8; 32]), HostError> {
    let software = format!("tether-host {}", env!("CARGO_PKG_VERSION"));
    let (mut send, mut recv) = tether_net::hello(conn, Role::Host, &software).await?;
    let join = ClientMsg::Join {
        key: key.to_string(),
        customer,
        client,
    };
    write_msg(&mut send, &join, CONTROL_MAX_FRAME)
        .await
        .map_err(|e| HostError::Lost(e.to_string()))?;
    match read_server(&mut recv).await? {
        ServerMsg::Joined {
            session,
            queue,
            resume,
        } => {
            shared.update(|v| {
                v.owner = Some(queue.clone());
                v.phase = Phase::Waiting;
            });
            let _ = events.send(HostEvent::Joined { session, queue });
            Ok((send, recv, session, resume))
        }
        ServerMsg::Refused(r) => Err(HostError::Refused(r)),
        other => Err(HostError::Protocol(format!("unexpected {other:?}"))),
    }
}

/// What the session loop does after an event.
enum Step {
    Go,
    /// Send this on the control stream.
    Send(ClientMsg),
    /// End it from here (the customer or Ctrl+C).
    EndHere,
    /// It is over.
    Done(Result<Outcome, HostError>),
}

/// A joined session: the streams the relay opens for agents, the customer's decisions, and what
/// serves them.
struct Served {
    conn: quinn::Connection,
    session: SessionId,
    services: Services,
    monitors: Vec<tether_protocol::msg::MonitorInfo>,
    events: mpsc::UnboundedSender<HostEvent>,
    tasks: tokio::task::JoinSet<()>,
    /// Each agent's input stream task, for the customer's answers and revocations.
    controls: HashMap<Participant, mpsc::UnboundedSender<Decision>>,
    files: Arc<crate::filesvc::FileAccess>,
    consents: crate::grants::Consents,
    caps: StreamCaps,
}

impl Served {
    fn shared(&self) -> &Shared {
        &self.services.shared
    }

    /// A message from the relay on the control stream.
    fn on_relay(&mut self, m: Option<Result<ServerMsg, tether_net::ReadError>>) -> Step {
        match m {
            Some(Ok(ServerMsg::AgentsChanged { agents, .. })) => {
                self.agents_changed(agents);
                Step::Go
            }
            Some(Ok(ServerMsg::InLine { place })) => {
                self.shared().update(|v| v.place = Some(place));
                let _ = self.events.send(HostEvent::InLine(place));
                Step::Go
            }
            Some(Ok(ServerMsg::SessionEnded { reason, .. })) => {
                Step::Done(Ok(Outcome::Ended(reason)))
            }
            Some(Ok(ServerMsg::Chat { entries, .. })) => {
                self.chat(entries);
                Step::Go
            }
            Some(Ok(ServerMsg::Refused(r))) => {
                warn!(%r, "relay refused a request");
                Step::Go
            }
            Some(Ok(other)) => {
                debug!(?other, "ignored control message");
                Step::Go
            }
            Some(Err(e)) if e.is_protocol_violation() => {
                Step::Done(Err(HostError::Protocol(e.to_string())))
            }
            Some(Err(e)) => Step::Done(Err(HostError::Lost(e.to_string()))),
            None => Step::Done(Err(HostError::Lost("control stream ended".into()))),
        }
    }

    /// Chat lines for the customer (the relay sends only messages to everyone, masked
    /// representatives named "Support").
    fn chat(&mut self, entries: Vec<tether_protocol::chat::ChatEntry>) {
        use tether_protocol::chat::{ChatLine, Speaker};
        self.shared().update(|v| {
            for e in entries {
                let ChatLine::Message { from, text, .. } = e.line else {
                    continue;
                };
                let mine = matches!(from, Speaker::Customer(_));
                v.chat.push(crate::consent::ChatShown {
                    from: if mine {
                        "You".into()
                    } else {
                        from.name().to_string()
                    },
                    text,
                    mine,
                });
            }
            let extra = v.chat.len().saturating_sub(crate::consent::MAX_CHAT_SHOWN);
            v.chat.drain(..extra);
        });
    }

    /// The agents helping changed: who came and who went is logged, so the customer sees who
    /// took over after a transfer.
    fn agents_changed(&mut self, agents: Vec<String>) {
        let before = self.shared().view().agents.clone();
        for gone in before.iter().filter(|a| !agents.contains(a)) {
            self.shared().log(t!("act-left", agent = gone.as_str()));
        }
        for came in agents.iter().filter(|a| !before.contains(a)) {
            self.shared().log(t!("act-came", agent = came.as_str()));
        }
        self.shared().update(|v| {
            v.phase = match (agents.is_empty(), &v.phase) {
                (false, _) => Phase::Connected,
                (true, Phase::Connected | Phase::AgentAway) => Phase::AgentAway,
                (true, _) => Phase::Waiting,
            };
            if !agents.is_empty() {
                v.place = None;
            }
            v.agents = agents.clone();
        });
        let _ = self.events.send(HostEvent::Agents(agents));
    }

    /// A stream the relay opened for an agent: checked against the agent's caps, then served.
    async fn on_stream(&mut self, mut s: quinn::SendStream, mut r: quinn::RecvStream) -> Step {
        let pre = match read_msg::<HostStream>(&mut r, CONTROL_MAX_FRAME).await {
            Ok(Some(p)) => p,
            Ok(None) => return Step::Go,
            Err(e) => return Step::Done(Err(HostError::Protocol(e.to_string()))),
        };
        let who = pre.who().clone();
        let (kind, max) = match &pre {
            HostStream::Screen { .. } => ("screen", MAX_SCREEN_STREAMS),
            HostStream::Input { .. } => ("input", MAX_INPUT_STREAMS),
            HostStream::Files { .. } => ("file", MAX_FILE_STREAMS),
        };
        let Some(slot) = self.caps.take(who.id, kind, max) else {
            let line = t!("act-too-many-streams", kind = kind, max = max);
            self.shared()
                .log(t!("act-agent-line", agent = who.to_string(), line = line));
            let _ = s.reset(tether_net::close::REFUSED.into());
            let _ = r.stop(tether_net::close::REFUSED.into());
            return Step::Go;
        };
        match pre {
            HostStream::Screen { viewer, monitor } => {
                self.spawn_screen(s, r, viewer, monitor, slot)
            }
            HostStream::Input { agent } => self.spawn_input(s, r, agent, slot),
            HostStream::Files { agent } => self.spawn_files(s, r, agent, slot),
        }
        Step::Go
    }

    fn spawn_screen(
        &mut self,
        s: quinn::SendStream,
        r: quinn::RecvStream,
        viewer: Participant,
        monitor: u8,
        slot: StreamSlot,
    ) {
        let events = self.events.clone();
        let factory = self.services.capture.clone();
        let shared = self.shared().clone();
        // Only unmasked members appear in the window (the relay gives a masked one no name).
        let shown = viewer.name.is_some();
        self.tasks.spawn(async move {
            let _slot = slot;
            let id = viewer.id;
            // Shown in the window while the stream lives, however its task ends (a session
            // that lost its connection aborts what did not end by itself).
            let _shown = shown.then(|| ShownViewer::new(shared, events, viewer, monitor));
            if let Err(e) = crate::screen::serve(s, r, monitor, factory).await {
                warn!(error = %e, viewer = %id, "screen stream ended with an error");
            }
        });
    }

    fn spawn_input(
        &mut self,
        s: quinn::SendStream,
        r: quinn::RecvStream,
        agent: Participant,
        slot: StreamSlot,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.controls.insert(agent.clone(), tx);
        let svc = &self.services;
        let deps = ControlDeps {
            injector: svc.injector.clone(),
            clipboard: svc.clipboard.clone(),
            monitors: self.monitors.clone(),
            shared: svc.shared.clone(),
            consent: self.consents.of(&agent),
            consents: self.consents.clone(),
            answerer: svc.answerer.clone(),
            opener: svc.opener.clone(),
        };
        self.tasks.spawn(async move {
            let _slot = slot;
            control::serve(s, r, agent, deps, rx).await
        });
    }

    fn spawn_files(
        &mut self,
        s: quinn::SendStream,
        r: quinn::RecvStream,
        agent: Participant,
        slot: StreamSlot,
    ) {
        let svc = &self.services;
        let deps = crate::filesvc::FileDeps {
            inbox: svc.inbox.clone(),
            shared: svc.shared.clone(),
            access: self.files.clone(),
            consent: self.consents.of(&agent),
            consents: self.consents.clone(),
            answerer: svc.answerer.clone(),
            max_files: svc.max_files,
        };
        self.tasks.spawn(async move {
            let _slot = slot;
            crate::filesvc::serve(s, r, agent, deps).await
        });
    }

    /// Something the customer decided in the window.
    fn on_decision(&mut self, d: Decision) -> Step {
        match d {
            Decision::EndSession => return Step::EndHere,
            Decision::Say(text) => {
                return Step::Send(ClientMsg::Say {
                    session: self.session,
                    to: tether_protocol::chat::Audience::Everyone,
                    text,
                });
            }
            Decision::CancelTransfer(id) => self.files.cancel(id),
            Decision::Answer {
                agent,
                permission: Permission::Files,
                allow,
            } => self.files.answer(
                &self.consents.of(&agent),
                &agent,
                allow,
                self.consents.now(),
            ),
            Decision::Revoke {
                agent,
                permission: Permission::Files,
            } => self.files.revoke(&self.consents.of(&agent), &agent),
            Decision::Answer { ref agent, .. } | Decision::Revoke { ref agent, .. } => {
                if let Some(tx) = self.controls.get(agent) {
                    let _ = tx.send(d);
                }
            }
            // Only meaningful between sessions.
            Decision::Connect(_) | Decision::NewSession | Decision::CloseWindow => {}
        }
        Step::Go
    }
}

/// Ends the session from here and waits briefly for the relay to confirm, so agents hear it
/// from the relay.
async fn end_here(
    send: &mut quinn::SendStream,
    relay: &mut mpsc::UnboundedReceiver<Result<ServerMsg, tether_net::ReadError>>,
) {
    let _ = write_msg(send, &ClientMsg::EndSession, CONTROL_MAX_FRAME).await;
    let _ = send.finish();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(m) = relay.recv().await {
            if matches!(m, Ok(ServerMsg::SessionEnded { .. }) | Err(_)) {
                break;
            }
        }
    })
    .await;
}

/// Serves the session on one connection until it ends or the connection drops. Everything
/// granted lives in this connection's streams: a new connection starts with nothing granted.
async fn session(
    link: &mut Link,
    session: SessionId,
    monitors: &[tether_protocol::msg::MonitorInfo],
    services: Services,
    decisions: &mut mpsc::UnboundedReceiver<Decision>,
    events: mpsc::UnboundedSender<HostEvent>,
    end: &mut watch::Receiver<bool>,
) -> Result<Outcome, HostError> {
    let monitors = monitors.to_vec();
    let send = &mut link.send;
    let Some(recv) = link.recv.take() else {
        return Err(HostError::Lost("no control stream".into()));
    };
    let mut relay = tether_net::spawn_reader::<ServerMsg>(recv, CONTROL_MAX_FRAME);
    let mut served = Served {
        conn: link.conn.clone(),
        session,
        files: Arc::new(crate::filesvc::FileAccess::new(services.shared.clone())),
        consents: crate::grants::Consents::new(&services.allowed),
        services,
        monitors,
        events,
        tasks: tokio::task::JoinSet::new(),
        controls: HashMap::new(),
        caps: StreamCaps::default(),
    };
    let mut decisions_open = true;
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    served.shared().notes_to(Some(notes_tx));
    let outcome = loop {
        let step = tokio::select! {
            m = relay.recv() => served.on_relay(m),
            Some(n) = notes.recv() => Step::Send(ClientMsg::Note(n)),
            s = served.conn.accept_bi() => match s {
                Ok((s, r)) => served.on_stream(s, r).await,
                Err(e) => Step::Done(Err(HostError::Lost(e.to_string()))),
            },
            changed = end.changed() => {
                if changed.is_err() || *end.borrow() { Step::EndHere } else { Step::Go }
            }
            d = decisions.recv(), if decisions_open => match d {
                Some(d) => served.on_decision(d),
                None => {
                    decisions_open = false;
                    Step::Go
                }
            },
        };
        match step {
            Step::Go => {}
            Step::Send(msg) => {
                if let Err(e) = write_msg(send, &msg, CONTROL_MAX_FRAME).await {
                    break Err(HostError::Lost(e.to_string()));
                }
            }
            Step::EndHere => {
                end_here(send, &mut relay).await;
                break Ok(Outcome::EndedHere);
            }
            Step::Done(r) => break r,
        }
    };
    served.shared().notes_to(None);
    // A dropped connection ends every stream: give the services a moment to end their part
    // (the input gate releases what it pressed), then stop what is left.
    if matches!(outcome, Err(HostError::Lost(_))) {
        served.conn.close(close::NORMAL.into(), b"lost");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while served.tasks.join_next().await.is_some() {}
        })
        .await;
    }
    served.tasks.abort_all();
    outcome
}
