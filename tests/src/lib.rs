//! Test harness for Tether's end-to-end tests and benchmarks: Xvfb displays, the project's
//! binaries as child processes, and pictures drawn on and read from an X server.
//!
//! Everything started here is stopped on drop (children by PID, Xvfb displays) and listens only
//! on loopback.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};

/// Polls `f` until it returns `Some`, or fails after `deadline`.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed (by PID) and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    /// The child.
    pub child: Child,
    name: String,
    /// Where the child's standard error goes, if captured (a file, so a chatty child never
    /// blocks on a full pipe).
    log: Option<tempfile::NamedTempFile>,
}

impl ChildGuard {
    /// Wraps a spawned child.
    pub fn new(name: &str, child: Child) -> Self {
        Self {
            child,
            name: name.to_string(),
            log: None,
        }
    }

    /// A file for a child's standard error, to pass to [`ChildGuard::with_log`].
    pub fn log_file() -> anyhow::Result<(tempfile::NamedTempFile, Stdio)> {
        let f = tempfile::NamedTempFile::new()?;
        let out = Stdio::from(f.reopen()?);
        Ok((f, out))
    }

    /// Wraps a child whose standard error goes to `log`.
    pub fn with_log(name: &str, child: Child, log: tempfile::NamedTempFile) -> Self {
        Self {
            child,
            name: name.to_string(),
            log: Some(log),
        }
    }

    /// What the child wrote to standard error so far.
    pub fn stderr_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f.path()).ok())
            .unwrap_or_default()
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to exit by itself, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let name = self.name.clone();
        wait_for(&format!("{name} to exit"), deadline, || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `deadline`.
    pub fn terminate(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        // SAFETY: plain kill(2) on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait_exit(deadline)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The folder holding the workspace's binaries (`target/debug` or `target/release`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of one of the workspace's binaries. `cargo test --workspace` builds them (each binary's
/// package has an integration test).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}

static NEXT_DISPLAY: AtomicU32 = AtomicU32::new(0);

/// An Xvfb display, stopped on drop.
#[derive(Debug)]
pub struct Xvfb {
    /// Display number.
    pub number: u32,
    /// Screen width.
    pub width: u32,
    /// Screen height.
    pub height: u32,
    _child: ChildGuard,
}

impl Xvfb {
    /// Starts Xvfb with one `width`x`height` screen at depth 24, `-noreset`, no TCP.
    pub fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let base = 200 + (std::process::id() % 500) * 10;
        for _ in 0..50 {
            let n = base + NEXT_DISPLAY.fetch_add(1, Ordering::SeqCst) % 1000;
            if Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                continue;
            }
            let child = Command::new("Xvfb")
                .arg(format!(":{n}"))
                .args([
                    "-screen",
                    "0",
                    &format!("{width}x{height}x24"),
                    "-noreset",
                    "-nolisten",
                    "tcp",
                    "+extension",
                    "DAMAGE",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start Xvfb (apt-get install xvfb)")?;
            let mut guard = ChildGuard::new("Xvfb", child);
            let display = format!(":{n}");
            let ready = wait_for(
                "Xvfb to accept connections",
                Duration::from_secs(10),
                || {
                    if let Ok(Some(_)) = guard.child.try_wait() {
                        return Some(false);
                    }
                    x11rb::connect(Some(&display)).ok().map(|_| true)
                },
            )?;
            if ready {
                return Ok(Self {
                    number: n,
                    width,
                    height,
                    _child: guard,
                });
            }
        }
        bail!("no free X display number")
    }

    /// `:N`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// Connects to the display.
    pub fn connect(&self) -> anyhow::Result<x11rb::rust_connection::RustConnection> {
        Ok(x11rb::connect(Some(&self.display()))?.0)
    }

    /// Draws BGRX `pixels` (`w`x`h`) at (`x`, `y`) on the root window.
    pub fn put(&self, x: i16, y: i16, w: u16, h: u16, pixels: &[u8]) -> anyhow::Result<()> {
        let conn = self.connect()?;
        let screen = &conn.setup().roots[0];
        let root = screen.root;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, root, &CreateGCAux::new())?;
        let rows_per_req = ((64 * 1024) / (usize::from(w) * 4)).max(1);
        let mut row = 0usize;
        while row < usize::from(h) {
            let n = rows_per_req.min(usize::from(h) - row);
            let chunk = &pixels[row * usize::from(w) * 4..(row + n) * usize::from(w) * 4];
            conn.put_image(
                ImageFormat::Z_PIXMAP,
                root,
                gc,
                w,
                n as u16,
                x,
                y + row as i16,
                0,
                24,
                chunk,
            )?;
            row += n;
        }
        conn.free_gc(gc)?;
        conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// Fills a rectangle with one colour (0xRRGGBB).
    pub fn fill(&self, x: i16, y: i16, w: u16, h: u16, rgb: u32) -> anyhow::Result<()> {
        let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 4);
        for _ in 0..usize::from(w) * usize::from(h) {
            px.extend_from_slice(&[rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8, 0]);
        }
        self.put(x, y, w, h, &px)
    }

    /// Reads BGRX pixels of a rectangle of the root window.
    pub fn read(&self, x: i16, y: i16, w: u16, h: u16) -> anyhow::Result<Vec<u8>> {
        let conn = self.connect()?;
        let root = conn.setup().roots[0].root;
        let mut out = Vec::with_capacity(usize::from(w) * usize::from(h) * 4);
        let rows_per_req = ((1024 * 1024) / (usize::from(w) * 4)).max(1);
        let mut row = 0usize;
        while row < usize::from(h) {
            let n = rows_per_req.min(usize::from(h) - row);
            let r = conn
                .get_image(
                    ImageFormat::Z_PIXMAP,
                    root,
                    x,
                    y + row as i16,
                    w,
                    n as u16,
                    !0,
                )?
                .reply()?;
            out.extend_from_slice(&r.data);
            row += n;
        }
        Ok(out)
    }
}

/// A test picture: gradients, stripes and a checkerboard, so any misplaced pixel shows.
pub fn test_picture(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let checker = ((x / 16 + y / 16 + seed) % 2) as u8 * 60;
            let b = (x * 255 / w.max(1)) as u8 ^ checker;
            let g = (y * 255 / h.max(1)) as u8;
            let r = ((x + y + seed * 37) % 256) as u8;
            v.extend_from_slice(&[b, g, r, 0]);
        }
    }
    v
}

