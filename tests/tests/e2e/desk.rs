//! The support desk end to end: two agents of one team, a customer joining with a team key and
//! a host window on Xvfb, the alert to both, one acceptance, a masked invitation, a transfer, and
//! the owner's console dropping while the customer keeps waiting, to be accepted again.

use std::time::Duration;

use anyhow::Context as _;
use tether_console::net::AgentClient;
use tether_protocol::desk::{EntryKind, MemberRole, QueueEntry, QueueId, Target};
use tether_protocol::msg::{Denied, Refusal, ServerMsg, SessionId, SessionInfo};
use tether_tests::{ChildGuard, RelayProc, TEST_PASSWORD, Xvfb, wait_window, window_titles};

/// The next message on `agent` that `f` picks (15 s at most).
async fn next<T>(
    agent: &mut AgentClient,
    what: &str,
    mut f: impl FnMut(ServerMsg) -> Option<T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(v) = f(agent.next_event().await?) {
                return anyhow::Ok(v);
            }
        }
    })
    .await
    .with_context(|| format!("{what} did not come within 15 s"))?
}

/// The next queue entry on `agent` that `f` picks.
async fn entry(
    agent: &mut AgentClient,
    what: &str,
    f: impl Fn(&QueueEntry) -> bool,
) -> anyhow::Result<QueueEntry> {
    next(agent, what, |m| match m {
        ServerMsg::Queue { entries } => entries.into_iter().find(|e| f(e)),
        _ => None,
    })
    .await
}

async fn started(agent: &mut AgentClient, id: SessionId) -> anyhow::Result<SessionInfo> {
    next(agent, "the session", |m| match m {
        ServerMsg::SessionStarted(i) if i.id == id => Some(i),
        ServerMsg::Refused(r) => panic!("refused: {r}"),
        _ => None,
    })
    .await
}

