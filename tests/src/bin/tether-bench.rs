//! `tether-bench`: Tether's screen benchmark with real processes.
//!
//! It starts Xvfb (1920x1080), a relay and a customer host as separate processes (this binary
//! re-run with `--as-relay` / `--as-host`, so nothing else needs building), and a headless agent in
//! this process that decodes every frame. Scenarios are driven by xdotool and measured from the
//! input event to the moment the agent's decoded frame equals the X server's pixels in the
//! changed region.
//!
//! `cargo run --release -p tether-tests --bin tether-bench -- [--scenarios typing,idle] [--json FILE]`

use std::ffi::OsString;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use tether_console::net::{AgentClient, ScreenControl};
use tether_protocol::msg::ServerMsg;
use tether_protocol::screen::{Quality, Rect};
use tether_tests::{ChildGuard, Program, RelayProc, Xvfb, cpu_seconds, spawn_host_with};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

const ALL: &[&str] = &[
    "typing",
    "scroll",
    "drag",
    "photo",
    "photo-smooth",
    "photo-auto",
    "idle",
    "files",
];
/// Size of the file scenario's file.
const FILE_BYTES: u64 = 1 << 30;
const W: u16 = 1920;
const H: u16 = 1080;

#[derive(Parser)]
#[command(
    name = "tether-bench",
    about = "Tether screen benchmark (real processes, Xvfb, xdotool)"
)]
struct Cli {
    /// Comma-separated scenarios: typing, scroll, drag, photo, photo-smooth, photo-auto, idle,
    /// files (default: all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<String>>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("--as-relay") => {
            let rest = std::iter::once(OsString::from("tether-relay"))
                .chain(args[2..].iter().cloned())
                .collect();
            return match tether_relay::cli::run_with_args(rest) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tether-relay: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("--as-host") => {
            let rest = std::iter::once(OsString::from("tether-host"))
                .chain(args[2..].iter().cloned())
                .collect();
            return tether_host::cli::run_with_args(rest);
        }
        _ => {}
    }
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

/// One scenario's figures; `None` where a figure does not apply.
#[derive(Debug, Default, Clone)]
struct Result_ {
    scenario: String,
    latency_p50_ms: Option<f64>,
    latency_p95_ms: Option<f64>,
    bytes_per_event: Option<f64>,
    fps: Option<f64>,
    host_cpu_s: f64,
    relay_cpu_s: f64,
    upload_mb_s: Option<f64>,
    download_mb_s: Option<f64>,
}

impl Result_ {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "bytes_per_event": self.bytes_per_event,
            "fps": self.fps,
            "host_cpu_s": self.host_cpu_s,
            "relay_cpu_s": self.relay_cpu_s,
            "upload_mb_s": self.upload_mb_s,
            "download_mb_s": self.download_mb_s,
        })
    }
}

/// A frame as the agent decoded it.
struct Record {
    at: Instant,
    rects: Vec<Rect>,
    bytes: usize,
}

/// What the receiving task shares: the decoded screen and every frame's arrival.
#[derive(Default)]
struct Received {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    records: Vec<Record>,
}

struct Bench {
    x: Xvfb,
    agent: Arc<AgentClient>,
    session: tether_protocol::msg::SessionId,
    host_dir: std::path::PathBuf,
    conn: x11rb::rust_connection::RustConnection,
    root: u32,
    received: Arc<Mutex<Received>>,
    control: ScreenControl,
    host_pid: u32,
    relay_pid: u32,
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

fn xdotool(display: &str, args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("xdotool is missing (apt-get install xdotool)")?;
    if !st.success() {
        bail!("xdotool {args:?} failed");
    }
    Ok(())
}

impl Bench {
    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_screen(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::from(W) * usize::from(H) * 4);
        let rows = 256u16;
        let mut y = 0u16;
        while y < H {
            let n = rows.min(H - y);
            let r = self
                .conn
                .get_image(ImageFormat::Z_PIXMAP, self.root, 0, y as i16, W, n, !0)?
                .reply()?;
            out.extend_from_slice(&r.data);
            y += n;
        }
        Ok(out)
    }

