//! X11 capture through MIT-SHM.
//!
//! The shared buffer is a memfd (mode 0600) handed to the X server over the socket
//! (MIT-SHM 1.2 `AttachFd`): there is no SysV segment another user could attach, and the kernel
//! frees the memory when the process ends, however it ends. Where fd passing is not possible
//! (an X server reached over TCP), a SysV segment with mode 0600 is used and marked for removal
//! as soon as the server has attached it, so it too disappears with the process. Without MIT-SHM
//! at all, plain `GetImage` is used.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use tether_protocol::msg::MonitorInfo;
use tether_protocol::screen::{FrameRef, Rect};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use std::sync::Arc;

use super::{CaptureError, Capturer, Damage, Wakeup};

/// More damaged rectangles than this are read as their bounding box, in one request.
const MAX_RECTS: usize = 16;

/// A shared-memory buffer mapped into this process and attached to the X server.
struct ShmBuffer {
    seg: shm::Seg,
    ptr: NonNull<u8>,
    len: usize,
    kind: ShmKind,
}

enum ShmKind {
    Memfd(#[allow(dead_code)] OwnedFd),
    SysV,
}

// SAFETY: the mapping is owned by this struct and only accessed through &mut self.
unsafe impl Send for ShmBuffer {}

impl ShmBuffer {
    fn memfd(conn: &RustConnection, len: usize) -> Result<Self, CaptureError> {
        let name = c"tether-capture";
        // SAFETY: plain syscall with a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(CaptureError::Shm(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        // SAFETY: fd was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: valid fd; mode change and size change have no memory-safety impact.
        unsafe {
            if libc::fchmod(fd.as_raw_fd(), 0o600) != 0
                || libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) != 0
            {
                return Err(CaptureError::Shm(
                    std::io::Error::last_os_error().to_string(),
                ));
            }
        }
        let ptr = map(fd.as_raw_fd(), len)?;
        let seg = conn
            .generate_id()
            .map_err(|e| CaptureError::Shm(e.to_string()))?;
        let dup = fd
            .try_clone()
            .map_err(|e| CaptureError::Shm(e.to_string()))?;
        let attached = conn
            .shm_attach_fd(seg, dup, false)
            .map_err(|e| e.to_string())
            .and_then(|c| c.check().map_err(|e| e.to_string()));
        if let Err(e) = attached {
            // SAFETY: ptr/len come from the successful mmap above.
            unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
            return Err(CaptureError::Shm(e));
        }
        Ok(Self {
            seg,
            ptr,
            len,
            kind: ShmKind::Memfd(fd),
        })
    }

    fn sysv(conn: &RustConnection, len: usize) -> Result<Self, CaptureError> {
        // SAFETY: plain syscalls; the segment is private to us (0600) and removed below.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600);
            if id < 0 {
                return Err(CaptureError::Shm(
                    std::io::Error::last_os_error().to_string(),
                ));
            }
            let addr = libc::shmat(id, std::ptr::null(), 0);
            if addr as isize == -1 {
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                return Err(CaptureError::Shm(
                    std::io::Error::last_os_error().to_string(),
                ));
            }
            let seg = conn
                .generate_id()
                .map_err(|e| CaptureError::Shm(e.to_string()));
            let attached = seg.as_ref().map_err(|e| e.to_string()).and_then(|seg| {
                conn.shm_attach(*seg, id as u32, false)
                    .map_err(|e| e.to_string())
                    .and_then(|c| c.check().map_err(|e| e.to_string()))
            });
            // The server has attached (or failed): mark for removal now, so the segment goes away
            // with the last detach even if this process is killed.
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            if let Err(e) = attached {
                libc::shmdt(addr);
                return Err(CaptureError::Shm(e));
            }
            let ptr = NonNull::new(addr.cast::<u8>())
                .ok_or_else(|| CaptureError::Shm("null mapping".into()))?;
            Ok(Self {
                seg: seg?,
                ptr,
                len,
                kind: ShmKind::SysV,
            })
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: ptr is a live mapping of len bytes for as long as self exists.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn release(self, conn: &RustConnection) {
        let _ = conn.shm_detach(self.seg);
        let _ = conn.flush();
        // Drop unmaps.
    }
}

impl Drop for ShmBuffer {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe our own mapping, not used after this.
        unsafe {
            match self.kind {
                ShmKind::Memfd(_) => {
                    libc::munmap(self.ptr.as_ptr().cast(), self.len);
                }
                ShmKind::SysV => {
                    libc::shmdt(self.ptr.as_ptr().cast());
                }
            }
        }
    }
}

