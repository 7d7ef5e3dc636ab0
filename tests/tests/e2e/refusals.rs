//! Bad keys, bad certificates and bad bytes: each is refused with a clear reason, audited, and
//! costs only the offending peer its connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tether_console::net::{AgentClient, ClientError};
use tether_desktop::capture::{CapturerFactory, SyntheticCapturer, SyntheticScreen};
use tether_host::{HostError, HostOptions};
use tether_net::{close, read_msg, write_msg};
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::msg::{ClientMsg, HELLO_MAGIC, Hello, MonitorInfo, Refusal, Role, ServerMsg};
use tether_protocol::pairing::SOURCE_MAX_FAILURES;
use tether_tests::RelayProc;
use tokio::sync::{mpsc, watch};

const PASSWORD: &str = "correct horse battery";

fn synthetic() -> CapturerFactory {
    let screens = Arc::new(Mutex::new(vec![SyntheticScreen {
        info: MonitorInfo {
            name: "fake".into(),
            x: 0,
            y: 0,
            width: 64,
            height: 48,
            primary: true,
        },
        pixels: vec![0x40; 64 * 48 * 4],
    }]));
    Arc::new(move || Ok(Box::new(SyntheticCapturer::new(screens.clone())) as _))
}

/// Runs a host with `key` in the background; returns its result when it ends.
fn host(
    relay: &RelayProc,
    key: &str,
    fingerprint: [u8; 32],
) -> (
    tokio::task::JoinHandle<Result<tether_host::Outcome, HostError>>,
    watch::Sender<bool>,
) {
    let opts = HostOptions {
        key: key.to_string(),
        relay: relay.addr.clone(),
        trust: tether_net::Trust::Pinned(fingerprint),
        name: None,
        reconnect_for: Duration::from_secs(3),
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let (end_tx, end_rx) = watch::channel(false);
    (
        tokio::spawn(tether_host::run(opts, synthetic(), tx, end_rx)),
        end_tx,
    )
}

async fn refusal(relay: &RelayProc, key: &str) -> anyhow::Result<Refusal> {
    let (task, _end) = host(relay, key, relay.fingerprint_bytes());
    match tokio::time::timeout(Duration::from_secs(10), task).await?? {
        Err(HostError::Refused(r)) => Ok(r),
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
}

fn audit(relay: &RelayProc) -> anyhow::Result<String> {
    relay.cli(&["audit", "--limit", "500"], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expired_reused_and_burnt_keys_are_refused_and_audited() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let mut agent =
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await?;

    // Malformed and wrong.
    assert_eq!(refusal(&relay, "12345").await?, Refusal::KeyMalformed);
    let (pin, _) = relay.create_key("alice")?;
    let wrong = if pin == "000000000" {
        "000000001"
    } else {
        "000000000"
    };
    assert_eq!(refusal(&relay, wrong).await?, Refusal::KeyWrong);

    // Used once, then refused.
    let (first, end) = host(&relay, &pin, relay.fingerprint_bytes());
    let info = tether_tests::wait_session(&mut agent).await?;
    assert_eq!(refusal(&relay, &pin).await?, Refusal::KeyUsed);
    end.send(true)?;
    let ended = tokio::time::timeout(Duration::from_secs(10), first).await??;
    assert!(
        matches!(ended, Ok(tether_host::Outcome::EndedHere)),
        "{ended:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let ServerMsg::SessionEnded { session, .. } = agent.next_event().await? {
                anyhow::ensure!(session == info.id, "another session ended");
                return anyhow::Ok(());
            }
        }
    })
    .await??;

    // Expired: a key whose validity has passed (made in the store with an old clock).
    let store = tether_relay::store::open(relay.dir.path()).await?;
    let now = tether_relay::server::now_unix();
    let (old, _) = store
        .create_key(
            tether_relay::store::KeyFor::Agent("alice".into()),
            Duration::from_secs(60),
            now - 3600,
        )
        .await?;
    assert_eq!(refusal(&relay, &old).await?, Refusal::KeyExpired);

    store.close().await?;

    let log = audit(&relay)?;
    for needle in [
        "key.refused",
        "wrong session key",
        "expired",
        "already been used",
        "session.started",
        "session.ended",
    ] {
        assert!(log.contains(needle), "audit lacks {needle:?}:\n{log}");
    }
    agent.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_address_with_too_many_failures_is_rate_limited() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    // Exactly twenty failures are counted; the twenty-first attempt is refused unchecked.
    for i in 0..SOURCE_MAX_FAILURES {
        assert_eq!(
            refusal(&relay, "1").await?,
            Refusal::KeyMalformed,
            "attempt {}",
            i + 1
        );
    }
    match refusal(&relay, "1").await? {
        Refusal::RateLimited { retry_after_secs } => assert!(retry_after_secs > 0),
        other => anyhow::bail!("the 21st attempt: {other:?}"),
    }
    // Logins are limited separately.
    for _ in 0..SOURCE_MAX_FAILURES {
        let r = AgentClient::login(
            &relay.addr,
            relay.fingerprint_bytes(),
            "alice",
            "wrong password",
        )
        .await;
        assert!(
            matches!(r, Err(ClientError::Refused(Refusal::BadCredentials))),
            "{r:?}"
        );
    }
    let r = AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await;
    assert!(
        matches!(r, Err(ClientError::Refused(Refusal::RateLimited { .. }))),
        "{r:?}"
    );
    assert!(audit(&relay)?.contains("agent.login_failed"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_fingerprint_is_a_hard_error() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let (pin, _) = relay.create_key("alice")?;
    let mut wrong = relay.fingerprint_bytes();
    wrong[0] ^= 1;
    let (task, _end) = host(&relay, &pin, wrong);
    let res = tokio::time::timeout(Duration::from_secs(10), task).await??;
    match res {
        Err(HostError::Connect(tether_net::ConnectError::FingerprintMismatch(msg))) => {
            assert!(msg.contains("does not match the pinned"), "{msg}");
        }
        other => anyhow::bail!("expected a fingerprint mismatch, got {other:?}"),
    }
    let r = AgentClient::login(&relay.addr, wrong, "alice", PASSWORD).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Connect(
                tether_net::ConnectError::FingerprintMismatch(_)
            ))
        ),
        "{r:?}"
    );
    // The key was not touched: the right fingerprint still joins.
    let (task, end) = host(&relay, &pin, relay.fingerprint_bytes());
    let mut agent =
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await?;
    tether_tests::wait_session(&mut agent).await?;
    end.send(true)?;
    let _ = task.await?;
    Ok(())
}

