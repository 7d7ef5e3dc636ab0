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

use tether_protocol::msg::MonitorInfo;
use tether_protocol::screen::FrameRef;
use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::{CaptureError, Capturer};

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
    plain: Vec<u8>,
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
        let mut me = Self {
            conn,
            root,
            width,
            height,
            shm: None,
            shm_mode: ShmMode::None,
            monitors: Vec::new(),
            plain: Vec::new(),
        };
        me.setup_shm(best);
        me.monitors = me.read_monitors();
        Ok(me)
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
        let mut list: Vec<MonitorInfo> = reply
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

    fn capture(&mut self, index: usize) -> Result<FrameRef<'_>, CaptureError> {
        let m = self
            .monitors
            .get(index)
            .ok_or(CaptureError::NoMonitor(index))?
            .clone();
        let (x, y) = (m.x as i16, m.y as i16);
        let (w, h) = (m.width as u16, m.height as u16);
        let fail = |e: &dyn std::fmt::Display| CaptureError::Failed(e.to_string());
        if let Some(shm) = &self.shm {
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
            let len = usize::from(w) * usize::from(h) * 4;
            return Ok(FrameRef {
                width: m.width,
                height: m.height,
                stride: usize::from(w) * 4,
                data: &shm.bytes()[..len],
            });
        }
        let reply = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
            .map_err(|e| fail(&e))?
            .reply()
            .map_err(|e| fail(&e))?;
        self.plain = reply.data;
        Ok(FrameRef {
            width: m.width,
            height: m.height,
            stride: usize::from(w) * 4,
            data: &self.plain,
        })
    }
}

impl Drop for X11Capturer {
    fn drop(&mut self) {
        if let Some(shm) = self.shm.take() {
            shm.release(&self.conn);
        }
    }
}
