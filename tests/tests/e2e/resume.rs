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

/// Alice's console (its backend, as the app runs it) logging in to `relay` at `addr`.
fn console(addr: &str, relay: &RelayProc) -> anyhow::Result<tether_console::backend::Backend> {
    use tether_console::backend::{Backend, BackendOptions, Startup};
    Ok(Backend::start(
        Startup::Login(tether_console::state::LoginRequest {
            relay: addr.to_string(),
            fingerprint: relay.fingerprint.clone(),
            user: "alice".into(),
            password: TEST_PASSWORD.into(),
        }),
        BackendOptions {
            opener: std::sync::Arc::new(tether_desktop::opener::RecordingOpener::default()),
            ..BackendOptions::system()
        },
        std::sync::Arc::new(|| {}),
    )?)
}

/// `len` pseudo-random bytes in a file under `dir`.
fn random_file(dir: &std::path::Path, len: usize) -> anyhow::Result<std::path::PathBuf> {
    let file = dir.join("big.bin");
    let mut data = vec![0u8; len];
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    for b in data.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *b = (s >> 24) as u8;
    }
    std::fs::write(&file, &data)?;
    Ok(file)
}

/// Waits until the customer holds `bytes` of a partial file in `inbox`.
fn partial_at_least(inbox: &std::path::Path, bytes: u64) -> anyhow::Result<()> {
    let partial = inbox.join(".tether-partial");
    tether_tests::wait_for(
        "a partial file at the customer",
        Duration::from_secs(60),
        || {
            std::fs::read_dir(&partial)
                .ok()?
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .any(|m| m.len() >= bytes)
                .then_some(())
        },
    )
}

