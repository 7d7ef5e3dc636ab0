//! The queue scenario: a relay with 1,000 customers waiting in team and personal queues (raw
//! host connections joined with real keys), and an agent accepting them one by one. It measures
//! the time from an Accept to the session's start at the agent, and the relay's memory.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tether_console::net::AgentClient;
use tether_protocol::desk::QueueId;
use tether_protocol::msg::{ClientMsg, CustomerInfo, Role, ServerMsg, SessionId};
use tether_tests::{Program, RawPeer, RelayProc, raw_peer, status_kib};

use crate::measure::percentile;

/// Customers waiting.
pub(crate) const CUSTOMERS: usize = 1000;
/// Accepts measured.
const ACCEPTS: usize = 200;
/// Teams the customers are spread over.
const TEAMS: [&str; 3] = ["Support", "Billing", "Apps"];
/// Joins in flight at once.
const JOINING: usize = 32;

/// The scenario's figures.
#[derive(Debug, Clone)]
pub(crate) struct QueueResult {
    /// Customers waiting when the accepts began.
    pub customers: usize,
    /// Accept to session start, median.
    pub accept_p50_ms: f64,
    /// 95th percentile.
    pub accept_p95_ms: f64,
    /// Slowest.
    pub accept_max_ms: f64,
    /// The relay's peak resident memory.
    pub relay_rss_mb: f64,
    /// Seconds to join every customer.
    pub join_s: f64,
}

impl QueueResult {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": "queue",
            "customers": self.customers,
            "accept_p50_ms": self.accept_p50_ms,
            "accept_p95_ms": self.accept_p95_ms,
            "accept_max_ms": self.accept_max_ms,
            "relay_rss_mb": self.relay_rss_mb,
            "join_s": self.join_s,
        })
    }
}

/// Runs the scenario with its own relay (this binary re-run as one).
pub(crate) async fn queue() -> anyhow::Result<QueueResult> {
    let me = std::env::current_exe()?;
    let limit = (CUSTOMERS * 2).to_string();
    let relay = RelayProc::start_full(
        Program {
            path: me,
            prefix: vec!["--as-relay".into()],
        },
        &[
            "--max-connections",
            &limit,
            "--max-connections-per-source",
            &limit,
            "--max-pending-per-source",
            "64",
        ],
    )?;
    let pw = "benchmark password\n";
    for agent in ["bench", "watcher"] {
        relay.cli(&["user", "add", agent], Some(pw))?;
    }
    for team in TEAMS {
        relay.cli(&["team", "add", team], None)?;
        for agent in ["bench", "watcher"] {
            relay.cli(&["team", "member", "add", team, agent], None)?;
        }
    }
    let login = |who: &'static str| {
        AgentClient::login(
            &relay.addr,
            relay.fingerprint_bytes(),
            who,
            "benchmark password",
        )
    };
    let mut bench = login("bench").await?;
    // A second agent of every team: every arrival and acceptance is told to two agents.
    let mut watcher = login("watcher").await?;
    let watching = tokio::spawn(async move { while watcher.next_event().await.is_ok() {} });

    let keys = make_keys(&mut bench).await?;
    let t0 = Instant::now();
    let mut hosts: Vec<RawPeer> = Vec::with_capacity(CUSTOMERS);
    for chunk in keys.chunks(JOINING) {
        let mut joins = tokio::task::JoinSet::new();
        for k in chunk {
            joins.spawn(join(
                relay.addr.clone(),
                relay.fingerprint_bytes(),
                k.clone(),
            ));
        }
        while let Some(h) = joins.join_next().await {
            hosts.push(h??);
        }
    }
    let join_s = t0.elapsed().as_secs_f64();
    let waiting = wait_listed(&mut bench, CUSTOMERS).await?;
    eprintln!("{} customers waiting after {join_s:.1} s", waiting.len());

    let mut times = Vec::with_capacity(ACCEPTS);
    for id in waiting.iter().take(ACCEPTS) {
        let t = Instant::now();
        bench.accept(*id).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), bench.next_event()).await?? {
                ServerMsg::SessionStarted(i) if i.id == *id => break,
                ServerMsg::Refused(r) => bail!("accept refused: {r}"),
                _ => {}
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let relay_rss_mb = status_kib(relay.child.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
    watching.abort();
    drop(hosts);
    Ok(QueueResult {
        customers: waiting.len(),
        accept_p50_ms: percentile(&times, 0.5).unwrap_or(0.0),
        accept_p95_ms: percentile(&times, 0.95).unwrap_or(0.0),
        accept_max_ms: times.last().copied().unwrap_or(0.0),
        relay_rss_mb,
        join_s,
    })
}

/// Team keys for the customers, spread over the teams.
async fn make_keys(bench: &mut AgentClient) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::with_capacity(CUSTOMERS);
    for i in 0..CUSTOMERS {
        let team = TEAMS[i % TEAMS.len()].to_string();
        bench.create_key(None, Some(team)).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), bench.next_event()).await?? {
                ServerMsg::KeyCreated(k) => {
                    keys.push(k.pin);
                    break;
                }
                ServerMsg::Refused(r) => bail!("key refused: {r}"),
                _ => {}
            }
        }
    }
    Ok(keys)
}

/// A raw host that joins with `key` and waits.
pub(crate) async fn join(
    addr: String,
    fingerprint: [u8; 32],
    key: String,
) -> anyhow::Result<RawPeer> {
    let mut h = raw_peer(&addr, fingerprint, Role::Host).await?;
    h.send(&ClientMsg::Join {
        client: [0; 32],
        key,
        customer: CustomerInfo {
            name: "Bench Customer".into(),
            os: "Debian GNU/Linux 13".into(),
            hostname: "bench".into(),
            user: "customer".into(),
            request: None,
            monitors: Vec::new(),
        },
    })
    .await?;
    match h.next().await? {
        ServerMsg::Welcome { .. } => {}
        other => bail!("{other:?}"),
    }
    match h.next().await? {
        ServerMsg::Joined { .. } => Ok(h),
        other => bail!("join: {other:?}"),
    }
}

/// Reads the bench agent's queue news until `n` sessions wait; returns them oldest first.
async fn wait_listed(bench: &mut AgentClient, n: usize) -> anyhow::Result<Vec<SessionId>> {
    let mut waiting: Vec<SessionId> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while waiting.len() < n {
        let left = deadline
            .checked_duration_since(Instant::now())
            .context("the queue never filled")?;
        if let ServerMsg::Queue { entries } =
            tokio::time::timeout(left, bench.next_event()).await??
        {
            for e in entries {
                if matches!(e.queue, QueueId::Team(_)) && !waiting.contains(&e.session) {
                    waiting.push(e.session);
                }
            }
        }
    }
    Ok(waiting)
}
