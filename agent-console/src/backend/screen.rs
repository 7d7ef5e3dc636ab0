//! Screen views: frames decoded into [`ViewBuffer`]s shared with the UI (dirty rectangles,
//! latest picture wins), and the commands that steer them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_protocol::msg::SessionId;
use tether_protocol::screen::{Quality, Rect};

use super::{Connection, Sink, ViewTask};
use crate::net::ScreenView;
use crate::state::Event;

/// The latest picture of one session's screen, shared with the UI.
#[derive(Debug, Default)]
pub struct ViewBuffer {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// RGBA pixels.
    pub rgba: Vec<u8>,
    /// Area changed since the UI last took it.
    pub dirty: Option<Rect>,
    /// The size changed since the UI last looked (upload everything).
    pub resized: bool,
    /// Frames received.
    pub frames: u64,
    /// Host capture time (µs since the epoch) of the newest frame not yet presented.
    pub unpresented_capture_us: Option<u64>,
    /// Figures for the overlay.
    pub stats: ViewStats,
}

/// What the stats overlay shows, over the last second.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ViewStats {
    /// Frames per second.
    pub fps: f32,
    /// Capture on the host to decoded here, milliseconds (host and agent clocks).
    pub latency_ms: f32,
    /// Received bits per second.
    pub bits_per_sec: f32,
    /// Codec of the last frame.
    pub codec: &'static str,
    /// Capture on the host to on screen here (texture uploaded), milliseconds, last frame.
    pub present_ms: f32,
    /// How long the console took to lay out and draw its last frame, milliseconds.
    pub draw_ms: f32,
}

/// Rolling one-second window of frames.
#[derive(Debug, Default)]
struct Meter {
    frames: std::collections::VecDeque<(std::time::Instant, usize, f32)>,
}

impl Meter {
    fn add(&mut self, bytes: usize, latency_ms: f32) -> (f32, f32, f32) {
        let now = std::time::Instant::now();
        self.frames.push_back((now, bytes, latency_ms));
        while let Some((t, _, _)) = self.frames.front() {
            if now.duration_since(*t).as_secs_f32() > 1.0 {
                self.frames.pop_front();
            } else {
                break;
            }
        }
        let n = self.frames.len() as f32;
        let bytes: usize = self.frames.iter().map(|f| f.1).sum();
        let lat = self.frames.iter().map(|f| f.2).sum::<f32>() / n.max(1.0);
        (n, lat, bytes as f32 * 8.0)
    }
}

/// Pictures by session.
pub type Views = Arc<Mutex<HashMap<SessionId, ViewBuffer>>>;

/// Locks the views, recovering from a poisoned lock (a panicked writer leaves valid pixels).
pub fn lock(views: &Views) -> MutexGuard<'_, HashMap<SessionId, ViewBuffer>> {
    views.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    /// Starts viewing a session's monitor (replacing an earlier view of it).
    pub(super) async fn view(
        &mut self,
        session: SessionId,
        monitor: u8,
        views: &Views,
        sink: &Sink,
    ) {
        match self.client.view(session, monitor).await {
            Ok(view) => {
                let control = view.control();
                let task = tokio::spawn(run_view(view, session, views.clone(), sink.clone()));
                if let Some(old) = self.viewers.insert(session, ViewTask { control, task }) {
                    old.task.abort();
                }
            }
            Err(e) => sink.send(Event::ViewFailed {
                session,
                message: crate::words::error(&e),
            }),
        }
    }

    /// Changes a view's quality mode.
    pub(super) async fn set_quality(&self, session: SessionId, quality: Quality, sink: &Sink) {
        if let Some(v) = self.viewers.get(&session)
            && let Err(e) = v.control.set_quality(quality).await
        {
            sink.send(Event::ViewFailed {
                session,
                message: crate::words::error(&e),
            });
        }
    }

    /// Switches a view to another monitor.
    pub(super) async fn select_monitor(&self, session: SessionId, monitor: u8, sink: &Sink) {
        if let Some(v) = self.viewers.get(&session)
            && let Err(e) = v.control.select_monitor(monitor).await
        {
            sink.send(Event::ViewFailed {
                session,
                message: crate::words::error(&e),
            });
        }
    }
}

/// Receives one session's frames into its [`ViewBuffer`].
async fn run_view(mut view: ScreenView, session: SessionId, views: Views, sink: Sink) {
    let mut meter = Meter::default();
    loop {
        let frame = match view.next_frame().await {
            Ok(f) => f,
            Err(e) => {
                sink.send(Event::ViewFailed {
                    session,
                    message: crate::words::error(&e),
                });
                return;
            }
        };
        {
            let fb = view.framebuffer();
            let mut map = lock(&views);
            let vb = map.entry(session).or_default();
            if frame.resized || vb.width != fb.width() || vb.height != fb.height() {
                vb.width = fb.width();
                vb.height = fb.height();
                vb.rgba = fb.region_rgba(&Rect {
                    x: 0,
                    y: 0,
                    w: fb.width(),
                    h: fb.height(),
                });
                vb.resized = true;
                vb.dirty = None;
            } else {
                let pitch = vb.width as usize * 4;
                for r in &frame.rects {
                    fb.write_rgba(r, &mut vb.rgba, pitch, (r.x, r.y));
                }
                if let Some(d) = frame.dirty() {
                    vb.dirty = Some(vb.dirty.map_or(d, |old| old.union(&d)));
                }
            }
            vb.frames += 1;
            tracing::trace!(
                rects = frame.rects.len(),
                bytes = frame.bytes,
                "frame decoded"
            );
            let latency = frame.decoded_us.saturating_sub(frame.timing.captured_us) as f32 / 1000.0;
            let (fps, latency_ms, bits_per_sec) = meter.add(frame.bytes, latency);
            vb.unpresented_capture_us = Some(frame.timing.captured_us);
            vb.stats = ViewStats {
                fps,
                latency_ms,
                bits_per_sec,
                codec: match (frame.video, frame.lossy) {
                    (true, _) => "H.264 + lossless",
                    (false, true) => "JPEG + lossless",
                    (false, false) => "lossless",
                },
                present_ms: vb.stats.present_ms,
                draw_ms: vb.stats.draw_ms,
            };
        }
        sink.repaint();
    }
}
