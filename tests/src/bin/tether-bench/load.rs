//! The load scenario: one relay holding many sessions at once, driven from this process.
//!
//! - Sessions: real host code (`tether_host::run`, headless, denying every request) over a
//!   synthetic 160x120 screen of which a 32x32 block changes once a second, each joined through an
//!   agent's help link; agents (real `AgentClient`s, several sessions each) accept them and view
//!   every screen, decoding each frame. It runs for a while; the relay's memory is read after a
//!   warm-up, midway and at the end, and its CPU over the run.
//! - One real session meanwhile: the benchmark's own host on Xvfb and its typing scenario, before
//!   the load and under it.
//! - Idle hosts: then many more hosts join (raw connections kept alive, nobody viewing), and the
//!   relay's memory and CPU are read while they wait.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tether_console::net::AgentClient;
use tether_desktop::capture::{CaptureError, Capturer, CapturerFactory, Damage};
use tether_host::HostEvent;
use tether_protocol::desk::QueueId;
use tether_protocol::msg::{MonitorInfo, ServerMsg, SessionId};
use tether_protocol::screen::{FrameRef, Rect};
use tether_tests::{RawPeer, RelayProc, cpu_seconds, status_kib};
use tokio::sync::{mpsc, watch};

/// How big the load is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadPlan {
    /// Sessions at once.
    pub sessions: usize,
    /// How long they run.
    pub minutes: f64,
    /// Idle hosts afterwards.
    pub idle: usize,
}

/// Agents sharing the sessions.
const AGENTS: usize = 25;
/// The synthetic screen.
const SW: u32 = 160;
const SH: u32 = 120;
/// The block that changes each second.
const BLOCK: u32 = 32;
/// Joins in flight at once.
const JOINING: usize = 50;
/// Time for every session to settle before the first reading.
const WARM_UP: Duration = Duration::from_secs(30);
/// How long the idle hosts are watched.
const IDLE_HOLD: Duration = Duration::from_secs(60);

/// The scenario's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadResult {
    pub sessions: usize,
    pub minutes: f64,
    pub setup_per_s: f64,
    pub relay_rss_mb_start: f64,
    pub relay_rss_mb_mid: f64,
    pub relay_rss_mb_end: f64,
    pub relay_cpu_s: f64,
    pub frames_per_s: f64,
    pub baseline_p50_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub idle_hosts: usize,
    pub idle_setup_per_s: f64,
    pub idle_rss_mb: f64,
    pub idle_cpu_pct: f64,
}

impl LoadResult {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": "load",
            "sessions": self.sessions,
            "minutes": self.minutes,
            "setup_per_s": self.setup_per_s,
            "relay_rss_mb_start": self.relay_rss_mb_start,
            "relay_rss_mb_mid": self.relay_rss_mb_mid,
            "relay_rss_mb_end": self.relay_rss_mb_end,
            "relay_cpu_s": self.relay_cpu_s,
            "relay_cpu_ms_per_session_per_s": self.cpu_per_session_ms(),
            "frames_per_s": self.frames_per_s,
            "baseline_latency_p50_ms": self.baseline_p50_ms,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "idle_hosts": self.idle_hosts,
            "idle_setup_per_s": self.idle_setup_per_s,
            "idle_relay_rss_mb": self.idle_rss_mb,
            "idle_relay_cpu_pct": self.idle_cpu_pct,
        })
    }

    /// Relay CPU per session, in milliseconds per second of wall time.
    pub(crate) fn cpu_per_session_ms(&self) -> f64 {
        let wall = self.minutes * 60.0;
        if self.sessions == 0 || wall <= 0.0 {
            return 0.0;
        }
        self.relay_cpu_s * 1000.0 / wall / self.sessions as f64
    }

    pub(crate) fn print(&self) {
        println!(
            "load: {} sessions for {:.1} min, set up at {:.0}/s; relay RSS {:.0} → {:.0} → {:.0} MB, \
             CPU {:.1} s ({:.3} ms per session per second), {:.0} frames/s to agents; typing p50 \
             {:.1} ms alone, {:.1} ms (p95 {:.1}) under load",
            self.sessions,
            self.minutes,
            self.setup_per_s,
            self.relay_rss_mb_start,
            self.relay_rss_mb_mid,
            self.relay_rss_mb_end,
            self.relay_cpu_s,
            self.cpu_per_session_ms(),
            self.frames_per_s,
            self.baseline_p50_ms,
            self.latency_p50_ms,
            self.latency_p95_ms
        );
        println!(
            "load: {} idle hosts joined at {:.0}/s; relay RSS {:.0} MB, CPU {:.1} % of a core while they wait",
            self.idle_hosts, self.idle_setup_per_s, self.idle_rss_mb, self.idle_cpu_pct
        );
    }
}

