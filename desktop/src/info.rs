//! What the host tells the agent about the customer's computer.

use tether_protocol::msg::{CustomerInfo, MonitorInfo};

/// Operating system name, e.g. "Debian GNU/Linux 12 (bookworm)".
pub fn os_name() -> String {
    whoami::distro()
}

/// This computer's host name.
pub fn hostname() -> String {
    whoami::fallible::hostname().unwrap_or_else(|_| "unknown".into())
}

/// The logged-in user's name.
pub fn user_name() -> String {
    whoami::username()
}

/// The logged-in user's full name, or their login name when the system has none.
pub fn full_name() -> String {
    let real = whoami::realname();
    if real.trim().is_empty() {
        user_name()
    } else {
        real
    }
}

/// Customer info with the given monitors; `name` is the name the customer gave, if any (their
/// full name on this computer otherwise).
pub fn customer_info(name: Option<String>, monitors: Vec<MonitorInfo>) -> CustomerInfo {
    CustomerInfo {
        name: name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(full_name),
        os: os_name(),
        hostname: hostname(),
        user: user_name(),
        monitors,
        request: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_computer_describes_itself() {
        let c = customer_info(None, Vec::new());
        assert!(!c.os.is_empty() && !c.hostname.is_empty() && !c.user.is_empty());
        assert!(!c.name.is_empty());
        assert_eq!(customer_info(Some("Ann".into()), Vec::new()).name, "Ann");
    }
}
