//! Child processes: the programs under test, killed (by PID) and reaped on drop, and what the
//! tests read of them (CPU time, memory, shared-memory segments).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_for;

/// A child process killed (by PID) and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    /// The child.
    pub child: Child,
    name: String,
    /// Where the child's standard error goes, if captured (a file, so a chatty child never
    /// blocks on a full pipe).
    log: Option<tempfile::NamedTempFile>,
}

impl ChildGuard {
    /// Wraps a spawned child.
    pub fn new(name: &str, child: Child) -> Self {
        Self {
            child,
            name: name.to_string(),
            log: None,
        }
    }

    /// A file for a child's standard error, to pass to [`ChildGuard::with_log`].
    pub fn log_file() -> anyhow::Result<(tempfile::NamedTempFile, Stdio)> {
        let f = tempfile::NamedTempFile::new()?;
        let out = Stdio::from(f.reopen()?);
        Ok((f, out))
    }

    /// Wraps a child whose standard error goes to `log`.
    pub fn with_log(name: &str, child: Child, log: tempfile::NamedTempFile) -> Self {
        Self {
            child,
            name: name.to_string(),
            log: Some(log),
        }
    }

    /// What the child wrote to standard error so far.
    pub fn stderr_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f.path()).ok())
            .unwrap_or_default()
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to exit by itself, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let name = self.name.clone();
        wait_for(&format!("{name} to exit"), deadline, || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `deadline`.
    pub fn terminate(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        // SAFETY: plain kill(2) on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait_exit(deadline)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The folder holding the workspace's binaries (`target/debug` or `target/release`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of one of the workspace's binaries (`tether-run`, which `cargo test` builds for the
/// end-to-end tests, or `tether-bench`).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}
/// How to run a program: path and leading arguments (the bench runs the relay and the host as
/// itself with a role argument, so that it needs no other binary).
#[derive(Debug, Clone)]
pub struct Program {
    /// The executable.
    pub path: PathBuf,
    /// Arguments before the program's own.
    pub prefix: Vec<String>,
}

impl Program {
    /// A workspace binary.
    pub fn bin(name: &str) -> Self {
        Self {
            path: bin(name),
            prefix: Vec::new(),
        }
    }

    /// One of the programs under test through `tether-run` (which `cargo test` builds with the
    /// tests): `relay`, `host` or `console`, each the entry point its own binary runs.
    pub fn under_test(program: &str) -> Self {
        Self {
            path: bin("tether-run"),
            prefix: vec![program.to_string()],
        }
    }

    /// `tether-relay`.
    pub fn relay() -> Self {
        Self::under_test("relay")
    }

    /// `tether-host`.
    pub fn host() -> Self {
        Self::under_test("host")
    }

    /// `tether-console`.
    pub fn console() -> Self {
        Self::under_test("console")
    }

    /// A command for it.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.prefix);
        // The tests read the programs' English words, whatever this machine's locale.
        c.env("TETHER_LANG", "en");
        c
    }
}

/// A field of `/proc/PID/status` in KiB (`VmRSS` is the memory in use now, `VmHWM` its peak).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}

/// SysV shared-memory segments created by `pid`, as (permissions, size).
pub fn sysv_segments_of(pid: u32) -> Vec<(u32, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // key shmid perms size cpid lpid ...
        if f.len() > 4 && f[4].parse::<u32>().ok() == Some(pid) {
            let perms = u32::from_str_radix(f[2], 8).unwrap_or(0o777);
            out.push((perms, f[3].parse().unwrap_or(0)));
        }
    }
    out
}
