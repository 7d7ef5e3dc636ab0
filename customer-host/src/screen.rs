//! Serving one viewer's screen stream: capture, diff against what that viewer has, encode, send,
//! with at most [`WINDOW`] frames in flight, or up to [`WINDOW_MAX_FRAMES`] small ones (latest
//! frame wins).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use tether_net::write_msg;
use tether_protocol::flow::FlowWindow;
use tether_protocol::frame::{CONTROL_MAX_FRAME, MEDIA_MAX_FRAME};
use tether_protocol::msg::{ScreenMsg, ViewerMsg};

use tether_protocol::screen::{
    CodecError, Executor, FrameRef, Job, Quality, ScreenEncoder, StreamWriter, TileEncoder, Timing,
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use tether_protocol::msg::MonitorInfo;
use tether_protocol::screen::Rect;

use tether_desktop::capture::{CaptureError, Capturer, CapturerFactory, Damage, Wakeup};

/// Frames in flight per viewer, whatever their size.
pub const WINDOW: usize = 2;
/// Frames in flight per viewer while they come to less than [`WINDOW_MAX_BYTES`]: keystrokes and
/// small changes need an acknowledgement only once per this many.
pub const WINDOW_MAX_FRAMES: usize = 16;
/// See [`WINDOW_MAX_FRAMES`]: 64 KiB is 50 ms of a 10 Mbit/s link.
pub const WINDOW_MAX_BYTES: usize = 64 << 10;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Why a viewer's stream ended.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// Capture failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Encoding failed.
    #[error("encoding: {0}")]
    Codec(#[from] tether_protocol::screen::CodecError),
    /// The stream failed.
    #[error("stream: {0}")]
    Stream(String),
}

/// Runs the encoder's compression jobs on all cores.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllCores;

impl Executor for AllCores {
    fn run(&self, frame: &FrameRef<'_>, jobs: &[Job<'_>]) -> Vec<Result<Vec<u8>, CodecError>> {
        use rayon::prelude::*;
        jobs.par_iter().map(|j| j.run(frame)).collect()
    }
}

/// Capture and encoding state of one viewer; runs on a blocking thread.
struct Worker {
    cap: Box<dyn Capturer>,
    enc: Box<dyn ScreenEncoder>,
    monitors: Vec<MonitorInfo>,
    monitor: usize,
    seq: u64,
    /// Whether the viewer has had a whole picture of `monitor`.
    started: bool,
    /// Time base for the encoder's motion tracking.
    epoch: Instant,
    /// The viewer's quality mode, set by the stream reader as soon as it arrives, read before
    /// every encode (a change made while the worker waits for damage applies to that very frame).
    quality: Arc<AtomicU8>,
    /// Whether frames take long to be acknowledged (set by the stream loop from the round trip).
    congested: Arc<AtomicBool>,
    /// What the viewer's stream already carried: parts are packed against it as they are made,
    /// in the order they are sent.
    stream: StreamWriter,
}

/// Round trip above which the link counts as slow, and below which it is fine again.
const SLOW_RTT: Duration = Duration::from_millis(120);
const FINE_RTT: Duration = Duration::from_millis(50);

fn quality_code(q: Quality) -> u8 {
    match q {
        Quality::Auto => 0,
        Quality::Sharp => 1,
        Quality::Smooth => 2,
    }
}

fn quality_of(c: u8) -> Quality {
    match c {
        1 => Quality::Sharp,
        2 => Quality::Smooth,
        _ => Quality::Auto,
    }
}

/// The damaged rectangles that touch monitor `m`, in its own coordinates.
fn local_damage(rects: &[Rect], m: &MonitorInfo) -> Vec<Rect> {
    let monitor = Rect {
        x: 0,
        y: 0,
        w: m.width,
        h: m.height,
    };
    rects
        .iter()
        .filter_map(|r| {
            Rect::clipped(
                i64::from(r.x) - i64::from(m.x),
                i64::from(r.y) - i64::from(m.y),
                u64::from(r.w),
                u64::from(r.h),
                &monitor,
            )
        })
        .collect()
}

