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

/// Customer info with the given monitors.
pub fn customer_info(monitors: Vec<MonitorInfo>) -> CustomerInfo {
    CustomerInfo {
        os: os_name(),
        hostname: hostname(),
        user: user_name(),
        monitors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_computer_describes_itself() {
        let c = customer_info(Vec::new());
        assert!(!c.os.is_empty() && !c.hostname.is_empty() && !c.user.is_empty());
    }
}
