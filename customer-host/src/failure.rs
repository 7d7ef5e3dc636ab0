//! Why the host could not connect or go on, in the customer's words: what happened and what to do
//! next. The window shows these under the key field; a headless host prints them.

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
            Failure::NotConfigured(_) => {
                "This copy of Tether does not know which support server to use.".into()
            }
            Failure::Unreachable(addr) => format!("Cannot reach the support server at {addr}."),
            Failure::WrongServer => {
                "The support server did not prove its identity, so Tether did not connect.".into()
            }
            Failure::Refused(r) => match r {
                Refusal::KeyMalformed => "That is not a session key.".into(),
                Refusal::KeyWrong => "That session key is not valid.".into(),
                Refusal::KeyExpired => "This session key has expired.".into(),
                Refusal::KeyUsed => "This session key has already been used.".into(),
                Refusal::RateLimited { .. } => "Too many attempts from this network.".into(),
                Refusal::UnsupportedVersion { .. } | Refusal::NotTether => {
                    "This version of Tether does not work with the support server.".into()
                }
                other => format!("The support server refused this session: {other}."),
            },
            Failure::Lost => "The connection to the support server was lost.".into(),
            Failure::Protocol(e) => {
                format!("Something went wrong talking to the support server ({e}).")
            }
            Failure::Capture(e) => format!("Tether cannot see this computer's screen ({e})."),
        }
    }

    /// What to do next.
    pub fn advice(&self) -> String {
        match self {
            Failure::NotConfigured(why) => format!(
                "Download Tether again from your support portal, or start it with --relay and \
                 --relay-fingerprint ({why})."
            ),
            Failure::Unreachable(_) => "Check that this computer is connected to the internet, \
                 then try again. If it keeps failing, tell your support agent."
                .into(),
            Failure::WrongServer => "Nothing was shared. Download Tether again from your support \
                 portal and try again; if it happens again, tell your support agent."
                .into(),
            Failure::Refused(r) => match r {
                Refusal::KeyMalformed => "A session key is 9 digits, like 123 456 789, or the \
                     session link your support agent sent. Check it and try again."
                    .into(),
                Refusal::KeyWrong => {
                    "Check the 9 digits with your support agent and type them again.".into()
                }
                Refusal::KeyUsed => {
                    "Each key works once. Ask your support agent for a new key.".into()
                }
                Refusal::KeyExpired => "Ask your support agent for a new key.".into(),
                Refusal::RateLimited { retry_after_secs } => format!(
                    "Wait {} and try again.",
                    wait_words(u64::from(*retry_after_secs))
                ),
                Refusal::UnsupportedVersion { .. } | Refusal::NotTether => {
                    "Download Tether again from your support portal.".into()
                }
                _ => "Ask your support agent for help.".into(),
            },
            Failure::Lost => "Check your internet connection, then ask your support agent for a \
                 new session key to start again."
                .into(),
            Failure::Protocol(_) => {
                "Try again; if it happens again, tell your support agent.".into()
            }
            Failure::Capture(_) => {
                "Make sure you are logged in to a desktop session, then try again.".into()
            }
        }
    }

    /// A few words for the window title.
    pub fn short(&self) -> &'static str {
        match self {
            Failure::NotConfigured(_) => "Not configured",
            Failure::Unreachable(_) => "Cannot reach the support server",
            Failure::WrongServer => "Support server identity mismatch",
            Failure::Refused(Refusal::KeyMalformed) => "Not a session key",
            Failure::Refused(Refusal::KeyWrong) => "Wrong session key",
            Failure::Refused(Refusal::KeyExpired) => "Session key expired",
            Failure::Refused(Refusal::KeyUsed) => "Session key already used",
            Failure::Refused(Refusal::RateLimited { .. }) => "Too many attempts",
            Failure::Refused(_) => "Refused",
            Failure::Lost => "Connection lost",
            Failure::Protocol(_) => "Error",
            Failure::Capture(_) => "Cannot capture the screen",
        }
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

fn wait_words(secs: u64) -> String {
    if secs <= 90 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", secs.div_ceil(60))
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
