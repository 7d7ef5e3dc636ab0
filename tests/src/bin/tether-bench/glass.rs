//! `glass`: the agent's own screen is part of the latency. The real `tether-console` window runs
//! on a second Xvfb display, logged in to a relay of its own, accepts the customer from its alert
//! as an agent would (the click lands where egui_kittest lays the alert out) and shows the
//! customer's screen at 1:1 (the scale its settings file remembers). A watcher reads that
//! display through XShm every time the window is redrawn (XDamage), and each event's latency runs
//! from the input to the first redraw that shows the customer's new pixels exactly.
//!
//! Two events, as in the decoded scenarios: a keystroke in the anti-aliased xterm (`typing-aa`'s
//! content, with fewer lines above the prompt so that it shows in the window) in Auto, and a
//! full-screen photo change (`photo`'s pictures) in Sharp.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tether_desktop::capture::x11::X11Capturer;
use tether_desktop::capture::{Capturer as _, Damage};
use tether_protocol::screen::Rect;
use tether_tests::{ChildGuard, Program, RelayProc, Xvfb, cpu_seconds, spawn_host_with, wait_for};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::ConnectionExt as _;

use crate::measure::{Result_, percentile, upload};
use crate::scenarios::{Text, photo, xdotool, xterm};
use crate::{H, W};

/// The console's window: its default size, on a display of the same size.
const CONSOLE: (u16, u16) = (1280, 800);
const AGENT: &str = "glass";
const PASSWORD: &str = "glass benchmark password";
/// Redraws of the console window kept for matching.
const KEPT: usize = 48;
const KEYS: usize = 100;
const PHOTOS: usize = 30;

/// The prompt of `typing-aa` under a shorter listing.
const PROMPT: &str = "ls --color=always /usr/bin | head -n 12; \
     printf '\\033[1;32mcustomer@desk\\033[0m:\\033[1;34m~/project\\033[0m$ '; exec cat";

/// One redraw of the console's display (BGRX, the whole display).
struct Shown {
    at: Instant,
    px: Vec<u8>,
}

/// The console display's redraws, as the watcher reads them.
#[derive(Default)]
struct Redraws {
    list: Mutex<VecDeque<Shown>>,
    /// How many there were.
    count: std::sync::atomic::AtomicUsize,
    more: Condvar,
}

/// Reads the console's display through XShm after each of its redraws, until `stop`.
fn watch(display: String, redraws: Arc<Redraws>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut cap = X11Capturer::open(Some(&display))?;
    let row = usize::from(CONSOLE.0) * 4;
    while !stop.load(Ordering::Relaxed) {
        if let Damage::None = cap.wait_damage(Some(Duration::from_millis(50)))? {
            continue;
        }
        let at = Instant::now();
        let f = cap.capture(0, None)?;
        let mut px = Vec::with_capacity(row * usize::from(CONSOLE.1));
        for y in 0..f.height as usize {
            px.extend_from_slice(&f.data[y * f.stride..y * f.stride + row]);
        }
        redraws.count.fetch_add(1, Ordering::Relaxed);
        let mut list = redraws.list.lock().unwrap_or_else(|e| e.into_inner());
        list.push_back(Shown { at, px });
        if list.len() > KEPT {
            list.pop_front();
        }
        redraws.more.notify_all();
    }
    Ok(())
}

