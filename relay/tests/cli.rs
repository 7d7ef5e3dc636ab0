//! The `tether-relay` command line, black-box.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn relay(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether-relay"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tether-relay");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn fingerprint_is_stable_and_secrets_are_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = relay(&["fingerprint"], dir.path(), None);
    assert!(a.status.success(), "{}", text(&a.stderr));
    let fp = text(&a.stdout).trim().to_string();
    assert_eq!(fp.len(), 64);
    assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
    let b = relay(&["fingerprint"], dir.path(), None);
    assert_eq!(text(&b.stdout).trim(), fp);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "data dir {mode:o}");
    for e in std::fs::read_dir(dir.path()).expect("read_dir") {
        let e = e.expect("entry");
        let mode = e.metadata().expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", e.path().display());
    }
}

#[test]
fn agents_and_keys_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = relay(
        &["user", "add", "alice"],
        dir.path(),
        Some("correct horse battery\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = relay(
        &["user", "add", "alice"],
        dir.path(),
        Some("another password\n"),
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    let short = relay(&["user", "add", "bob"], dir.path(), Some("short\n"));
    assert!(!short.status.success());

    let key = relay(
        &["key", "create", "--agent", "alice", "--ttl", "10m"],
        dir.path(),
        None,
    );
    assert!(key.status.success(), "{}", text(&key.stderr));
    let out = text(&key.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0].len(), 9);
    assert!(lines[0].bytes().all(|b| b.is_ascii_digit()));
    assert!(
        lines[1].starts_with("https://") && lines[1].ends_with(&format!("/s/{}", lines[0])),
        "{out}"
    );

    let nobody = relay(&["key", "create", "--agent", "nobody"], dir.path(), None);
    assert!(!nobody.status.success());
    assert!(
        text(&nobody.stderr).contains("no agent named"),
        "{}",
        text(&nobody.stderr)
    );

    let audit = relay(&["audit"], dir.path(), None);
    assert!(text(&audit.stdout).contains("key.created"));
}

#[test]
fn first_serve_creates_an_admin_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether-relay"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let done = line.starts_with("data dir:");
        lines.push(line);
        if done {
            break;
        }
    }
    let all = lines.join("\n");
    assert!(all.contains("certificate fingerprint (SHA-256): "), "{all}");
    assert!(
        all.contains("created agent \"admin\" with password "),
        "{all}"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}