impl Worker {
    /// Waits for the monitor to change (or for the capturer's wake-up), then captures and
    /// encodes the change, packed for the stream (see [`StreamWriter`]): the parts must be sent,
    /// all and in order.
    fn step(&mut self) -> Result<Option<Vec<ScreenMsg>>, ViewerError> {
        let Some(mut parts) = self.encode_change()? else {
            return Ok(None);
        };
        for p in &mut parts {
            let ScreenMsg::Update(u) = p;
            self.stream.compact(u)?;
        }
        Ok(Some(parts))
    }

    /// [`Self::step`] before packing.
    fn encode_change(&mut self) -> Result<Option<Vec<ScreenMsg>>, ViewerError> {
        let now_ms = || self.epoch.elapsed().as_millis() as u64;
        // The link as the acknowledgements measure it, and the viewer's mode, apply to this very
        // frame.
        self.enc
            .set_congested(self.congested.load(Ordering::Relaxed));
        self.enc
            .set_quality(quality_of(self.quality.load(Ordering::Relaxed)));
        let hints = if self.started {
            // Lossy tiles wait to be refined as soon as they stop changing: look again soon even
            // if nothing changes. Otherwise sleep until something does.
            let wait = self
                .enc
                .wants_refinement()
                .then(|| Duration::from_millis(tether_protocol::screen::MIN_SETTLE_MS / 2));
            match self.cap.wait_damage(wait)? {
                Damage::None => {
                    let seq = self.seq + 1;
                    let t = Timing::captured(now_us());
                    let refined = self.enc.refine(now_ms(), seq, t, &AllCores)?;
                    if refined.is_empty() {
                        return Ok(None);
                    }
                    self.seq = seq;
                    return Ok(Some(refined));
                }
                Damage::Unknown => None,
                Damage::Rects(r) => {
                    let local = local_damage(&r, &self.monitors[self.monitor]);
                    if local.is_empty() {
                        return Ok(None);
                    }
                    Some(local)
                }
            }
        } else {
            None
        };
        self.started = true;
        let captured_us = now_us();
        let frame = self.cap.capture(self.monitor, hints.as_deref())?;
        let seq = self.seq + 1;
        let parts = self.enc.update(
            &frame,
            hints.as_deref(),
            self.epoch.elapsed().as_millis() as u64,
            seq,
            Timing::captured(captured_us),
            &AllCores,
        )?;
        if parts.is_empty() {
            return Ok(None);
        }
        self.seq = seq;
        Ok(Some(parts))
    }
}

/// Serves one viewer until it goes away. `monitor` is the viewer's first choice.
pub(crate) async fn serve(
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
    monitor: u8,
    factory: CapturerFactory,
) -> Result<(), ViewerError> {
    let worker = tokio::task::spawn_blocking(move || Worker::open(factory, monitor))
        .await
        .map_err(|e| ViewerError::Stream(e.to_string()))??;
    // A quality change is stored at once, so a worker waiting for damage encodes its next
    // frame in the new mode.
    let quality = worker.quality.clone();
    let (mut rx, reader) =
        tether_net::spawn_peer_reader::<ViewerMsg>(recv, CONTROL_MAX_FRAME, "viewer", move |m| {
            if let ViewerMsg::SetQuality { quality: q } = m {
                quality.store(quality_code(*q), Ordering::Relaxed);
            }
        });
    let result = pump(&mut send, &mut rx, worker).await;
    reader.abort();
    let _ = send.finish();
    result
}

impl Worker {
    /// Opens the capturer on a blocking thread and picks `monitor` (the first one if there is
    /// no such monitor).
    fn open(factory: CapturerFactory, monitor: u8) -> Result<Worker, ViewerError> {
        let mut cap = factory()?;
        let monitors = cap.monitors()?;
        if monitors.is_empty() {
            return Err(ViewerError::Capture(CaptureError::NoMonitor(0)));
        }
        let monitor = if usize::from(monitor) < monitors.len() {
            usize::from(monitor)
        } else {
            0
        };
        Ok(Worker {
            cap,
            // Regions that keep changing go as H.264 in Auto and Smooth.
            enc: Box::new(TileEncoder::with_video(Box::new(
                tether_video::H264Encoder::new(),
            ))),
            monitors,
            monitor,
            seq: 0,
            started: false,
            epoch: Instant::now(),
            quality: Arc::new(AtomicU8::new(0)),
            congested: Arc::new(AtomicBool::new(false)),
            stream: StreamWriter::new(),
        })
    }
}