/// Waits until the host window's title says `part` (and returns it).
fn host_title(x: &Xvfb, host: &ChildGuard, part: &str) -> anyhow::Result<String> {
    let (_, title) = wait_window(&x.display(), part, Duration::from_secs(30))
        .with_context(|| host.stderr_text())?;
    Ok(title)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_session_is_accepted_shared_transferred_and_outlives_its_owners_console()
-> anyhow::Result<()> {
    let x = Xvfb::start(800, 600)?;
    let relay = RelayProc::start_args(&["--requeue-after", "2s", "--agent-grace", "1s"])?;
    let pw = format!("{TEST_PASSWORD}\n");
    for (login, display) in [("alice", "Alice A."), ("bob", "Bob B.")] {
        relay.cli(&["user", "add", login, "--display", display], Some(&pw))?;
    }
    relay.cli(&["team", "add", "Support"], None)?;
    for login in ["alice", "bob"] {
        relay.cli(&["team", "member", "add", "Support", login], None)?;
    }
    let teams = relay.cli(&["team", "list"], None)?;
    assert!(teams.contains("Support") && teams.contains("alice") && teams.contains("bob"));
    let login = |who: &'static str| {
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), who, TEST_PASSWORD)
    };
    let mut alice = login("alice").await?;
    let mut bob = login("bob").await?;
    assert_eq!(alice.display(), "Alice A.");
    assert_eq!(alice.teams(), ["Support"]);

    // A customer joins with a team key: both agents are alerted; the host waits in line.
    let key = relay.cli(&["key", "create", "--team", "Support"], None)?;
    let pin = key.lines().next().context("no PIN")?.to_string();
    let (log, err) = ChildGuard::log_file()?;
    let host = ChildGuard::with_log(
        "tether-host",
        tether_tests::Program::host()
            .command()
            .arg(&pin)
            .args([
                "--relay",
                &relay.addr,
                "--relay-fingerprint",
                &relay.fingerprint,
            ])
            .args(["--name", "Carol Customer"])
            .env("DISPLAY", x.display())
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()?,
        log,
    );
    let support = QueueId::Team("Support".into());
    let a = entry(&mut alice, "alice's alert", |e| {
        e.arrived && e.queue == support
    })
    .await?;
    let b = entry(&mut bob, "bob's alert", |e| e.arrived && e.queue == support).await?;
    assert_eq!(a.session, b.session);
    assert_eq!(a.customer.name, "Carol Customer");
    let id = a.session;
    host_title(&x, &host, "Waiting for a representative (number 1 in line)")?;

    // Alice accepts; Bob is too late and told by whom.
    alice.accept(id).await?;
    let info = started(&mut alice, id).await?;
    assert!(
        info.members
            .iter()
            .any(|m| m.login == "alice" && m.role == MemberRole::Owner)
    );
    bob.accept(id).await?;
    next(&mut bob, "bob's refusal", |m| match m {
        ServerMsg::Refused(Refusal::NotAllowed(Denied::AlreadyAccepted(by))) => Some(by),
        _ => None,
    })
    .await
    .map(|by| assert_eq!(by, "Alice A."))?;
    host_title(&x, &host, "Connected to Alice A.")?;

    // Alice invites Bob, masked; Bob joins and watches; the customer sees Alice only.
    alice.invite(id, Target::Agent("bob".into()), true).await?;
    let inv = entry(&mut bob, "the invitation", |e| {
        matches!(e.kind, EntryKind::Invitation { masked: true, .. })
    })
    .await?;
    assert_eq!(inv.queue, QueueId::Personal("bob".into()));
    bob.accept(id).await?;
    let shared = started(&mut bob, id).await?;
    assert!(shared.members.iter().any(|m| m.login == "bob" && m.masked));
    let mut watching = bob.view(id, 0).await?;
    tokio::time::timeout(Duration::from_secs(15), watching.next_frame()).await??;
    next(&mut alice, "the Users list with Bob masked", |m| match m {
        ServerMsg::MembersChanged { members, .. } => members
            .iter()
            .any(|m| m.login == "bob" && m.masked)
            .then_some(()),
        _ => None,
    })
    .await?;
    let titles: Vec<String> = window_titles(&x.display())?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert!(
        titles.iter().any(|t| t.ends_with("Connected to Alice A.")),
        "{titles:?}"
    );
    assert!(!titles.iter().any(|t| t.contains("Bob")), "{titles:?}");
    drop(watching);

    // Alice transfers the session to Bob, who takes charge, named to the customer.
    alice.transfer(id, Target::Agent("bob".into())).await?;
    next(&mut alice, "alice leaving", |m| {
        matches!(m, ServerMsg::Left { session, .. } if session == id).then_some(())
    })
    .await?;
    let moved = entry(&mut bob, "the transfer", |e| {
        matches!(e.kind, EntryKind::Transferred { .. })
    })
    .await?;
    assert_eq!(moved.session, id);
    bob.accept(id).await?;
    let owner = started(&mut bob, id).await?;
    assert_ne!(owner.me, shared.me, "taking charge is a new participant");
    host_title(&x, &host, "Connected to Bob B.")?;

    // Bob's console drops without leaving: the customer waits again, host still connected, in
    // Bob's queue first, then (after --requeue-after) in the team's, where Alice accepts.
    bob.connection().close(0u32.into(), b"killed");
    drop(bob);
    host_title(&x, &host, "Waiting for a representative")?;
    let back = entry(&mut alice, "the session back in the team queue", |e| {
        e.session == id && e.queue == support
    })
    .await?;
    assert!(
        matches!(back.kind, EntryKind::Returned { lost: true, .. }),
        "{back:?}"
    );
    let mut host = host;
    assert!(
        host.child.try_wait()?.is_none(),
        "the host stayed connected"
    );
    alice.accept(id).await?;
    started(&mut alice, id).await?;
    host_title(&x, &host, "Connected to Alice A.")?;

    // The history has it all.
    let history = relay.cli(&["session", "show", &id.to_string()], None)?;
    for action in [
        "session.accepted",
        "session.invited",
        "session.invitation_accepted",
        "session.transferred",
        "session.requeued",
    ] {
        assert!(history.contains(action), "{action} missing from\n{history}");
    }
    let list = relay.cli(&["session", "list", "--since", "1h"], None)?;
    assert!(list.contains(&id.to_string()), "{list}");
    alice.end_for_all(id).await?;
    host_title(&x, &host, "Session ended")?;
    Ok(())
}