/// The relay's arguments for the load: limits wide enough for every connection from loopback.
pub(crate) fn relay_args(plan: &LoadPlan) -> Vec<String> {
    let all = (plan.sessions + plan.idle + 200).to_string();
    [
        "--max-connections",
        &all,
        "--max-connections-per-source",
        &all,
        "--max-pending",
        "4000",
        "--max-pending-per-source",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Adds the load's agents (`load0`…) to the relay.
pub(crate) fn add_agents(relay: &RelayProc) -> anyhow::Result<()> {
    for i in 0..AGENTS {
        relay.cli(
            &["user", "add", &format!("load{i}")],
            Some("load password\n"),
        )?;
    }
    relay.cli(&["user", "add", "idle"], Some("load password\n"))?;
    Ok(())
}

/// A screen whose block changes once a second.
struct Ticking {
    info: MonitorInfo,
    pixels: Vec<u8>,
    next: Instant,
    n: u32,
    seed: u64,
}

impl Ticking {
    fn new(seed: u64) -> Self {
        let mut pixels = vec![0u8; (SW * SH * 4) as usize];
        for (i, p) in pixels.chunks_exact_mut(4).enumerate() {
            let (x, y) = (i as u32 % SW, i as u32 / SW);
            p.copy_from_slice(&[(x * 2) as u8, (y * 2) as u8, 0x60, 0]);
        }
        Self {
            info: MonitorInfo {
                name: "synthetic".into(),
                x: 0,
                y: 0,
                width: SW,
                height: SH,
                primary: true,
            },
            pixels,
            next: Instant::now() + Duration::from_secs(1),
            n: 0,
            seed,
        }
    }

    /// Draws the next block (dark strokes on a light ground, like text) and says where.
    fn change(&mut self) -> Rect {
        self.n += 1;
        let cols = SW / BLOCK;
        let rows = SH / BLOCK;
        let cell = self.n % (cols * rows);
        let (bx, by) = ((cell % cols) * BLOCK, (cell / cols) * BLOCK);
        for y in by..by + BLOCK {
            for x in bx..bx + BLOCK {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                let ink = (self.seed & 7) == 0 || (y % 8 == 3 && (self.seed & 1) == 0);
                let v = if ink { 0x20 } else { 0xf0 };
                let o = ((y * SW + x) * 4) as usize;
                self.pixels[o..o + 4].copy_from_slice(&[v, v, v.wrapping_add(self.n as u8), 0]);
            }
        }
        self.next += Duration::from_secs(1);
        Rect {
            x: bx,
            y: by,
            w: BLOCK,
            h: BLOCK,
        }
    }
}

impl Capturer for Ticking {
    fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        Ok(vec![self.info.clone()])
    }

    fn wait_damage(&mut self, timeout: Option<Duration>) -> Result<Damage, CaptureError> {
        let now = Instant::now();
        if now < self.next {
            std::thread::sleep(timeout.map_or(self.next - now, |t| t.min(self.next - now)));
        }
        if Instant::now() >= self.next {
            Ok(Damage::Rects(vec![self.change()]))
        } else {
            Ok(Damage::None)
        }
    }

    fn capture(
        &mut self,
        _index: usize,
        _only: Option<&[Rect]>,
    ) -> Result<FrameRef<'_>, CaptureError> {
        Ok(FrameRef {
            width: SW,
            height: SH,
            stride: (SW * 4) as usize,
            data: &self.pixels,
        })
    }
}

/// Frames and bytes the agents decoded, and which sessions have shown a picture.
#[derive(Default)]
struct Seen {
    frames: AtomicU64,
    bytes: AtomicU64,
    live: Mutex<HashSet<SessionId>>,
}

