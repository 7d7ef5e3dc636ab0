//! What the customer sees and decides: session state, who is connected, consent prompts, grants.
//! The host's window draws it; the session and control services update it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_protocol::desk::Participant;
use tether_protocol::input::{Grant, Permission};
use tokio::sync::mpsc;

/// Where the session is, for the customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// Asking for the session key; the last failure, if any, is shown under the field.
    #[default]
    EnterKey,
    /// Connecting to the relay.
    Connecting,
    /// Joined; the agent has not connected yet.
    Waiting,
    /// Joined; the agent was connected and their connection was lost.
    AgentAway,
    /// Agents are connected.
    Connected,
    /// The connection dropped; trying to resume the session (the attempt's number).
    Reconnecting(u32),
    /// Over, with what happened, in the customer's words.
    Ended(String),
    /// Nothing can be done from this window (the download lacks its relay settings).
    Broken,
}

impl Phase {
    /// Whether a session is running (End session makes sense).
    pub fn in_session(&self) -> bool {
        matches!(
            self,
            Phase::Waiting | Phase::AgentAway | Phase::Connected | Phase::Reconnecting(_)
        )
    }
}

/// A question for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The agent asking.
    pub agent: Participant,
    /// What for.
    pub permission: Permission,
    /// The web address, for [`Permission::Url`].
    pub detail: Option<String>,
}

impl Prompt {
    /// The question, for people.
    pub fn question(&self) -> String {
        let agent = self.agent.to_string();
        match self.permission {
            Permission::Control => tether_i18n::t!("host-ask-control", agent = agent),
            Permission::Clipboard => tether_i18n::t!("host-ask-clipboard", agent = agent),
            Permission::Files => tether_i18n::t!("host-ask-files", agent = agent),
            Permission::Url => tether_i18n::t!(
                "host-ask-url",
                agent = agent,
                url = self
                    .detail
                    .clone()
                    .unwrap_or_else(|| tether_i18n::tr("host-a-web-page"))
            ),
        }
    }
}

/// What the customer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer a prompt.
    Answer {
        /// The agent.
        agent: Participant,
        /// The permission.
        permission: Permission,
        /// Allowed?
        allow: bool,
    },
    /// Take a permission back.
    Revoke {
        /// The agent.
        agent: Participant,
        /// The permission.
        permission: Permission,
    },
    /// End the whole session (also sent when the window closes).
    EndSession,
    /// Stop a file transfer.
    CancelTransfer(u64),
    /// Connect with this key (typed or pasted in the window).
    Connect(String),
    /// After a session ended: ask for a key again.
    NewSession,
    /// Close the window (the process then exits).
    CloseWindow,
    /// Send a chat message to the representatives.
    Say(String),
}

/// Everything the window shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    /// Session phase.
    pub phase: Phase,
    /// Why the last attempt failed, shown until the next one starts.
    pub failure: Option<crate::failure::Failure>,
    /// Whose queue the customer waits in: the agent whose key it was, or the team.
    pub owner: Option<String>,
    /// The customer's place in line while no agent has taken the session (1 is next).
    pub place: Option<u32>,
    /// Agents helping now (unmasked members only; the host never learns of the others).
    pub agents: Vec<String>,
    /// Who views which monitor (unmasked members only).
    pub viewers: Vec<(Participant, u8)>,
    /// Open questions.
    pub prompts: Vec<Prompt>,
    /// Control and clipboard grants per agent.
    pub grants: BTreeMap<Participant, (Grant, Grant)>,
    /// What happened, newest last.
    pub log: Vec<String>,
    /// File transfers, newest last.
    pub transfers: Vec<TransferRow>,
    /// File access per agent.
    pub files: BTreeMap<Participant, Grant>,
    /// The chat, oldest first (at most [`MAX_CHAT_SHOWN`] lines).
    pub chat: Vec<ChatShown>,
}

/// Most chat lines the window keeps.
pub const MAX_CHAT_SHOWN: usize = 500;