    /// Draws a whole-screen picture into `drawable`, 64 rows per request.
    fn upload(&self, drawable: u32, pixels: &[u8]) -> anyhow::Result<()> {
        let gc = self.conn.generate_id()?;
        self.conn.create_gc(gc, drawable, &Default::default())?;
        let row = usize::from(W) * 4;
        for (i, chunk) in pixels.chunks(row * 64).enumerate() {
            let y = (i * 64) as i16;
            let n = (chunk.len() / row) as u16;
            self.conn.put_image(
                ImageFormat::Z_PIXMAP,
                drawable,
                gc,
                W,
                n,
                0,
                y,
                0,
                24,
                chunk,
            )?;
        }
        self.conn.free_gc(gc)?;
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// Draws a picture straight onto the screen.
    fn put_screen(&self, pixels: &[u8]) -> anyhow::Result<()> {
        self.upload(self.root, pixels)
    }

    /// Uploads a picture into a new pixmap, so that showing it later is one request.
    fn pixmap(&self, pixels: &[u8]) -> anyhow::Result<u32> {
        let pm = self.conn.generate_id()?;
        self.conn.create_pixmap(24, pm, self.root, W, H)?;
        self.upload(pm, pixels)?;
        Ok(pm)
    }

    /// Shows a whole pixmap on the screen at once, as a double-buffered application does.
    fn show(&self, pm: u32) -> anyhow::Result<()> {
        let gc = self.conn.generate_id()?;
        self.conn.create_gc(gc, self.root, &Default::default())?;
        self.conn.copy_area(pm, self.root, gc, 0, 0, 0, 0, W, H)?;
        self.conn.free_gc(gc)?;
        self.conn.flush()?;
        Ok(())
    }

    fn matches(&self, screen: &[u8], region: Option<Rect>) -> bool {
        let r = self.lock();
        if r.pixels.len() != screen.len() {
            return false;
        }
        let region = region.unwrap_or(Rect {
            x: 0,
            y: 0,
            w: u32::from(W),
            h: u32::from(H),
        });
        let pitch = usize::from(W) * 4;
        (region.y..region.y + region.h).all(|y| {
            let off = y as usize * pitch + region.x as usize * 4;
            let a = &r.pixels[off..off + region.w as usize * 4];
            let b = &screen[off..off + region.w as usize * 4];
            a.chunks_exact(4)
                .zip(b.chunks_exact(4))
                .all(|(p, q)| p[..3] == q[..3])
        })
    }

    /// Waits until the agent shows exactly what the X server shows.
    async fn synced(&self, deadline: Duration) -> anyhow::Result<Vec<u8>> {
        let end = Instant::now() + deadline;
        loop {
            let screen = self.read_screen()?;
            if self.matches(&screen, None) {
                return Ok(screen);
            }
            if Instant::now() > end {
                bail!("the agent did not catch up with the X server within {deadline:?}");
            }
            // Latency comes from the frames' own arrival times; polling slowly leaves the cores
            // to the processes under test.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the X screen differs from `before` and then holds still for 30 ms.
    async fn settled_change(&self, before: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let end = Instant::now() + Duration::from_secs(3);
        let mut last: Option<Vec<u8>> = None;
        loop {
            let cur = self.read_screen()?;
            if cur != before {
                if last.as_deref() == Some(&cur[..]) {
                    return Ok(Some(cur));
                }
                last = Some(cur);
                tokio::time::sleep(Duration::from_millis(30)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if Instant::now() > end {
                return Ok(last);
            }
        }
    }

    /// Runs `act`, then measures how long the agent took to show its result and what it cost.
    async fn event(
        &self,
        act: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<(f64, usize)>> {
        let before = self.synced(Duration::from_secs(10)).await?;
        let mark = self.lock().records.len();
        let t0 = Instant::now();
        act()?;
        let Some(after) = self.settled_change(&before).await? else {
            return Ok(None);
        };
        let region = diff_box(&before, &after);
        let end = Instant::now() + Duration::from_secs(10);
        while !self.matches(&after, region) {
            if Instant::now() > end {
                bail!("the agent never showed the change");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let r = self.lock();
        let recs = &r.records[mark..];
        let done = recs
            .iter()
            .rev()
            .find(|f| region.is_none_or(|d| f.rects.iter().any(|x| intersects(x, &d))));
        let latency = done
            .map(|f| f.at.duration_since(t0).as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        let bytes = recs.iter().map(|f| f.bytes).sum();
        Ok(Some((latency, bytes)))
    }

    fn cpu(&self) -> (f64, f64) {
        (cpu_seconds(self.host_pid), cpu_seconds(self.relay_pid))
    }
}

fn intersects(a: &Rect, b: &Rect) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

fn diff_box(a: &[u8], b: &[u8]) -> Option<Rect> {
    let w = usize::from(W);
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, (p, q)) in a.chunks_exact(4).zip(b.chunks_exact(4)).enumerate() {
        if p[..3] != q[..3] {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    (x0 != usize::MAX).then(|| Rect {
        x: x0 as u32,
        y: y0 as u32,
        w: (x1 - x0 + 1) as u32,
        h: (y1 - y0 + 1) as u32,
    })
}

/// A photo-like picture: smooth value noise in several octaves, per channel, with fine grain.
fn photo(seed: u64) -> Vec<u8> {
    let (w, h) = (usize::from(W), usize::from(H));
    let mut rng = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut acc = vec![0f32; w * h * 3];
    for (octave, cell) in [256usize, 96, 40, 16, 6].into_iter().enumerate() {
        let amp = [90.0f32, 60.0, 35.0, 18.0, 9.0][octave];
        let (gw, gh) = (w / cell + 2, h / cell + 2);
        for c in 0..3 {
            let grid: Vec<f32> = (0..gw * gh)
                .map(|_| (next() % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            for y in 0..h {
                let gy = y / cell;
                let fy = (y % cell) as f32 / cell as f32;
                for x in 0..w {
                    let gx = x / cell;
                    let fx = (x % cell) as f32 / cell as f32;
                    let v00 = grid[gy * gw + gx];
                    let v10 = grid[gy * gw + gx + 1];
                    let v01 = grid[(gy + 1) * gw + gx];
                    let v11 = grid[(gy + 1) * gw + gx + 1];
                    let v = v00 * (1.0 - fx) * (1.0 - fy)
                        + v10 * fx * (1.0 - fy)
                        + v01 * (1.0 - fx) * fy
                        + v11 * fx * fy;
                    acc[(y * w + x) * 3 + c] += v * amp;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(w * h * 4);
    for px in acc.chunks_exact(3) {
        for c in px {
            let grain = (next() % 9) as f32 - 4.0;
            out.push((128.0 + c + grain).clamp(0.0, 255.0) as u8);
        }
        out.push(0);
    }
    out
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let scenarios: Vec<String> = cli
        .scenarios
        .clone()
        .unwrap_or_else(|| ALL.iter().map(|s| s.to_string()).collect());
    for s in &scenarios {
        if !ALL.contains(&s.as_str()) {
            bail!("unknown scenario {s:?}; known: {}", ALL.join(", "));
        }
    }
    let me = std::env::current_exe()?;
    let x = Xvfb::start(u32::from(W), u32::from(H))?;
    let (conn, screen) = x11rb::connect(Some(&x.display()))?;
    let root = conn.setup().roots[screen].root;
    let relay = RelayProc::start_with(Program {
        path: me.clone(),
        prefix: vec!["--as-relay".into()],
    })?;
    relay.add_agent("bench", "benchmark password")?;
    let mut agent = AgentClient::login(
        &relay.addr,
        relay.fingerprint_bytes(),
        "bench",
        "benchmark password",
    )
    .await?;
    agent.create_key(None).await?;
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
        &relay.addr,
        &relay.fingerprint,
        &[
            "--headless",
            "--allow",
            "files",
            "--download-dir",
            &host_dir_arg,
        ],
    )?;
    let info = loop {
        if let ServerMsg::SessionStarted(i) = agent.next_event().await? {
            break i;
        }
    };
    let mut view = agent.view(info.id, 0).await?;
    let control = view.control();
    let received = Arc::new(Mutex::new(Received::default()));
    let rx = received.clone();
    tokio::spawn(async move {
        while let Ok(f) = view.next_frame().await {
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
            r.records.push(Record {
                at,
                rects: f.rects,
                bytes: f.bytes,
            });
        }
    });
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
    // A plain desktop background.
    bench.put_screen(&vec![0x30; usize::from(W) * usize::from(H) * 4])?;
    bench.synced(Duration::from_secs(20)).await?;

    let mut results = Vec::new();
    for s in &scenarios {
        eprintln!("running {s}…");
        let (h0, r0) = bench.cpu();
        let mut res = match s.as_str() {
            "typing" => typing(&bench).await?,
            "scroll" => scroll(&bench).await?,
            "drag" => drag(&bench).await?,
            "photo" => photos(&bench, Quality::Sharp, "photo").await?,
            "photo-smooth" => photos(&bench, Quality::Smooth, "photo-smooth").await?,
            "photo-auto" => photos(&bench, Quality::Auto, "photo-auto").await?,
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

    let f = |v: Option<f64>, d: usize| v.map(|v| format!("{v:.d$}")).unwrap_or_else(|| "-".into());
    println!(
        "{:<13} {:>9} {:>9} {:>12} {:>7} {:>10} {:>11} {:>8} {:>10}",
        "scenario",
        "p50 ms",
        "p95 ms",
        "bytes/event",
        "fps",
        "host CPU s",
        "relay CPU s",
        "up MB/s",
        "down MB/s"
    );
    for r in &results {
        println!(
            "{:<13} {:>9} {:>9} {:>12} {:>7} {:>10.2} {:>11.2} {:>8} {:>10}",
            r.scenario,
            f(r.latency_p50_ms, 1),
            f(r.latency_p95_ms, 1),
            f(r.bytes_per_event, 0),
            f(r.fps, 1),
            r.host_cpu_s,
            r.relay_cpu_s,
            f(r.upload_mb_s, 0),
            f(r.download_mb_s, 0)
        );
    }
    if let Some(path) = cli.json {
        let json = serde_json::Value::Array(results.iter().map(Result_::json).collect());
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
    }
    drop(host);
    drop(relay);
    Ok(())
}

fn summarize(name: &str, samples: &[(f64, usize)]) -> Result_ {
    let mut lat: Vec<f64> = samples.iter().map(|s| s.0).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let bytes = samples.iter().map(|s| s.1 as f64).sum::<f64>() / samples.len().max(1) as f64;
    Result_ {
        scenario: name.into(),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
        bytes_per_event: Some(bytes),
        ..Default::default()
    }
}

fn xterm(display: &str, geometry: &str, cmd: &[&str]) -> anyhow::Result<ChildGuard> {
    let child = Command::new("xterm")
        .args([
            "-geometry",
            geometry,
            "-bg",
            "white",
            "-fg",
            "black",
            "+sb",
            "-e",
        ])
        .args(cmd)
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("xterm is missing (apt-get install xterm)")?;
    Ok(ChildGuard::new("xterm", child))
}

async fn wait_window(b: &Bench) -> anyhow::Result<()> {
    let blank = b.read_screen()?;
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(_after) = b.settled_change(&blank).await? {
            // Give the terminal time to finish its first paint.
            let cur = b.read_screen()?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if b.read_screen()? == cur {
                b.synced(Duration::from_secs(10)).await?;
                return Ok(());
            }
        }
        if Instant::now() > end {
            bail!("the window did not appear");
        }
    }
}

async fn typing(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let _term = xterm(&display, "160x50+0+0", &["cat"])?;
    wait_window(b).await?;
    xdotool(&display, &["mousemove", "400", "300"])?;
    let keys = "abcdefghijklmnopqrstuvwxyz0123456789";
    let mut samples = Vec::new();
    for i in 0..200 {
        let k = &keys[i % keys.len()..i % keys.len() + 1];
        if let Some(s) = b.event(|| xdotool(&display, &["key", k])).await? {
            samples.push(s);
        }
    }
    Ok(summarize("typing", &samples))
}

async fn scroll(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let file = tempfile::NamedTempFile::new()?;
    let words = [
        "remote", "support", "latency", "tether", "screen", "frame", "session", "agent",
        "customer", "relay", "quic", "tile",
    ];
    let mut text = String::new();
    for i in 0..6000usize {
        let n = 4 + i * 7 % 14;
        let line: Vec<&str> = (0..n)
            .map(|j| words[(i * 31 + j * 17) % words.len()])
            .collect();
        text.push_str(&format!("{i:5}  {}\n", line.join(" ")));
    }
    std::fs::write(file.path(), text)?;
    let path = file.path().to_string_lossy().into_owned();
    let _term = xterm(&display, "160x60+0+0", &["less", &path])?;
    wait_window(b).await?;
    xdotool(&display, &["mousemove", "400", "300"])?;
    let mut samples = Vec::new();
    for _ in 0..50 {
        if let Some(s) = b.event(|| xdotool(&display, &["key", "space"])).await? {
            samples.push(s);
        }
    }
    Ok(summarize("scroll", &samples))
}

async fn drag(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(
        file.path(),
        (0..200)
            .map(|i| format!("line {i} of a window being dragged across the screen\n"))
            .collect::<String>(),
    )?;
    let path = file.path().to_string_lossy().into_owned();
    let _term = xterm(&display, "80x30+0+0", &["less", &path])?;
    wait_window(b).await?;
    let out = Command::new("xdotool")
        .args(["search", "--sync", "--class", "xterm"])
        .env("DISPLAY", &display)
        .output()?;
    let wid = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .context("no xterm window")?
        .trim()
        .to_string();
    let mark = b.lock().records.len();
    let start = Instant::now();
    let step = Duration::from_secs_f64(1.0 / 30.0);
    for i in 0..60u32 {
        let due = start + step * i;
        tokio::time::sleep_until(due.into()).await;
        let (x, y) = (20 * i, 8 * i);
        xdotool(
            &display,
            &["windowmove", &wid, &x.to_string(), &y.to_string()],
        )?;
    }
    let end = start + step * 60;
    b.synced(Duration::from_secs(10)).await?;
    let r = b.lock();
    let frames = r.records[mark..].iter().filter(|f| f.at <= end).count();
    let bytes: usize = r.records[mark..].iter().map(|f| f.bytes).sum();
    Ok(Result_ {
        scenario: "drag".into(),
        fps: Some(frames as f64 / end.duration_since(start).as_secs_f64()),
        bytes_per_event: Some(bytes as f64 / 60.0),
        ..Default::default()
    })
}

async fn photos(b: &Bench, q: Quality, name: &str) -> anyhow::Result<Result_> {
    b.control.set_quality(q).await?;
    let pics = [b.pixmap(&photo(1))?, b.pixmap(&photo(2))?];
    if q == Quality::Sharp {
        let mut samples = Vec::new();
        for i in 0..30 {
            if let Some(s) = b.event(|| b.show(pics[i % 2])).await? {
                samples.push(s);
            }
        }
        for pm in pics {
            b.conn.free_pixmap(pm)?;
        }
        return Ok(summarize(name, &samples));
    }
    // Lossy modes: flip continuously at 30 Hz and count what is delivered.
    b.synced(Duration::from_secs(10)).await?;
    let mark = b.lock().records.len();
    let start = Instant::now();
    let step = Duration::from_secs_f64(1.0 / 30.0);
    for i in 0..30u32 {
        tokio::time::sleep_until((start + step * i).into()).await;
        b.show(pics[i as usize % 2])?;
    }
    let end = Instant::now();
    b.synced(Duration::from_secs(10)).await?;
    for pm in pics {
        b.conn.free_pixmap(pm)?;
    }
    let r = b.lock();
    let during: Vec<&Record> = r.records[mark..].iter().filter(|f| f.at <= end).collect();
    let bytes: usize = during.iter().map(|f| f.bytes).sum();
    Ok(Result_ {
        scenario: name.into(),
        fps: Some(during.len() as f64 / end.duration_since(start).as_secs_f64()),
        bytes_per_event: Some(bytes as f64 / during.len().max(1) as f64),
        ..Default::default()
    })
}

async fn idle(b: &Bench) -> anyhow::Result<Result_> {
    b.synced(Duration::from_secs(10)).await?;
    let mark = b.lock().records.len();
    let (h0, _) = b.cpu();
    // The scenario is ten seconds of nothing.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (h1, _) = b.cpu();
    let bytes: usize = b.lock().records[mark..].iter().map(|f| f.bytes).sum();
    Ok(Result_ {
        scenario: "idle".into(),
        bytes_per_event: Some(bytes as f64),
        fps: None,
        latency_p50_ms: None,
        latency_p95_ms: None,
        host_cpu_s: h1 - h0,
        relay_cpu_s: 0.0,
        upload_mb_s: None,
        download_mb_s: None,
    })
}

/// Writes `len` bytes of fast pseudo-random data.
fn random_file(path: &std::path::Path, len: u64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Runs a transfer and measures its data phase: from the first byte moved (after the sender has
/// hashed the file) to the verified file in place.
async fn timed<
    F: std::future::Future<Output = Result<String, tether_console::net::ClientError>>,
>(
    progress: Arc<tether_files::Progress>,
    fut: F,
) -> anyhow::Result<f64> {
    let p = progress.clone();
    let first = tokio::spawn(async move {
        loop {
            if p.done.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    fut.await?;
    let end = Instant::now();
    let start = first.await?;
    Ok(FILE_BYTES as f64 / 1e6 / end.duration_since(start).as_secs_f64())
}

async fn files(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let src = tempfile::tempdir()?;
    let file = src.path().join("payload.bin");
    random_file(&file, FILE_BYTES)?;
    let _term = xterm(&display, "160x50+0+0", &["cat"])?;
    wait_window(b).await?;
    xdotool(&display, &["mousemove", "400", "300"])?;

    // Upload alone, for the rate.
    let up = tether_files::Progress::new(0);
    let upload_mb_s = timed(
        up.clone(),
        b.agent.upload(b.session, &file, "payload.bin", &up),
    )
    .await?;

    // Upload again while typing, for the screen's latency during a transfer (the harness's
    // own screen reads would slow the transfer it measures, so the rate comes from the run above).
    let again = tether_files::Progress::new(0);
    let (agent, session, f, p) = (b.agent.clone(), b.session, file.clone(), again.clone());
    let upload =
        tokio::spawn(async move { agent.upload(session, &f, "payload-again.bin", &p).await });
    while again.done.load(std::sync::atomic::Ordering::Relaxed) == 0 && !upload.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let keys = "abcdefghijklmnopqrstuvwxyz";
    let mut samples = Vec::new();
    let mut i = 0;
    while !upload.is_finished() && i < 40 {
        let k = &keys[i % keys.len()..i % keys.len() + 1];
        if let Some(s) = b.event(|| xdotool(&display, &["key", k])).await? {
            samples.push(s);
        }
        i += 1;
    }
    upload.await??;
    let _ = std::fs::remove_file(b.host_dir.join("payload-again.bin"));

    // Download it back.
    let mine = tempfile::tempdir()?;
    let inbox = tether_files::Inbox::new(mine.path().to_path_buf(), 1 << 40);
    let down = tether_files::Progress::new(0);
    let remote = b.host_dir.join("payload.bin").display().to_string();
    let download_mb_s = timed(
        down.clone(),
        b.agent
            .download(b.session, &remote, Some("back.bin"), &inbox, &down),
    )
    .await?;
    let _ = std::fs::remove_file(b.host_dir.join("payload.bin"));
    let mut res = summarize("files", &samples);
    res.bytes_per_event = None;
    res.upload_mb_s = Some(upload_mb_s);
    res.download_mb_s = Some(download_mb_s);
    eprintln!(
        "files: typing during the upload: {} keystrokes measured",
        samples.len()
    );
    Ok(res)
}
