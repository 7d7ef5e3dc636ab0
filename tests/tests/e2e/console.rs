//! The console as a person sees it: `tether-console` logged in on one Xvfb display alerts the
//! agent of a customer whose host runs on another; a click on the alert's Accept shows the
//! customer's picture.

use std::process::Stdio;
use std::time::Duration;

use tether_tests::console::{alert_accept_point, click};
use tether_tests::{ChildGuard, RelayProc, Xvfb, spawn_host, wait_for};

/// Counts pixels of exactly `rgb` on the display.
fn count(x: &Xvfb, rgb: u32) -> anyhow::Result<usize> {
    let px = x.read(0, 0, x.width as u16, x.height as u16)?;
    let want = [rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8];
    Ok(px.chunks_exact(4).filter(|p| p[..3] == want).count())
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
    tether_tests::console::wait_login(&relay)?;
    let _host = spawn_host(&customer.display(), &pin, &relay.addr, &relay.fingerprint)?;
    // The customer waits in alice's queue until she clicks Accept on the alert (clicked until
    // the picture shows: a click before the alert is drawn lands on an empty part of the window).
    // Fit to window scales 1024x768 down; its inside stays exactly magenta.
    let accept = alert_accept_point("alice", (1280.0, 800.0))?;
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