/// Captures and sends frames while the flow window has room, and handles the viewer's messages,
/// until the viewer goes away. While nothing changes on screen the worker sleeps in the
/// capturer; a message that needs it (another monitor, the viewer leaving) wakes it.
async fn pump(
    send: &mut quinn::SendStream,
    rx: &mut mpsc::UnboundedReceiver<ViewerMsg>,
    mut worker: Worker,
) -> Result<(), ViewerError> {
    let start = Instant::now();
    let mut window = FlowWindow::new(WINDOW, WINDOW_MAX_FRAMES, WINDOW_MAX_BYTES);
    let waker = WakeOnDrop(worker.cap.waker());
    let congested = worker.congested.clone();
    let mut held: Vec<ViewerMsg> = Vec::new();
    let mut closed = false;
    loop {
        for m in held.drain(..) {
            handle(m, &mut window, &mut worker, start);
        }
        while let Ok(m) = rx.try_recv() {
            handle(m, &mut window, &mut worker, start);
        }
        if closed || (rx.is_closed() && rx.is_empty()) {
            return Ok(());
        }
        if !window.can_send() {
            match rx.recv().await {
                Some(m) => handle(m, &mut window, &mut worker, start),
                None => return Ok(()),
            }
            continue;
        }
        let mut step = tokio::task::spawn_blocking(move || {
            let r = worker.step();
            (worker, r)
        });
        let (w, res) = loop {
            tokio::select! {
                joined = &mut step => {
                    break joined.map_err(|e| ViewerError::Stream(e.to_string()))?;
                }
                m = rx.recv(), if !closed => match m {
                    // Acknowledgements only move the window.
                    Some(ViewerMsg::Ack { seq }) => on_ack(seq, &mut window, &congested, start),
                    Some(m) => {
                        held.push(m);
                        waker.wake();
                    }
                    None => {
                        closed = true;
                        waker.wake();
                    }
                },
            }
        };
        worker = w;
        let Some(parts) = res? else {
            continue;
        };
        // Packed already: the window counts what the link carries.
        let bytes: usize = parts.iter().map(ScreenMsg::picture_len).sum();
        let ask = window.wants_ack(bytes, start.elapsed());
        let n = parts.len();
        for (i, mut p) in parts.into_iter().enumerate() {
            if ask && i + 1 == n {
                p.ask_ack();
            }
            if let Err(e) = write_msg(send, &p, MEDIA_MAX_FRAME).await {
                debug!(error = %e, "viewer stream closed");
                return Ok(());
            }
        }
        window.on_sent(worker.seq, bytes, start.elapsed(), ask);
    }
}

/// The capturer's wake-up, also sent when the pump is dropped (the session aborted it), so that
/// a worker sleeping in the capturer returns and its thread ends.
struct WakeOnDrop(Option<Wakeup>);

impl WakeOnDrop {
    fn wake(&self) {
        if let Some(w) = &self.0 {
            w.wake();
        }
    }
}

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.wake();
    }
}

fn on_ack(seq: u64, window: &mut FlowWindow, congested: &AtomicBool, start: Instant) {
    window.on_ack(seq, start.elapsed());
    // Latest frame wins keeps latency flat on a slow link; going lossy sooner keeps the frame
    // rate up too.
    if let Some(rtt) = window.rtt() {
        if rtt > SLOW_RTT {
            congested.store(true, Ordering::Relaxed);
        } else if rtt < FINE_RTT {
            congested.store(false, Ordering::Relaxed);
        }
    }
}

fn handle(m: ViewerMsg, window: &mut FlowWindow, w: &mut Worker, start: Instant) {
    match m {
        ViewerMsg::Ack { seq } => on_ack(seq, window, &w.congested, start),
        ViewerMsg::SelectMonitor { monitor } => {
            if usize::from(monitor) < w.monitors.len() {
                w.monitor = usize::from(monitor);
                w.started = false;
                w.enc.reset();
            } else {
                warn!(monitor, "viewer asked for a monitor that does not exist");
            }
        }
        ViewerMsg::SetQuality { quality } => {
            w.quality.store(quality_code(quality), Ordering::Relaxed);
        }
    }
}
