//! Each agent's [`ConsentGate`], shared by its input stream and its file streams, and the
//! [`Answerer`]: who answers a question for the customer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tether_i18n::t;
use tether_protocol::consent::{ConsentGate, Permission};
use tether_protocol::desk::{Participant, ParticipantId};
use tokio::sync::Notify;

use crate::consent::{Prompt, Shared};

/// One agent's permissions, and a signal for those who wait for an answer.
#[derive(Debug)]
pub struct AgentConsent {
    gate: Mutex<ConsentGate>,
    changed: Notify,
}

impl AgentConsent {
    /// The gate; hold the lock briefly.
    pub fn gate(&self) -> MutexGuard<'_, ConsentGate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever waits for an answer.
    pub fn changed(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves when the gate changes next (register before looking at the gate).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

/// Every agent's permissions in one session, and the session's clock for them.
#[derive(Debug, Clone)]
pub struct Consents {
    agents: Arc<Mutex<HashMap<ParticipantId, Arc<AgentConsent>>>>,
    allowed: Vec<Permission>,
    clock: Instant,
}

impl Consents {
    /// Nothing granted; `allowed` (`--allow`) is granted to every agent on request.
    pub fn new(allowed: &[Permission]) -> Self {
        Self {
            agents: Arc::default(),
            allowed: allowed.to_vec(),
            clock: Instant::now(),
        }
    }

    /// The permissions of `agent` (a participant: a new membership starts with nothing).
    pub fn of(&self, agent: &Participant) -> Arc<AgentConsent> {
        let mut m = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(agent.id)
            .or_insert_with(|| {
                Arc::new(AgentConsent {
                    gate: Mutex::new(ConsentGate::new(&self.allowed)),
                    changed: Notify::new(),
                })
            })
            .clone()
    }

    /// The time the gates count in.
    pub fn now(&self) -> Duration {
        self.clock.elapsed()
    }
}

/// Who answers a question: the customer at the window, or, when there is no window (`--headless`,
/// or it could not open, or it was closed), nobody, and the host's policy says no to whatever
/// `--allow` did not grant up front.
#[derive(Debug, Clone)]
pub struct Answerer {
    shared: Shared,
    nobody: Arc<AtomicBool>,
}

impl Answerer {
    /// Answers through the customer's window (`shared`).
    pub fn window(shared: Shared) -> Self {
        Self {
            shared,
            nobody: Arc::default(),
        }
    }

    /// Nobody answers: every question is denied (`--headless`).
    pub fn nobody(shared: Shared) -> Self {
        let a = Self::window(shared);
        a.window_gone();
        a
    }

    /// The window could not open, or was closed: from now on nobody answers.
    pub fn window_gone(&self) {
        self.nobody.store(true, Ordering::Relaxed);
    }

    /// Whether nobody answers.
    pub fn is_nobody(&self) -> bool {
        self.nobody.load(Ordering::Relaxed)
    }

    /// Puts a question. `Some(false)` when nobody can answer (denied at once); `None` when the
    /// customer was asked and the answer comes later as a decision.
    pub fn ask(
        &self,
        agent: &Participant,
        permission: Permission,
        detail: Option<String>,
    ) -> Option<bool> {
        if self.is_nobody() {
            self.shared.log(t!(
                "act-nobody-answers",
                agent = agent.to_string(),
                what = crate::activity::permission(permission)
            ));
            return Some(false);
        }
        let agent = agent.clone();
        self.shared.update(|v| {
            v.prompts.push(Prompt {
                agent,
                permission,
                detail,
            })
        });
        None
    }
}