/// Where the customer's screen is in the console's display, at 1:1.
#[derive(Debug, Clone, Copy)]
struct View {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// Whether the console pixels `b` show the customer's `a` in `region` (customer coordinates,
/// clipped to what the view shows). `None` when none of the region shows.
fn shows(b: &[u8], a: &[u8], v: View, region: Rect) -> Option<bool> {
    let x1 = (region.x + region.w).min(v.w as u32) as usize;
    let y1 = (region.y + region.h).min(v.h as u32) as usize;
    let (x0, y0) = (region.x as usize, region.y as usize);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let (aw, bw) = (usize::from(W) * 4, usize::from(CONSOLE.0) * 4);
    Some((y0..y1).all(|y| {
        let ar = &a[y * aw + x0 * 4..y * aw + x1 * 4];
        let bo = (v.y + y) * bw + (v.x + x0) * 4;
        let br = &b[bo..bo + (x1 - x0) * 4];
        ar.chunks_exact(4)
            .zip(br.chunks_exact(4))
            .all(|(p, q)| p[..3] == q[..3])
    }))
}

/// Whether any of `region` (customer coordinates) shows in the view.
fn visible(v: View, region: Rect) -> bool {
    (region.x as usize) < v.w && (region.y as usize) < v.h
}

/// Finds the customer's screen `a` (noise, so any 16x16 block is unique) in the console pixels
/// `b`, and how much of it shows.
fn locate(b: &[u8], a: &[u8]) -> Option<View> {
    let (aw, bw, bh) = (
        usize::from(W),
        usize::from(CONSOLE.0),
        usize::from(CONSOLE.1),
    );
    let pa = |x: usize, y: usize| &a[(y * aw + x) * 4..(y * aw + x) * 4 + 3];
    let pb = |x: usize, y: usize| &b[(y * bw + x) * 4..(y * bw + x) * 4 + 3];
    for y in 0..bh - 16 {
        for x in 0..bw - 16 {
            if pb(x, y) != pa(0, 0) {
                continue;
            }
            if !(0..16).all(|dy| (0..16).all(|dx| pb(x + dx, y + dy) == pa(dx, dy))) {
                continue;
            }
            let w = (0..(bw - x).min(aw))
                .take_while(|&i| pb(x + i, y) == pa(i, 0))
                .count();
            let h = (0..(bh - y).min(usize::from(H)))
                .take_while(|&i| pb(x, y + i) == pa(0, i))
                .count();
            let v = View { x, y, w, h };
            let all = Rect {
                x: 0,
                y: 0,
                w: w as u32,
                h: h as u32,
            };
            return shows(b, a, v, all).unwrap_or(false).then_some(v);
        }
    }
    None
}

/// The customer's display as the benchmark reads it (XDamage and XShm, like the host).
struct Customer {
    x: Xvfb,
    cap: X11Capturer,
    px: Vec<u8>,
}

impl Customer {
    fn read_all(&mut self) -> anyhow::Result<()> {
        let f = self.cap.capture(0, None)?;
        copy_rows(&mut self.px, &f, None);
        Ok(())
    }