/// Whether two BGRX buffers hold the same colours (the fourth byte is ignored).
pub fn same_colours(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.chunks_exact(4)
            .zip(b.chunks_exact(4))
            .all(|(p, q)| p[..3] == q[..3])
}

/// How to run a program: path and leading arguments (the bench runs the relay and the host as
/// itself with a role argument, so that it needs no other binary).
#[derive(Debug, Clone)]
pub struct Program {
    /// The executable.
    pub path: PathBuf,
    /// Arguments before the program's own.
    pub prefix: Vec<String>,
}

impl Program {
    /// A workspace binary.
    pub fn bin(name: &str) -> Self {
        Self {
            path: bin(name),
            prefix: Vec::new(),
        }
    }

    /// A command for it.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.prefix);
        c
    }
}

/// A `tether-relay serve` child with its own data dir.
#[derive(Debug)]
pub struct RelayProc {
    /// How the relay is run.
    pub program: Program,
    /// The data dir (removed on drop).
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// The child.
    pub child: ChildGuard,
}

impl RelayProc {
    /// Starts a relay on a free loopback port.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(Program::bin("tether-relay"))
    }

    /// Starts a relay run as `program`.
    pub fn start_with(program: Program) -> anyhow::Result<Self> {
        Self::start_full(program, &[])
    }

    /// Starts a relay with extra `serve` arguments (limits, say).
    pub fn start_args(extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_full(Program::bin("tether-relay"), extra)
    }

    fn start_full(program: Program, extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_udp_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut child = program
            .command()
            .args(["serve", "--listen", &addr])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("TETHER_TEST_RELAY_LOG") {
                // A place to look when debugging a test: the relay's log.
                Some(p) => std::fs::File::create(p)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                None => Stdio::null(),
            })
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let child = ChildGuard::new("tether-relay", child);
        let mut fingerprint = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(fp) = line.strip_prefix("certificate fingerprint (SHA-256): ") {
                fingerprint = Some(fp.trim().to_string());
            }
            if line.starts_with("data dir:") {
                break;
            }
        }
        let fingerprint = fingerprint.context("relay printed no fingerprint")?;
        Ok(Self {
            program,
            dir,
            addr,
            fingerprint,
            child,
        })
    }

    /// Runs a `tether-relay` subcommand against this relay's data dir; returns stdout.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut child = self
            .program
            .command()
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "tether-relay {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Adds an agent.
    pub fn add_agent(&self, name: &str, password: &str) -> anyhow::Result<()> {
        self.cli(&["user", "add", name], Some(&format!("{password}\n")))?;
        Ok(())
    }

    /// Creates a key; returns (PIN, URL).
    pub fn create_key(&self, agent: &str) -> anyhow::Result<(String, String)> {
        let out = self.cli(&["key", "create", "--agent", agent], None)?;
        let mut lines = out.lines();
        let pin = lines.next().context("no PIN")?.to_string();
        let url = lines.next().context("no URL")?.to_string();
        Ok((pin, url))
    }

    /// The pinned fingerprint as bytes.
    pub fn fingerprint_bytes(&self) -> [u8; 32] {
        tether_net::parse_fingerprint(&self.fingerprint).unwrap_or([0; 32])
    }
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> anyhow::Result<u16> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(s.local_addr()?.port())
}