async fn raw_control(
    relay: &RelayProc,
) -> anyhow::Result<(
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
)> {
    let (ep, conn) = tether_net::connect(&relay.addr, relay.fingerprint_bytes()).await?;
    let (send, recv) = conn.open_bi().await?;
    Ok((ep, conn, send, recv))
}

async fn closed_with(conn: &quinn::Connection) -> anyhow::Result<u32> {
    let err = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .context("peer not closed")?;
    match err {
        quinn::ConnectionError::ApplicationClosed(c) => {
            Ok(u32::try_from(c.error_code.into_inner())?)
        }
        other => anyhow::bail!("closed otherwise: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_close_only_that_peer() -> anyhow::Result<()> {
    let relay = RelayProc::start()?;
    relay.add_agent("alice", PASSWORD)?;
    let mut good =
        AgentClient::login(&relay.addr, relay.fingerprint_bytes(), "alice", PASSWORD).await?;

    // An oversized length prefix as the very first bytes.
    let (_ep, conn, mut send, _recv) = raw_control(&relay).await?;
    send.write_all(&[0xff, 0xff, 0xff, 0x7f]).await?;
    assert_eq!(closed_with(&conn).await?, close::PROTOCOL);

    // Garbage after a valid hello and login.
    let (_ep, conn, mut send, mut recv) = raw_control(&relay).await?;
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: tether_protocol::PROTOCOL_VERSION,
        role: Role::Agent,
        software: "test".into(),
    };
    write_msg(&mut send, &hello, CONTROL_MAX_FRAME).await?;
    write_msg(
        &mut send,
        &ClientMsg::Login {
            user: "alice".into(),
            password: PASSWORD.into(),
            client: [0; 32],
        },
        CONTROL_MAX_FRAME,
    )
    .await?;
    assert!(matches!(
        read_msg::<ServerMsg>(&mut recv, CONTROL_MAX_FRAME).await?,
        Some(ServerMsg::Welcome { .. })
    ));
    assert!(matches!(
        read_msg::<ServerMsg>(&mut recv, CONTROL_MAX_FRAME).await?,
        Some(ServerMsg::LoggedIn { .. })
    ));
    send.write_all(&[7, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9])
        .await?;
    assert_eq!(closed_with(&conn).await?, close::PROTOCOL);

    // Garbage as a media stream preamble.
    let (_ep, conn, mut send, mut recv) = raw_control(&relay).await?;
    write_msg(&mut send, &hello, CONTROL_MAX_FRAME).await?;
    write_msg(
        &mut send,
        &ClientMsg::Login {
            user: "alice".into(),
            password: PASSWORD.into(),
            client: [0; 32],
        },
        CONTROL_MAX_FRAME,
    )
    .await?;
    let _ = read_msg::<ServerMsg>(&mut recv, CONTROL_MAX_FRAME).await?;
    let _ = read_msg::<ServerMsg>(&mut recv, CONTROL_MAX_FRAME).await?;
    let (mut media, _media_recv) = conn.open_bi().await?;
    media.write_all(&[3, 0xee, 0xee, 0xee]).await?;
    assert_eq!(closed_with(&conn).await?, close::PROTOCOL);

    // A peer of another version is told so.
    let (_ep, conn, mut send, mut recv) = raw_control(&relay).await?;
    let other = Hello {
        version: tether_protocol::PROTOCOL_VERSION + 1,
        ..hello.clone()
    };
    write_msg(&mut send, &other, CONTROL_MAX_FRAME).await?;
    let reply = read_msg::<ServerMsg>(&mut recv, CONTROL_MAX_FRAME).await?;
    assert_eq!(
        reply,
        Some(ServerMsg::Refused(Refusal::UnsupportedVersion {
            ours: tether_protocol::PROTOCOL_VERSION,
            theirs: tether_protocol::PROTOCOL_VERSION + 1
        }))
    );
    conn.close(0u32.into(), b"");

    // The well-behaved agent was never disturbed.
    good.create_key(None, None).await?;
    let ev = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // The list of sessions it is in (none) came at login.
            match good.next_event().await? {
                ServerMsg::InSessions { sessions } if sessions.is_empty() => {}
                other => return anyhow::Ok(other),
            }
        }
    })
    .await??;
    assert!(
        matches!(ev, ServerMsg::KeyCreated(ref k) if k.pin.len() == 9),
        "{ev:?}"
    );
    assert!(audit(&relay)?.contains("peer.protocol_error"));
    good.close().await;
    Ok(())
}
