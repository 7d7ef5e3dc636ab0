//! `tether-bench`: Tether's screen benchmark with real processes.
//!
//! It starts Xvfb (1920x1080), a relay and a customer host as separate processes (this binary
//! re-run with `--as-relay` / `--as-host`, so nothing else needs building), and a headless agent in
//! this process that decodes every frame. Scenarios are driven by xdotool and measured from the
//! input event to the moment the agent's decoded frame equals the X server's pixels in the
//! changed region.
//!
//! `cargo run --release -p tether-tests --bin tether-bench -- [--scenarios typing,idle] [--json FILE]`
//!
//! `glass` also runs the real console window (this binary re-run with `--as-console`) on a second
//! Xvfb display and measures what the agent's own screen shows (see `glass.rs`).
//!
//! `--scenarios impaired` runs typing, photos and an upload with the host behind a link of
//! 100 ms delay each way, 2 % loss and 10 Mbit/s. `--scenarios load` (neither is part of the
//! default run) puts many sessions and idle hosts on one
//! relay for `--load-minutes` and measures the relay and one real session's typing meanwhile.

mod corpus;
mod glass;
mod impaired;
mod load;
mod measure;
mod queue;
mod report;
mod scenarios;
mod video;
mod web;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use tether_console::net::AgentClient;
use tether_protocol::msg::ServerMsg;
use tether_protocol::screen::Quality;
use tether_tests::{Program, RelayProc, Xvfb, spawn_host_with};
use x11rb::connection::Connection as _;

use measure::{Bench, Received, Record};
use scenarios::*;

const ALL: &[&str] = &[
    "typing",
    "typing-aa",
    "scroll",
    "scroll-aa",
    "scroll-lines-aa",
    "scroll-photo",
    "scroll-web",
    "scroll-web-text",
    "scroll-web-back",
    "drag",
    "drag-desktop",
    "drag-shell",
    "menu-desktop",
    "photo",
    "photo-smooth",
    "photo-auto",
    "video",
    "glass",
    "idle",
    "files",
    "queue",
];
/// Size of the file scenario's file.
const FILE_BYTES: u64 = 1 << 30;
/// How long the lossy photo scenarios wait for the picture to be exact after the last flip.
pub(crate) const SETTLE: Duration = Duration::from_secs(10);
const W: u16 = 1920;
const H: u16 = 1080;