fn map(fd: i32, len: usize) -> Result<NonNull<u8>, CaptureError> {
    // SAFETY: mapping a file we own with a length it has.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(CaptureError::Shm(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| CaptureError::Shm("null mapping".into()))
}

/// Which kind of shared memory a capturer ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShmMode {
    /// A memfd passed over the X socket.
    Memfd,
    /// A SysV segment, 0600, removed at once.
    SysV,
    /// No shared memory: plain GetImage.
    None,
}

/// Captures an X11 screen.
pub struct X11Capturer {
    conn: RustConnection,
    root: Window,
    width: u16,
    height: u16,
    shm: Option<ShmBuffer>,
    shm_mode: ShmMode,
    monitors: Vec<MonitorInfo>,
    /// The last capture of `frame_monitor`, packed BGRX.
    frame: Vec<u8>,
    frame_monitor: Option<usize>,
    /// XDamage object and the XFixes region its damage is moved into.
    damage: Option<(damage::Damage, xfixes::Region)>,
    /// A DamageNotify arrived that has not been collected.
    damaged: bool,
    /// An eventfd that [`Capturer::waker`] writes to, so that a wait for damage returns.
    wake: Arc<OwnedFd>,
}

impl std::fmt::Debug for X11Capturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Capturer")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("shm", &self.shm_mode)
            .finish()
    }
}

impl X11Capturer {
    /// Opens `display` (or `$DISPLAY`) with the best shared memory available, unless
    /// `TETHER_CAPTURE_SHM` (`memfd`, `sysv` or `none`) asks for a particular path (a diagnostic
    /// knob; every path keeps the screen private).
    pub fn open(display: Option<&str>) -> Result<Self, CaptureError> {
        let pref = match std::env::var("TETHER_CAPTURE_SHM").as_deref() {
            Ok("sysv") => ShmMode::SysV,
            Ok("none") => ShmMode::None,
            _ => ShmMode::Memfd,
        };
        Self::open_with(display, pref)
    }