/// One load agent: accepts what arrives in its queue and views every session it gets.
async fn agent(relay: Target, i: usize, seen: Arc<Seen>) -> anyhow::Result<()> {
    let login = format!("load{i}");
    let mut client =
        AgentClient::login(&relay.addr, relay.fingerprint, &login, "load password").await?;
    let mut events = client.take_events();
    let client = Arc::new(client);
    let mine = QueueId::Personal(login);
    while let Some(ev) = events.recv().await {
        match ev? {
            ServerMsg::Queue { entries } => {
                for e in entries.iter().filter(|e| e.queue == mine) {
                    client.accept(e.session).await?;
                }
            }
            ServerMsg::SessionStarted(info) => {
                let c = client.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(mut view) = c.view(info.id, 0).await else {
                        return;
                    };
                    while let Ok(f) = view.next_frame().await {
                        seen.frames.fetch_add(1, Ordering::Relaxed);
                        seen.bytes.fetch_add(f.bytes as u64, Ordering::Relaxed);
                        if let Ok(mut live) = seen.live.lock() {
                            live.insert(info.id);
                        }
                    }
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a load task needs of the relay.
#[derive(Clone)]
struct Target {
    addr: String,
    fingerprint: [u8; 32],
}

/// Runs the sessions, measuring the real session's typing with `typing` before and midway.
pub(crate) async fn load<F, Fut>(
    relay: &RelayProc,
    plan: LoadPlan,
    typing: F,
) -> anyhow::Result<LoadResult>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(f64, f64)>>,
{
    let pid = relay.child.pid();
    let rss = || status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
    let target = Target {
        addr: relay.addr.clone(),
        fingerprint: relay.fingerprint_bytes(),
    };
    let mut out = LoadResult {
        sessions: plan.sessions,
        minutes: plan.minutes,
        idle_hosts: plan.idle,
        ..LoadResult::default()
    };
    eprintln!("load: typing alone…");
    out.baseline_p50_ms = typing().await?.0;

    // The agents log in one after another (one password check at a time per source).
    let seen = Arc::new(Seen::default());
    let mut agents = tokio::task::JoinSet::new();
    for i in 0..AGENTS {
        let (t, s) = (target.clone(), seen.clone());
        agents.spawn(agent(t, i, s));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The hosts join, a batch at a time.
    eprintln!("load: {} sessions joining…", plan.sessions);
    let (end_tx, end_rx) = watch::channel(false);
    let t0 = Instant::now();
    let mut hosts = tokio::task::JoinSet::new();
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel::<()>();
    let mut joined = 0usize;
    for start in (0..plan.sessions).step_by(JOINING) {
        let batch = (start..plan.sessions).take(JOINING);
        let n = batch.len();
        for i in batch {
            let opts = tether_host::HostOptions {
                key: format!("https://{}/a/load{}", target.addr, i % AGENTS),
                relay: target.addr.clone(),
                trust: tether_net::Trust::Pinned(target.fingerprint),
                name: Some(format!("Load customer {i}")),
                reconnect_for: Duration::from_secs(120),
            };
            let seed = 0x9e37_79b9_7f4a_7c15_u64 ^ (i as u64 + 1);
            let factory: CapturerFactory =
                Arc::new(move || Ok(Box::new(Ticking::new(seed)) as Box<dyn Capturer>));
            let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
            let said = joined_tx.clone();
            tokio::spawn(async move {
                while let Some(e) = ev_rx.recv().await {
                    if matches!(e, HostEvent::Joined { .. }) {
                        let _ = said.send(());
                    }
                }
            });
            hosts.spawn(tether_host::run(opts, factory, ev_tx, end_rx.clone()));
        }
        for _ in 0..n {
            tokio::time::timeout(Duration::from_secs(60), joined_rx.recv())
                .await
                .context("a host did not join within 60 s")?;
            joined += 1;
        }
    }
    out.setup_per_s = joined as f64 / t0.elapsed().as_secs_f64();
    tether_tests::until(
        "every session live at its agent",
        Duration::from_secs(300),
        || seen.live.lock().map(|l| l.len()).unwrap_or(0) >= plan.sessions,
    )
    .await?;
    eprintln!(
        "load: {} sessions live after {:.1} s; warming up",
        plan.sessions,
        t0.elapsed().as_secs_f64()
    );
    tokio::time::sleep(WARM_UP).await;

    let run = Duration::from_secs_f64(plan.minutes * 60.0);
    let begin = Instant::now();
    let cpu0 = cpu_seconds(pid);
    let frames0 = seen.frames.load(Ordering::Relaxed);
    out.relay_rss_mb_start = rss();
    tokio::time::sleep(run / 2).await;
    out.relay_rss_mb_mid = rss();
    eprintln!("load: midway, typing under load…");
    let (p50, p95) = typing().await?;
    out.latency_p50_ms = p50;
    out.latency_p95_ms = p95;
    let left = run.saturating_sub(begin.elapsed());
    tokio::time::sleep(left).await;
    out.relay_rss_mb_end = rss();
    out.relay_cpu_s = cpu_seconds(pid) - cpu0;
    let wall = begin.elapsed().as_secs_f64();
    out.minutes = wall / 60.0;
    out.frames_per_s = (seen.frames.load(Ordering::Relaxed) - frames0) as f64 / wall;
    if hosts.len() != plan.sessions || agents.len() != AGENTS {
        bail!("hosts or agents stopped during the load");
    }
    let _ = end_tx.send(true);
    agents.abort_all();
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while hosts.join_next().await.is_some() {}
    })
    .await;

    idle(&target, plan.idle, pid, &mut out).await?;
    Ok(out)
}

/// Many hosts that join and wait, viewed by nobody.
async fn idle(target: &Target, n: usize, pid: u32, out: &mut LoadResult) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    eprintln!("load: {n} idle hosts joining…");
    let key = format!("https://{}/a/idle", target.addr);
    let t0 = Instant::now();
    let mut peers: Vec<RawPeer> = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let mut joins = tokio::task::JoinSet::new();
        for _ in 0..left.min(64) {
            joins.spawn(crate::queue::join(
                target.addr.clone(),
                target.fingerprint,
                key.clone(),
            ));
        }
        while let Some(p) = joins.join_next().await {
            peers.push(p??);
            left -= 1;
        }
    }
    out.idle_setup_per_s = n as f64 / t0.elapsed().as_secs_f64();
    let cpu0 = cpu_seconds(pid);
    let t1 = Instant::now();
    tokio::time::sleep(IDLE_HOLD).await;
    out.idle_cpu_pct = (cpu_seconds(pid) - cpu0) / t1.elapsed().as_secs_f64() * 100.0;
    out.idle_rss_mb = status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
    let open = peers
        .iter()
        .filter(|p| p.conn.close_reason().is_none())
        .count();
    if open < n {
        bail!("{} of {n} idle hosts lost their connection", n - open);
    }
    drop(peers);
    Ok(())
}
