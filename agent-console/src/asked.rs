//! What this console asked a customer's host for, so that it acts only on answers to its own
//! requests: a host cannot turn clipboard sync on by itself (and so read the agent's later
//! copies), grant control nobody asked for, or claim to have opened an address nobody pushed.
//! Taking something back (control or clipboard sync going off) is always accepted.

use tether_protocol::input::{AgentMsg, Grant, HostMsg};

/// Most characters of a host's refusal shown to the agent.
pub const MAX_NOTICE: usize = 300;

/// One session's requests and their answers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Asked {
    control: Grant,
    clipboard: Grant,
    /// Pushed addresses not yet answered.
    urls: usize,
}

/// What to do with a message from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Act on it.
    Accept(HostMsg),
    /// It answers nothing this console asked: ignore it (and say so in the log).
    Ignore(&'static str),
}

impl Asked {
    /// Nothing asked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Control as the customer answered it.
    pub fn control(&self) -> Grant {
        self.control
    }

    /// Clipboard sync as the customer answered it.
    pub fn clipboard(&self) -> Grant {
        self.clipboard
    }

    /// The console sends `msg` to the host.
    pub fn sent(&mut self, msg: &AgentMsg) {
        match msg {
            AgentMsg::RequestControl if self.control != Grant::On => self.control = Grant::Asked,
            AgentMsg::ReleaseControl => self.control = Grant::Off,
            AgentMsg::RequestClipboard if self.clipboard != Grant::On => {
                self.clipboard = Grant::Asked
            }
            AgentMsg::StopClipboard => self.clipboard = Grant::Off,
            AgentMsg::PushUrl { .. } => self.urls += 1,
            _ => {}
        }
    }

    /// Judges a message from the host.
    pub fn received(&mut self, msg: HostMsg) -> Verdict {
        match msg {
            HostMsg::Control(g) => match answer(&mut self.control, g) {
                true => Verdict::Accept(HostMsg::Control(g)),
                false => Verdict::Ignore("a control change nobody asked for"),
            },
            HostMsg::ClipboardSync(g) => match answer(&mut self.clipboard, g) {
                true => Verdict::Accept(HostMsg::ClipboardSync(g)),
                false => Verdict::Ignore("clipboard sync nobody asked for"),
            },
            HostMsg::Clipboard { text } if self.clipboard == Grant::On => {
                Verdict::Accept(HostMsg::Clipboard { text })
            }
            HostMsg::Clipboard { .. } => Verdict::Ignore("clipboard text while sync is off"),
            HostMsg::UrlOpened(url) if self.urls > 0 => {
                self.urls -= 1;
                Verdict::Accept(HostMsg::UrlOpened(url))
            }
            HostMsg::UrlOpened(_) => Verdict::Ignore("an opened address nobody pushed"),
            HostMsg::Refused(why) => {
                let mut short: String = why.chars().take(MAX_NOTICE).collect();
                if why.chars().count() > MAX_NOTICE {
                    short.push('…');
                }
                Verdict::Accept(HostMsg::Refused(short))
            }
        }
    }
}

/// Applies the host's answer `g` to a permission in state `state`, if it answers a request.
fn answer(state: &mut Grant, g: Grant) -> bool {
    let ok = match (g, *state) {
        // Ending is always fine.
        (Grant::Off, _) => true,
        // Answers to a pending request.
        (Grant::Asked | Grant::On | Grant::Denied, Grant::Asked) => true,
        // Repeating what is so already.
        (Grant::On, Grant::On) => true,
        _ => false,
    };
    if ok {
        *state = g;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unasked_grants_and_text_are_ignored() {
        let mut a = Asked::new();
        assert!(matches!(
            a.received(HostMsg::ClipboardSync(Grant::On)),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            a.received(HostMsg::Clipboard { text: "x".into() }),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            a.received(HostMsg::Control(Grant::On)),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            a.received(HostMsg::UrlOpened("https://evil.example".into())),
            Verdict::Ignore(_)
        ));
        assert_eq!(a.clipboard(), Grant::Off);
        assert_eq!(a.control(), Grant::Off);
    }

    #[test]
    fn answers_to_requests_are_taken_and_revokes_always() {
        let mut a = Asked::new();
        a.sent(&AgentMsg::RequestControl);
        assert!(matches!(
            a.received(HostMsg::Control(Grant::Asked)),
            Verdict::Accept(_)
        ));
        assert!(matches!(
            a.received(HostMsg::Control(Grant::On)),
            Verdict::Accept(_)
        ));
        assert_eq!(a.control(), Grant::On);
        assert!(matches!(
            a.received(HostMsg::Control(Grant::Off)),
            Verdict::Accept(_)
        ));
        // Off now: a later On without a request is ignored.
        assert!(matches!(
            a.received(HostMsg::Control(Grant::On)),
            Verdict::Ignore(_)
        ));
        a.sent(&AgentMsg::RequestClipboard);
        assert!(matches!(
            a.received(HostMsg::ClipboardSync(Grant::Denied)),
            Verdict::Accept(_)
        ));
        assert!(matches!(
            a.received(HostMsg::ClipboardSync(Grant::On)),
            Verdict::Ignore(_)
        ));
        a.sent(&AgentMsg::PushUrl {
            url: "https://example.com".into(),
        });
        assert!(matches!(
            a.received(HostMsg::UrlOpened("https://example.com".into())),
            Verdict::Accept(_)
        ));
        assert!(matches!(
            a.received(HostMsg::UrlOpened("https://example.com".into())),
            Verdict::Ignore(_)
        ));
        let long = "x".repeat(10_000);
        assert!(matches!(
            a.received(HostMsg::Refused(long)),
            Verdict::Accept(HostMsg::Refused(s)) if s.chars().count() == MAX_NOTICE + 1
        ));
    }
}
