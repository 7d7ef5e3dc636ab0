//! X servers for the tests: Xvfb displays stopped on drop, pictures drawn on and read from them,
//! windows that record input, the clipboard, and the titles of top-level windows.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};

use crate::{ChildGuard, wait_for};

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

/// Whether display `n` is in use: its lock file names a live process. A lock (and socket) left
/// by a server that died without cleaning up is removed, so the number can be used again.
fn display_taken(n: u32) -> bool {
    let lock = format!("/tmp/.X{n}-lock");
    let socket = format!("/tmp/.X11-unix/X{n}");
    match std::fs::read_to_string(&lock) {
        Ok(text) => {
            let alive = text
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|pid| *pid > 0)
                // SAFETY: kill(2) with signal 0 only checks that the process exists.
                .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
            if alive {
                return true;
            }
            // Only a stale lock we can remove frees the number.
            std::fs::remove_file(&lock).is_err()
                || (Path::new(&socket).exists() && std::fs::remove_file(&socket).is_err())
        }
        // No lock: a socket alone may still be a live server's (an abstract-socket server
        // keeps none); leave such numbers alone.
        Err(_) => Path::new(&socket).exists(),
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its lock file and socket; a kill would leave them behind,
        // so after one they are removed here.
        if self._child.terminate(Duration::from_secs(5)).is_err() {
            self._child.kill();
            let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.number));
            let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        }
    }
}

impl Xvfb {
    /// Starts Xvfb with one `width`x`height` screen at depth 24, `-noreset`, no TCP.
    pub fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let base = 200 + (std::process::id() % 500) * 10;
        for _ in 0..50 {
            let n = base + NEXT_DISPLAY.fetch_add(1, Ordering::SeqCst) % 1000;
            if display_taken(n) {
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
