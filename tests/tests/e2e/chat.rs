//! The chat end to end: a customer and two agents through a real relay; a representatives-only
//! line never reaches the customer; status notes for a control grant and a received file, from
//! a real host.

use std::time::Duration;

use anyhow::Context as _;
use tether_console::net::AgentClient;
use tether_protocol::chat::{Audience, ChatEntry, ChatLine, HostNote, Speaker, StatusNote};
use tether_protocol::desk::Target;
use tether_protocol::input::{AgentMsg, Grant, HostMsg};
use tether_protocol::msg::{ClientMsg, CustomerInfo, Role, ServerMsg, SessionId};
use tether_tests::{RawPeer, RelayProc, TEST_PASSWORD, Xvfb, raw_peer, wait_session};

/// The next chat line on `agent` that `f` picks (15 s at most).
async fn heard(
    agent: &mut AgentClient,
    what: &str,
    f: impl Fn(&ChatEntry) -> bool,
) -> anyhow::Result<ChatEntry> {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let ServerMsg::Chat { entries, .. } = agent.next_event().await?
                && let Some(e) = entries.into_iter().find(|e| f(e))
            {
                return anyhow::Ok(e);
            }
        }
    })
    .await
    .with_context(|| format!("{what} never came"))?
}

/// The next representative's message the raw host reads (its own lines come back too).
async fn host_heard(host: &mut RawPeer) -> anyhow::Result<(String, String)> {
    loop {
        if let ServerMsg::Chat { entries, .. } = host.next().await? {
            for e in entries {
                match e.line {
                    ChatLine::Message {
                        from: Speaker::Customer(_),
                        ..
                    } => {}
                    ChatLine::Message { from, text, .. } => {
                        return Ok((from.name().to_string(), text));
                    }
                    ChatLine::Note(n) => anyhow::bail!("the customer got a status note: {n}"),
                }
            }
        }
    }
}

