//! A relay that hostile traffic cannot exhaust: the probes of the security audit, rerun against
//! the real relay process on 127.0.0.1.

use std::time::Duration;

use tether_net::close;
use tether_protocol::msg::{ClientMsg, CustomerInfo, Refusal, Role, ServerMsg, SessionId};
use tether_protocol::pairing::SOURCE_MAX_FAILURES;
use tether_tests::{RawPeer, RelayProc, TEST_PASSWORD, raw_peer, status_kib, wait_for};

fn rss_mib(relay: &RelayProc) -> f64 {
    status_kib(relay.child.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0
}

fn peak_mib(relay: &RelayProc) -> f64 {
    status_kib(relay.child.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0
}

async fn peer(relay: &RelayProc, role: Role) -> anyhow::Result<RawPeer> {
    raw_peer(&relay.addr, relay.fingerprint_bytes(), role).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_cost_little_and_are_capped() -> anyhow::Result<()> {
    let relay =
        RelayProc::start_args(&["--max-pending-per-source", "50", "--auth-timeout", "60s"])?;
    // Settle the relay's own allocations first.
    let warm = peer(&relay, Role::Agent).await?;
    drop(warm);
    let before = rss_mib(&relay);
    let mut peers = Vec::new();
    let mut pushes = Vec::new();
    for _ in 0..50 {
        let p = peer(&relay, Role::Agent).await?;
        // Each tries to push 64 MiB on streams the relay never accepts.
        let conn = p.conn.clone();
        pushes.push(tokio::spawn(async move {
            let chunk = vec![0x5a; 1 << 20];
            if let Ok((mut s, _r)) = conn.open_bi().await {
                for _ in 0..64 {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }
        }));
        let conn = p.conn.clone();
        pushes.push(tokio::spawn(async move {
            let chunk = vec![0xa5; 1 << 20];
            if let Ok(mut s) = conn.open_uni().await {
                for _ in 0..64 {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }
        }));
        peers.push(p);
    }
    // Give the pushes every chance to land: the relay has granted all it will when no push can
    // open a stream at all.
    for p in &mut pushes {
        let _ = tokio::time::timeout(Duration::from_millis(100), p).await;
    }
    assert!(
        pushes.iter().all(|p| !p.is_finished()),
        "a push got through"
    );
    let grown = rss_mib(&relay) - before;
    eprintln!(
        "50 unauthenticated connections: relay grew by {grown:.2} MiB ({:.3} MiB each)",
        grown / 50.0
    );
    assert!(
        grown / 50.0 < 2.0,
        "the relay grew by {grown:.1} MiB for 50 unauthenticated connections"
    );
    // The next is refused, and told why.
    let mut next = peer(&relay, Role::Agent).await?;
    match next.next().await? {
        ServerMsg::Refused(
            r @ Refusal::TooManyConnections {
                from_your_address: true,
                limit: 50,
            },
        ) => assert!(
            r.to_string()
                .contains("too many connections from your address")
        ),
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
    for p in pushes {
        p.abort();
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_logins_run_few_checks_and_little_memory() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let attempts: Vec<_> = (0..100)
        .map(|_| {
            let (addr, fp) = (relay.addr.clone(), relay.fingerprint_bytes());
            tokio::spawn(async move {
                tether_console::net::AgentClient::login(&addr, fp, "alice", "wrong password").await
            })
        })
        .collect();
    let mut refused = std::collections::BTreeMap::<String, usize>::new();
    for a in attempts {
        match a.await? {
            Err(tether_console::net::ClientError::Refused(r)) => {
                *refused.entry(r.kind().to_string()).or_default() += 1
            }
            other => anyhow::bail!("a wrong login was not refused: {other:?}"),
        }
    }
    let audit = relay.cli(&["audit", "--limit", "1000"], None)?;
    let checks = audit.matches("agent.login_failed").count();
    assert!(
        checks <= SOURCE_MAX_FAILURES as usize,
        "{checks} password checks ran; refusals: {refused:?}"
    );
    assert!(checks >= 1);
    let peak = peak_mib(&relay);
    eprintln!(
        "100 parallel wrong logins: {checks} password checks, relay peak {peak:.0} MiB, refusals {refused:?}"
    );
    assert!(peak < 200.0, "the relay's memory peaked at {peak:.0} MiB");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deadline_runs_from_the_first_packet_to_the_login() -> anyhow::Result<()> {
    let relay = RelayProc::start_args(&["--auth-timeout", "1s", "--max-pending-per-source", "50"])?;
    // Half a hello, then nothing.
    let mut partial = Vec::new();
    for _ in 0..20 {
        let (ep, conn) = tether_net::connect(&relay.addr, relay.fingerprint_bytes()).await?;
        let (mut send, _recv) = conn.open_bi().await?;
        send.write_all(&[9, 0, 0]).await?;
        partial.push((ep, conn, send));
    }
    // A whole hello, a Welcome, then silence.
    let mut silent = peer(&relay, Role::Agent).await?;
    assert!(matches!(silent.next().await?, ServerMsg::Welcome { .. }));
    // A handshake and no control stream at all.
    let (_ep, bare) = tether_net::connect(&relay.addr, relay.fingerprint_bytes()).await?;
    for (_, conn, _) in &partial {
        let err = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await?;
        assert!(
            matches!(&err, quinn::ConnectionError::ApplicationClosed(c) if c.error_code.into_inner() == u64::from(close::OVERLOAD)),
            "{err}"
        );
    }
    let (code, reason) = silent.closed(Duration::from_secs(5)).await?;
    assert_eq!(code, close::OVERLOAD);
    assert!(
        reason.contains("did not log in or join within 1 s"),
        "{reason}"
    );
    let err = tokio::time::timeout(Duration::from_secs(5), bare.closed()).await?;
    assert!(
        matches!(err, quinn::ConnectionError::ApplicationClosed(_)),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_peer_that_floods_without_reading_is_closed() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let mut p = peer(&relay, Role::Agent).await?;
    p.send(&ClientMsg::Login {
        user: "alice".into(),
        password: TEST_PASSWORD.into(),
        client: [0; 32],
    })
    .await?;
    assert!(matches!(p.next().await?, ServerMsg::Welcome { .. }));
    assert!(matches!(p.next().await?, ServerMsg::LoggedIn { .. }));
    // Every request earns a refusal; none is read.
    let frame = tether_protocol::frame::encode(
        &ClientMsg::LeaveSession {
            session: SessionId(7),
        },
        tether_protocol::frame::CONTROL_MAX_FRAME,
    )?;
    let batch: Vec<u8> = frame.repeat(4096);
    let mut sent = 0usize;
    let flood = async {
        loop {
            if p.send.write_all(&batch).await.is_err() {
                break;
            }
            sent += batch.len();
        }
    };
    let closed = tokio::select! {
        _ = flood => tokio::time::timeout(Duration::from_secs(10), p.conn.closed()).await?,
        c = p.conn.closed() => c,
        _ = tokio::time::sleep(Duration::from_secs(60)) => anyhow::bail!("still open after 60 s"),
    };
    match closed {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code.into_inner(), u64::from(close::OVERLOAD));
            assert!(String::from_utf8_lossy(&c.reason).contains("does not read"));
        }
        // A flooding client may miss the relay's close (its own socket buffer overflows); the
        // relay has then forgotten the connection and answers with a stateless reset. Its log
        // says why it closed it.
        quinn::ConnectionError::Reset => {
            let log = relay.child.stderr_text();
            assert!(
                log.contains("closing a peer that does not read"),
                "reset after {sent} bytes, and the relay's log does not say why:\n{log}"
            );
        }
        other => anyhow::bail!("closed otherwise after {sent} bytes: {other}"),
    }
    let peak = peak_mib(&relay);
    eprintln!("a flood of {sent} bytes without reading: closed; relay peak {peak:.0} MiB");
    assert!(
        peak < 200.0,
        "the relay peaked at {peak:.0} MiB for {sent} bytes of requests"
    );
    Ok(())
}

/// Joins with `key` as a raw host; returns the peer and the relay's answer.
async fn join(relay: &RelayProc, key: &str) -> anyhow::Result<(RawPeer, ServerMsg)> {
    let mut h = peer(relay, Role::Host).await?;
    h.send(&ClientMsg::Join {
        client: [0; 32],
        key: key.into(),
        customer: CustomerInfo {
            name: "Carol".into(),
            os: "test".into(),
            hostname: "pc".into(),
            user: "carol".into(),
            request: None,
            monitors: Vec::new(),
        },
    })
    .await?;
    assert!(matches!(h.next().await?, ServerMsg::Welcome { .. }));
    let answer = h.next().await?;
    Ok((h, answer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_guesses_never_stop_another_customers_key() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let mut keys = Vec::new();
    for _ in 0..15 {
        keys.push(relay.create_key("alice")?.0);
    }
    let mut wrong = 0;
    let mut guess = 100_000_000u32;
    while wrong < 10 {
        guess += 1;
        let g = guess.to_string();
        if keys.contains(&g) {
            continue;
        }
        let (_h, answer) = join(&relay, &g).await?;
        assert_eq!(answer, ServerMsg::Refused(Refusal::KeyWrong));
        wrong += 1;
    }
    // Every customer's key still opens their session.
    for k in &keys {
        let (_h, answer) = join(&relay, k).await?;
        assert!(matches!(answer, ServerMsg::Joined { .. }), "{answer:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_cannot_be_flooded_or_forged() -> anyhow::Result<()> {
    let mut relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    // A 60 KiB user name forging a line and clearing the terminal.
    let forged = format!(
        "mallory\n1700000000\t-\tagent:admin\tagent.login\t-\tlogged in\u{1b}[2J{}",
        "x".repeat(60 * 1024)
    );
    let r = tether_console::net::AgentClient::login(
        &relay.addr,
        relay.fingerprint_bytes(),
        &forged,
        "wrong password",
    )
    .await;
    assert!(r.is_err());
    // A flood of wrong keys from one source.
    for i in 0..60u32 {
        let _ = join(&relay, &format!("{:09}", 500_000_000 + i)).await?;
    }
    // Stopping writes the counts of what was not listed one by one.
    relay.child.terminate(Duration::from_secs(10))?;
    let audit = relay.cli(&["audit", "--limit", "1000"], None)?;
    for line in audit.lines() {
        assert_eq!(line.split('\t').count(), 6, "forged field in {line:?}");
        assert!(!line.contains('\u{1b}'), "escape code in {line:?}");
        assert!(line.len() < 1024, "a line of {} bytes", line.len());
    }
    assert!(!audit.lines().any(|l| l.starts_with("1700000000")));
    assert!(audit.contains("agent:mallory\\u{a}1700000000"), "{audit}");
    let wrong_lines = audit
        .lines()
        .filter(|l| l.contains("key.refused") && l.contains("wrong session key"))
        .count();
    assert!(
        wrong_lines <= 3,
        "{wrong_lines} lines for wrong keys:\n{audit}"
    );
    assert!(
        audit.contains("more refusals (key_wrong) from 127.0.0.1"),
        "{audit}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_limit_is_exactly_twenty_failures() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    for i in 0..SOURCE_MAX_FAILURES {
        let (_h, answer) = join(&relay, "000000001").await?;
        assert_eq!(answer, ServerMsg::Refused(Refusal::KeyWrong), "attempt {i}");
    }
    let (_h, answer) = join(&relay, "000000001").await?;
    assert!(
        matches!(answer, ServerMsg::Refused(Refusal::RateLimited { .. })),
        "the 21st: {answer:?}"
    );
    // The refusal is audited.
    wait_for("the refusal to be audited", Duration::from_secs(10), || {
        relay
            .cli(&["audit"], None)
            .ok()
            .filter(|a| a.contains("too many failed attempts"))
    })?;
    Ok(())
}

/// A clipboard that counts what is done with it.
#[derive(Debug, Clone, Default)]
struct CountingClipboard(std::sync::Arc<std::sync::Mutex<(usize, usize, Option<String>)>>);

impl tether_desktop::clipboard::Clipboard for CountingClipboard {
    fn get(&mut self) -> Option<String> {
        let mut s = self.0.lock().expect("lock");
        s.0 += 1;
        s.2.clone()
    }
    fn set(&mut self, text: &str) -> Result<(), tether_desktop::clipboard::ClipboardError> {
        let mut s = self.0.lock().expect("lock");
        s.1 += 1;
        s.2 = Some(text.to_string());
        Ok(())
    }
}

impl CountingClipboard {
    fn counts(&self) -> (usize, usize) {
        let s = self.0.lock().expect("lock");
        (s.0, s.1)
    }
}

/// A console backend logged in as alice, with `clipboard` as the agent's clipboard.
fn console(
    relay: &RelayProc,
    clipboard: &CountingClipboard,
) -> anyhow::Result<tether_console::backend::Backend> {
    use tether_console::backend::{Backend, BackendOptions, Startup};
    use tether_desktop::opener::RecordingOpener;
    let req = tether_console::state::LoginRequest {
        relay: relay.addr.clone(),
        fingerprint: relay.fingerprint.clone(),
        user: "alice".into(),
        password: TEST_PASSWORD.into(),
    };
    let c = clipboard.clone();
    Ok(Backend::start(
        Startup::Login(req),
        BackendOptions {
            clipboard: std::sync::Arc::new(move || {
                Ok(Box::new(c.clone()) as Box<dyn tether_desktop::clipboard::Clipboard>)
            }),
            opener: std::sync::Arc::new(RecordingOpener::default()),
            ..BackendOptions::system()
        },
        std::sync::Arc::new(|| {}),
    )?)
}

/// Waits for a backend event that `f` picks.
fn console_event<T>(
    backend: &tether_console::backend::Backend,
    seen: &mut Vec<tether_console::state::Event>,
    what: &str,
    mut f: impl FnMut(&tether_console::state::Event) -> Option<T>,
) -> anyhow::Result<T> {
    wait_for(what, Duration::from_secs(20), || {
        for ev in backend.events() {
            seen.push(ev);
        }
        seen.iter().find_map(&mut f)
    })
}

/// Accepts the customer who arrives in the console's queue, as the agent would from the alert,
/// and waits for the session to start.
fn accept(
    backend: &tether_console::backend::Backend,
    seen: &mut Vec<tether_console::state::Event>,
) -> anyhow::Result<SessionId> {
    use tether_console::state::{Command, Event};
    let waiting = console_event(backend, seen, "the customer in the queue", |e| match e {
        Event::Server(ServerMsg::Queue { entries }) => entries.first().map(|e| e.session),
        _ => None,
    })?;
    backend.send(Command::Accept(waiting));
    console_event(backend, seen, "the session", |e| match e {
        Event::Server(ServerMsg::SessionStarted(i)) => Some(i.id),
        _ => None,
    })
}

/// The next stream the relay opens to a raw host, with its preamble.
async fn host_stream(
    host: &RawPeer,
) -> anyhow::Result<(
    quinn::SendStream,
    quinn::RecvStream,
    tether_protocol::msg::HostStream,
)> {
    let (s, mut r) = tokio::time::timeout(Duration::from_secs(10), host.conn.accept_bi()).await??;
    let pre = tether_net::read_msg(&mut r, tether_protocol::frame::CONTROL_MAX_FRAME)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no preamble"))?;
    Ok((s, r, pre))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_acts_only_on_answers_to_its_own_requests() -> anyhow::Result<()> {
    use tether_console::state::{Command, Event};
    use tether_protocol::frame::INPUT_MAX_FRAME;
    use tether_protocol::input::{AgentMsg, Grant, HostMsg};
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let (pin, _) = relay.create_key("alice")?;
    let clip = CountingClipboard::default();
    let backend = console(&relay, &clip)?;
    let mut seen = Vec::new();
    console_event(&backend, &mut seen, "the login", |e| {
        matches!(e, Event::LoggedIn { .. }).then_some(())
    })?;
    let (host, answer) = join(&relay, &pin).await?;
    assert!(matches!(answer, ServerMsg::Joined { .. }));
    let session = accept(&backend, &mut seen)?;
    // The agent asks for control; the hostile host answers that and more.
    backend.send(Command::Control { session, on: true });
    let (mut hs, mut hr, pre) = host_stream(&host).await?;
    assert!(matches!(
        pre,
        tether_protocol::msg::HostStream::Input { .. }
    ));
    let first: Option<AgentMsg> = tether_net::read_msg(&mut hr, INPUT_MAX_FRAME).await?;
    assert_eq!(first, Some(AgentMsg::RequestControl));
    for m in [
        HostMsg::ClipboardSync(Grant::On),
        HostMsg::Clipboard {
            text: "injected by the host".into(),
        },
        HostMsg::UrlOpened("https://evil.example".into()),
        HostMsg::Control(Grant::On),
    ] {
        tether_net::write_msg(&mut hs, &m, INPUT_MAX_FRAME).await?;
    }
    console_event(&backend, &mut seen, "the control answer", |e| {
        matches!(
            e,
            Event::Control {
                grant: Grant::On,
                ..
            }
        )
        .then_some(())
    })?;
    // Nothing was watched, sent or set, and the UI heard of no clipboard sync, for a good while.
    let until = std::time::Instant::now() + Duration::from_millis(800);
    while std::time::Instant::now() < until {
        assert_eq!(clip.counts(), (0, 0), "the agent's clipboard was touched");
        std::thread::sleep(Duration::from_millis(20));
    }
    for ev in backend.events() {
        seen.push(ev);
    }
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::ClipboardSync { .. })),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Notice(n) if n.contains("evil.example") || n.contains("Clipboard text"))),
        "{seen:?}"
    );
    // Asked properly, sync does work: the agent's copy goes to the host.
    {
        clip.0.lock().expect("lock").2 = Some("before".into());
    }
    backend.send(Command::ClipboardSync { session, on: true });
    let asked: Option<AgentMsg> = tether_net::read_msg(&mut hr, INPUT_MAX_FRAME).await?;
    assert_eq!(asked, Some(AgentMsg::RequestClipboard));
    tether_net::write_msg(&mut hs, &HostMsg::ClipboardSync(Grant::On), INPUT_MAX_FRAME).await?;
    wait_for(
        "the clipboard to be watched",
        Duration::from_secs(10),
        || (clip.counts().0 > 0).then_some(()),
    )?;
    {
        clip.0.lock().expect("lock").2 = Some("copied by the agent".into());
    }
    let sent: Option<AgentMsg> = tokio::time::timeout(
        Duration::from_secs(10),
        tether_net::read_msg(&mut hr, INPUT_MAX_FRAME),
    )
    .await??;
    assert_eq!(
        sent,
        Some(AgentMsg::Clipboard {
            text: "copied by the agent".into()
        })
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_screen_update_fails_only_that_view() -> anyhow::Result<()> {
    use tether_console::state::{Command, Event};
    use tether_protocol::msg::ScreenMsg;
    use tether_protocol::screen::{Encoding, FrameUpdate, ScreenSize, Timing};
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let (pin, _) = relay.create_key("alice")?;
    let clip = CountingClipboard::default();
    let backend = console(&relay, &clip)?;
    let mut seen = Vec::new();
    let (host, _) = join(&relay, &pin).await?;
    let session = accept(&backend, &mut seen)?;
    backend.send(Command::View {
        session,
        monitor: 0,
    });
    let (mut hs, _hr, _) = host_stream(&host).await?;
    let update = FrameUpdate {
        seq: 1,
        last: true,
        ack: false,
        size: Some(ScreenSize {
            width: 1_000_000,
            height: 1,
        }),
        encoding: Encoding::Bgr24Zstd,
        rects: Vec::new(),
        palettes: Vec::new(),
        data: Vec::new(),
        lossy: Vec::new(),
        predicted: Vec::new(),
        glyphs: Vec::new(),
        timing: Timing::default(),
    };
    tether_net::write_msg(
        &mut hs,
        &ScreenMsg::Update(update),
        tether_protocol::frame::MEDIA_MAX_FRAME,
    )
    .await?;
    let why = console_event(&backend, &mut seen, "the view to fail", |e| match e {
        Event::ViewFailed { message, .. } => Some(message.clone()),
        _ => None,
    })?;
    assert!(why.contains("too large"), "{why}");
    // The console goes on.
    backend.send(Command::CreateKey {
        team: None,
        ttl_secs: None,
    });
    console_event(&backend, &mut seen, "a new key", |e| {
        matches!(e, Event::Server(ServerMsg::KeyCreated(_))).then_some(())
    })?;
    Ok(())
}

/// What happened when someone tried something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Done: the stream reached the host, or the request was carried out.
    Allowed,
    /// Refused with a reason (a reset stream or a `Refused` answer).
    Refused,
    /// Not even possible: no stream can be opened before a login.
    Blocked,
    /// The relay closed the connection at once.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoLogin,
    Host,
    NonMember,
    Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Screen,
    Input,
    Files,
    Leave,
    CreateKey,
    EndSession,
}

async fn agent_peer(relay: &RelayProc, user: &str) -> anyhow::Result<RawPeer> {
    let mut p = peer(relay, Role::Agent).await?;
    p.send(&ClientMsg::Login {
        user: user.into(),
        password: TEST_PASSWORD.into(),
        client: [0; 32],
    })
    .await?;
    assert!(matches!(p.next().await?, ServerMsg::Welcome { .. }));
    assert!(matches!(p.next().await?, ServerMsg::LoggedIn { .. }));
    Ok(p)
}

/// Opens a media stream of `session` from `p` and says what became of it.
async fn try_stream(
    p: &RawPeer,
    host: &RawPeer,
    what: What,
    session: SessionId,
) -> anyhow::Result<Outcome> {
    use tether_protocol::msg::{HostStream, OpenStream};
    let open = match what {
        What::Screen => OpenStream::Screen {
            session,
            monitor: 0,
        },
        What::Input => OpenStream::Input { session },
        _ => OpenStream::Files { session },
    };
    let Ok(Ok((mut s, mut r))) =
        tokio::time::timeout(Duration::from_millis(500), p.conn.open_bi()).await
    else {
        return Ok(Outcome::Blocked);
    };
    tether_net::write_msg(&mut s, &open, tether_protocol::frame::CONTROL_MAX_FRAME).await?;
    tokio::select! {
        got = host_stream(host) => {
            let (_, _, pre) = got?;
            let matches = matches!(
                (what, pre),
                (What::Screen, HostStream::Screen { .. })
                    | (What::Input, HostStream::Input { .. })
                    | (What::Files, HostStream::Files { .. })
            );
            anyhow::ensure!(matches, "the host got another kind of stream");
            Ok(Outcome::Allowed)
        }
        read = r.read_chunk(64, true) => match read {
            Err(quinn::ReadError::Reset(code)) if code.into_inner() == u64::from(close::REFUSED) => {
                Ok(Outcome::Refused)
            }
            other => anyhow::bail!("{what:?}: unexpected {other:?}"),
        },
    }
}

/// Sends a control request and says what became of it.
async fn try_request(p: &mut RawPeer, what: What, session: SessionId) -> anyhow::Result<Outcome> {
    let msg = match what {
        What::Leave => ClientMsg::LeaveSession { session },
        What::CreateKey => ClientMsg::CreateKey {
            ttl_secs: None,
            team: None,
        },
        _ => ClientMsg::EndSession,
    };
    p.send(&msg).await?;
    let conn = p.conn.clone();
    loop {
        let m = tokio::select! {
            m = p.next() => m,
            _ = conn.closed() => return Ok(Outcome::Closed),
        };
        match m {
            Ok(ServerMsg::Refused(_)) => {
                return Ok(match p.closed(Duration::from_millis(300)).await {
                    Ok(_) => Outcome::Closed,
                    Err(_) => Outcome::Refused,
                });
            }
            Ok(ServerMsg::KeyCreated(_)) if what == What::CreateKey => return Ok(Outcome::Allowed),
            Ok(ServerMsg::SessionEnded { session: s, .. } | ServerMsg::Left { session: s, .. })
                if s == session =>
            {
                return Ok(Outcome::Allowed);
            }
            Ok(_) => continue,
            Err(_) if p.conn.close_reason().is_some() => return Ok(Outcome::Closed),
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_checked_against_who_asks() -> anyhow::Result<()> {
    use Outcome::*;
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    relay.add_agent("bob", TEST_PASSWORD)?;
    let matrix: [(Who, [Outcome; 6]); 4] = [
        //                 screen   input    files    leave    key      end
        (
            Who::NoLogin,
            [Blocked, Blocked, Blocked, Refused, Refused, Refused],
        ),
        (
            Who::Host,
            [Blocked, Blocked, Blocked, Refused, Refused, Allowed],
        ),
        (
            Who::NonMember,
            [Refused, Refused, Refused, Refused, Allowed, Refused],
        ),
        (
            Who::Member,
            [Allowed, Allowed, Allowed, Allowed, Allowed, Refused],
        ),
    ];
    let whats = [
        What::Screen,
        What::Input,
        What::Files,
        What::Leave,
        What::CreateKey,
        What::EndSession,
    ];
    for (who, expected) in matrix {
        for (what, want) in whats.into_iter().zip(expected) {
            // A fresh session for every cell: some cells end it.
            let _alice = agent_peer(&relay, "alice").await?;
            let (pin, _) = relay.create_key("alice")?;
            let (mut host, answer) = join(&relay, &pin).await?;
            let ServerMsg::Joined { session, .. } = answer else {
                anyhow::bail!("{answer:?}");
            };
            let stream = matches!(what, What::Screen | What::Input | What::Files);
            let got = if who == Who::Host {
                // The session's own host.
                if stream {
                    try_stream(&host, &host, what, session).await?
                } else {
                    try_request(&mut host, what, session).await?
                }
            } else {
                let mut p = match who {
                    Who::NoLogin => {
                        let mut p = peer(&relay, Role::Agent).await?;
                        assert!(matches!(p.next().await?, ServerMsg::Welcome { .. }));
                        p
                    }
                    Who::NonMember => agent_peer(&relay, "bob").await?,
                    _ => {
                        // A member: alice accepts the customer from her queue.
                        let mut p = agent_peer(&relay, "alice").await?;
                        p.send(&ClientMsg::Accept { session }).await?;
                        loop {
                            match p.next().await? {
                                ServerMsg::SessionStarted(i) if i.id == session => break,
                                ServerMsg::Refused(r) => anyhow::bail!("accept refused: {r}"),
                                _ => {}
                            }
                        }
                        p
                    }
                };
                if stream {
                    try_stream(&p, &host, what, session).await?
                } else {
                    try_request(&mut p, what, session).await?
                }
            };
            assert_eq!(got, want, "{who:?} doing {what:?}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_open_screen_streams_without_limit() -> anyhow::Result<()> {
    let x = tether_tests::Xvfb::start(320, 240)?;
    let s = tether_tests::start_session(&x, None, &["--headless"]).await?;
    let mut views = Vec::new();
    for _ in 0..tether_host::session::MAX_SCREEN_STREAMS + 2 {
        views.push(s.agent.view(s.info.id, 0).await?);
    }
    let mut ok = 0;
    let mut refused = 0;
    for v in &mut views {
        match tokio::time::timeout(Duration::from_secs(15), v.next_frame()).await? {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    assert_eq!((ok, refused), (tether_host::session::MAX_SCREEN_STREAMS, 2));
    s.agent.close().await;
    Ok(())
}
