//! End to end: relay, customer host and agent client as real processes and real QUIC on
//! loopback, the host capturing a real X server (Xvfb).

use std::time::Duration;

use anyhow::{Context as _, bail};
use tether_console::net::{AgentClient, ScreenView};
use tether_tests::{
    RelayProc, Xvfb, same_colours, spawn_host, sysv_segments_of, test_picture, wait_for,
    wait_session,
};

const PASSWORD: &str = "correct horse battery";

/// Reads frames until the view equals `expected`; returns the frames' total changed area and bytes.
async fn frames_until(view: &mut ScreenView, expected: &[u8]) -> anyhow::Result<(u64, usize)> {
    tokio::time::timeout(Duration::from_secs(15), async {
        let (mut area, mut bytes) = (0u64, 0usize);
        loop {
            let f = view.next_frame().await?;
            area += f.rects.iter().map(|r| r.area()).sum::<u64>();
            bytes += f.bytes;
            if same_colours(view.framebuffer().pixels(), expected) {
                return Ok((area, bytes));
            }
        }
    })
    .await
    .context("the view did not match the X server within 15 s")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_screen_arrives_exactly_and_changes_arrive_as_partial_updates()
-> anyhow::Result<()> {
    let (w, h) = (1280u32, 800u32);
    let x = Xvfb::start(w, h)?;
    x.put(0, 0, w as u16, h as u16, &test_picture(w, h, 1))?;
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let (pin, url) = relay.create_key("alice")?;
    assert_eq!(pin.len(), 9);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));
    assert!(url.ends_with(&format!("/s/{pin}")), "{url}");

    let mut agent =
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await?;
    // The customer joins with the session URL (the PIN works the same way).
    let mut host = spawn_host(&x.display(), &url, &relay.addr, &relay.fingerprint)?;
    let info = wait_session(&mut agent).await?;
    let logins: Vec<&str> = info.members.iter().map(|m| m.login.as_str()).collect();
    assert_eq!(logins, ["alice"]);
    let m = &info.customer.monitors[0];
    assert_eq!((m.width, m.height), (w, h));
    assert!(!info.customer.os.is_empty() && !info.customer.hostname.is_empty());

    let mut view = agent.view(info.id, 0).await?;
    let expected = x.read(0, 0, w as u16, h as u16)?;
    frames_until(&mut view, &expected).await?;

    // A small change travels as a small rectangle, not the whole screen.
    x.fill(100, 200, 40, 20, 0xff2000)?;
    let expected = x.read(0, 0, w as u16, h as u16)?;
    let (area, bytes) = frames_until(&mut view, &expected).await?;
    assert!(
        area <= 40 * 20 * 2,
        "changed area {area} px for an 800 px change"
    );
    assert!(bytes < 4096, "{bytes} bytes for a small change");

    // The screen memory is never in a SysV segment other users could attach.
    assert!(sysv_segments_of(host.pid()).is_empty());

    // Ending the session for everyone: the host says so and exits cleanly.
    agent.end_for_all(info.id).await?;
    let status = host.wait_exit(Duration::from_secs(10))?;
    assert!(status.success(), "host exit status {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(host.child.stdout.as_mut().context("stdout")?, &mut out)?;
    assert!(
        out.contains("session ended: the support agent ended the session"),
        "{out}"
    );
    agent.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_joins_while_no_agent_is_online_waits_in_the_queue() -> anyhow::Result<()> {
    let x = Xvfb::start(640, 480)?;
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let (pin, _) = relay.create_key("alice")?;
    let mut host = tether_tests::spawn_host_args(
        &x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        &["--headless", "--reconnect-for", "3"],
    )?;
    // The host reports that it waits; read its stdout on a thread.
    let stdout = host.child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    wait_for(
        "the host to wait for its agent",
        Duration::from_secs(15),
        || {
            rx.try_recv()
                .ok()
                .filter(|l| l.contains("waiting for a representative"))
        },
    )?;
    let mut agent =
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await?;
    let info = wait_session(&mut agent).await?;
    assert_eq!(info.customer.monitors.len(), 1);
    wait_for("the host to see its agent", Duration::from_secs(15), || {
        rx.try_recv()
            .ok()
            .filter(|l| l.contains("connected: alice"))
    })?;
    // The relay going away: the host tries to come back, then gives up and exits.
    drop(agent);
    let mut relay = relay;
    relay.child.kill();
    wait_for("the host to reconnect", Duration::from_secs(30), || {
        rx.try_recv()
            .ok()
            .filter(|l| l.contains("connection lost; reconnecting (attempt 1)"))
    })?;
    let status = host.wait_exit(Duration::from_secs(30))?;
    assert_eq!(status.code(), Some(3), "lost relay exits with 3");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_leaves_no_shared_memory_behind() -> anyhow::Result<()> {
    let x = Xvfb::start(640, 480)?;
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let mut agent =
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await?;
    // Force the SysV fallback, the path that could leak: it must be 0600 and vanish with the process.
    let (pin, _) = relay.create_key("alice")?;
    let child = tether_tests::Program::host()
        .command()
        .arg(&pin)
        .args([
            "--relay",
            &relay.addr,
            "--relay-fingerprint",
            &relay.fingerprint,
        ])
        .env("DISPLAY", x.display())
        .env("TETHER_CAPTURE_SHM", "sysv")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let mut host = tether_tests::ChildGuard::new("tether-host", child);
    let info = wait_session(&mut agent).await?;
    let mut view = agent.view(info.id, 0).await?;
    view.next_frame().await?;
    let segs = sysv_segments_of(host.pid());
    assert!(!segs.is_empty(), "the sysv path was taken");
    for (perms, _) in &segs {
        assert_eq!(perms & 0o077, 0, "segment mode {perms:o} is private");
    }
    let pid = host.pid();
    host.kill();
    wait_for("the segment to disappear", Duration::from_secs(10), || {
        sysv_segments_of(pid).is_empty().then_some(())
    })?;
    Ok(())
}

#[test]
fn the_default_capture_path_uses_a_private_memfd() -> anyhow::Result<()> {
    use tether_desktop::capture::Capturer as _;
    use tether_desktop::capture::x11::{ShmMode, X11Capturer};
    let x = Xvfb::start(320, 240)?;
    x.put(0, 0, 320, 240, &test_picture(320, 240, 3))?;
    let mut cap = X11Capturer::open(Some(&x.display()))?;
    assert_eq!(cap.shm_mode(), ShmMode::Memfd);
    let frame = cap.capture(0, None)?;
    let mut packed = Vec::new();
    for y in 0..240usize {
        packed.extend_from_slice(&frame.data[y * frame.stride..y * frame.stride + 320 * 4]);
    }
    assert!(
        same_colours(&packed, &x.read(0, 0, 320, 240)?),
        "capture is pixel-exact"
    );
    // Find our memfd and check its mode.
    let mut found = false;
    for e in std::fs::read_dir("/proc/self/fd")? {
        let e = e?;
        if let Ok(target) = std::fs::read_link(e.path())
            && target.to_string_lossy().contains("memfd:tether-capture")
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(e.path())?.permissions().mode();
            assert_eq!(mode & 0o077, 0, "memfd mode {mode:o}");
            found = true;
        }
    }
    assert!(found, "no tether-capture memfd");
    assert!(sysv_segments_of(std::process::id()).is_empty());
    drop(cap);
    if sysv_segments_of(std::process::id()).is_empty() {
        Ok(())
    } else {
        bail!("segments left")
    }
}

/// The screen loop sleeps in the capturer while nothing changes: a wait without a timeout
/// returns only for damage or for the waker (another monitor asked, the viewer gone).
#[test]
fn an_idle_screen_wait_returns_only_for_damage_or_its_waker() -> anyhow::Result<()> {
    use std::sync::mpsc;
    use tether_desktop::capture::x11::X11Capturer;
    use tether_desktop::capture::{Capturer as _, Damage};
    let x = Xvfb::start(320, 240)?;
    let mut cap = X11Capturer::open(Some(&x.display()))?;
    cap.capture(0, None)?;
    // Collect whatever the start-up damaged.
    while cap.wait_damage(Some(Duration::from_millis(50)))? != Damage::None {}
    let waker = cap.waker().context("the X11 capturer has a waker")?;
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        for _ in 0..2 {
            let d = cap.wait_damage(None);
            let stop = d.is_err();
            let _ = tx.send(d.map_err(|e| e.to_string()));
            if stop {
                break;
            }
        }
    });
    // Nothing changes: the wait goes on (no periodic wake-up returns it).
    assert!(
        rx.recv_timeout(Duration::from_millis(400)).is_err(),
        "an idle wait returned by itself"
    );
    waker.wake();
    let woken = rx.recv_timeout(Duration::from_secs(5))?;
    assert_eq!(woken, Ok(Damage::None), "the waker ends the wait");
    x.put(10, 10, 20, 20, &test_picture(20, 20, 9))?;
    let damaged = rx.recv_timeout(Duration::from_secs(5))?;
    assert!(
        matches!(damaged, Ok(Damage::Rects(ref r)) if !r.is_empty()),
        "damage ends the wait: {damaged:?}"
    );
    waiter
        .join()
        .map_err(|_| anyhow::anyhow!("waiter panicked"))?;
    Ok(())
}