fn says(text: &'static str) -> impl Fn(&ChatEntry) -> bool {
    move |e| matches!(&e.line, ChatLine::Message { text: t, .. } if t == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_and_agents_chat_and_private_lines_stay_private() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    relay.add_agent("bob", TEST_PASSWORD)?;
    let login = |who: &'static str| {
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), who, TEST_PASSWORD)
    };
    let mut alice = login("alice").await?;
    let mut bob = login("bob").await?;
    let (pin, _) = relay.create_key("alice")?;
    let mut host = raw_peer(&relay.addr, relay.fingerprint_bytes(), Role::Host).await?;
    host.send(&ClientMsg::Join {
        client: [0; 32],
        key: pin,
        customer: CustomerInfo {
            name: "Carol Customer".into(),
            os: "Linux".into(),
            hostname: "pc".into(),
            user: "carol".into(),
            request: None,
            monitors: Vec::new(),
        },
    })
    .await?;
    let info = wait_session(&mut alice).await?;
    let id: SessionId = info.id;
    alice.invite(id, Target::Agent("bob".into()), false).await?;
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match bob.next_event().await? {
                ServerMsg::Queue { .. } => bob.accept(id).await?,
                ServerMsg::SessionStarted(_) => return anyhow::Ok(()),
                _ => {}
            }
        }
    })
    .await
    .context("bob never joined")??;

    // The customer speaks: both agents read it, under the customer's name.
    host.send(&ClientMsg::Say {
        session: id,
        to: Audience::Representatives,
        text: "my printer is stuck".into(),
    })
    .await?;
    for agent in [&mut alice, &mut bob] {
        let e = heard(agent, "the customer's line", says("my printer is stuck")).await?;
        match e.line {
            ChatLine::Message { from, to, .. } => {
                assert_eq!(from, Speaker::Customer("Carol Customer".into()));
                assert_eq!(
                    to,
                    Audience::Everyone,
                    "a customer always speaks to everyone"
                );
            }
            other => anyhow::bail!("{other:?}"),
        }
    }
    // Alice to representatives only, then to everyone: the customer reads only the second.
    alice
        .say(id, Audience::Representatives, "reps only".into())
        .await?;
    heard(&mut bob, "the representatives' line", says("reps only")).await?;
    alice
        .say(id, Audience::Agent("bob".into()), "just bob".into())
        .await?;
    heard(&mut bob, "the private line", says("just bob")).await?;
    alice
        .say(id, Audience::Everyone, "hello Carol".into())
        .await?;
    assert_eq!(
        host_heard(&mut host).await?,
        ("alice".to_string(), "hello Carol".to_string())
    );
    // The log so far, read again when a tab opens, holds the notes and lines in order.
    alice.chat_history(id).await?;
    let log = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let ServerMsg::Chat { entries, .. } = alice.next_event().await?
                && entries.first().is_some_and(|e| e.seq == 1)
            {
                return anyhow::Ok(entries);
            }
        }
    })
    .await??;
    let lines: Vec<String> = log.iter().map(ChatEntry::transcript).collect();
    for (i, want) in [
        "* the customer waits in the personal queue of alice",
        "* alice joined",
        "* alice invited the personal queue of bob",
        "* bob joined",
        "Carol Customer: my printer is stuck",
        "alice (to representatives): reps only",
        "alice (to bob): just bob",
        "alice: hello Carol",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            lines[i].ends_with(want),
            "line {i}: {} (wanted {want})",
            lines[i]
        );
    }
    // Notes are shared with the other representative and kept in the record.
    bob.set_notes(id, "printer on floor 2".into()).await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let ServerMsg::Notes { text, by, .. } = alice.next_event().await?
                && text == "printer on floor 2"
            {
                assert_eq!(by.as_deref(), Some("bob"));
                return anyhow::Ok(());
            }
        }
    })
    .await??;
    // The record keeps the transcript and the notes.
    let show = tether_tests::wait_for("the notes in the record", Duration::from_secs(10), || {
        relay
            .cli(&["session", "show", &id.to_string()], None)
            .ok()
            .filter(|s| s.contains("printer on floor 2"))
    })?;
    assert!(show.contains("notes (saved by bob)"), "{show}");
    let transcript = relay.cli(&["session", "show", &id.to_string(), "--transcript"], None)?;
    assert!(
        transcript.contains("alice (to representatives): reps only"),
        "{transcript}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_grant_and_a_received_file_are_noted_in_the_log() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let inbox = tempfile::tempdir()?;
    let inbox_arg = inbox.path().display().to_string();
    let mut s = tether_tests::start_session(
        &x,
        None,
        &[
            "--headless",
            "--allow",
            "control,files",
            "--download-dir",
            &inbox_arg,
        ],
    )
    .await?;
    let mut chan = s.agent.input(s.info.id).await?;
    chan.send(&AgentMsg::RequestControl).await?;
    tokio::time::timeout(Duration::from_secs(15), async {
        while chan.next().await? != HostMsg::Control(Grant::On) {}
        anyhow::Ok(())
    })
    .await??;
    heard(&mut s.agent, "the control note", |e| {
        matches!(&e.line, ChatLine::Note(StatusNote::Host(HostNote::ControlGranted(n))) if n == "alice")
    })
    .await?;
    let local = tempfile::tempdir()?;
    let file = local.path().join("report.txt");
    std::fs::write(&file, b"twelve bytes")?;
    s.agent
        .upload(
            s.info.id,
            &file,
            "report.txt",
            &tether_files::Progress::new(0),
        )
        .await?;
    heard(&mut s.agent, "the file note", |e| {
        matches!(
            &e.line,
            ChatLine::Note(StatusNote::Host(HostNote::FileReceived { size: 12, .. }))
        )
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_managed_by_cli_and_each_agent_gets_their_own_and_their_teams()
-> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    relay.add_agent("bob", TEST_PASSWORD)?;
    relay.cli(&["team", "add", "Support"], None)?;
    relay.cli(&["team", "member", "add", "Support", "alice"], None)?;
    let team = relay.cli(
        &[
            "script",
            "add",
            "--team",
            "Support",
            "--title",
            "Greeting",
            "--text",
            "Hello, I am here to help.",
        ],
        None,
    )?;
    relay.cli(
        &[
            "script",
            "add",
            "--agent",
            "bob",
            "--title",
            "Driver",
            "--text",
            "Get the driver:",
            "--url",
            "https://example.com/driver",
        ],
        None,
    )?;
    let bad = relay.cli(
        &[
            "script",
            "add",
            "--agent",
            "bob",
            "--title",
            "x",
            "--text",
            "y",
            "--url",
            "file:///etc/passwd",
        ],
        None,
    );
    assert!(bad.is_err(), "only http(s) addresses");
    let list = relay.cli(&["script", "list"], None)?;
    assert!(
        list.contains("team Support\tGreeting") && list.contains("agent bob\tDriver"),
        "{list}"
    );
    let (addr, fp) = (relay.addr.clone(), relay.fingerprint_bytes());
    let scripts_of = |who: &'static str| {
        let addr = addr.clone();
        async move {
            let mut a = AgentClient::login(&addr, fp, who, TEST_PASSWORD).await?;
            a.scripts().await?;
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let ServerMsg::Scripts(s) = a.next_event().await? {
                        return anyhow::Ok(
                            s.into_iter()
                                .map(|s| (s.title, s.scope))
                                .collect::<Vec<_>>(),
                        );
                    }
                }
            })
            .await?
        }
    };
    assert_eq!(
        scripts_of("alice").await?,
        [("Greeting".to_string(), "team Support".to_string())]
    );
    assert_eq!(
        scripts_of("bob").await?,
        [("Driver".to_string(), "yours".to_string())]
    );
    relay.cli(&["script", "remove", team.trim()], None)?;
    assert!(scripts_of("alice").await?.is_empty());
    Ok(())
}
