//! One agent's input stream on the host: consent, remote control and clipboard sync.
//!
//! Every message goes through the agent's [`InputGate`], which consults the agent's consent (the
//! same its file streams use); only what it lets through reaches the injector, on a thread of its
//! own that keeps events in order (consecutive pointer moves are coalesced; keys are never dropped
//! or reordered).

use std::sync::Arc;
use tether_i18n::t;
use tether_protocol::chat::HostNote;

use tether_net::write_msg;
use tether_protocol::consent::Permission;
use tether_protocol::desk::Participant;
use tether_protocol::frame::INPUT_MAX_FRAME;
use tether_protocol::input::{Action, AgentMsg, Grant, HostMsg, InputGate, MAX_CLIPBOARD};
use tether_protocol::msg::MonitorInfo;
use tokio::sync::mpsc;

use crate::consent::{Decision, Shared};
use crate::grants::{AgentConsent, Answerer, Consents};
use tether_desktop::clipboard::{ClipboardFactory, ClipboardWorker};
use tether_desktop::input::{InjectQueue, InjectorFactory};

/// What the control service needs from the host.
#[derive(Clone)]
pub struct ControlDeps {
    /// Input injection.
    pub injector: InjectorFactory,
    /// Clipboard access.
    pub clipboard: ClipboardFactory,
    /// The monitors, for coordinates.
    pub monitors: Vec<MonitorInfo>,
    /// The customer's window state.
    pub shared: Shared,
    /// This agent's permissions.
    pub consent: Arc<AgentConsent>,
    /// The session's clock for consent.
    pub consents: Consents,
    /// Who answers prompts.
    pub answerer: Answerer,
    /// Opens pushed web addresses.
    pub opener: Arc<dyn tether_desktop::opener::Opener>,
}

impl std::fmt::Debug for ControlDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlDeps").finish_non_exhaustive()
    }
}

/// Serves one agent's input stream until it ends.
pub async fn serve(
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    agent: Participant,
    deps: ControlDeps,
    mut decisions: mpsc::UnboundedReceiver<Decision>,
) {
    let shared = deps.shared.clone();
    let report = shared.clone();
    let inject = InjectQueue::start(deps.injector.clone(), deps.monitors.clone(), move |e| {
        report.log(e)
    });
    let (local_tx, mut local_rx) = mpsc::unbounded_channel();
    let log = shared.clone();
    let clip = ClipboardWorker::start(
        deps.clipboard.clone(),
        move |text| local_tx.send(text).is_ok(),
        move |e| log.log(e),
    );
    let (mut msg_rx, reader) =
        tether_net::spawn_peer_reader::<AgentMsg>(recv, INPUT_MAX_FRAME, "input", |_| {});
    shared.update(|v| {
        v.grants.insert(agent.clone(), (Grant::Off, Grant::Off));
    });
    let mut stream = Stream {
        agent,
        deps,
        gate: InputGate::new(),
        inject,
        clip,
        send,
        alive: true,
    };
    loop {
        let actions = tokio::select! {
            m = msg_rx.recv() => match m {
                Some(m) => stream.gate.on_agent(&mut stream.deps.consent.gate(), m, stream.deps.consents.now()),
                None => break,
            },
            d = decisions.recv() => match d {
                Some(Decision::Answer { permission, allow, .. }) => stream.answer(permission, allow),
                Some(Decision::Revoke { permission, .. }) => {
                    stream.gate.revoke(&mut stream.deps.consent.gate(), permission)
                }
                Some(Decision::EndSession) | None => break,
                Some(_) => Vec::new(),
            },
            t = local_rx.recv() => match t {
                Some(text) => stream.local_clipboard(text),
                None => break,
            },
        };
        stream.apply(actions).await;
        if !stream.alive {
            break;
        }
    }
    // Whatever ended the stream: release everything held, drop the grants of the stream.
    let actions = stream.gate.disconnected(&mut stream.deps.consent.gate());
    stream.apply(actions).await;
    reader.abort();
    let _ = stream.send.finish();
    let agent = stream.agent;
    shared.update(|v| {
        v.grants.remove(&agent);
        v.prompts.retain(|p| p.agent != agent);
    });
}

/// One agent's input stream and what carries out its gate's actions.
struct Stream {
    agent: Participant,
    deps: ControlDeps,
    gate: InputGate,
    inject: InjectQueue,
    clip: ClipboardWorker,
    send: quinn::SendStream,
    /// False once the stream to the agent is gone.
    alive: bool,
}