/// Starts `tether-host --headless` (nothing granted) on `display`.
pub fn spawn_host(
    display: &str,
    key: &str,
    relay: &str,
    fingerprint: &str,
) -> anyhow::Result<ChildGuard> {
    spawn_host_args(display, key, relay, fingerprint, &["--headless"])
}

/// Starts `tether-host` on `display` with these extra arguments (say `--headless --allow control`).
pub fn spawn_host_args(
    display: &str,
    key: &str,
    relay: &str,
    fingerprint: &str,
    extra: &[&str],
) -> anyhow::Result<ChildGuard> {
    spawn_host_with(
        &Program::bin("tether-host"),
        display,
        key,
        relay,
        fingerprint,
        extra,
    )
}

/// Starts a host run as `program` on `display` with these extra arguments. Its standard error
/// goes to a file ([`ChildGuard::stderr_text`]); its standard output is piped.
pub fn spawn_host_with(
    program: &Program,
    display: &str,
    key: &str,
    relay: &str,
    fingerprint: &str,
    extra: &[&str],
) -> anyhow::Result<ChildGuard> {
    let (log, err) = ChildGuard::log_file()?;
    let child = program
        .command()
        .arg(key)
        .args(["--relay", relay, "--relay-fingerprint", fingerprint])
        .args(extra)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()?;
    Ok(ChildGuard::with_log("tether-host", child, log))
}

/// The password the helpers give test agents.
pub const TEST_PASSWORD: &str = "correct horse battery";

/// A relay, a host on a display, and a logged-in agent in a session with it.
#[derive(Debug)]
pub struct TestSession {
    /// The relay.
    pub relay: RelayProc,
    /// The host process.
    pub host: ChildGuard,
    /// The agent `alice`.
    pub agent: tether_console::net::AgentClient,
    /// The session.
    pub info: tether_protocol::msg::SessionInfo,
}

/// Waits for the next session to start on `agent` (15 s at most).
pub async fn wait_session(
    agent: &mut tether_console::net::AgentClient,
) -> anyhow::Result<tether_protocol::msg::SessionInfo> {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let tether_protocol::msg::ServerMsg::SessionStarted(info) =
                agent.next_event().await?
            {
                return anyhow::Ok(info);
            }
        }
    })
    .await
    .context("no session started within 15 s")?
}

/// Starts a session: a relay (or `relay`, which already has `alice`), a key for `alice`, a host
/// on `x` with `host_args`, and `alice` logged in.
pub async fn start_session(
    x: &Xvfb,
    relay: Option<RelayProc>,
    host_args: &[&str],
) -> anyhow::Result<TestSession> {
    let relay = match relay {
        Some(r) => r,
        None => {
            let r = RelayProc::start()?;
            r.add_agent("alice", TEST_PASSWORD)?;
            r
        }
    };
    let (pin, _) = relay.create_key("alice")?;
    let mut agent = tether_console::net::AgentClient::login(
        &relay.addr,
        relay.fingerprint_bytes(),
        "alice",
        TEST_PASSWORD,
    )
    .await?;
    let host = spawn_host_args(
        &x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        host_args,
    )?;
    let info = wait_session(&mut agent).await?;
    Ok(TestSession {
        relay,
        host,
        agent,
        info,
    })
}

