//! The scenarios: real applications (xterm) driven by xdotool, photos, an idle screen and
//! files, each returning its figures.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tether_protocol::screen::Quality;
use tether_tests::ChildGuard;

use crate::corpus;
use crate::measure::{Bench, Record, Result_, summarize};
use crate::{FILE_BYTES, H, W};
use x11rb::protocol::xproto::ConnectionExt as _;

pub(crate) fn xdotool(display: &str, args: &[&str]) -> anyhow::Result<()> {
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

/// What the terminal's text looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// xterm's default bitmap font, black on white: two colours (the old scenarios).
    Bitmap,
    /// A TrueType font with anti-aliasing (`-fa Monospace -fs 11`) and ANSI colours, as people's
    /// terminals look.
    AntiAliased,
}

impl Text {
    fn suffix(self) -> &'static str {
        match self {
            Text::Bitmap => "",
            Text::AntiAliased => "-aa",
        }
    }
}

pub(crate) fn xterm(
    display: &str,
    text: Text,
    geometry: &str,
    cmd: &[&str],
) -> anyhow::Result<ChildGuard> {
    let font: &[&str] = match text {
        Text::Bitmap => &[],
        Text::AntiAliased => &["-fa", "Monospace", "-fs", "11"],
    };
    let child = Command::new("xterm")
        .args(font)
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
    appeared(b, &blank, Duration::from_secs(15)).await
}