    /// Opens `display`, trying shared memory kinds from `best` down.
    pub fn open_with(display: Option<&str>, best: ShmMode) -> Result<Self, CaptureError> {
        let (conn, screen_num) =
            x11rb::connect(display).map_err(|e| CaptureError::NoDisplay(e.to_string()))?;
        let screen = conn
            .setup()
            .roots
            .get(screen_num)
            .ok_or_else(|| CaptureError::NoDisplay("no screen".into()))?;
        let root = screen.root;
        let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
        let depth = screen.root_depth;
        let bpp = conn
            .setup()
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel)
            .unwrap_or(0);
        if !(depth == 24 || depth == 32) || bpp != 32 {
            return Err(CaptureError::Format(format!(
                "depth {depth}, {bpp} bits per pixel"
            )));
        }
        if conn.setup().image_byte_order != x11rb::protocol::xproto::ImageOrder::LSB_FIRST {
            return Err(CaptureError::Format("big-endian image byte order".into()));
        }
        // SAFETY: eventfd takes no pointers; a non-negative result is a descriptor we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(CaptureError::Failed(format!(
                "eventfd: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: `efd` was just created and nothing else owns it.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        let mut me = Self {
            wake,
            conn,
            root,
            width,
            height,
            shm: None,
            shm_mode: ShmMode::None,
            monitors: Vec::new(),
            frame: Vec::new(),
            frame_monitor: None,
            damage: None,
            damaged: false,
        };
        me.setup_shm(best);
        me.monitors = me.read_monitors();
        me.setup_damage();
        Ok(me)
    }

    /// Asks the server to report damage to the root window; without XDamage and XFixes the
    /// capturer falls back to polling.
    fn setup_damage(&mut self) {
        let ok = self
            .conn
            .damage_query_version(1, 1)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some()
            && self
                .conn
                .xfixes_query_version(5, 0)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some();
        if !ok {
            return;
        }
        let ids = (self.conn.generate_id(), self.conn.generate_id());
        let (Ok(d), Ok(r)) = ids else { return };
        let made = self
            .conn
            .damage_create(d, self.root, damage::ReportLevel::NON_EMPTY)
            .map_err(|e| e.to_string())
            .and_then(|c| c.check().map_err(|e| e.to_string()))
            .and_then(|()| {
                self.conn
                    .xfixes_create_region(r, &[])
                    .map_err(|e| e.to_string())
                    .and_then(|c| c.check().map_err(|e| e.to_string()))
            });
        if made.is_ok() {
            self.damage = Some((d, r));
            // Everything counts as damaged until the first capture.
            self.damaged = true;
        }
    }

    /// Whether damage events drive this capturer (otherwise it polls).
    pub fn has_damage(&self) -> bool {
        self.damage.is_some()
    }

    /// Takes queued events; returns whether any was a DamageNotify.
    fn drain_events(&mut self) -> Result<bool, CaptureError> {
        let mut any = false;
        while let Some(ev) = self
            .conn
            .poll_for_event()
            .map_err(|e| CaptureError::Failed(e.to_string()))?
        {
            if let Event::DamageNotify(_) = ev {
                any = true;
            }
        }
        Ok(any)
    }

    fn grab(&mut self, m: &MonitorInfo, r: Rect) -> Result<(), CaptureError> {
        let fail = |e: &dyn std::fmt::Display| CaptureError::Failed(e.to_string());
        let (x, y) = ((m.x + r.x as i32) as i16, (m.y + r.y as i32) as i16);
        let (w, h) = (r.w as u16, r.h as u16);
        let row = r.w as usize * 4;
        let pitch = m.width as usize * 4;
        let plain;
        let src: &[u8] = if let Some(shm) = &self.shm {
            self.conn
                .shm_get_image(
                    self.root,
                    x,
                    y,
                    w,
                    h,
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    shm.seg,
                    0,
                )
                .map_err(|e| fail(&e))?
                .reply()
                .map_err(|e| fail(&e))?;
            &shm.bytes()[..row * r.h as usize]
        } else {
            plain = self
                .conn
                .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
                .map_err(|e| fail(&e))?
                .reply()
                .map_err(|e| fail(&e))?
                .data;
            &plain
        };
        if src.len() < row * r.h as usize {
            return Err(CaptureError::Failed("short image".into()));
        }
        for (i, line) in src.chunks_exact(row).take(r.h as usize).enumerate() {
            let off = (r.y as usize + i) * pitch + r.x as usize * 4;
            self.frame[off..off + row].copy_from_slice(line);
        }
        Ok(())
    }

    fn setup_shm(&mut self, best: ShmMode) {
        if best == ShmMode::None {
            return;
        }
        let has_shm = self
            .conn
            .shm_query_version()
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| (r.major_version, r.minor_version));
        let len = self.width as usize * self.height as usize * 4;
        let Some((major, minor)) = has_shm else {
            return;
        };
        if best == ShmMode::Memfd
            && (major, minor) >= (1, 2)
            && let Ok(buf) = ShmBuffer::memfd(&self.conn, len)
        {
            self.shm = Some(buf);
            self.shm_mode = ShmMode::Memfd;
            return;
        }
        if let Ok(buf) = ShmBuffer::sysv(&self.conn, len) {
            self.shm = Some(buf);
            self.shm_mode = ShmMode::SysV;
        }
    }

    /// The kind of shared memory in use.
    pub fn shm_mode(&self) -> ShmMode {
        self.shm_mode
    }

    fn read_monitors(&self) -> Vec<MonitorInfo> {
        let whole = MonitorInfo {
            name: "screen".into(),
            x: 0,
            y: 0,
            width: u32::from(self.width),
            height: u32::from(self.height),
            primary: true,
        };
        let Some(reply) = self
            .conn
            .randr_get_monitors(self.root, true)
            .ok()
            .and_then(|c| c.reply().ok())
        else {
            return vec![whole];
        };
        let list: Vec<MonitorInfo> = reply
            .monitors
            .iter()
            .filter(|m| m.width > 0 && m.height > 0)
            .filter(|m| {
                // Keep monitors inside the screen.
                i32::from(m.x) >= 0
                    && i32::from(m.y) >= 0
                    && i32::from(m.x) + i32::from(m.width) <= i32::from(self.width)
                    && i32::from(m.y) + i32::from(m.height) <= i32::from(self.height)
            })
            .map(|m| MonitorInfo {
                name: self
                    .conn
                    .get_atom_name(m.name)
                    .ok()
                    .and_then(|c| c.reply().ok())
                    .map(|r| String::from_utf8_lossy(&r.name).into_owned())
                    .unwrap_or_default(),
                x: i32::from(m.x),
                y: i32::from(m.y),
                width: u32::from(m.width),
                height: u32::from(m.height),
                primary: m.primary,
            })
            .collect();
        // A monitor that contains others is an aggregate (say, the whole screen of an output that
        // was split with `xrandr --setmonitor`): list the parts, not the whole.
        let parts: Vec<MonitorInfo> = list
            .iter()
            .filter(|m| {
                !list.iter().any(|o| {
                    !std::ptr::eq(*m, o)
                        && (o.x, o.y, o.width, o.height) != (m.x, m.y, m.width, m.height)
                        && o.x >= m.x
                        && o.y >= m.y
                        && o.x + o.width as i32 <= m.x + m.width as i32
                        && o.y + o.height as i32 <= m.y + m.height as i32
                })
            })
            .cloned()
            .collect();
        let mut list = parts;
        if list.is_empty() {
            return vec![whole];
        }
        // Primary first, then left to right, top to bottom.
        list.sort_by_key(|m| (!m.primary, m.x, m.y));
        list
    }
}