#[derive(Parser)]
#[command(
    name = "tether-bench",
    about = "Tether screen benchmark (real processes, Xvfb, xdotool)"
)]
struct Cli {
    /// Comma-separated scenarios: typing, typing-aa, scroll, scroll-aa, scroll-lines-aa,
    /// scroll-photo, scroll-web, scroll-web-text, scroll-web-back, drag, photo, photo-smooth,
    /// photo-auto, video, glass, idle, files, queue (default: all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<String>>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// The load scenario's sessions at once.
    #[arg(long, default_value_t = 1000)]
    load_sessions: usize,
    /// How long the load scenario's sessions run, in minutes.
    #[arg(long, default_value_t = 10.0)]
    load_minutes: f64,
    /// The load scenario's idle hosts.
    #[arg(long, default_value_t = 10_000)]
    load_idle: usize,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // This binary stands for the other programs the benchmark starts.
    let as_program = |name: &str| -> Vec<OsString> {
        std::iter::once(OsString::from(name))
            .chain(args[2..].iter().cloned())
            .collect()
    };
    let report = |name: &str, r: anyhow::Result<()>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    };
    match args.get(1).and_then(|a| a.to_str()) {
        Some("--as-relay") => {
            let r = tether_relay::cli::run_with_args(as_program("tether-relay"));
            return report("tether-relay", r);
        }
        Some("--as-console") => {
            let r = tether_console::cli::run_with_args(as_program("tether-console"));
            return report("tether-console", r);
        }
        Some("--as-host") => return tether_host::cli::run_with_args(as_program("tether-host")),
        _ => {}
    }
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The load scenario's hosts each hold a blocking thread while they wait for damage.
        .max_blocking_threads(4096)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let scenarios: Vec<String> = cli
        .scenarios
        .clone()
        .unwrap_or_else(|| ALL.iter().map(|s| s.to_string()).collect());
    for s in &scenarios {
        if !ALL.contains(&s.as_str()) && s != "load" && s != "impaired" {
            bail!(
                "unknown scenario {s:?}; known: {}, impaired, load",
                ALL.join(", ")
            );
        }
    }
    let mut rows: Vec<serde_json::Value> = Vec::new();
    // The queue scenario runs on a relay of its own, without a screen.
    if scenarios.iter().any(|s| s == "queue") {
        eprintln!("running queue…");
        let q = queue::queue().await?;
        println!(
            "queue: {} customers waiting, accept p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, relay peak RSS {:.0} MB, joined in {:.1} s",
            q.customers,
            q.accept_p50_ms,
            q.accept_p95_ms,
            q.accept_max_ms,
            q.relay_rss_mb,
            q.join_s
        );
        rows.push(q.json());
    }
    // So does the load scenario, with the real session on its relay.
    if scenarios.iter().any(|s| s == "load") {
        let plan = load::LoadPlan {
            sessions: cli.load_sessions,
            minutes: cli.load_minutes,
            idle: cli.load_idle,
        };
        let args = load::relay_args(&plan);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let relay = RelayProc::start_full(relay_program()?, &args)?;
        load::add_agents(&relay)?;
        let (bench, processes) = start_on(relay).await?;
        bench.put_screen(&vec![0x30; usize::from(W) * usize::from(H) * 4])?;
        bench.synced(Duration::from_secs(20)).await?;
        let b = &bench;
        let typing_ms = move || async move {
            let r = typing(b, Text::Bitmap).await?;
            anyhow::Ok((
                r.latency_p50_ms.unwrap_or(0.0),
                r.latency_p95_ms.unwrap_or(0.0),
            ))
        };
        let r = load::load(&processes.relay, plan, typing_ms).await?;
        r.print();
        rows.push(r.json());
        drop(bench);
        drop(processes);
    }
    // The impaired scenario has its own relay and a link between it and the host.
    if scenarios.iter().any(|s| s == "impaired") {
        eprintln!("running impaired…");
        let relay = RelayProc::start_with(relay_program()?)?;
        let link = tether_tests::ImpairedLink::start(relay.addr.parse()?).await?;
        let (bench, processes) = start_via(relay, &link.addr().to_string()).await?;
        bench.put_screen(&vec![0x30; usize::from(W) * usize::from(H) * 4])?;
        bench.synced(Duration::from_secs(20)).await?;
        let (h0, r0) = bench.cpu();
        let mut res = impaired::impaired(&bench, &link).await?;
        let (h1, r1) = bench.cpu();
        if let Some(first) = res.first_mut() {
            first.host_cpu_s = h1 - h0;
            first.relay_cpu_s = r1 - r0;
        }
        report::table(&res);
        rows.extend(res.iter().map(measure::Result_::json));
        drop(bench);
        drop(processes);
    }
    let glass = scenarios.iter().any(|s| s == "glass");
    let scenarios: Vec<String> = scenarios
        .into_iter()
        .filter(|s| s != "queue" && s != "load" && s != "impaired" && s != "glass")
        .collect();
    let mut results = Vec::new();
    if !scenarios.is_empty() {
        results = on_one_session(&scenarios).await?;
    }
    // The glass scenario has its own relay, host and console, once the others have stopped.
    if glass {
        eprintln!("running glass…");
        let me = Program {
            path: std::env::current_exe()?,
            prefix: Vec::new(),
        };
        results.extend(glass::glass(relay_program()?, me).await?);
    }
    if results.is_empty() {
        if let Some(path) = &cli.json {
            std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
        }
        return Ok(());
    }
    report::table(&results);
    if let Some(path) = cli.json {
        report::json(&path, &results, rows)?;
    }
    Ok(())
}

/// Runs `scenarios` one after the other on one session.
async fn on_one_session(scenarios: &[String]) -> anyhow::Result<Vec<measure::Result_>> {
    let (bench, processes) = start_on(RelayProc::start_with(relay_program()?)?).await?;
    // A plain desktop background.
    bench.put_screen(&vec![0x30; usize::from(W) * usize::from(H) * 4])?;
    bench.synced(Duration::from_secs(20)).await?;

    let mut results = Vec::new();
    for s in scenarios {
        eprintln!("running {s}…");
        let (h0, r0) = bench.cpu();
        let mut res = match s.as_str() {
            "typing" => typing(&bench, Text::Bitmap).await?,
            "typing-aa" => typing(&bench, Text::AntiAliased).await?,
            "scroll" => scroll(&bench, Text::Bitmap).await?,
            "scroll-aa" => scroll(&bench, Text::AntiAliased).await?,
            "scroll-lines-aa" => scroll_lines(&bench).await?,
            "scroll-photo" => scroll_photo(&bench).await?,
            "scroll-web" => web::scroll_web(&bench, true).await?,
            "scroll-web-text" => web::scroll_web(&bench, false).await?,
            "scroll-web-back" => web::scroll_web_back(&bench).await?,
            "drag" => drag(&bench, Desktop::Plain).await?,
            "drag-desktop" => drag(&bench, Desktop::Wallpaper).await?,
            "drag-shell" => drag(&bench, Desktop::Shell).await?,
            "menu-desktop" => menu(&bench).await?,
            "photo" => photos(&bench, Quality::Sharp, "photo", SETTLE).await?,
            "photo-smooth" => photos(&bench, Quality::Smooth, "photo-smooth", SETTLE).await?,
            "photo-auto" => photos(&bench, Quality::Auto, "photo-auto", SETTLE).await?,
            "video" => video::video(&bench).await?,
            "idle" => idle(&bench).await?,
            "files" => files(&bench).await?,
            _ => unreachable!("checked above"),
        };
        let (h1, r1) = bench.cpu();
        res.host_cpu_s = h1 - h0;
        res.relay_cpu_s = r1 - r0;
        results.push(res);
        bench.control.set_quality(Quality::Auto).await?;
        bench.put_screen(&vec![0x30; usize::from(W) * usize::from(H) * 4])?;
    }
    drop(bench);
    drop(processes);
    Ok(results)
}

