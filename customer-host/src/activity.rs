//! The customer's activity log, in the customer's language: what the input gate records
//! ([`Audit`]) and what the host's own services do, worded through Fluent.

use tether_i18n::t;
use tether_protocol::input::{Audit, ControlEnd, Permission};

/// A permission's name, as the activity log words it.
pub fn permission(p: Permission) -> String {
    match p {
        Permission::Control => t!("perm-control"),
        Permission::Clipboard => t!("perm-clipboard"),
        Permission::Files => t!("perm-files"),
        Permission::Url => t!("perm-url"),
    }
}

/// One line of the log for an event of the input gate.
pub fn audit(a: &Audit) -> String {
    match a {
        Audit::UrlRefused(why) => t!("act-url-refused", why = why.as_str()),
        Audit::UrlOpened { url, asked: true } => t!("act-url-opened", url = url.as_str()),
        Audit::UrlOpened { url, asked: false } => {
            t!("act-url-opened-up-front", url = url.as_str())
        }
        Audit::UrlDeclined(url) => t!("act-url-declined", url = url.as_str()),
        Audit::AllowedUpFront(p) => t!("act-allowed-up-front", what = permission(*p)),
        Audit::CoolingDown(p) => t!("act-cooling-down", what = permission(*p)),
        Audit::Answered {
            permission: p,
            allow: true,
        } => t!("act-allowed", what = permission(*p)),
        Audit::Answered {
            permission: p,
            allow: false,
        } => t!("act-denied", what = permission(*p)),
        Audit::ClipboardStopped => t!("act-clipboard-stopped"),
        Audit::ClipboardRevoked => t!("act-clipboard-revoked"),
        Audit::ClipboardDropped => t!("act-clipboard-dropped"),
        Audit::InputDropped(kind) => t!("act-input-dropped", kind = *kind),
        Audit::ControlEnded(ControlEnd::Released) => t!("act-control-released"),
        Audit::ControlEnded(ControlEnd::Revoked) => t!("act-control-revoked"),
        Audit::ControlEnded(ControlEnd::AgentGone) => t!("act-control-agent-gone"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_is_worded_in_both_languages() {
        let all = [
            Audit::UrlRefused("x".into()),
            Audit::UrlOpened {
                url: "https://a.example/".into(),
                asked: true,
            },
            Audit::UrlDeclined("https://a.example/".into()),
            Audit::AllowedUpFront(Permission::Files),
            Audit::CoolingDown(Permission::Control),
            Audit::Answered {
                permission: Permission::Clipboard,
                allow: false,
            },
            Audit::ControlEnded(ControlEnd::AgentGone),
        ];
        for lang in [tether_i18n::Lang::En, tether_i18n::Lang::Fr] {
            tether_i18n::set_thread_lang(Some(lang));
            for a in &all {
                let line = audit(a);
                assert!(
                    !line.is_empty() && !line.contains("act-"),
                    "{lang:?}: {line}"
                );
            }
        }
        tether_i18n::set_thread_lang(Some(tether_i18n::Lang::Fr));
        assert_eq!(
            audit(&Audit::ControlEnded(ControlEnd::Revoked)),
            "contrôle à distance arrêté par vous"
        );
    }
}
