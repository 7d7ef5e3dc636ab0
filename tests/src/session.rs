//! Sessions for the tests: customer hosts as children and a logged-in agent in a session.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

use crate::{ChildGuard, Program, RelayProc, Xvfb};

/// Starts `tether-host --headless` (nothing granted) on `display`.
pub fn spawn_host(
    display: &str,
    key: &str,
    relay: &str,
    fingerprint: &str,
) -> anyhow::Result<ChildGuard> {
    spawn_host_args(display, key, relay, fingerprint, &["--headless"])
}

/// Starts `tether-host` on `display` with these extra arguments (say `--headless --allow control`).
pub fn spawn_host_args(
    display: &str,
    key: &str,
    relay: &str,
    fingerprint: &str,
    extra: &[&str],
) -> anyhow::Result<ChildGuard> {
    spawn_host_with(&Program::host(), display, key, relay, fingerprint, extra)
}

/// Starts a host run as `program` on `display` with these extra arguments. Its standard error
/// goes to a file ([`ChildGuard::stderr_text`]); its standard output is piped.
pub fn spawn_host_with(
    program: &Program,
    display: &str,
    key: &str,
    relay: &str,
    fingerprint: &str,
    extra: &[&str],
) -> anyhow::Result<ChildGuard> {
    let (log, err) = ChildGuard::log_file()?;
    let child = program
        .command()
        .arg(key)
        .args(["--relay", relay, "--relay-fingerprint", fingerprint])
        .args(extra)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()?;
    Ok(ChildGuard::with_log("tether-host", child, log))
}

/// The password the helpers give test agents.
pub const TEST_PASSWORD: &str = "correct horse battery";

/// A relay, a host on a display, and a logged-in agent in a session with it.
#[derive(Debug)]
pub struct TestSession {
    /// The relay.
    pub relay: RelayProc,
    /// The host process.
    pub host: ChildGuard,
    /// The agent `alice`.
    pub agent: tether_console::net::AgentClient,
    /// The session.
    pub info: tether_protocol::msg::SessionInfo,
}

/// Accepts the next customer who arrives in one of `agent`'s queues and waits for the session
/// to start (15 s at most).
pub async fn wait_session(
    agent: &mut tether_console::net::AgentClient,
) -> anyhow::Result<tether_protocol::msg::SessionInfo> {
    wait_session_except(agent, &[]).await
}

/// [`wait_session`], leaving alone the sessions in `not` (older ones whose customer is away and
/// may come back).
pub async fn wait_session_except(
    agent: &mut tether_console::net::AgentClient,
    not: &[tether_protocol::msg::SessionId],
) -> anyhow::Result<tether_protocol::msg::SessionInfo> {
    use tether_protocol::desk::EntryKind;
    use tether_protocol::msg::ServerMsg;
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match agent.next_event().await? {
                ServerMsg::Queue { entries } => {
                    let waiting = entries.iter().find(|e| {
                        !matches!(e.kind, EntryKind::Invitation { .. }) && !not.contains(&e.session)
                    });
                    if let Some(e) = waiting {
                        agent.accept(e.session).await?;
                    }
                }
                // Sessions left out may be announced again: the agent is still in them.
                ServerMsg::SessionStarted(info) if !not.contains(&info.id) => {
                    return anyhow::Ok(info);
                }
                _ => {}
            }
        }
    })
    .await
    .context("no session started within 15 s")?
}

/// Starts a session: a relay (or `relay`, which already has `alice`), a key for `alice`, a host
/// on `x` with `host_args`, and `alice` logged in.
pub async fn start_session(
    x: &Xvfb,
    relay: Option<RelayProc>,
    host_args: &[&str],
) -> anyhow::Result<TestSession> {
    start_session_except(x, relay, host_args, &[]).await
}

/// [`start_session`], leaving alone the sessions in `not`.
pub async fn start_session_except(
    x: &Xvfb,
    relay: Option<RelayProc>,
    host_args: &[&str],
    not: &[tether_protocol::msg::SessionId],
) -> anyhow::Result<TestSession> {
    let relay = match relay {
        Some(r) => r,
        None => {
            let r = RelayProc::start()?;
            r.add_agent("alice", TEST_PASSWORD)?;
            r
        }
    };
    let (pin, mut agent) = alice_key_and_login(&relay).await?;
    let host = spawn_host_args(
        &x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        host_args,
    )?;
    let info = wait_session_except(&mut agent, not).await?;
    Ok(TestSession {
        relay,
        host,
        agent,
        info,
    })
}

/// A key of `alice`'s on `relay`, and `alice` logged in there.
pub async fn alice_key_and_login(
    relay: &RelayProc,
) -> anyhow::Result<(String, tether_console::net::AgentClient)> {
    let (pin, _) = relay.create_key("alice")?;
    let agent = tether_console::net::AgentClient::login(
        &relay.addr,
        relay.fingerprint_bytes(),
        "alice",
        TEST_PASSWORD,
    )
    .await?;
    Ok((pin, agent))
}

/// A relay with the agent `alice`, a key of hers, and her logged in.
pub async fn relay_with_alice()
-> anyhow::Result<(RelayProc, String, tether_console::net::AgentClient)> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let (pin, agent) = alice_key_and_login(&relay).await?;
    Ok((relay, pin, agent))
}