/// Waits until the screen differs from `before` (a window appeared), then until it holds still
/// (see [`still`]), within `deadline`.
pub(crate) async fn appeared(b: &Bench, before: &[u8], deadline: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    while b.read_screen()? == before {
        if Instant::now() > end {
            bail!("the window did not appear within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    still(b, end.saturating_duration_since(Instant::now())).await
}

/// Waits until the screen has held still for 300 ms (an application finished painting), and
/// the agent shows it.
pub(crate) async fn still(b: &Bench, deadline: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    let mut last = b.read_screen()?;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let cur = b.read_screen()?;
        if cur != last {
            last = cur;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_millis(300) {
            b.synced(Duration::from_secs(10)).await?;
            return Ok(());
        }
        if Instant::now() > end {
            bail!("the screen did not settle within {deadline:?}");
        }
    }
}

/// With anti-aliased text, the terminal first lists `/usr/bin` in colour under a coloured prompt,
/// then echoes what is typed.
const COLOUR_PROMPT: &str = "ls --color=always /usr/bin | head -n 40; \
     printf '\\033[1;32mcustomer@desk\\033[0m:\\033[1;34m~/project\\033[0m$ '; exec cat";

/// A few short lines and the coloured prompt, as a terminal just opened shows.
const SHORT_PROMPT: &str = "ls --color=always /usr/bin | head -n 8; \
     printf '\\033[1;32mcustomer@desk\\033[0m:\\033[1;34m~/project\\033[0m$ '; exec cat";

pub(crate) async fn typing(b: &Bench, text: Text) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let _term = match text {
        Text::Bitmap => xterm(&display, text, "160x50+0+0", &["cat"])?,
        Text::AntiAliased => xterm(&display, text, "160x50+0+0", &["sh", "-c", COLOUR_PROMPT])?,
    };
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
    Ok(summarize(&format!("typing{}", text.suffix()), &samples))
}

/// Rust keywords the ANSI colouriser marks.
const KEYWORDS: &[&str] = &[
    "fn", "let", "pub", "use", "impl", "struct", "enum", "match", "if", "else", "for", "while",
    "return", "mut", "self", "Self", "mod", "const", "async", "await", "loop", "in", "where",
];

/// A long source file with syntax colours, as `bat` or `highlight` would print it: comments
/// grey, strings green, keywords magenta, numbers cyan (the workspace's own Rust sources, as of
/// [`corpus::PIN`]).
fn coloured_source() -> anyhow::Result<String> {
    let mut out = String::new();
    for dir in [
        "protocol/src",
        "relay/src/core",
        "agent-console/src",
        "customer-host/src",
    ] {
        for f in corpus::list(dir, ".rs")? {
            for line in corpus::read(&f)?.lines() {
                out.push_str(&colour_line(line));
                out.push('\n');
            }
        }
    }
    Ok(out)
}

fn colour_line(line: &str) -> String {
    if let Some(at) = line.find("//") {
        return format!("{}\x1b[90m{}\x1b[0m", colour_code(&line[..at]), &line[at..]);
    }
    colour_code(line)
}

fn colour_code(code: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if KEYWORDS.contains(&word.as_str()) {
            out.push_str(&format!("\x1b[35m{word}\x1b[0m"));
        } else if word.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&format!("\x1b[36m{word}\x1b[0m"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in code.chars() {
        if c == '"' {
            flush(&mut word, &mut out);
            out.push_str(if in_string { "\"\x1b[0m" } else { "\x1b[32m\"" });
            in_string = !in_string;
        } else if !in_string && (c.is_alphanumeric() || c == '_') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    if in_string {
        out.push_str("\x1b[0m");
    }
    out
}

pub(crate) async fn scroll(b: &Bench, text: Text) -> anyhow::Result<Result_> {
    if text == Text::AntiAliased {
        return scroll_source(b).await;
    }
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
    let _term = xterm(&display, Text::Bitmap, "160x60+0+0", &["less", &path])?;
    page_down(b, "scroll").await
}

/// Starts `less -R` over [`coloured_source`] in the anti-aliased terminal of `geometry`; both
/// live as long as what it returns.
fn coloured_less(
    display: &str,
    geometry: &str,
) -> anyhow::Result<(tempfile::NamedTempFile, ChildGuard)> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), coloured_source()?)?;
    let path = file.path().to_string_lossy().into_owned();
    let term = xterm(display, Text::AntiAliased, geometry, &["less", "-R", &path])?;
    Ok((file, term))
}

/// `less -R` over [`coloured_source`] in the anti-aliased terminal, a page at a time.
async fn scroll_source(b: &Bench) -> anyhow::Result<Result_> {
    let _less = coloured_less(&b.x.display(), "160x50+0+0")?;
    page_down(b, "scroll-aa").await
}

/// Lines a `scroll-lines-aa` event scrolls (one notch of a mouse wheel).
pub(crate) const NOTCH_LINES: usize = 5;

/// `less -R` over [`coloured_source`] in the anti-aliased terminal, scrolled line by line as a
/// mouse wheel or a held arrow key does: each event is [`NOTCH_LINES`] lines, 30 ms apart.
pub(crate) async fn scroll_lines(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let _less = coloured_less(&display, "160x50+0+0")?;
    wait_window(b).await?;
    xdotool(&display, &["mousemove", "400", "300"])?;
    let mut keys = vec!["key", "--delay", "30"];
    keys.extend(std::iter::repeat_n("Down", NOTCH_LINES));
    let mut samples = Vec::new();
    for _ in 0..20 {
        if let Some(s) = b.event(|| xdotool(&display, &keys)).await? {
            samples.push(s);
        }
    }
    Ok(summarize("scroll-lines-aa", &samples))
}

/// Rows a `scroll-photo` event scrolls (a browser's wheel notch).
const NOTCH_ROWS: usize = 100;

/// A page of two photographs, one above the other, scrolled [`NOTCH_ROWS`] rows at a time down to
/// its end and back up, as a browser scrolls a page of pictures.
pub(crate) async fn scroll_photo(b: &Bench) -> anyhow::Result<Result_> {
    let mut page = photo(1);
    page.extend_from_slice(&photo(2));
    let pm = b.tall_pixmap(&page, H * 2)?;
    b.show(pm)?;
    b.synced(Duration::from_secs(20)).await?;
    let tops: Vec<usize> = (1..=usize::from(H) / NOTCH_ROWS)
        .chain((0..usize::from(H) / NOTCH_ROWS).rev())
        .map(|k| k * NOTCH_ROWS)
        .collect();
    let mut samples = Vec::new();
    for top in tops {
        if let Some(s) = b.event(|| b.show_from(pm, top as i16)).await? {
            samples.push(s);
        }
    }
    b.conn.free_pixmap(pm)?;
    Ok(summarize("scroll-photo", &samples))
}

/// Pages down 50 times through the `less` that the terminal runs.
async fn page_down(b: &Bench, name: &str) -> anyhow::Result<Result_> {
    let display = b.x.display();
    wait_window(b).await?;
    xdotool(&display, &["mousemove", "400", "300"])?;
    let mut samples = Vec::new();
    for _ in 0..50 {
        if let Some(s) = b.event(|| xdotool(&display, &["key", "space"])).await? {
            samples.push(s);
        }
    }
    Ok(summarize(name, &samples))
}

/// Steps of the drag, at 60 a second.
const DRAG_STEPS: u32 = 120;

/// What a dragged window is dragged over, and what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Desktop {
    /// A two-colour `less` window over the plain background (the old scenario, `drag`).
    Plain,
    /// The anti-aliased, coloured `less` of `scroll-aa` over a photograph as wallpaper, which
    /// the X server paints wherever the window uncovers it (`drag-desktop`).
    Wallpaper,
    /// The anti-aliased terminal of `typing-aa`, its lines short (most of it blank), over that
    /// wallpaper (`drag-shell`).
    Shell,
}

