//! The console as a person sees it: `tether-console` logged in on one Xvfb display alerts the
//! agent of a customer whose host runs on another; a click on the alert's Accept shows the
//! customer's picture.

use std::process::Stdio;
use std::time::Duration;

use tether_tests::{ChildGuard, RelayProc, Xvfb, spawn_host, wait_for};

/// Counts pixels of exactly `rgb` on the display.
fn count(x: &Xvfb, rgb: u32) -> anyhow::Result<usize> {
    let px = x.read(0, 0, x.width as u16, x.height as u16)?;
    let want = [rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8];
    Ok(px.chunks_exact(4).filter(|p| p[..3] == want).count())
}

/// Where the arrival alert's Accept button is in a 1280x800 console window: laid out by the
/// console's own panels (the alert is anchored to the window's lower-left corner, so its buttons
/// sit at the same place whatever the customer's details).
fn alert_accept_point() -> anyhow::Result<(i32, i32)> {
    use egui_kittest::kittest::Queryable as _;
    use tether_console::state::{ConsoleState, Event, LoginRequest};
    use tether_protocol::desk::{EntryKind, QueueEntry, QueueId};
    use tether_protocol::msg::{CustomerInfo, ServerMsg, SessionId};
    let mut state = ConsoleState::connecting(LoginRequest::default());
    state.apply(Event::LoggedIn {
        agent: "alice".into(),
        display: "alice".into(),
        teams: Vec::new(),
        relay: "r".into(),
        fingerprint: "f".into(),
    });
    state.apply(Event::Server(ServerMsg::Queue {
        entries: vec![QueueEntry {
            session: SessionId(1),
            queue: QueueId::Personal("alice".into()),
            customer: CustomerInfo {
                name: "Carol".into(),
                os: "Linux".into(),
                hostname: "pc".into(),
                user: "carol".into(),
                request: None,
                monitors: Vec::new(),
            },
            waiting_since: 0,
            kind: EntryKind::Waiting {
                via: tether_protocol::desk::Via::AgentKey("alice".into()),
            },
            arrived: true,
        }],
    }));
    let mut rt = tether_console::ui::Runtime::default();
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(
            move |ui, s: &mut ConsoleState| tether_console::ui::show(ui, s, &mut rt),
            state,
        );
    h.run_steps(4);
    let accept = h
        .query_all_by_label("Accept")
        .map(|n| n.rect())
        .find(|r| r.left() < 200.0)
        .ok_or_else(|| anyhow::anyhow!("no Accept on the alert"))?;
    let c = accept.center();
    Ok((c.x.round() as i32, c.y.round() as i32))
}

/// Clicks at a point of the display, as a person would.
fn click(x: &Xvfb, at: (i32, i32)) -> anyhow::Result<()> {
    let st = std::process::Command::new("xdotool")
        .args([
            "mousemove",
            &at.0.to_string(),
            &at.1.to_string(),
            "click",
            "1",
        ])
        .env("DISPLAY", x.display())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "xdotool failed: {st}");
    Ok(())
}

#[test]
fn the_console_window_shows_the_customer_screen() -> anyhow::Result<()> {
    const MAGENTA: u32 = 0xd0_10_c0;
    let customer = Xvfb::start(1024, 768)?;
    customer.fill(0, 0, 1024, 768, MAGENTA)?;
    let agent_display = Xvfb::start(1280, 800)?;
    assert_eq!(count(&agent_display, MAGENTA)?, 0);

    let relay = RelayProc::start()?;
    relay.add_agent("alice", "correct horse battery")?;
    let (pin, _) = relay.create_key("alice")?;
    let pw = tempfile::NamedTempFile::new()?;
    std::fs::write(pw.path(), "correct horse battery\n")?;
    let _console = ChildGuard::new(
        "tether-console",
        tether_tests::Program::console()
            .command()
            .args([
                "--relay",
                &relay.addr,
                "--relay-fingerprint",
                &relay.fingerprint,
                "--user",
                "alice",
                "--password-file",
            ])
            .arg(pw.path())
            .env("DISPLAY", agent_display.display())
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    // The customer arrives once the agent is logged in: an arrival alert pops up.
    wait_for("the console's login", Duration::from_secs(30), || {
        relay
            .cli(&["audit", "--limit", "20"], None)
            .ok()
            .filter(|a| a.contains("agent.login"))
    })?;
    let _host = spawn_host(&customer.display(), &pin, &relay.addr, &relay.fingerprint)?;
    // The customer waits in alice's queue until she clicks Accept on the alert (clicked until
    // the picture shows: a click before the alert is drawn lands on an empty part of the window).
    // Fit to window scales 1024x768 down; its inside stays exactly magenta.
    let accept = alert_accept_point()?;
    let mut clicked: Option<std::time::Instant> = None;
    wait_for(
        "the customer's picture in the console window",
        Duration::from_secs(30),
        || {
            let shown = count(&agent_display, MAGENTA).ok().filter(|n| *n > 100_000);
            if shown.is_none() && clicked.is_none_or(|t| t.elapsed() > Duration::from_millis(500)) {
                clicked = Some(std::time::Instant::now());
                let _ = click(&agent_display, accept);
            }
            shown
        },
    )?;
    Ok(())
}
