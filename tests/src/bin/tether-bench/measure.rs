//! Measuring what the agent sees: the decoded screen and each frame's arrival, compared with
//! what the X server shows, and the figures of a scenario.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use tether_console::net::{AgentClient, ScreenControl};
use tether_protocol::screen::Rect;
use tether_tests::{Xvfb, cpu_seconds};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

use crate::{H, W};

/// One scenario's figures; `None` where a figure does not apply.
#[derive(Debug, Default, Clone)]
pub(crate) struct Result_ {
    pub(crate) scenario: String,
    pub(crate) latency_p50_ms: Option<f64>,
    pub(crate) latency_p95_ms: Option<f64>,
    pub(crate) bytes_per_event: Option<f64>,
    /// UDP payload bytes both ways on the agent's connection per event: the screen messages in
    /// QUIC packets, the viewer's acknowledgement and QUIC's own (IP and UDP headers add 28 B a
    /// datagram).
    pub(crate) wire_bytes_per_event: Option<f64>,
    /// Of those, what the agent received: the mirror of what the host sends.
    pub(crate) wire_in_per_event: Option<f64>,
    /// The same both ways with each datagram's IPv4 and UDP headers (28 B), to set beside a TCP
    /// peer's payload plus its segments' headers.
    pub(crate) wire_ip_bytes_per_event: Option<f64>,
    pub(crate) fps: Option<f64>,
    pub(crate) host_cpu_s: f64,
    pub(crate) relay_cpu_s: f64,
    pub(crate) upload_mb_s: Option<f64>,
    pub(crate) download_mb_s: Option<f64>,
    /// From the last change to exact pixels on the agent, for scenarios that change the screen
    /// continuously and then stop.
    pub(crate) exact_ms: Option<f64>,
    /// Screen bytes a second while the screen moves, in megabits.
    pub(crate) mbit_s: Option<f64>,
    /// Median PSNR of the agent's pictures against the ones shown, in dB.
    pub(crate) psnr_db: Option<f64>,
}

impl Result_ {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "bytes_per_event": self.bytes_per_event,
            "wire_bytes_per_event": self.wire_bytes_per_event,
            "wire_in_per_event": self.wire_in_per_event,
            "wire_ip_bytes_per_event": self.wire_ip_bytes_per_event,
            "fps": self.fps,
            "host_cpu_s": self.host_cpu_s,
            "relay_cpu_s": self.relay_cpu_s,
            "upload_mb_s": self.upload_mb_s,
            "download_mb_s": self.download_mb_s,
            "exact_ms": self.exact_ms,
            "mbit_s": self.mbit_s,
            "psnr_db": self.psnr_db,
        })
    }
}

/// A frame as the agent decoded it.
pub(crate) struct Record {
    pub(crate) at: Instant,
    pub(crate) rects: Vec<Rect>,
    pub(crate) bytes: usize,
}

/// What the receiving task shares: the decoded screen and every frame's arrival.
#[derive(Default)]
pub(crate) struct Received {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) pixels: Vec<u8>,
    pub(crate) records: Vec<Record>,
    /// Whether to keep a copy of the screen as each frame left it (in `kept`).
    pub(crate) keep: bool,
    pub(crate) kept: Vec<(std::time::Instant, Vec<u8>)>,
}

/// The running session under measurement.
pub(crate) struct Bench {
    pub(crate) x: Xvfb,
    pub(crate) agent: Arc<AgentClient>,
    pub(crate) session: tether_protocol::msg::SessionId,
    pub(crate) host_dir: std::path::PathBuf,
    pub(crate) conn: x11rb::rust_connection::RustConnection,
    pub(crate) root: u32,
    pub(crate) received: Arc<Mutex<Received>>,
    pub(crate) control: ScreenControl,
    pub(crate) host_pid: u32,
    pub(crate) relay_pid: u32,
}

impl Bench {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn read_screen(&self) -> anyhow::Result<Vec<u8>> {
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

    fn upload(&self, drawable: u32, pixels: &[u8]) -> anyhow::Result<()> {
        upload(&self.conn, drawable, pixels)
    }

    /// Draws a picture straight onto the screen.
    pub(crate) fn put_screen(&self, pixels: &[u8]) -> anyhow::Result<()> {
        self.upload(self.root, pixels)
    }

    /// Uploads a picture into a new pixmap, so that showing it later is one request.
    pub(crate) fn pixmap(&self, pixels: &[u8]) -> anyhow::Result<u32> {
        self.tall_pixmap(pixels, H)
    }

    /// Uploads a picture of the screen's width and `height` rows into a new pixmap.
    pub(crate) fn tall_pixmap(&self, pixels: &[u8], height: u16) -> anyhow::Result<u32> {
        let pm = self.conn.generate_id()?;
        self.conn.create_pixmap(24, pm, self.root, W, height)?;
        self.upload(pm, pixels)?;
        Ok(pm)
    }