/// Drags a terminal diagonally across the screen at 60 steps a second, in Auto: the frames
/// delivered while it moves, bytes a step, and how long after the last step the agent's picture
/// is exact.
pub(crate) async fn drag(b: &Bench, desktop: Desktop) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let (name, _file, _term, _wallpaper) = match desktop {
        Desktop::Plain => {
            let file = tempfile::NamedTempFile::new()?;
            std::fs::write(
                file.path(),
                (0..200)
                    .map(|i| format!("line {i} of a window being dragged across the screen\n"))
                    .collect::<String>(),
            )?;
            let path = file.path().to_string_lossy().into_owned();
            let term = xterm(&display, Text::Bitmap, "80x30+0+0", &["less", &path])?;
            ("drag", Some(file), term, None)
        }
        Desktop::Wallpaper | Desktop::Shell => {
            let wallpaper = Wallpaper::set(b, &photo(3))?;
            b.synced(Duration::from_secs(20)).await?;
            // A desktop has been still for a while when a window opens on it.
            tokio::time::sleep(Duration::from_secs(1)).await;
            if desktop == Desktop::Shell {
                let term = xterm(
                    &display,
                    Text::AntiAliased,
                    DESKTOP_WINDOW,
                    &["sh", "-c", SHORT_PROMPT],
                )?;
                ("drag-shell", None, term, Some(wallpaper))
            } else {
                let (file, term) = coloured_less(&display, DESKTOP_WINDOW)?;
                ("drag-desktop", Some(file), term, Some(wallpaper))
            }
        }
    };
    wait_window(b).await?;
    b.synced(Duration::from_secs(20)).await?;
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
    // A real mouse drag moves the window 60 times a second.
    let step = Duration::from_secs_f64(1.0 / 60.0);
    for i in 0..DRAG_STEPS {
        let due = start + step * i;
        tokio::time::sleep_until(due.into()).await;
        let (x, y) = (10 * i, 4 * i);
        xdotool(
            &display,
            &["windowmove", &wid, &x.to_string(), &y.to_string()],
        )?;
    }
    let end = start + step * DRAG_STEPS;
    b.synced(Duration::from_secs(10)).await?;
    let exact_ms = end.elapsed().as_secs_f64() * 1e3;
    let r = b.lock();
    let frames = r.records[mark..].iter().filter(|f| f.at <= end).count();
    let bytes: usize = r.records[mark..].iter().map(|f| f.bytes).sum();
    Ok(Result_ {
        scenario: name.into(),
        fps: Some(frames as f64 / end.duration_since(start).as_secs_f64()),
        bytes_per_event: Some(bytes as f64 / f64::from(DRAG_STEPS)),
        exact_ms: Some(exact_ms),
        ..Default::default()
    })
}

/// The coloured `less` window over the wallpaper (906x766 pixels).
const DESKTOP_WINDOW: &str = "100x40+0+0";

