//! The `tether-relay` command line, black-box.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

fn relay(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> std::process::Output {
    let mut child = tether_tests::Program::relay()
        .command()
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
    let mut child = tether_tests::Program::relay()
        .command()
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
    // The password is not printed: it is in an owner-only file whose path is.
    let file = dir.path().join("admin-password");
    assert!(
        all.contains(&format!(
            "created agent \"admin\"; its password is in {}",
            file.display()
        )),
        "{all}"
    );
    let password = std::fs::read_to_string(&file).expect("password file");
    assert_eq!(password.trim().len(), 20);
    assert!(
        !all.contains(password.trim()),
        "the password is not on stdout"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o077, 0, "admin-password is {mode:o}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}

/// Starts `serve` on a new data dir and returns it with the fingerprint it announced.
fn serve_fingerprint(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = tether_tests::Program::relay()
        .command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut fp = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(f) = line.strip_prefix("certificate fingerprint (SHA-256): ") {
            fp = f.trim().to_string();
        }
        if line.starts_with("data dir:") {
            break;
        }
    }
    (child, fp)
}

fn stop(mut child: std::process::Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}

#[test]
fn serve_and_fingerprint_agree_on_one_certificate_in_any_order() {
    // fingerprint first, then serve.
    let dir = tempfile::tempdir().expect("tempdir");
    let fp = text(&relay(&["fingerprint"], dir.path(), None).stdout)
        .trim()
        .to_string();
    let (child, served) = serve_fingerprint(dir.path());
    assert_eq!(fp, served);
    stop(child);

    // serve first, then fingerprint.
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, served) = serve_fingerprint(dir.path());
    let fp = text(&relay(&["fingerprint"], dir.path(), None).stdout)
        .trim()
        .to_string();
    assert_eq!(fp, served);
    stop(child);

    // Both at the same moment, several times over.
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let fingerprint = std::thread::spawn(move || {
            let out = relay(&["fingerprint"], &path, None);
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).trim().to_string()
        });
        let (child, served) = serve_fingerprint(dir.path());
        let fp = fingerprint.join().expect("join");
        assert_eq!(fp.len(), 64);
        assert_eq!(fp, served);
        stop(child);
    }
}

#[test]
fn commands_started_together_on_a_new_data_dir_all_succeed() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let adds: Vec<_> = ["alice", "bob"]
            .into_iter()
            .map(|name| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    relay(
                        &["user", "add", name],
                        &path,
                        Some("correct horse battery\n"),
                    )
                })
            })
            .collect();
        let (child, fp) = serve_fingerprint(dir.path());
        assert_eq!(fp.len(), 64);
        for a in adds {
            let out = a.join().expect("join");
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let key = relay(&["key", "create", "--agent", "bob"], dir.path(), None);
        assert!(key.status.success(), "{}", text(&key.stderr));
        stop(child);
    }
}
