//! Serving one viewer's screen stream: capture, diff against what that viewer has, encode, send,
//! with at most [`WINDOW`] frames in flight (latest frame wins).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tether_net::{read_msg, write_msg};
use tether_protocol::flow::FlowWindow;
use tether_protocol::frame::{CONTROL_MAX_FRAME, MEDIA_MAX_FRAME};
use tether_protocol::msg::{ScreenMsg, ViewerMsg};
use tether_protocol::screen::{FrameUpdate, TileEncoder, Timing};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::capture::{CaptureError, Capturer, CapturerFactory};

/// Frames in flight per viewer.
pub const WINDOW: usize = 2;
/// How often an unchanged screen is looked at again.
const POLL: Duration = Duration::from_millis(15);

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

/// Capture and encoding state of one viewer; runs on a blocking thread.
struct Worker {
    cap: Box<dyn Capturer>,
    enc: TileEncoder,
    monitor: usize,
    seq: u64,
}

impl Worker {
    fn next(&mut self) -> Result<Option<Vec<FrameUpdate>>, ViewerError> {
        let captured_us = now_us();
        let frame = self.cap.capture(self.monitor)?;
        let rects = self.enc.diff(&frame)?;
        if rects.is_empty() {
            return Ok(None);
        }
        self.seq += 1;
        let mut parts = self.enc.encode(
            &frame,
            &rects,
            self.seq,
            Timing {
                captured_us,
                encoded_us: 0,
            },
        )?;
        let encoded_us = now_us();
        for p in &mut parts {
            p.timing.encoded_us = encoded_us;
        }
        Ok(Some(parts))
    }
}

/// Serves one viewer until it goes away. `monitor` is the viewer's first choice.
pub(crate) async fn serve(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    monitor: u8,
    factory: CapturerFactory,
) -> Result<(), ViewerError> {
    let worker = tokio::task::spawn_blocking(move || -> Result<Worker, ViewerError> {
        let mut cap = factory()?;
        let count = cap.monitors()?.len();
        let monitor = if usize::from(monitor) < count {
            usize::from(monitor)
        } else {
            0
        };
        Ok(Worker {
            cap,
            enc: TileEncoder::new(),
            monitor,
            seq: 0,
        })
    })
    .await
    .map_err(|e| ViewerError::Stream(e.to_string()))??;
    let mut worker = Some(worker);

    let (tx, mut rx) = mpsc::unbounded_channel::<ViewerMsg>();
    let reader = tokio::spawn(async move {
        loop {
            match read_msg::<ViewerMsg>(&mut recv, CONTROL_MAX_FRAME).await {
                Ok(Some(m)) => {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if e.is_protocol_violation() {
                        warn!(error = %e, "viewer sent a bad message; closing its stream");
                        let _ = recv.stop(tether_net::close::PROTOCOL.into());
                    }
                    break;
                }
            }
        }
    });

    let start = Instant::now();
    let mut window = FlowWindow::new(WINDOW);
    let result = loop {
        let mut closed = false;
        while let Ok(m) = rx.try_recv() {
            handle(m, &mut window, &mut worker, start);
        }
        if rx.is_closed() && rx.is_empty() {
            closed = true;
        }
        if closed {
            break Ok(());
        }
        if window.can_send() {
            let Some(mut w) = worker.take() else {
                break Ok(());
            };
            let (w, res) = tokio::task::spawn_blocking(move || {
                let r = w.next();
                (w, r)
            })
            .await
            .map_err(|e| ViewerError::Stream(e.to_string()))?;
            let seq = w.seq;
            worker = Some(w);
            match res {
                Ok(Some(parts)) => {
                    let mut failed = None;
                    for p in parts {
                        if let Err(e) =
                            write_msg(&mut send, &ScreenMsg::Update(p), MEDIA_MAX_FRAME).await
                        {
                            failed = Some(e);
                            break;
                        }
                    }
                    if let Some(e) = failed {
                        debug!(error = %e, "viewer stream closed");
                        break Ok(());
                    }
                    window.on_sent(seq, start.elapsed());
                    continue;
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => handle(m, &mut window, &mut worker, start),
                    None => break Ok(()),
                },
                _ = tokio::time::sleep(POLL) => {}
            }
        } else {
            match rx.recv().await {
                Some(m) => handle(m, &mut window, &mut worker, start),
                None => break Ok(()),
            }
        }
    };
    reader.abort();
    let _ = send.finish();
    result
}

fn handle(m: ViewerMsg, window: &mut FlowWindow, worker: &mut Option<Worker>, start: Instant) {
    match m {
        ViewerMsg::Ack { seq } => {
            window.on_ack(seq, start.elapsed());
        }
        ViewerMsg::SelectMonitor { monitor } => {
            if let Some(w) = worker.as_mut() {
                let count = w.cap.monitors().map(|m| m.len()).unwrap_or(0);
                if usize::from(monitor) < count {
                    w.monitor = usize::from(monitor);
                    w.enc.reset();
                } else {
                    warn!(monitor, "viewer asked for a monitor that does not exist");
                }
            }
        }
    }
}
