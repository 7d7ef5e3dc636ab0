//! What the relay and the network say, in the console's language. The wire and the link
//! carry typed reasons ([`Refusal`], [`Denied`], [`ClientError`]); these functions word them.

use tether_i18n::t;
use tether_net::{ConnectError, LinkError};
use tether_protocol::msg::{Denied, Refusal};

use crate::net::{ClientError, ClientFailure};

/// Why the relay refused a request or a connection.
pub fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::UnsupportedVersion { ours, theirs } => {
            t!("refusal-version", ours = *ours, theirs = *theirs)
        }
        Refusal::NotTether => t!("refusal-not-tether"),
        Refusal::BadCredentials => t!("refusal-credentials"),
        Refusal::RateLimited { retry_after_secs } => {
            t!("refusal-rate-limited", secs = *retry_after_secs)
        }
        Refusal::KeyMalformed => t!("refusal-key-malformed"),
        Refusal::KeyWrong => t!("refusal-key-wrong"),
        Refusal::KeyExpired => t!("refusal-key-expired"),
        Refusal::KeyUsed => t!("refusal-key-used"),
        Refusal::LoginInProgress => t!("refusal-login-in-progress"),
        Refusal::TooManyConnections {
            from_your_address: true,
            limit,
        } => t!("refusal-too-many-mine", limit = *limit),
        Refusal::TooManyConnections {
            from_your_address: false,
            limit,
        } => t!("refusal-relay-full", limit = *limit),
        Refusal::TooManyKeys { limit } => t!("refusal-too-many-keys", limit = *limit),
        Refusal::NotAllowed(d) => denied(d),
    }
}

/// Why a request or the link to the relay failed. Details that come from the operating system
/// or the peer (an I/O error, a protocol violation) stay as they are, after the console's words.
pub fn error(e: &ClientError) -> String {
    match e {
        LinkError::Connect(ConnectError::FingerprintMismatch(_)) => t!("error-fingerprint"),
        LinkError::Connect(c) => t!("error-connect", why = c.to_string()),
        LinkError::Refused(r) => refusal(r),
        LinkError::Lost(why) => t!("error-lost", why = why.as_str()),
        LinkError::Protocol(why) => t!("error-protocol", why = why.as_str()),
        LinkError::Local(ClientFailure::Codec(c)) => t!("error-codec", why = c.to_string()),
        LinkError::Local(ClientFailure::Files(why)) => why.clone(),
    }
}

/// Why the relay did not allow a request.
pub fn denied(d: &Denied) -> String {
    use tether_protocol::msg::Denied::*;
    match d {
        AlreadyAccepted(by) => t!("denied-already-accepted", by = by.as_str()),
        NoSuchTeam(n) => t!("denied-no-team", name = n.as_str()),
        NoSuchAgent(n) => t!("denied-no-agent", name = n.as_str()),
        AgentOffline(n) => t!("denied-offline", name = n.as_str()),
        NotInTeam(n) => t!("denied-not-in-team", name = n.as_str()),
        Chat(e) => e.to_string(),
        MailFailed(why) => t!("denied-mail-failed", why = why.as_str()),
        other => t!(match other {
            LogInFirst | NotLoggedIn => "denied-log-in",
            JoinFirst | HostsOnly => "denied-hosts-only",
            AlreadyLoggedIn => "denied-logged-in",
            AgentsOnly => "denied-agents-only",
            NoSuchSession => "denied-no-session",
            NotInSession => "denied-not-in-session",
            CustomerGone => "denied-customer-gone",
            CustomerInfoTooLarge => "denied-info-too-large",
            NotYourQueue => "denied-not-your-queue",
            NotOwner => "denied-not-owner",
            MaskedWatchOnly => "session-masked-watch",
            AlreadyInSession => "denied-already-in",
            NotesTooLong => "denied-notes-too-long",
            TooFast => "denied-too-fast",
            ToYourself => "denied-to-yourself",
            NotYourKey => "denied-not-your-key",
            BadEmail => "denied-bad-email",
            _ => "denied-relay-failed",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_i18n::{Lang, set_thread_lang};

    #[test]
    fn refusals_read_in_french() {
        set_thread_lang(Some(Lang::Fr));
        assert_eq!(
            refusal(&Refusal::BadCredentials),
            "nom d'utilisateur ou mot de passe incorrect"
        );
        assert!(error(&ClientError::Lost("x".into())).starts_with("connexion au relais perdue"));
        set_thread_lang(Some(Lang::En));
        assert_eq!(
            refusal(&Refusal::KeyUsed),
            "this session key has already been used"
        );
    }
}
