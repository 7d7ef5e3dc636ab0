//! What the host tells the agent about the customer's computer.

use tether_protocol::msg::{CustomerInfo, MonitorInfo};

/// Operating system name, e.g. "Debian GNU/Linux 12 (bookworm)".
pub fn os_name() -> String {
    if let Ok(text) = std::fs::read_to_string("/etc/os-release") {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("PRETTY_NAME=") {
                return v.trim_matches('"').to_string();
            }
        }
    }
    std::env::consts::OS.to_string()
}

/// This computer's host name.
pub fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".into())
}

/// The logged-in user's name.
pub fn user_name() -> String {
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    #[cfg(unix)]
    {
        // SAFETY: getpwuid_r writes into our buffers only; the name pointer points into `buf`.
        unsafe {
            let uid = libc::getuid();
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 4096];
            let mut out: *mut libc::passwd = std::ptr::null_mut();
            if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0
                && !out.is_null()
                && !pw.pw_name.is_null()
            {
                return std::ffi::CStr::from_ptr(pw.pw_name)
                    .to_string_lossy()
                    .into_owned();
            }
            return format!("uid-{uid}");
        }
    }
    #[allow(unreachable_code)]
    "unknown".into()
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