/// Opens xterm's menu (Ctrl and the left button) over the coloured `less` window and the
/// photographic wallpaper beside it, and closes it, ten times a second or more apart (as a
/// person does): the latency and bytes of each close, which uncovers what the menu hid.
pub(crate) async fn menu(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let _wallpaper = Wallpaper::set(b, &photo(3))?;
    b.synced(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _less = coloured_less(&display, DESKTOP_WINDOW)?;
    wait_window(b).await?;
    // The menu opens down and right of the pointer: over the window and the wallpaper.
    xdotool(&display, &["mousemove", "700", "300"])?;
    let mut samples = Vec::new();
    for _ in 0..10 {
        // What the menu covers has been still for a while when it opens.
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.event(|| xdotool(&display, &["keydown", "ctrl", "mousedown", "1"]))
            .await?
            .context("the menu did not open")?;
        let close = || xdotool(&display, &["mouseup", "1", "keyup", "ctrl"]);
        if let Some(s) = b.event(close).await? {
            samples.push(s);
        }
    }
    Ok(summarize("menu-desktop", &samples))
}

/// A picture as the root window's background, so the X server paints it wherever a window
/// uncovers the desktop; the plain background again on drop.
struct Wallpaper<'a> {
    b: &'a Bench,
    pixmap: u32,
}

impl<'a> Wallpaper<'a> {
    fn set(b: &'a Bench, pixels: &[u8]) -> anyhow::Result<Self> {
        let pixmap = b.pixmap(pixels)?;
        Self::background(
            b,
            x11rb::protocol::xproto::ChangeWindowAttributesAux::new().background_pixmap(pixmap),
        )?;
        Ok(Self { b, pixmap })
    }

    fn background(
        b: &Bench,
        aux: x11rb::protocol::xproto::ChangeWindowAttributesAux,
    ) -> anyhow::Result<()> {
        b.conn.change_window_attributes(b.root, &aux)?;
        b.conn.clear_area(false, b.root, 0, 0, 0, 0)?;
        x11rb::wrapper::ConnectionExt::sync(&b.conn)?;
        Ok(())
    }
}

impl Drop for Wallpaper<'_> {
    fn drop(&mut self) {
        let plain =
            x11rb::protocol::xproto::ChangeWindowAttributesAux::new().background_pixel(0x30_3030);
        let _ = Self::background(self.b, plain);
        let _ = self.b.conn.free_pixmap(self.pixmap);
    }
}

/// Flips two photos: one at a time in Sharp (latency to exact pixels each), continuously at
/// 30 Hz in the lossy modes (what is delivered, and how long after the last flip the picture is
/// exact; at most `settle`).
pub(crate) async fn photos(
    b: &Bench,
    q: Quality,
    name: &str,
    settle: Duration,
) -> anyhow::Result<Result_> {
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
    b.synced(settle).await?;
    let exact_ms = end.elapsed().as_secs_f64() * 1e3;
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
        exact_ms: Some(exact_ms),
        ..Default::default()
    })
}

pub(crate) async fn idle(b: &Bench) -> anyhow::Result<Result_> {
    b.synced(Duration::from_secs(10)).await?;
    let mark = b.lock().records.len();
    let (h0, _) = b.cpu();
    let wire0 = b.wire();
    // The scenario is ten seconds of nothing.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (h1, _) = b.cpu();
    let wire = b.wire().since(wire0);
    let bytes: usize = b.lock().records[mark..].iter().map(|f| f.bytes).sum();
    Ok(Result_ {
        scenario: "idle".into(),
        bytes_per_event: Some(bytes as f64),
        wire_bytes_per_event: Some(wire.both as f64),
        wire_in_per_event: Some(wire.received as f64),
        wire_ip_bytes_per_event: Some(wire.ip_bytes() as f64),
        fps: None,
        latency_p50_ms: None,
        latency_p95_ms: None,
        host_cpu_s: h1 - h0,
        relay_cpu_s: 0.0,
        upload_mb_s: None,
        download_mb_s: None,
        exact_ms: None,
        mbit_s: None,
        psnr_db: None,
    })
}

/// Writes `len` bytes of fast pseudo-random data.
pub(crate) fn random_file(path: &std::path::Path, len: u64) -> anyhow::Result<()> {
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

pub(crate) async fn files(b: &Bench) -> anyhow::Result<Result_> {
    let display = b.x.display();
    let src = tempfile::tempdir()?;
    let file = src.path().join("payload.bin");
    random_file(&file, FILE_BYTES)?;
    let _term = xterm(&display, Text::Bitmap, "160x50+0+0", &["cat"])?;
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

/// A photo-like picture: smooth value noise in several octaves, per channel, with fine grain.
pub(crate) fn photo(seed: u64) -> Vec<u8> {
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
