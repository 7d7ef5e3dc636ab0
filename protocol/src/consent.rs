//! What the customer has allowed one participant, as a sans-IO state machine.
//!
//! One [`ConsentGate`] per participant (an agent in the session) decides remote control,
//! clipboard sync, file access and pushed web addresses, and is where what comes next (elevation,
//! chat attachments) belongs. Requests come from the participant; answers come from the
//! customer's window or from the host's up-front policy (`--allow`). A "no" holds for
//! [`DENY_COOLDOWN`]: the same request is refused without asking again until then. Time is passed
//! in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::input::Grant;

/// After the customer says no, the same request is refused without asking for this long.
pub const DENY_COOLDOWN: Duration = Duration::from_secs(10);

/// What a participant may be allowed.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Remote control of mouse and keyboard.
    Control,
    /// Clipboard sync.
    Clipboard,
    /// Reading and writing files (asked once per session).
    Files,
    /// Opening a pushed web address (asked each time).
    Url,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 4] = [
        Permission::Control,
        Permission::Clipboard,
        Permission::Files,
        Permission::Url,
    ];

    /// What it is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Control => "remote control",
            Permission::Clipboard => "clipboard sync",
            Permission::Files => "file access",
            Permission::Url => "opening a web address",
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Allowed already: nothing to ask.
    Granted,
    /// Asked already; the customer has not answered.
    Pending,
    /// Allowed up front (`--allow`): granted now, without asking.
    AllowedUpFront,
    /// Ask the customer.
    Prompt,
    /// The customer said no a moment ago: refused without asking; ask again after this long.
    CoolingDown(Duration),
}

/// What an answer changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nothing was asked: the answer is ignored.
    Unasked,
    /// The permission is now in this state ([`Grant::On`] or [`Grant::Denied`]).
    Grant(Grant),
    /// The pushed address, to open or not.
    Url {
        /// The address.
        url: String,
        /// Whether the customer allowed it.
        open: bool,
    },
}

/// One participant's permissions.
#[derive(Debug, Default, Clone)]
pub struct ConsentGate {
    grants: BTreeMap<Permission, Grant>,
    preallowed: BTreeSet<Permission>,
    denied_at: BTreeMap<Permission, Duration>,
    pending_url: Option<String>,
}

impl ConsentGate {
    /// Nothing granted; `preallowed` are granted on request without asking.
    pub fn new(preallowed: &[Permission]) -> Self {
        Self {
            preallowed: preallowed.iter().copied().collect(),
            ..Self::default()
        }
    }

    /// The state of a permission.
    pub fn grant(&self, p: Permission) -> Grant {
        self.grants.get(&p).copied().unwrap_or_default()
    }

    /// Whether it is allowed now.
    pub fn allows(&self, p: Permission) -> bool {
        self.grant(p) == Grant::On
    }

    fn cooldown(&self, p: Permission, now: Duration) -> Option<Duration> {
        let since = now.saturating_sub(*self.denied_at.get(&p)?);
        (since < DENY_COOLDOWN).then(|| DENY_COOLDOWN - since)
    }

    /// The participant asks for `p` (control, clipboard or files).
    pub fn request(&mut self, p: Permission, now: Duration) -> Ask {
        match self.grant(p) {
            Grant::On => return Ask::Granted,
            Grant::Asked => return Ask::Pending,
            Grant::Off | Grant::Denied => {}
        }
        if let Some(left) = self.cooldown(p, now) {
            return Ask::CoolingDown(left);
        }
        if self.preallowed.contains(&p) {
            self.grants.insert(p, Grant::On);
            return Ask::AllowedUpFront;
        }
        self.grants.insert(p, Grant::Asked);
        Ask::Prompt
    }