    /// Shows a whole pixmap on the screen at once, as a double-buffered application does.
    pub(crate) fn show(&self, pm: u32) -> anyhow::Result<()> {
        self.show_from(pm, 0)
    }

    /// Shows the screen-sized part of a pixmap from row `top` down, in one request (a scrolled
    /// view).
    pub(crate) fn show_from(&self, pm: u32, top: i16) -> anyhow::Result<()> {
        let gc = self.conn.generate_id()?;
        self.conn.create_gc(gc, self.root, &Default::default())?;
        self.conn.copy_area(pm, self.root, gc, 0, top, 0, 0, W, H)?;
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
    pub(crate) async fn synced(&self, deadline: Duration) -> anyhow::Result<Vec<u8>> {
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
    pub(crate) async fn settled_change(&self, before: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
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

    /// UDP payload bytes the agent's connection has received and sent.
    pub(crate) fn wire(&self) -> Wire {
        let s = self.agent.connection().stats();
        Wire {
            both: s.udp_rx.bytes + s.udp_tx.bytes,
            received: s.udp_rx.bytes,
            datagrams: s.udp_rx.datagrams + s.udp_tx.datagrams,
        }
    }

    /// Runs `act`, then measures how long the agent took to show its result and what it cost.
    pub(crate) async fn event(
        &self,
        act: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<Sample>> {
        let before = self.synced(Duration::from_secs(10)).await?;
        let mark = self.lock().records.len();
        let wire0 = self.wire();
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
        // The acknowledgements that follow the frame belong to it: the viewer's own at once, and
        // QUIC's, which a peer may delay by up to 25 ms.
        tokio::time::sleep(WIRE_TAIL).await;
        let wire = self.wire().since(wire0);
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
        Ok(Some(Sample {
            latency_ms: latency,
            bytes,
            wire,
        }))
    }

    pub(crate) fn cpu(&self) -> (f64, f64) {
        (cpu_seconds(self.host_pid), cpu_seconds(self.relay_pid))
    }
}

/// Draws a picture of the screen's width (as many rows as `pixels` holds) into `drawable` of
/// `conn`'s display, 64 rows per request.
pub(crate) fn upload(
    conn: &x11rb::rust_connection::RustConnection,
    drawable: u32,
    pixels: &[u8],
) -> anyhow::Result<()> {
    let gc = conn.generate_id()?;
    conn.create_gc(gc, drawable, &Default::default())?;
    let row = usize::from(W) * 4;
    for (i, chunk) in pixels.chunks(row * 64).enumerate() {
        let y = (i * 64) as i16;
        let n = (chunk.len() / row) as u16;
        conn.put_image(
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
    conn.free_gc(gc)?;
    conn.get_input_focus()?.reply()?;
    Ok(())
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

/// How long after the agent shows an event's result its traffic is still counted.
const WIRE_TAIL: Duration = Duration::from_millis(60);

/// What one event cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// From the action to the frame that showed its result.
    pub(crate) latency_ms: f64,
    /// Screen message bytes.
    pub(crate) bytes: usize,
    /// UDP payload bytes on the agent's connection.
    pub(crate) wire: Wire,
}

/// UDP payload bytes on the agent's connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wire {
    /// Both ways.
    pub(crate) both: u64,
    /// Received by the agent.
    pub(crate) received: u64,
    /// Datagrams, both ways.
    pub(crate) datagrams: u64,
}

impl Wire {
    /// What moved since `start`.
    pub(crate) fn since(self, start: Wire) -> Wire {
        Wire {
            both: self.both - start.both,
            received: self.received - start.received,
            datagrams: self.datagrams - start.datagrams,
        }
    }

    /// Both ways with each datagram's IPv4 and UDP headers (28 B).
    pub(crate) fn ip_bytes(self) -> u64 {
        self.both + 28 * self.datagrams
    }
}

/// Latency percentiles and mean bytes of samples.
pub(crate) fn summarize(name: &str, samples: &[Sample]) -> Result_ {
    let mut lat: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = samples.len().max(1) as f64;
    let bytes = samples.iter().map(|s| s.bytes as f64).sum::<f64>() / n;
    let wire = samples.iter().map(|s| s.wire.both as f64).sum::<f64>() / n;
    let wire_in = samples.iter().map(|s| s.wire.received as f64).sum::<f64>() / n;
    let wire_ip = samples
        .iter()
        .map(|s| s.wire.ip_bytes() as f64)
        .sum::<f64>()
        / n;
    Result_ {
        scenario: name.into(),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
        bytes_per_event: Some(bytes),
        wire_bytes_per_event: Some(wire),
        wire_in_per_event: Some(wire_in),
        wire_ip_bytes_per_event: Some(wire_ip),
        ..Default::default()
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