/// Starts uploading `len` pseudo-random bytes to the customer through the console's backend,
/// with `link` limited to 80 Mbit/s, and waits until the customer holds 2 MiB of them. Returns
/// the source folder, the file and its progress.
fn upload_under_way(
    backend: &tether_console::backend::Backend,
    link: &ImpairedLink,
    session: tether_protocol::msg::SessionId,
    inbox: &std::path::Path,
    len: usize,
) -> anyhow::Result<(
    tempfile::TempDir,
    std::path::PathBuf,
    std::sync::Arc<tether_files::Progress>,
)> {
    use tether_console::backend::lock_transfers;
    let src = tempfile::tempdir()?;
    let file = random_file(src.path(), len)?;
    link.set(tether_tests::Impairment {
        rate_bps: Some(80_000_000),
        ..tether_tests::Impairment::default()
    });
    backend.send(tether_console::state::Command::Upload {
        session,
        local: file.clone(),
    });
    let progress = tether_tests::wait_for("the upload", Duration::from_secs(30), || {
        lock_transfers(backend.transfers())
            .iter()
            .find(|t| t.upload)
            .map(|t| t.progress.clone())
    })?;
    partial_at_least(inbox, 2 << 20)?;
    Ok((src, file, progress))
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
    let (relay, pin, mut agent) = tether_tests::relay_with_alice().await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_with_the_customer_goes_on_from_its_verified_prefix() -> anyhow::Result<()>
{
    use std::sync::atomic::Ordering;
    use tether_console::backend::lock_transfers;
    use tether_console::state::{Command, Event, TransferStatus};
    use tether_tests::wait_for;

    let x = Xvfb::start(320, 240)?;
    let inbox = tempfile::tempdir()?;
    let dir = inbox.path().display().to_string();
    let (relay, link, host, agent, id) = linked_session(
        &x,
        &["--headless", "--allow", "files", "--download-dir", &dir],
    )
    .await?;
    drop(agent);
    // The console as an agent runs it.
    let backend = console(&relay.addr, &relay)?;
    let mut seen: Vec<Event> = Vec::new();
    let mut event = |what: &str, f: &dyn Fn(&Event) -> bool| {
        wait_for(what, Duration::from_secs(30), || {
            seen.extend(backend.events());
            seen.iter().any(f).then_some(())
        })
    };
    // Alice's place in the session was kept for the console: it opens there.
    event(
        "the session",
        &|e| matches!(e, Event::Server(ServerMsg::SessionStarted(i)) if i.id == id),
    )?;
    backend.send(Command::View {
        session: id,
        monitor: 0,
    });
    let has_picture = || {
        tether_console::backend::lock(backend.views())
            .get(&id)
            .is_some_and(|v| v.width > 0)
    };
    wait_for("the customer's screen", Duration::from_secs(30), || {
        has_picture().then_some(())
    })?;

    // A 48 MiB upload over an 80 Mbit/s link, cut for longer than the idle timeout midway.
    // Cut once the customer holds 2 MiB of it (their partial file).
    let (_src, file, progress) = upload_under_way(&backend, &link, id, inbox.path(), 48 << 20)?;
    link.cut(true);
    event("the customer away", &|e| {
        matches!(e, Event::Server(ServerMsg::CustomerAway { .. }))
    })
    .with_context(|| host.stderr_text())?;
    // No stale picture while the customer is away: the view is dropped until they are back.
    assert!(
        !has_picture(),
        "the view outlived the customer's connection"
    );
    link.cut(false);
    let done = wait_for("the upload to finish", Duration::from_secs(90), || {
        lock_transfers(backend.transfers())
            .iter()
            .find(|t| t.upload && !matches!(t.status, TransferStatus::Running))
            .map(|t| t.status.clone())
    })
    .with_context(|| host.stderr_text())?;
    assert!(matches!(done, TransferStatus::Done { .. }), "{done:?}");
    let from = progress.resumed_from.load(Ordering::Relaxed);
    eprintln!("the upload went on from {from} bytes");
    assert!(
        (1 << 20..48 << 20).contains(&from),
        "it started again at {from}, not after the verified prefix"
    );
    assert_eq!(
        tether_files::hash_file(&inbox.path().join("big.bin"))?,
        tether_files::hash_file(&file)?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restarted_under_a_live_session_gives_it_back_to_the_same_people()
-> anyhow::Result<()> {
    use tether_console::state::{Command, Event};
    use tether_protocol::chat::{Audience, ChatLine};
    use tether_tests::wait_for;

    let x = Xvfb::start(320, 240)?;
    let (mut relay, pin, mut agent) = tether_tests::relay_with_alice().await?;
    let host = spawn_host_args(
        &x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        &["--headless"],
    )?;
    let id = wait_session(&mut agent).await?.id;
    drop(agent);
    // Alice's console (her place in the session kept for it) watches the screen and says hello.
    let backend = console(&relay.addr, &relay)?;
    let mut seen: Vec<Event> = Vec::new();
    let mut event = |what: &str, within: u64, f: &dyn Fn(&Event) -> bool| {
        wait_for(what, Duration::from_secs(within), || {
            seen.extend(backend.events());
            let i = seen.iter().position(f)?;
            Some(seen.drain(..=i).next_back())
        })
    };
    // Alice's place in the session was kept for the console: it opens there.
    event(
        "the session",
        30,
        &|e| matches!(e, Event::Server(ServerMsg::SessionStarted(i)) if i.id == id),
    )?;
    backend.send(Command::View {
        session: id,
        monitor: 0,
    });
    backend.send(Command::Say {
        session: id,
        to: Audience::Everyone,
        text: "before the restart".into(),
    });
    let has_picture = || {
        tether_console::backend::lock(backend.views())
            .get(&id)
            .is_some_and(|v| v.width > 0)
    };
    wait_for("the customer's screen", Duration::from_secs(30), || {
        has_picture().then_some(())
    })?;

    // The operator restarts the relay (SIGTERM, then serve again).
    let stopped = relay.restart(Duration::from_secs(5))?;
    let started = Instant::now();
    eprintln!("the relay stopped {stopped:?} after SIGTERM");
    event("the console reconnecting", 30, &|e| {
        matches!(e, Event::Reconnecting { .. })
    })?;
    event("the console back", 30, &|e| matches!(e, Event::Reconnected))
        .with_context(|| relay.child.stderr_text())?;
    // The same session, still Alice's, with the customer's screen live again.
    let listed = event("the sessions listed", 30, &|e| {
        matches!(e, Event::Server(ServerMsg::InSessions { .. }))
    })?;
    assert_eq!(
        listed,
        Some(Event::Server(ServerMsg::InSessions { sessions: vec![id] }))
    );
    // The customer's host comes back too, before or after the console (the relay tells the
    // console "customer back" only in the second case; a console's desk views its sessions
    // again on the list, and again when told the customer is back). Whichever came first,
    // viewing now shows what the customer's screen shows now.
    x.fill(5, 5, 4, 4, 0x33_66cc)?;
    let marker_shown = || {
        tether_console::backend::lock(backend.views())
            .get(&id)
            .is_some_and(|v| {
                let at = (5 * v.width as usize + 5) * 4;
                v.width == 320 && v.rgba.get(at..at + 4) == Some(&[0x33, 0x66, 0xcc, 0xff][..])
            })
    };
    let live_by = Instant::now() + Duration::from_secs(30);
    loop {
        backend.send(Command::View {
            session: id,
            monitor: 0,
        });
        // A view asked for while the customer is still away fails; ask again.
        if wait_for("the screen live again", Duration::from_secs(2), || {
            marker_shown().then_some(())
        })
        .is_ok()
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < live_by,
            "the screen never came back\n{}",
            host.stderr_text()
        );
    }
    eprintln!("live again {:?} after the relay started", started.elapsed());
    let mut host = host;
    assert!(host.child.try_wait()?.is_none(), "the host stayed");

    // The chat kept its line; the record tells the restart.
    backend.send(Command::ChatHistory(id));
    event(
        "the chat history",
        30,
        &|e| matches!(e, Event::Server(ServerMsg::Chat { entries, .. }) if entries.iter().any(|c| matches!(&c.line, ChatLine::Message { text, .. } if text == "before the restart"))),
    )?;
    let history = relay.cli(&["session", "show", &id.to_string()], None)?;
    for action in ["session.suspended", "session.restored", "session.resumed"] {
        assert!(history.contains(action), "{action} missing from\n{history}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_with_the_console_goes_on_when_the_console_is_back() -> anyhow::Result<()>
{
    use std::sync::atomic::Ordering;
    use tether_console::backend::lock_transfers;
    use tether_console::state::{Event, TransferStatus};
    use tether_tests::wait_for;

    let x = Xvfb::start(320, 240)?;
    let inbox = tempfile::tempdir()?;
    let dir = inbox.path().display().to_string();
    let (relay, pin, mut agent) = tether_tests::relay_with_alice().await?;
    let host = spawn_host_args(
        &x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        &["--headless", "--allow", "files", "--download-dir", &dir],
    )?;
    let id = wait_session(&mut agent).await?.id;
    drop(agent);
    // This time the console's own link is the one cut.
    let link = ImpairedLink::start(relay.addr.parse()?).await?;
    let backend = console(&link.addr().to_string(), &relay)?;
    let mut seen: Vec<Event> = Vec::new();
    let mut event = |what: &str, f: &dyn Fn(&Event) -> bool| {
        wait_for(what, Duration::from_secs(30), || {
            seen.extend(backend.events());
            let i = seen.iter().position(f)?;
            seen.drain(..=i);
            Some(())
        })
    };
    event(
        "the session",
        &|e| matches!(e, Event::Server(ServerMsg::SessionStarted(i)) if i.id == id),
    )?;

    let (_src, file, progress) = upload_under_way(&backend, &link, id, inbox.path(), 32 << 20)?;
    // Cut for longer than the idle timeout: the console's connection is gone.
    link.cut(true);
    event("the console reconnecting", &|e| {
        matches!(e, Event::Reconnecting { .. })
    })?;
    link.cut(false);
    event("the console back", &|e| matches!(e, Event::Reconnected))
        .with_context(|| relay.child.stderr_text())?;
    let done = wait_for("the upload to finish", Duration::from_secs(90), || {
        lock_transfers(backend.transfers())
            .iter()
            .find(|t| t.upload && !matches!(t.status, TransferStatus::Running))
            .map(|t| t.status.clone())
    })
    .with_context(|| host.stderr_text())?;
    assert!(matches!(done, TransferStatus::Done { .. }), "{done:?}");
    let from = progress.resumed_from.load(Ordering::Relaxed);
    eprintln!("the upload went on from {from} bytes after the console came back");
    assert!(
        (1 << 20..32 << 20).contains(&from),
        "it started again at {from}, not after the verified prefix"
    );
    assert_eq!(
        tether_files::hash_file(&inbox.path().join("big.bin"))?,
        tether_files::hash_file(&file)?
    );
    Ok(())
}
