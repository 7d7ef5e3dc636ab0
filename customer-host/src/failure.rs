//! Why the host could not connect or go on, in the customer's words: what happened and what to do
//! next. The window shows these under the key field; a headless host prints them.

use tether_i18n::t;
use tether_protocol::msg::{EndReason, Refusal};

use crate::session::HostError;

/// A failure, as the customer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No relay address or fingerprint is known.
    NotConfigured(String),
    /// The relay could not be reached.
    Unreachable(String),
    /// The relay's certificate is not the pinned one.
    WrongServer,
    /// The relay refused the key (or the version).
    Refused(Refusal),
    /// The connection to the relay dropped.
    Lost,
    /// The relay sent something unexpected.
    Protocol(String),
    /// The screen cannot be captured.
    Capture(String),
}

impl Failure {
    /// What happened, in one sentence.
    pub fn headline(&self) -> String {
        match self {
            Failure::NotConfigured(_) => t!("fail-not-configured"),
            Failure::Unreachable(addr) => t!("fail-unreachable", addr = addr.as_str()),
            Failure::WrongServer => t!("fail-wrong-server"),
            Failure::Refused(r) => match r {
                Refusal::KeyMalformed => t!("fail-key-malformed"),
                Refusal::KeyWrong => t!("fail-key-wrong"),
                Refusal::KeyExpired => t!("fail-key-expired"),
                Refusal::KeyUsed => t!("fail-key-used"),
                Refusal::RateLimited { .. } => t!("fail-rate-limited"),
                Refusal::UnsupportedVersion { .. } | Refusal::NotTether => t!("fail-version"),
                other => t!("fail-refused", why = other.to_string()),
            },
            Failure::Lost => t!("fail-lost"),
            Failure::Protocol(e) => t!("fail-protocol", why = e.as_str()),
            Failure::Capture(e) => t!("fail-capture", why = e.as_str()),
        }
    }

    /// What to do next.
    pub fn advice(&self) -> String {
        match self {
            Failure::NotConfigured(why) => t!("advice-not-configured", why = why.as_str()),
            Failure::Unreachable(_) => t!("advice-unreachable"),
            Failure::WrongServer => t!("advice-wrong-server"),
            Failure::Refused(r) => match r {
                Refusal::KeyMalformed => t!("advice-key-malformed"),
                Refusal::KeyWrong => t!("advice-key-wrong"),
                Refusal::KeyUsed => t!("advice-key-used"),
                Refusal::KeyExpired => t!("advice-key-expired"),
                Refusal::RateLimited { retry_after_secs } => {
                    wait_words(u64::from(*retry_after_secs))
                }
                Refusal::UnsupportedVersion { .. } | Refusal::NotTether => t!("advice-version"),
                _ => t!("advice-ask"),
            },
            Failure::Lost => t!("advice-lost"),
            Failure::Protocol(_) => t!("advice-protocol"),
            Failure::Capture(_) => t!("advice-capture"),
        }
    }

    /// A few words for the window title.
    pub fn short(&self) -> String {
        t!(match self {
            Failure::NotConfigured(_) => "short-not-configured",
            Failure::Unreachable(_) => "short-unreachable",
            Failure::WrongServer => "short-wrong-server",
            Failure::Refused(Refusal::KeyMalformed) => "short-key-malformed",
            Failure::Refused(Refusal::KeyWrong) => "short-key-wrong",
            Failure::Refused(Refusal::KeyExpired) => "short-key-expired",
            Failure::Refused(Refusal::KeyUsed) => "short-key-used",
            Failure::Refused(Refusal::RateLimited { .. }) => "short-rate-limited",
            Failure::Refused(_) => "short-refused",
            Failure::Lost => "short-lost",
            Failure::Protocol(_) => "short-error",
            Failure::Capture(_) => "short-capture",
        })
    }

    /// The whole message: headline and advice.
    pub fn message(&self) -> String {
        format!("{} {}", self.headline(), self.advice())
    }

    /// Whether trying again (another key, another attempt) can help.
    pub fn can_retry(&self) -> bool {
        !matches!(self, Failure::NotConfigured(_))
    }

    /// The process exit status it leads to: 2 for what the customer or operator must change
    /// (key, configuration), 3 for the network, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::NotConfigured(_) | Failure::Refused(_) => 2,
            Failure::Unreachable(_) | Failure::WrongServer | Failure::Lost => 3,
            Failure::Protocol(_) | Failure::Capture(_) => 1,
        }
    }
}

impl From<&HostError> for Failure {
    fn from(e: &HostError) -> Self {
        use tether_net::ConnectError;
        match e {
            HostError::Connect(ConnectError::FingerprintMismatch(_)) => Failure::WrongServer,
            HostError::Connect(ConnectError::Resolve { addr, .. })
            | HostError::Connect(ConnectError::Connect { addr, .. }) => {
                Failure::Unreachable(addr.clone())
            }
            HostError::Connect(other) => Failure::Protocol(other.to_string()),
            HostError::Refused(r) => Failure::Refused(r.clone()),
            HostError::Lost(_) => Failure::Lost,
            HostError::Protocol(p) => Failure::Protocol(p.clone()),
            HostError::Local(c) => Failure::Capture(c.to_string()),
        }
    }
}

/// How the session's end reads for the customer.
pub fn ended_words(reason: EndReason) -> &'static str {
    match reason {
        EndReason::AgentLeft | EndReason::AgentEnded => "Your support agent ended the session.",
        EndReason::CustomerEnded => "You ended the session.",
        EndReason::CustomerDisconnected => "This computer's connection to the session was lost.",
        EndReason::RelayShutdown => {
            "The support server shut down. Ask your support agent to start again."
        }
    }
}

/// "Wait N seconds (or minutes) and try again."
fn wait_words(secs: u64) -> String {
    if secs <= 90 {
        t!("advice-wait-seconds", n = secs)
    } else {
        t!("advice-wait-minutes", n = secs.div_ceil(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_says_what_to_do() {
        let all = [
            Failure::NotConfigured("no --relay".into()),
            Failure::Unreachable("r:1".into()),
            Failure::WrongServer,
            Failure::Refused(Refusal::KeyMalformed),
            Failure::Refused(Refusal::KeyWrong),
            Failure::Refused(Refusal::KeyExpired),
            Failure::Refused(Refusal::KeyUsed),
            Failure::Refused(Refusal::RateLimited {
                retry_after_secs: 300,
            }),
            Failure::Lost,
            Failure::Protocol("x".into()),
            Failure::Capture("x".into()),
        ];
        for f in all {
            assert!(f.headline().ends_with('.'), "{f:?}");
            assert!(!f.advice().is_empty(), "{f:?}");
            assert_ne!(f.exit_code(), 0);
        }
        assert!(
            Failure::Refused(Refusal::RateLimited {
                retry_after_secs: 300
            })
            .advice()
            .contains("5 minutes")
        );
    }
}