/// A chat line as the customer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatShown {
    /// Who wrote it ("You" for the customer).
    pub from: String,
    /// The text.
    pub text: String,
    /// Written here.
    pub mine: bool,
}

impl HostView {
    /// A new attempt starts: connecting, no failure shown, nothing of an earlier session left.
    pub fn start_attempt(&mut self) {
        self.end_session();
        self.chat.clear();
        self.failure = None;
        self.phase = Phase::Connecting;
    }

    /// The connection dropped: nothing asked or granted carries over to the next one (the
    /// agents ask again); who helps, the place in line and the chat stay until the relay says.
    pub fn connection_lost(&mut self, attempt: u32) {
        self.drop_grants();
        self.phase = Phase::Reconnecting(attempt);
    }

    /// Nobody views, asks or holds a grant any more.
    fn drop_grants(&mut self) {
        self.viewers.clear();
        self.prompts.clear();
        self.grants.clear();
        self.files.clear();
    }

    /// The session is over: nobody is connected, nothing is asked or granted. Transfers and the
    /// activity log stay for the customer to read.
    pub fn end_session(&mut self) {
        self.owner = None;
        self.place = None;
        self.agents.clear();
        self.drop_grants();
    }
}

/// A file transfer as the customer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    /// Identifier (for Stop).
    pub id: u64,
    /// The agent.
    pub agent: Participant,
    /// File name.
    pub name: String,
    /// Whether the file comes to this computer.
    pub incoming: bool,
    /// Bytes done.
    pub done: u64,
    /// Total bytes.
    pub total: u64,
    /// Running, or how it ended.
    pub state: TransferState,
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// Moving.
    Running,
    /// Finished.
    Done,
    /// Failed or cancelled, with the reason.
    Failed(String),
}

/// The view shared between the services and the window, and the channel of decisions.
#[derive(Clone)]
pub struct Shared {
    view: Arc<Mutex<HostView>>,
    decisions: mpsc::UnboundedSender<Decision>,
    repaint: Arc<dyn Fn() + Send + Sync>,
    /// Where notes for the session's chat log go while a session runs.
    notes: Arc<Mutex<Option<mpsc::UnboundedSender<tether_protocol::chat::HostNote>>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// A new view; decisions arrive on the returned receiver.
    pub fn new(repaint: Arc<dyn Fn() + Send + Sync>) -> (Self, mpsc::UnboundedReceiver<Decision>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                view: Arc::default(),
                decisions: tx,
                repaint,
                notes: Arc::default(),
            },
            rx,
        )
    }

    /// Reads the view.
    pub fn view(&self) -> MutexGuard<'_, HostView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the view and asks for a repaint.
    pub fn update(&self, f: impl FnOnce(&mut HostView)) {
        f(&mut self.view());
        (self.repaint)();
    }

    /// Adds a line to the log (also to the tracing log).
    pub fn log(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(target: "tether_host::audit", "{line}");
        self.update(|v| {
            v.log.push(line);
            if v.log.len() > 200 {
                v.log.remove(0);
            }
        });
    }

    /// Reports something that happened (control granted, a file received…) for the session's
    /// chat log; nothing while no session runs.
    pub fn report(&self, note: tether_protocol::chat::HostNote) {
        if let Some(tx) = self
            .notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.send(note);
        }
    }

    /// Sends reported notes to `tx` (a session started), or nowhere (`None`: it ended).
    pub fn notes_to(&self, tx: Option<mpsc::UnboundedSender<tether_protocol::chat::HostNote>>) {
        *self.notes.lock().unwrap_or_else(|e| e.into_inner()) = tx;
    }

    /// The customer decided something.
    pub fn decide(&self, d: Decision) {
        if let Decision::Answer {
            agent, permission, ..
        } = &d
        {
            let (agent, permission) = (agent.clone(), *permission);
            self.update(|v| {
                v.prompts
                    .retain(|p| !(p.agent == agent && p.permission == permission))
            });
        }
        let _ = self.decisions.send(d);
    }
}
