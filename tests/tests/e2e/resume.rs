//! Sessions that survive the network: a host whose link is cut for longer than QUIC's idle
//! timeout comes back to its session with its resume token, the agent is told it went and came
//! back, the screen is live again, and what was granted is asked again.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tether_console::net::AgentClient;
use tether_protocol::msg::ServerMsg;
use tether_tests::{ImpairedLink, RelayProc, TEST_PASSWORD, Xvfb, spawn_host_args, wait_session};

/// The next message on `agent` that `f` picks, within `within`.
async fn next<T>(
    agent: &mut AgentClient,
    within: Duration,
    what: &str,
    mut f: impl FnMut(&ServerMsg) -> Option<T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(within, async {
        loop {
            let m = agent.next_event().await?;
            if let Some(v) = f(&m) {
                return anyhow::Ok(v);
            }
        }
    })
    .await
    .with_context(|| format!("{what} did not come within {within:?}"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_for_longer_than_the_idle_timeout_resumes_its_session() -> anyhow::Result<()>
{
    let x = Xvfb::start(640, 480)?;
    let (_relay, link, host, mut agent, id) =
        linked_session(&x, &["--headless", "--allow", "control"]).await?;
    let mut view = agent.view(id, 0).await?;
    tokio::time::timeout(Duration::from_secs(15), view.next_frame())
        .await
        .context("no first frame")??;

    // Cut for longer than the idle timeout: both ends give the connection up.
    link.cut(true);
    next(&mut agent, Duration::from_secs(30), "CustomerAway", |m| {
        matches!(m, ServerMsg::CustomerAway { session } if *session == id).then_some(())
    })
    .await
    .with_context(|| host.stderr_text())?;
    link.cut(false);
    let restored = Instant::now();
    next(&mut agent, Duration::from_secs(15), "CustomerBack", |m| {
        matches!(m, ServerMsg::CustomerBack { session } if *session == id).then_some(())
    })
    .await
    .with_context(|| host.stderr_text())?;
    let back = restored.elapsed();

    // The same session, the same agent; the screen is live again on a new subscription.
    let mut view = agent.view(id, 0).await?;
    tokio::time::timeout(Duration::from_secs(15), view.next_frame())
        .await
        .context("no frame after the resume")??;
    let live = restored.elapsed();
    eprintln!("back {back:?} and live {live:?} after the link came back");
    assert!(
        live < Duration::from_secs(5),
        "the picture was live again only {live:?} after the link came back"
    );
    Ok(())
}

/// A session through an impaired link, with a first frame seen.
async fn linked_session(
    x: &Xvfb,
    host_args: &[&str],
) -> anyhow::Result<(
    RelayProc,
    ImpairedLink,
    tether_tests::ChildGuard,
    AgentClient,
    tether_protocol::msg::SessionId,
)> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let (pin, _) = relay.create_key("alice")?;
    let mut agent = AgentClient::login(
        &relay.addr,
        relay.fingerprint_bytes(),
        "alice",
        TEST_PASSWORD,
    )
    .await?;
    let link = ImpairedLink::start(relay.addr.parse()?).await?;
    let via = link.addr().to_string();
    let host = spawn_host_args(&x.display(), &pin, &via, &relay.fingerprint, host_args)?;
    let info = wait_session(&mut agent).await?;
    Ok((relay, link, host, agent, info.id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_cut_and_a_new_source_address_keep_the_connection() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let (_relay, link, host, mut agent, id) = linked_session(&x, &["--headless"]).await?;
    let mut view = agent.view(id, 0).await?;
    tokio::time::timeout(Duration::from_secs(15), view.next_frame())
        .await
        .context("no first frame")??;

    // Cut for 3 s: QUIC carries the connection through; the next change arrives soon after.
    link.cut(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    x.put(0, 0, 64, 64, &tether_tests::test_picture(64, 64, 1))?;
    link.cut(false);
    let restored = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), view.next_frame())
        .await
        .with_context(|| format!("no frame within 5 s of the restore: {}", host.stderr_text()))??;
    eprintln!("live again {:?} after a 3 s cut", restored.elapsed());

    // The client's address changes (a NAT rebinding): QUIC migrates, nothing is resumed.
    link.rebind();
    x.put(64, 0, 64, 64, &tether_tests::test_picture(64, 64, 2))?;
    tokio::time::timeout(Duration::from_secs(5), view.next_frame())
        .await
        .context("no frame after the address changed")??;
    let away = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let ServerMsg::CustomerAway { .. } = agent.next_event().await? {
                return anyhow::Ok(());
            }
        }
    })
    .await;
    assert!(away.is_err(), "the migration was taken for a lost customer");
    Ok(())
}