    /// Waits for the display to change and then hold still for 30 ms; the changed area.
    fn change(&mut self) -> anyhow::Result<Option<Rect>> {
        let mut region: Option<Rect> = None;
        let end = Instant::now() + Duration::from_secs(3);
        loop {
            let wait = if region.is_some() { 30 } else { 500 };
            match self.cap.wait_damage(Some(Duration::from_millis(wait)))? {
                Damage::Rects(rects) if !rects.is_empty() => {
                    let f = self.cap.capture(0, Some(&rects))?;
                    for r in &rects {
                        copy_rows(&mut self.px, &f, Some(*r));
                        region = Some(region.map_or(*r, |g| union(g, *r)));
                    }
                }
                Damage::Unknown => bail!("the customer's display has no XDamage"),
                _ if region.is_some() => return Ok(region),
                _ => {}
            }
            if Instant::now() > end {
                return Ok(region);
            }
        }
    }
}

fn copy_rows(dst: &mut [u8], f: &tether_protocol::screen::FrameRef<'_>, r: Option<Rect>) {
    let r = r.unwrap_or(Rect {
        x: 0,
        y: 0,
        w: f.width,
        h: f.height,
    });
    let pitch = f.width as usize * 4;
    for y in r.y as usize..(r.y + r.h) as usize {
        let (s, d) = (
            y * f.stride + r.x as usize * 4,
            y * pitch + r.x as usize * 4,
        );
        let n = r.w as usize * 4;
        dst[d..d + n].copy_from_slice(&f.data[s..s + n]);
    }
}

fn union(a: Rect, b: Rect) -> Rect {
    let (x0, y0) = (a.x.min(b.x), a.y.min(b.y));
    let (x1, y1) = ((a.x + a.w).max(b.x + b.w), (a.y + a.h).max(b.y + b.h));
    Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

/// The console's display and the watcher reading it.
struct Agent {
    x: Xvfb,
    redraws: Arc<Redraws>,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Agent {
    fn start() -> anyhow::Result<Self> {
        let x = Xvfb::start(u32::from(CONSOLE.0), u32::from(CONSOLE.1))?;
        let redraws = Arc::new(Redraws::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, r, s) = (x.display(), redraws.clone(), stop.clone());
        let watcher = Some(std::thread::spawn(move || watch(d, r, s)));
        Ok(Self {
            x,
            redraws,
            stop,
            watcher,
        })
    }

    /// The first redraw at or after `since` for which `ok` holds, waiting at most `deadline`.
    fn first_after(
        &self,
        since: Instant,
        deadline: Duration,
        mut ok: impl FnMut(&[u8]) -> bool,
    ) -> Option<Instant> {
        let end = Instant::now() + deadline;
        let mut list = self.redraws.list.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen: Option<Instant> = None;
        loop {
            for s in list.iter() {
                if s.at < since || seen.is_some_and(|t| s.at <= t) {
                    continue;
                }
                seen = Some(s.at);
                if ok(&s.px) {
                    return Some(s.at);
                }
            }
            let left = end.checked_duration_since(Instant::now())?;
            list = self
                .redraws
                .more
                .wait_timeout(list, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The latest redraw.
    fn latest(&self) -> Option<Vec<u8>> {
        let list = self.redraws.list.lock().unwrap_or_else(|e| e.into_inner());
        list.back().map(|s| s.px.clone())
    }

    /// Waits until the console shows all of what the customer's display shows in the view.
    fn synced(&self, c: &Customer, v: View) -> anyhow::Result<()> {
        let all = Rect {
            x: 0,
            y: 0,
            w: u32::from(W),
            h: u32::from(H),
        };
        if self
            .latest()
            .is_some_and(|b| shows(&b, &c.px, v, all) == Some(true))
        {
            return Ok(());
        }
        self.first_after(Instant::now(), Duration::from_secs(10), |b| {
            shows(b, &c.px, v, all) == Some(true)
        })
        .map(|_| ())
        .with_context(|| {
            self.shot("failed");
            "the console did not catch up with the customer's screen"
        })
    }

    /// With `TETHER_BENCH_SHOTS=DIR`, writes the console's display as `DIR/glass-NAME.ppm`.
    fn shot(&self, name: &str) {
        let (Some(dir), Some(b)) = (std::env::var_os("TETHER_BENCH_SHOTS"), self.latest()) else {
            return;
        };
        let mut ppm = format!("P6 {} {} 255\n", CONSOLE.0, CONSOLE.1).into_bytes();
        for p in b.chunks_exact(4) {
            ppm.extend_from_slice(&[p[2], p[1], p[0]]);
        }
        let path = std::path::Path::new(&dir).join(format!("glass-{name}.ppm"));
        if let Err(e) = std::fs::write(&path, ppm) {
            eprintln!("glass: cannot write {}: {e}", path.display());
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}

/// Runs the glass scenarios on a relay, customer display, host and console of their own.
pub(crate) async fn glass(relay_program: Program, me: Program) -> anyhow::Result<Vec<Result_>> {
    tokio::task::spawn_blocking(move || glass_blocking(relay_program, me)).await?
}

fn glass_blocking(relay_program: Program, me: Program) -> anyhow::Result<Vec<Result_>> {
    let relay = RelayProc::start_with(relay_program)?;
    relay.add_agent(AGENT, PASSWORD)?;
    let (pin, _) = relay.create_key(AGENT)?;
    let x = Xvfb::start(u32::from(W), u32::from(H))?;
    let noise = noise();
    x.put(0, 0, W, H, &noise)?;
    let cap = X11Capturer::open(Some(&x.display()))?;
    let mut customer = Customer {
        x,
        cap,
        px: vec![0; usize::from(W) * usize::from(H) * 4],
    };
    customer.read_all()?;
    let agent = Agent::start()?;

    let dir = tempfile::tempdir()?;
    let pw = dir.path().join("password");
    std::fs::write(&pw, format!("{PASSWORD}\n"))?;
    let settings = dir.path().join("settings.json");
    std::fs::write(&settings, r#"{ "scale": "actual" }"#)?;
    let (log, err) = ChildGuard::log_file()?;
    let console = ChildGuard::with_log(
        "tether-console",
        Command::new(&me.path)
            .arg("--as-console")
            .args(["--relay", &relay.addr])
            .args(["--relay-fingerprint", &relay.fingerprint])
            .args(["--user", AGENT, "--lang", "en", "--password-file"])
            .arg(&pw)
            .arg("--settings")
            .arg(&settings)
            .arg("--download-dir")
            .arg(dir.path())
            .env("DISPLAY", agent.x.display())
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()?,
        log,
    );
    tether_tests::console::wait_login(&relay)?;
    let host_prog = Program {
        path: me.path.clone(),
        prefix: vec!["--as-host".into()],
    };
    let host = spawn_host_with(
        &host_prog,
        &customer.x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        &["--headless"],
    )?;
    let size = (f32::from(CONSOLE.0), f32::from(CONSOLE.1));
    let accept = tether_tests::console::alert_accept_point(AGENT, size)?;
    let mut clicked: Option<Instant> = None;
    let view = wait_for(
        "the customer's screen at 1:1 in the console window",
        Duration::from_secs(40),
        || {
            let found = agent.latest().and_then(|b| locate(&b, &customer.px));
            if found.is_none() && clicked.is_none_or(|t| t.elapsed() > Duration::from_millis(700)) {
                clicked = Some(Instant::now());
                let _ = tether_tests::console::click(&agent.x, accept);
            }
            found
        },
    )
    .with_context(|| format!("console log: {}", console.stderr_text()))?;
    eprintln!(
        "glass: the console shows the customer's {}x{} at 1:1 from ({}, {}) of its window",
        view.w, view.h, view.x, view.y
    );
    // The pointer leaves the view, so that no scroll bar covers it.
    xdotool(&agent.x.display(), &["mousemove", "5", "5"])?;

    // Each event's CPU: the host's and relay's in the table, the console's here.
    let cpu = || {
        (
            cpu_seconds(host.pid()),
            cpu_seconds(relay.child.pid()),
            cpu_seconds(console.pid()),
            agent.redraws.count.load(Ordering::Relaxed),
        )
    };
    let measured = |r: anyhow::Result<Result_>, c0: (f64, f64, f64, usize)| {
        let mut r = r?;
        let c1 = cpu();
        r.host_cpu_s = c1.0 - c0.0;
        r.relay_cpu_s = c1.1 - c0.1;
        eprintln!(
            "{}: the console used {:.1} s of CPU and redrew its window {} times",
            r.scenario,
            c1.2 - c0.2,
            c1.3 - c0.3
        );
        anyhow::Ok(r)
    };
    let c0 = cpu();
    let mut out = vec![measured(typing(&mut customer, &agent, view), c0)?];
    agent.shot("typing");
    // Sharp, as in the decoded photo scenario: the agent picks it from the Quality menu.
    let [quality, sharp] = tether_tests::console::quality_points(AGENT, size, "Sharp")?;
    tether_tests::console::click(&agent.x, quality)?;
    // The menu opens on the next redraw.
    agent.first_after(Instant::now(), Duration::from_secs(2), |_| true);
    tether_tests::console::click(&agent.x, sharp)?;
    xdotool(&agent.x.display(), &["mousemove", "5", "5"])?;
    let c0 = cpu();
    out.push(measured(photos(&mut customer, &agent, view), c0)?);
    agent.shot("photo");
    drop(console);
    Ok(out)
}

/// A keystroke in the anti-aliased terminal, to the glyph on the agent's screen.
fn typing(c: &mut Customer, agent: &Agent, view: View) -> anyhow::Result<Result_> {
    let display = c.x.display();
    let _term = xterm(
        &display,
        Text::AntiAliased,
        "160x50+0+0",
        &["sh", "-c", PROMPT],
    )?;
    c.change()?.context("the terminal did not appear")?;
    // Its first paint may come in parts.
    while c.change()?.is_some() {}
    agent.synced(c, view)?;
    xdotool(&display, &["mousemove", "400", "300"])?;
    // Twenty letters typed and then erased, over and over: the line stays in the view.
    let letters = "abcdefghijklmnopqrst";
    let mut lat = Vec::new();
    for i in 0..KEYS {
        let j = i % (2 * letters.len());
        let k = if j < letters.len() {
            &letters[j..j + 1]
        } else {
            "BackSpace"
        };
        let t0 = Instant::now();
        xdotool(&display, &["key", k])?;
        let Some(region) = c.change()? else { continue };
        let px = &c.px;
        // A change the view does not show (none, with this prompt) is not measured.
        if !visible(view, region) {
            continue;
        }
        let at = agent
            .first_after(t0, Duration::from_secs(5), |b| {
                shows(b, px, view, region) == Some(true)
            })
            .context("the console never showed the keystroke")?;
        lat.push(at.duration_since(t0).as_secs_f64() * 1e3);
    }
    Ok(latencies("glass-typing-aa", lat))
}

/// A full-screen photo change, to the new picture exact on the agent's screen.
fn photos(c: &mut Customer, agent: &Agent, view: View) -> anyhow::Result<Result_> {
    let (conn, screen) = x11rb::connect(Some(&c.x.display()))?;
    let root = conn.setup().roots[screen].root;
    let mut pics = Vec::new();
    for seed in [1, 2] {
        let pm = conn.generate_id()?;
        conn.create_pixmap(24, pm, root, W, H)?;
        upload(&conn, pm, &photo(seed))?;
        pics.push(pm);
    }
    let gc = conn.generate_id()?;
    conn.create_gc(gc, root, &Default::default())?;
    // What the terminal leaves when it closes.
    while c.change()?.is_some() {}
    c.read_all()?;
    let mut lat = Vec::new();
    for i in 0..PHOTOS {
        agent.synced(c, view)?;
        let t0 = Instant::now();
        conn.copy_area(pics[i % 2], root, gc, 0, 0, 0, 0, W, H)?;
        conn.flush()?;
        let Some(region) = c.change()? else { continue };
        let px = &c.px;
        let at = agent
            .first_after(t0, Duration::from_secs(10), |b| {
                shows(b, px, view, region) == Some(true)
            })
            .context("the console never showed the photo")?;
        lat.push(at.duration_since(t0).as_secs_f64() * 1e3);
    }
    for pm in pics {
        conn.free_pixmap(pm)?;
    }
    conn.free_gc(gc)?;
    Ok(latencies("glass-photo", lat))
}

fn latencies(name: &str, mut lat: Vec<f64>) -> Result_ {
    lat.sort_by(|a, b| a.total_cmp(b));
    Result_ {
        scenario: name.into(),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
        ..Default::default()
    }
}

/// Pseudo-random pixels: every 16x16 block of them is unique.
fn noise() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut v = vec![0u8; usize::from(W) * usize::from(H) * 4];
    for p in v.chunks_exact_mut(4) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[..3].copy_from_slice(&x.to_le_bytes()[..3]);
    }
    v
}