impl Capturer for X11Capturer {
    fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        Ok(self.monitors.clone())
    }

    fn waker(&self) -> Option<Wakeup> {
        let fd = self.wake.clone();
        Some(Wakeup::new(move || {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to the eventfd `fd` keeps open. A full
            // counter (EAGAIN) means a wake-up is pending already.
            unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }))
    }

    fn wait_damage(&mut self, timeout: Option<Duration>) -> Result<Damage, CaptureError> {
        let Some((damage, region)) = self.damage else {
            let frame = Duration::from_millis(15);
            std::thread::sleep(timeout.map_or(frame, |t| t.min(frame)));
            return Ok(Damage::Unknown);
        };
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            if self.drain_events()? {
                self.damaged = true;
            }
            if self.damaged {
                break;
            }
            let left = end.map(|e| e.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(Damage::None);
            }
            let mut pfd = [
                libc::pollfd {
                    fd: self.conn.stream().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let ms = left.map_or(-1, |l| l.as_millis().clamp(1, i32::MAX as u128) as i32);
            // SAFETY: two valid pollfds for the duration of the call.
            unsafe { libc::poll(pfd.as_mut_ptr(), 2, ms) };
            if pfd[1].revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 8];
                // SAFETY: reads at most 8 bytes into a live buffer; resets the counter.
                unsafe { libc::read(self.wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                return Ok(Damage::None);
            }
        }
        // Move the accumulated damage into our region, clearing it, then read it.
        let fail = |e: &dyn std::fmt::Display| CaptureError::Failed(e.to_string());
        self.conn
            .damage_subtract(damage, x11rb::NONE, region)
            .map_err(|e| fail(&e))?;
        let rects = self
            .conn
            .xfixes_fetch_region(region)
            .map_err(|e| fail(&e))?
            .reply()
            .map_err(|e| fail(&e))?
            .rectangles;
        // A notification queued now may be for damage that came after the subtract: keep it, or
        // that damage would never be reported again (NonEmpty reports only the first change).
        // One that was for the damage just collected costs one empty fetch.
        self.damaged = self.drain_events()?;
        let screen = Rect {
            x: 0,
            y: 0,
            w: u32::from(self.width),
            h: u32::from(self.height),
        };
        let rects: Vec<Rect> = rects
            .iter()
            .filter_map(|r| {
                Rect::clipped(
                    i64::from(r.x),
                    i64::from(r.y),
                    u64::from(r.width),
                    u64::from(r.height),
                    &screen,
                )
            })
            .collect();
        Ok(if rects.is_empty() {
            Damage::None
        } else {
            Damage::Rects(rects)
        })
    }

    fn capture(
        &mut self,
        index: usize,
        only: Option<&[Rect]>,
    ) -> Result<FrameRef<'_>, CaptureError> {
        let m = self
            .monitors
            .get(index)
            .ok_or(CaptureError::NoMonitor(index))?
            .clone();
        let whole = Rect {
            x: 0,
            y: 0,
            w: m.width,
            h: m.height,
        };
        let fresh = self.frame_monitor != Some(index)
            || self.frame.len() != m.width as usize * m.height as usize * 4;
        if fresh {
            self.frame = vec![0; m.width as usize * m.height as usize * 4];
            self.frame_monitor = Some(index);
        }
        match only {
            Some(rects) if !fresh => {
                let clipped: Vec<Rect> = rects.iter().filter_map(|r| r.intersect(&whole)).collect();
                if clipped.len() > MAX_RECTS {
                    if let Some(bbox) = clipped.iter().copied().reduce(|a, b| a.union(&b)) {
                        self.grab(&m, bbox)?;
                    }
                } else {
                    for r in clipped {
                        self.grab(&m, r)?;
                    }
                }
            }
            _ => self.grab(&m, whole)?,
        }
        Ok(FrameRef {
            width: m.width,
            height: m.height,
            stride: m.width as usize * 4,
            data: &self.frame,
        })
    }
}

impl Drop for X11Capturer {
    fn drop(&mut self) {
        if let Some((d, r)) = self.damage.take() {
            let _ = self.conn.damage_destroy(d);
            let _ = self.conn.xfixes_destroy_region(r);
        }
        if let Some(shm) = self.shm.take() {
            shm.release(&self.conn);
        }
    }
}