    /// The participant asks to open `url` (already checked to be a web address); asked each
    /// time, one at a time.
    pub fn request_url(&mut self, url: &str, now: Duration) -> Ask {
        if self.pending_url.is_some() {
            return Ask::Pending;
        }
        if let Some(left) = self.cooldown(Permission::Url, now) {
            return Ask::CoolingDown(left);
        }
        if self.preallowed.contains(&Permission::Url) {
            return Ask::AllowedUpFront;
        }
        self.pending_url = Some(url.to_string());
        Ask::Prompt
    }

    /// The address waiting for the customer's answer.
    pub fn pending_url(&self) -> Option<&str> {
        self.pending_url.as_deref()
    }

    /// The customer (or the host's policy) answered a prompt for `p`.
    pub fn answer(&mut self, p: Permission, allow: bool, now: Duration) -> Answer {
        if p == Permission::Url {
            let Some(url) = self.pending_url.take() else {
                return Answer::Unasked;
            };
            if !allow {
                self.denied_at.insert(p, now);
            }
            return Answer::Url { url, open: allow };
        }
        if self.grant(p) != Grant::Asked {
            return Answer::Unasked;
        }
        let g = if allow {
            Grant::On
        } else {
            self.denied_at.insert(p, now);
            Grant::Denied
        };
        self.grants.insert(p, g);
        Answer::Grant(g)
    }

    /// The customer (or the participant) takes `p` back. Returns whether anything changed.
    pub fn revoke(&mut self, p: Permission) -> bool {
        if p == Permission::Url {
            return self.pending_url.take().is_some();
        }
        let was = self.grant(p);
        self.grants.insert(p, Grant::Off);
        matches!(was, Grant::On | Grant::Asked)
    }

    /// The participant is gone: every grant ends.
    pub fn end(&mut self) {
        self.grants.clear();
        self.pending_url = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);

    #[test]
    fn a_request_is_asked_once_and_answered() {
        let mut g = ConsentGate::new(&[]);
        assert_eq!(g.request(Permission::Files, T0), Ask::Prompt);
        assert_eq!(g.request(Permission::Files, T0), Ask::Pending);
        assert_eq!(
            g.answer(Permission::Files, true, T0),
            Answer::Grant(Grant::On)
        );
        assert_eq!(g.request(Permission::Files, T0), Ask::Granted);
        assert!(g.allows(Permission::Files));
        assert!(!g.allows(Permission::Control), "each permission apart");
        assert!(g.revoke(Permission::Files));
        assert!(!g.allows(Permission::Files));
        assert_eq!(
            g.answer(Permission::Control, true, T0),
            Answer::Unasked,
            "an answer to nothing grants nothing"
        );
    }

    #[test]
    fn a_no_holds_for_the_cooldown() {
        let mut g = ConsentGate::new(&[]);
        g.request(Permission::Control, T0);
        g.answer(Permission::Control, false, T0);
        assert_eq!(
            g.request(Permission::Control, T0 + Duration::from_secs(4)),
            Ask::CoolingDown(Duration::from_secs(6))
        );
        assert_eq!(
            g.request(Permission::Control, T0 + DENY_COOLDOWN),
            Ask::Prompt
        );
    }

    #[test]
    fn up_front_grants_need_no_prompt_and_addresses_are_asked_each_time() {
        let mut g = ConsentGate::new(&[Permission::Clipboard]);
        assert_eq!(g.request(Permission::Clipboard, T0), Ask::AllowedUpFront);
        assert!(g.allows(Permission::Clipboard));
        assert_eq!(g.request_url("https://a.example", T0), Ask::Prompt);
        assert_eq!(g.request_url("https://b.example", T0), Ask::Pending);
        assert_eq!(
            g.answer(Permission::Url, true, T0),
            Answer::Url {
                url: "https://a.example".into(),
                open: true
            }
        );
        assert_eq!(g.request_url("https://b.example", T0), Ask::Prompt);
        g.end();
        assert!(!g.allows(Permission::Clipboard));
        assert_eq!(g.pending_url(), None);
    }
}
