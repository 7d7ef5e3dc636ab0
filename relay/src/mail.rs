//! Email invitations: the relay writes the message from the key (the agent chooses only the one
//! recipient), sends it through the operator's mail server when one is configured (lettre,
//! SMTP), and limits each agent to [`MAX_PER_WINDOW`] per [`WINDOW`], so that it never becomes
//! an open mail relay.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

/// Invitations an agent may have sent per [`WINDOW`].
pub const MAX_PER_WINDOW: usize = 10;
/// The window of the per-agent limit.
pub const WINDOW: Duration = Duration::from_secs(600);

/// The operator's mail server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required`, `smtps://host:465`.
    pub url: String,
    /// The sender, e.g. `Support <support@example.com>`.
    pub from: String,
}

/// Sends invitations.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// Checks the configuration (the server is reached only when a message is sent).
    pub fn new(cfg: &SmtpConfig) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.url)
            .map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = cfg
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("--smtp-from {:?}: {e}", cfg.from))?;
        Ok(Mailer { transport, from })
    }

    /// Sends one message to one recipient.
    pub async fn send(&self, to: Mailbox, subject: &str, body: &str) -> Result<(), String> {
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_string())
            .map_err(|e| e.to_string())?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// One recipient's address, checked; `None` for anything else (several addresses, a name with
/// line breaks, no address at all).
pub fn recipient(to: &str) -> Option<Mailbox> {
    let to = to.trim();
    if to.is_empty() || to.len() > 254 || to.contains([',', ';', '\n', '\r']) {
        return None;
    }
    to.parse::<Mailbox>().ok()
}

/// The invitation's subject and text.
pub fn invitation(
    agent: &str,
    pin: &str,
    url: &str,
    portal: &str,
    expires_at: u64,
) -> (String, String) {
    let expiry = jiff::Timestamp::from_second(expires_at as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let subject = format!("{agent} invites you to a remote support session");
    let body = format!(
        "Hello,\n\n\
         {agent} invites you to a remote support session.\n\n\
         Open this link and follow the steps:\n{url}\n\n\
         Or go to {portal} and enter the session key {}.\n\n\
         The key works once and expires on {expiry}. Nothing on your computer is shared until you \
         run the support program and allow it.\n",
        tether_protocol::pairing::display_pin(pin)
    );
    (subject, body)
}

/// Invitations sent per agent, within the window.
#[derive(Debug, Default)]
pub struct MailLimiter {
    sent: HashMap<String, VecDeque<Duration>>,
}

impl MailLimiter {
    /// Counts one for `agent` at `now` if under the limit; `false` when over it.
    pub fn take(&mut self, agent: &str, now: Duration) -> bool {
        let list = self.sent.entry(agent.to_string()).or_default();
        while list
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= WINDOW)
        {
            list.pop_front();
        }
        if list.len() >= MAX_PER_WINDOW {
            return false;
        }
        list.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plain_recipient_only() {
        assert!(recipient("carol@example.com").is_some());
        assert!(recipient("Carol <carol@example.com>").is_some());
        assert!(recipient("a@example.com, b@example.com").is_none());
        assert!(recipient("a@example.com\r\nBcc: b@example.com").is_none());
        assert!(recipient("not an address").is_none());
        assert!(recipient("").is_none());
    }

    #[test]
    fn agents_are_limited_per_window() {
        let mut l = MailLimiter::default();
        let t0 = Duration::from_secs(100);
        for _ in 0..MAX_PER_WINDOW {
            assert!(l.take("alice", t0));
        }
        assert!(!l.take("alice", t0));
        assert!(l.take("bob", t0));
        assert!(l.take("alice", t0 + WINDOW));
    }

    #[test]
    fn the_invitation_carries_the_link_the_key_and_the_expiry() {
        let (subject, body) = invitation(
            "Alice A.",
            "123456789",
            "https://r.example/s/123456789",
            "https://r.example",
            1_800_000_000,
        );
        assert_eq!(subject, "Alice A. invites you to a remote support session");
        assert!(body.contains("https://r.example/s/123456789"));
        assert!(body.contains("123 456 789"));
        assert!(body.contains("2027-01-15 08:00 UTC"));
    }
}