/// What the benchmark started; stopped on drop.
struct Processes {
    _host: tether_tests::ChildGuard,
    relay: RelayProc,
    _host_dir: tempfile::TempDir,
}

/// This binary, re-run as a relay.
fn relay_program() -> anyhow::Result<Program> {
    Ok(Program {
        path: std::env::current_exe()?,
        prefix: vec!["--as-relay".into()],
    })
}

/// Starts Xvfb and a host (this binary re-run as one) on `relay`, logs an agent in, and views
/// the session's screen, recording every frame as it is decoded.
async fn start_on(relay: RelayProc) -> anyhow::Result<(Bench, Processes)> {
    let addr = relay.addr.clone();
    start_via(relay, &addr).await
}

/// [`start_on`] with the host reaching the relay at `via` (a link in between).
async fn start_via(relay: RelayProc, via: &str) -> anyhow::Result<(Bench, Processes)> {
    let me = std::env::current_exe()?;
    let x = Xvfb::start(u32::from(W), u32::from(H))?;
    let (conn, screen) = x11rb::connect(Some(&x.display()))?;
    let root = conn.setup().roots[screen].root;
    relay.add_agent("bench", "benchmark password")?;
    let mut agent = AgentClient::login(
        &relay.addr,
        relay.fingerprint_bytes(),
        "bench",
        "benchmark password",
    )
    .await?;
    agent.create_key(None, None).await?;
    let pin = loop {
        if let ServerMsg::KeyCreated(k) = agent.next_event().await? {
            break k.pin;
        }
    };
    let host_prog = Program {
        path: me,
        prefix: vec!["--as-host".into()],
    };
    let host_dir = tempfile::tempdir()?;
    let host_dir_arg = host_dir.path().display().to_string();
    let host = spawn_host_with(
        &host_prog,
        &x.display(),
        &pin,
        via,
        &relay.fingerprint,
        &[
            "--headless",
            "--allow",
            "files",
            "--download-dir",
            &host_dir_arg,
        ],
    )?;
    let info = tether_tests::session::wait_session(&mut agent).await?;
    let view = agent.view(info.id, 0).await?;
    let control = view.control();
    let received = Arc::new(Mutex::new(Received::default()));
    let rx = received.clone();
    tokio::spawn(record(view, rx));
    let agent = Arc::new(agent);
    let bench = Bench {
        x,
        agent,
        session: info.id,
        host_dir: host_dir.path().to_path_buf(),
        conn,
        root,
        received,
        control,
        host_pid: host.pid(),
        relay_pid: relay.child.pid(),
    };
    Ok((
        bench,
        Processes {
            relay,
            _host: host,
            _host_dir: host_dir,
        },
    ))
}

/// Keeps the agent's copy of the screen and each frame's arrival time, bytes and rectangles.
async fn record(mut view: tether_console::net::ScreenView, rx: Arc<Mutex<Received>>) {
    loop {
        let f = match view.next_frame().await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("the view ended: {e}");
                return;
            }
        };
        let at = Instant::now();
        let fb = view.framebuffer();
        let mut r = rx.lock().unwrap_or_else(|e| e.into_inner());
        if f.resized || r.width != fb.width() || r.height != fb.height() {
            r.width = fb.width();
            r.height = fb.height();
            r.pixels = fb.pixels().to_vec();
        } else {
            let pitch = fb.width() as usize * 4;
            for rect in &f.rects {
                for y in rect.y..rect.y + rect.h {
                    let off = y as usize * pitch + rect.x as usize * 4;
                    let n = rect.w as usize * 4;
                    r.pixels[off..off + n].copy_from_slice(&fb.pixels()[off..off + n]);
                }
            }
        }
        if r.keep {
            let copy = r.pixels.clone();
            r.kept.push((at, copy));
        }
        r.records.push(Record {
            at,
            rects: f.rects,
            bytes: f.bytes,
        });
    }
}
