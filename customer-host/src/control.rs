//! One agent's input stream on the host: consent, remote control and clipboard sync.
//!
//! Every message goes through the agent's [`InputGate`], which consults the agent's consent (the
//! same its file streams use); only what it lets through reaches the injector, on a thread of its
//! own that keeps events in order (consecutive pointer moves are coalesced; keys are never dropped
//! or reordered).

use std::sync::Arc;

use tether_net::{read_msg, write_msg};
use tether_protocol::consent::Permission;
use tether_protocol::frame::INPUT_MAX_FRAME;
use tether_protocol::input::{Action, AgentMsg, Grant, HostMsg, InputGate, MAX_CLIPBOARD};
use tether_protocol::msg::MonitorInfo;
use tokio::sync::mpsc;
use tracing::warn;

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
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    agent: String,
    deps: ControlDeps,
    mut decisions: mpsc::UnboundedReceiver<Decision>,
) {
    let shared = deps.shared.clone();
    let mut gate = InputGate::new();
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
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            match read_msg::<AgentMsg>(&mut recv, INPUT_MAX_FRAME).await {
                Ok(Some(m)) => {
                    if msg_tx.send(m).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if e.is_protocol_violation() {
                        warn!(error = %e, "agent sent a bad input message; closing its input stream");
                        let _ = recv.stop(tether_net::close::PROTOCOL.into());
                    }
                    break;
                }
            }
        }
    });
    shared.update(|v| {
        v.grants.insert(agent.clone(), (Grant::Off, Grant::Off));
    });
    loop {
        let actions = tokio::select! {
            m = msg_rx.recv() => match m {
                Some(m) => gate.on_agent(&mut deps.consent.gate(), m, deps.consents.now()),
                None => break,
            },
            d = decisions.recv() => match d {
                Some(Decision::Answer { permission, allow, .. }) => {
                    gate.answer(&mut deps.consent.gate(), permission, allow, deps.consents.now())
                }
                Some(Decision::Revoke { permission, .. }) => {
                    gate.revoke(&mut deps.consent.gate(), permission)
                }
                Some(Decision::EndSession) | None => break,
                Some(_) => Vec::new(),
            },
            t = local_rx.recv() => match t {
                Some(text) if deps.consent.gate().allows(Permission::Clipboard) => {
                    if text.len() > MAX_CLIPBOARD {
                        shared.log(format!("clipboard text of {} bytes not sent: over the {MAX_CLIPBOARD} byte limit", text.len()));
                        vec![Action::Notify(HostMsg::Refused(format!("the customer's clipboard text is over the {MAX_CLIPBOARD} byte limit")))]
                    } else {
                        vec![Action::Notify(HostMsg::Clipboard { text })]
                    }
                }
                Some(_) => Vec::new(),
                None => break,
            },
        };
        let ctx = Ctx {
            agent: &agent,
            deps: &deps,
            inject: &inject,
            clip: &clip,
        };
        if !apply(actions, &ctx, &mut gate, &mut send).await {
            break;
        }
    }
    // Whatever ended the stream: release everything held, drop the grants of the stream.
    let actions = gate.disconnected(&mut deps.consent.gate());
    let ctx = Ctx {
        agent: &agent,
        deps: &deps,
        inject: &inject,
        clip: &clip,
    };
    let _ = apply(actions, &ctx, &mut gate, &mut send).await;
    reader.abort();
    let _ = send.finish();
    shared.update(|v| {
        v.grants.remove(&agent);
        v.prompts.retain(|p| p.agent != agent);
    });
}

/// What carrying out the gate's actions needs.
struct Ctx<'a> {
    agent: &'a str,
    deps: &'a ControlDeps,
    inject: &'a InjectQueue,
    clip: &'a ClipboardWorker,
}

/// Carries out the gate's actions. Returns false if the stream to the agent is gone.
async fn apply(
    actions: Vec<Action>,
    ctx: &Ctx<'_>,
    gate: &mut InputGate,
    send: &mut quinn::SendStream,
) -> bool {
    let Ctx {
        agent,
        deps,
        inject,
        clip,
    } = ctx;
    let agent = *agent;
    let mut queue: std::collections::VecDeque<Action> = actions.into();
    let mut alive = true;
    while let Some(a) = queue.pop_front() {
        match a {
            Action::CancelQueued => {
                let dropped = inject.cancel();
                if dropped > 0 {
                    deps.shared.log(format!(
                        "{agent}: {dropped} input events not injected: control ended"
                    ));
                }
            }
            Action::Inject(ev) => {
                if !inject.push(ev) {
                    deps.shared.log(format!(
                        "{agent}: input dropped: more than {} events waiting",
                        tether_desktop::input::MAX_QUEUED
                    ));
                }
            }
            Action::Prompt(permission) => {
                let detail = deps
                    .consent
                    .gate()
                    .pending_url()
                    .map(str::to_string)
                    .filter(|_| permission == Permission::Url);
                if let Some(allow) = deps.answerer.ask(agent, permission, detail) {
                    queue.extend(gate.answer(
                        &mut deps.consent.gate(),
                        permission,
                        allow,
                        deps.consents.now(),
                    ));
                }
            }
            Action::Notify(msg) => {
                match &msg {
                    HostMsg::Control(g) => {
                        deps.shared.update(|v| {
                            v.grants.entry(agent.to_string()).or_default().0 = *g;
                        });
                    }
                    HostMsg::ClipboardSync(g) => {
                        clip.watch(*g == Grant::On);
                        deps.shared.update(|v| {
                            v.grants.entry(agent.to_string()).or_default().1 = *g;
                        });
                    }
                    _ => {}
                }
                if alive && write_msg(send, &msg, INPUT_MAX_FRAME).await.is_err() {
                    alive = false;
                }
            }
            Action::SetClipboard(text) => {
                clip.set(text);
            }
            Action::Audit(line) => deps.shared.log(format!("{agent}: {line}")),
            Action::OpenUrl(url) => {
                if let Err(e) = deps.opener.open(url.as_ref()) {
                    deps.shared.log(format!("cannot open {url}: {e}"));
                    if alive
                        && write_msg(
                            send,
                            &HostMsg::Refused(format!(
                                "the customer's browser could not open {url}: {e}"
                            )),
                            INPUT_MAX_FRAME,
                        )
                        .await
                        .is_err()
                    {
                        alive = false;
                    }
                }
            }
        }
    }
    alive
}