impl Stream {
    /// The customer's answer to a prompt.
    fn answer(&mut self, permission: Permission, allow: bool) -> Vec<Action> {
        let now = self.deps.consents.now();
        self.gate
            .answer(&mut self.deps.consent.gate(), permission, allow, now)
    }

    /// The customer copied `text`: it goes to the agent while clipboard sync is on, within the
    /// size limit.
    fn local_clipboard(&self, text: String) -> Vec<Action> {
        if !self.deps.consent.gate().allows(Permission::Clipboard) {
            return Vec::new();
        }
        if text.len() > MAX_CLIPBOARD {
            self.deps.shared.log(t!(
                "act-clipboard-too-big",
                size = text.len(),
                max = MAX_CLIPBOARD
            ));
            return vec![Action::Notify(HostMsg::Refused(format!(
                "the customer's clipboard text is over the {MAX_CLIPBOARD} byte limit"
            )))];
        }
        vec![Action::Notify(HostMsg::Clipboard { text })]
    }

    /// Carries out the gate's actions (and those that follow from prompts answered at once).
    async fn apply(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::CancelQueued => {
                    let dropped = self.inject.cancel();
                    if dropped > 0 {
                        self.log(t!("act-input-cancelled", n = dropped));
                    }
                }
                Action::Inject(ev) => {
                    if !self.inject.push(ev) {
                        self.log(t!("act-input-full", n = tether_desktop::input::MAX_QUEUED));
                    }
                }
                Action::Prompt(permission) => queue.extend(self.prompt(permission)),
                Action::Notify(msg) => {
                    self.show_grant(&msg);
                    self.send(&msg).await;
                }
                Action::SetClipboard(text) => self.clip.set(text),
                Action::Audit(event) => self.log(crate::activity::audit(&event)),
                Action::OpenUrl(url) => {
                    let opened = self.deps.opener.open(url.as_ref());
                    if opened.is_ok() {
                        self.deps
                            .shared
                            .report(HostNote::UrlOpened(url.to_string()));
                    }
                    if let Err(e) = opened {
                        self.deps.shared.log(t!(
                            "act-cannot-open",
                            url = url.as_str(),
                            why = e.to_string()
                        ));
                        let why = format!("the customer's browser could not open {url}: {e}");
                        self.send(&HostMsg::Refused(why)).await;
                    }
                }
            }
        }
    }

    fn log(&self, line: impl std::fmt::Display) {
        self.deps.shared.log(t!(
            "act-agent-line",
            agent = self.agent.to_string(),
            line = line.to_string()
        ));
    }

    /// Asks the customer (or the headless policy); an answer given at once is applied at once.
    fn prompt(&mut self, permission: Permission) -> Vec<Action> {
        let detail = self
            .deps
            .consent
            .gate()
            .pending_url()
            .map(str::to_string)
            .filter(|_| permission == Permission::Url);
        match self.deps.answerer.ask(&self.agent, permission, detail) {
            Some(allow) => self.answer(permission, allow),
            None => Vec::new(),
        }
    }

    /// Shows a grant change in the window, and starts or stops watching the clipboard.
    fn show_grant(&self, msg: &HostMsg) {
        let agent = self.agent.clone();
        let name = agent.shown().to_string();
        match msg {
            HostMsg::Control(g) => {
                let before = self.deps.shared.view().grants.get(&agent).map(|g| g.0);
                match (before, g) {
                    (Some(Grant::On), Grant::On) => {}
                    (_, Grant::On) => self.deps.shared.report(HostNote::ControlGranted(name)),
                    (Some(Grant::On), _) => self.deps.shared.report(HostNote::ControlStopped(name)),
                    _ => {}
                }
                self.deps.shared.update(|v| {
                    v.grants.entry(agent).or_default().0 = *g;
                })
            }
            HostMsg::ClipboardSync(g) => {
                if *g == Grant::On {
                    self.deps.shared.report(HostNote::ClipboardGranted(name));
                }
                self.clip.watch(*g == Grant::On);
                self.deps.shared.update(|v| {
                    v.grants.entry(agent).or_default().1 = *g;
                });
            }
            _ => {}
        }
    }

    async fn send(&mut self, msg: &HostMsg) {
        if self.alive
            && write_msg(&mut self.send, msg, INPUT_MAX_FRAME)
                .await
                .is_err()
        {
            self.alive = false;
        }
    }
}