/// Starts the host with its window on `x` (no `--headless`).
fn windowed_host(
    x: &Xvfb,
    key: &str,
    relay: &str,
    fingerprint: &str,
) -> anyhow::Result<tether_tests::ChildGuard> {
    let (log, err) = tether_tests::ChildGuard::log_file()?;
    let child = tether_tests::Program::host()
        .command()
        .arg(key)
        .args(["--relay", relay, "--relay-fingerprint", fingerprint])
        .env("DISPLAY", x.display())
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()?;
    Ok(tether_tests::ChildGuard::with_log(
        "tether-host",
        child,
        log,
    ))
}

#[test]
fn the_windowed_host_shows_why_it_could_not_connect_and_stays_until_closed() -> anyhow::Result<()> {
    let x = Xvfb::start(800, 600)?;
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let wrong_fp = "ab".repeat(32);
    for (key, fingerprint, title, code) in [
        (
            "123456789".to_string(),
            wrong_fp.as_str(),
            "Support server identity mismatch",
            3,
        ),
        (
            relay.create_key("alice")?.0.chars().rev().collect(),
            relay.fingerprint.as_str(),
            "Wrong session key",
            2,
        ),
    ] {
        let mut host = windowed_host(&x, &key, &relay.addr, fingerprint)?;
        let (window, _) = tether_tests::wait_window(&x.display(), title, Duration::from_secs(30))
            .with_context(|| host.stderr_text())?;
        // The window stays: the failure is on screen and the process has not exited; it exits
        // when the customer closes the window, with a status that says it failed.
        assert!(host.child.try_wait()?.is_none(), "the host vanished");
        assert!(
            tether_tests::window_titles(&x.display())?
                .iter()
                .any(|(w, t)| *w == window && t.contains(title))
        );
        tether_tests::close_window(&x.display(), window)?;
        let status = host.wait_exit(Duration::from_secs(10))?;
        assert_eq!(status.code(), Some(code), "{}", host.stderr_text());
    }
    Ok(())
}