/// A field of `/proc/PID/status` in KiB (`VmRSS` is the memory in use now, `VmHWM` its peak).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A QUIC connection to a relay with its control stream open and a hello sent as `role`, the
/// way a hostile or a test client starts.
pub async fn raw_peer(
    addr: &str,
    fingerprint: [u8; 32],
    role: tether_protocol::msg::Role,
) -> anyhow::Result<RawPeer> {
    use tether_protocol::msg::{HELLO_MAGIC, Hello};
    let (endpoint, conn) = tether_net::connect(addr, fingerprint).await?;
    let (mut send, recv) = conn.open_bi().await?;
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: tether_protocol::PROTOCOL_VERSION,
        role,
        software: "tether-tests raw peer".into(),
    };
    tether_net::write_msg(&mut send, &hello, tether_protocol::frame::CONTROL_MAX_FRAME).await?;
    Ok(RawPeer {
        endpoint,
        conn,
        send,
        recv,
    })
}

/// A hand-driven relay client (see [`raw_peer`]).
#[derive(Debug)]
pub struct RawPeer {
    /// Its endpoint (kept alive with the connection).
    pub endpoint: quinn::Endpoint,
    /// The connection.
    pub conn: quinn::Connection,
    /// The control stream, client to relay.
    pub send: quinn::SendStream,
    /// The control stream, relay to client.
    pub recv: quinn::RecvStream,
}

impl RawPeer {
    /// Sends a control message.
    pub async fn send(&mut self, msg: &tether_protocol::msg::ClientMsg) -> anyhow::Result<()> {
        tether_net::write_msg(
            &mut self.send,
            msg,
            tether_protocol::frame::CONTROL_MAX_FRAME,
        )
        .await?;
        Ok(())
    }

    /// The next message from the relay (10 s at most).
    pub async fn next(&mut self) -> anyhow::Result<tether_protocol::msg::ServerMsg> {
        let m = tokio::time::timeout(
            Duration::from_secs(10),
            tether_net::read_msg::<tether_protocol::msg::ServerMsg>(
                &mut self.recv,
                tether_protocol::frame::CONTROL_MAX_FRAME,
            ),
        )
        .await
        .context("no message from the relay within 10 s")??;
        m.context("the relay closed the control stream")
    }

    /// Waits for the connection to close; returns the application close code and reason.
    pub async fn closed(&self, within: Duration) -> anyhow::Result<(u32, String)> {
        let err = tokio::time::timeout(within, self.conn.closed())
            .await
            .context("the connection stayed open")?;
        match err {
            quinn::ConnectionError::ApplicationClosed(c) => Ok((
                u32::try_from(c.error_code.into_inner())?,
                String::from_utf8_lossy(&c.reason).into_owned(),
            )),
            other => bail!("closed otherwise: {other}"),
        }
    }
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}

/// SysV shared-memory segments created by `pid`, as (permissions, size).
pub fn sysv_segments_of(pid: u32) -> Vec<(u32, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // key shmid perms size cpid lpid ...
        if f.len() > 4 && f[4].parse::<u32>().ok() == Some(pid) {
            let perms = u32::from_str_radix(f[2], 8).unwrap_or(0o777);
            out.push((perms, f[3].parse().unwrap_or(0)));
        }
    }
    out
}

/// What an [`EventWindow`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XInput {
    /// A key press (keycode).
    KeyPress(u8),
    /// A key release (keycode).
    KeyRelease(u8),
    /// A button press at window coordinates.
    ButtonPress(u8, i16, i16),
    /// A button release.
    ButtonRelease(u8),
}

/// A window that records the input it gets: placed without a window manager, focused.
#[derive(Debug)]
pub struct EventWindow {
    conn: x11rb::rust_connection::RustConnection,
    window: u32,
}

impl EventWindow {
    /// Opens a window at (`x`, `y`) of `w`x`h` on `display` and gives it the input focus.
    pub fn open(display: &str, x: i16, y: i16, w: u16, h: u16) -> anyhow::Result<Self> {
        use x11rb::protocol::xproto::{CreateWindowAux, EventMask, InputFocus, WindowClass};
        let (conn, screen) = x11rb::connect(Some(display))?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id()?;
        let aux = CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(0x00ff_ffff)
            .event_mask(
                EventMask::KEY_PRESS
                    | EventMask::KEY_RELEASE
                    | EventMask::BUTTON_PRESS
                    | EventMask::BUTTON_RELEASE
                    | EventMask::EXPOSURE,
            );
        conn.create_window(
            0,
            window,
            root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )?;
        conn.map_window(window)?;
        conn.set_input_focus(InputFocus::POINTER_ROOT, window, x11rb::CURRENT_TIME)?;
        conn.get_input_focus()?.reply()?;
        Ok(Self { conn, window })
    }

