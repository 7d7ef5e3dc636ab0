//! The `tether-host` command line, black-box.

#[test]
fn a_malformed_fingerprint_is_refused_before_connecting() {
    let out = tether_tests::Program::host()
        .command()
        .args([
            "123456789",
            "--relay",
            "127.0.0.1:9",
            "--relay-fingerprint",
            "not-hex",
            "--headless",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("64 hex digits"), "{err}");
}

#[test]
fn a_headless_host_says_why_it_cannot_start_and_exits_at_once() {
    let out = tether_tests::Program::host()
        .command()
        .args(["--headless", "123456789"])
        .env_remove("TETHER_RELAY")
        .env_remove("TETHER_RELAY_FINGERPRINT")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not know which support server to use")
            && err.contains("no relay address"),
        "{err}"
    );
    let out = tether_tests::Program::host()
        .command()
        .args([
            "--headless",
            "--relay",
            "127.0.0.1:9",
            "--relay-fingerprint",
            &"ab".repeat(32),
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no session key"), "{err}");
    let out = tether_tests::Program::host()
        .command()
        .args([
            "--headless",
            "12345",
            "--relay",
            "127.0.0.1:9",
            "--relay-fingerprint",
            &"ab".repeat(32),
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("That is not a session key."), "{err}");
}

#[test]
fn help_names_the_key_and_the_pinned_relay() {
    let out = tether_tests::Program::host()
        .command()
        .arg("--help")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[KEY]") && text.contains("--relay-fingerprint"),
        "{text}"
    );
}