    /// Gives the window the input focus again.
    pub fn focus(&self) -> anyhow::Result<()> {
        use x11rb::protocol::xproto::InputFocus;
        self.conn
            .set_input_focus(InputFocus::POINTER_ROOT, self.window, x11rb::CURRENT_TIME)?;
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// Input received so far.
    pub fn drain(&self) -> anyhow::Result<Vec<XInput>> {
        use x11rb::protocol::Event;
        let mut out = Vec::new();
        while let Some(ev) = self.conn.poll_for_event()? {
            match ev {
                Event::KeyPress(e) => out.push(XInput::KeyPress(e.detail)),
                Event::KeyRelease(e) => out.push(XInput::KeyRelease(e.detail)),
                Event::ButtonPress(e) => {
                    out.push(XInput::ButtonPress(e.detail, e.event_x, e.event_y))
                }
                Event::ButtonRelease(e) => out.push(XInput::ButtonRelease(e.detail)),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether `keycode` is held down on the display now.
    pub fn key_down(&self, keycode: u8) -> anyhow::Result<bool> {
        let keys = self.conn.query_keymap()?.reply()?.keys;
        Ok(keys[usize::from(keycode / 8)] & (1 << (keycode % 8)) != 0)
    }
}

/// Reads the CLIPBOARD selection of `display` with xclip.
pub fn clipboard_text(display: &str) -> Option<String> {
    let out = Command::new("xclip")
        .args(["-selection", "clipboard", "-o"])
        .env("DISPLAY", display)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sets the CLIPBOARD selection of `display` with xclip (which keeps serving it in the
/// background until another owner takes it; the returned guard stops it).
pub fn set_clipboard_text(display: &str, text: &str) -> anyhow::Result<ChildGuard> {
    let mut child = Command::new("xclip")
        .args(["-selection", "clipboard", "-i", "-quiet"])
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("xclip is missing (apt-get install xclip)")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(text.as_bytes())?;
    Ok(ChildGuard::new("xclip", child))
}

/// Top-level windows of `display` (children of the root) with their titles (`_NET_WM_NAME`, else
/// `WM_NAME`).
pub fn window_titles(display: &str) -> anyhow::Result<Vec<(u32, String)>> {
    use x11rb::protocol::xproto::AtomEnum;
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots[screen].root;
    let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(w) = stack.pop() {
        let tree = conn.query_tree(w)?.reply()?;
        for child in tree.children {
            let name = conn
                .get_property(false, child, net_wm_name, utf8, 0, 1024)?
                .reply()?;
            let name = if name.value.is_empty() {
                conn.get_property(false, child, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 1024)?
                    .reply()?
                    .value
            } else {
                name.value
            };
            if !name.is_empty() {
                out.push((child, String::from_utf8_lossy(&name).into_owned()));
            }
            // A window manager reparents windows into frames: look inside them too.
            stack.push(child);
        }
    }
    Ok(out)
}

/// Waits for a window whose title contains `part`; returns its id and full title.
pub fn wait_window(display: &str, part: &str, deadline: Duration) -> anyhow::Result<(u32, String)> {
    wait_for(&format!("a window titled {part:?}"), deadline, || {
        window_titles(display)
            .ok()?
            .into_iter()
            .find(|(_, t)| t.contains(part))
    })
}

/// Asks a window to close as a window manager's close button does (`WM_DELETE_WINDOW`).
pub fn close_window(display: &str, window: u32) -> anyhow::Result<()> {
    use x11rb::protocol::xproto::{ClientMessageEvent, EventMask};
    let (conn, _) = x11rb::connect(Some(display))?;
    let protocols = conn.intern_atom(false, b"WM_PROTOCOLS")?.reply()?.atom;
    let delete = conn.intern_atom(false, b"WM_DELETE_WINDOW")?.reply()?.atom;
    let ev = ClientMessageEvent::new(
        32,
        window,
        protocols,
        [delete, x11rb::CURRENT_TIME, 0, 0, 0],
    );
    conn.send_event(false, window, EventMask::NO_EVENT, ev)?;
    conn.flush()?;
    conn.get_input_focus()?.reply()?;
    Ok(())
}
