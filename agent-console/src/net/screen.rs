//! One screen subscription: updates decoded into a framebuffer, each frame acknowledged.

use std::sync::Arc;

use tether_net::{close, write_msg};
use tether_protocol::frame::{CONTROL_MAX_FRAME, MEDIA_MAX_FRAME};
use tether_protocol::msg::{OpenStream, ScreenMsg, SessionId, ViewerMsg};
use tether_protocol::screen::{
    CodecError, Framebuffer, LossyCodec, Quality, Rect, StreamReader, Timing,
};
use tether_video::H264Decoder;
use tokio::sync::Mutex;

use super::{AgentClient, ClientError, lost, now_us};

impl AgentClient {
    /// Opens a screen stream of `session`, starting on `monitor`.
    pub async fn view(&self, session: SessionId, monitor: u8) -> Result<ScreenView, ClientError> {
        let (mut send, recv) = self.conn.open_bi().await.map_err(lost)?;
        write_msg(
            &mut send,
            &OpenStream::Screen { session, monitor },
            CONTROL_MAX_FRAME,
        )
        .await
        .map_err(lost)?;
        Ok(ScreenView {
            send: Arc::new(Mutex::new(send)),
            recv,
            fb: Framebuffer::new(),
            video: None,
            stream: StreamReader::new(),
            monitor,
        })
    }
}

/// Most changed rectangles remembered for one frame; past that, their bounding box.
pub const MAX_FRAME_RECTS: usize = 1024;

/// What one presented frame brought.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Sequence number.
    pub seq: u64,
    /// Changed rectangles (lossless and lossy).
    pub rects: Vec<Rect>,
    /// Whether any of it came lossy.
    pub lossy: bool,
    /// Whether any of it came as a picture of video (H.264).
    pub video: bool,
    /// Whether the screen size changed (everything is new).
    pub resized: bool,
    /// Bytes received for it (encoded pixel data plus headers).
    pub bytes: usize,
    /// Host timestamps.
    pub timing: Timing,
    /// When its first part arrived here (µs since the epoch).
    pub received_us: u64,
    /// When it was fully decoded.
    pub decoded_us: u64,
    /// Whether the host asked for it to be acknowledged (its window was full).
    pub acknowledged: bool,
}

impl FrameInfo {
    /// Bounding box of the change.
    pub fn dirty(&self) -> Option<Rect> {
        self.rects.iter().copied().reduce(|a, b| a.union(&b))
    }
}

/// One screen subscription: decodes updates into a framebuffer and acknowledges them.
#[derive(Debug)]
pub struct ScreenView {
    send: Arc<Mutex<quinn::SendStream>>,
    recv: quinn::RecvStream,
    fb: Framebuffer,
    /// The H.264 decoder, made when the first video picture arrives.
    video: Option<H264Decoder>,
    stream: StreamReader,
    monitor: u8,
}

impl ScreenView {
    /// Waits for the next whole frame, applies it, and acknowledges it if the host asked.
    pub async fn next_frame(&mut self) -> Result<FrameInfo, ClientError> {
        let mut info: Option<FrameInfo> = None;
        loop {
            let body = match tether_net::read_body(&mut self.recv, MEDIA_MAX_FRAME).await {
                Ok(Some(b)) => b,
                Ok(None) => return Err(lost("the screen stream ended")),
                Err(e) if e.is_protocol_violation() => {
                    return Err(ClientError::Protocol(e.to_string()));
                }
                Err(e) => return Err(lost(e)),
            };
            let received = now_us();
            let bytes = body.len() + tether_protocol::frame::header_len(body.len());
            let ScreenMsg::Update(mut upd) = tether_protocol::frame::decode_body(&body)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            self.stream
                .expand(&mut upd)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let codec = |e: CodecError| ClientError::Local(e.into());
            let video = upd.lossy.iter().any(|l| l.codec == LossyCodec::H264);
            let resized = match &mut self.video {
                Some(dec) => self.fb.apply_with(&upd, dec),
                None if video => {
                    let dec = self.video.insert(H264Decoder::new().map_err(codec)?);
                    self.fb.apply_with(&upd, dec)
                }
                None => self.fb.apply(&upd),
            }
            .map_err(codec)?;
            let i = info.get_or_insert_with(|| FrameInfo {
                seq: upd.seq,
                rects: Vec::new(),
                lossy: false,
                video: false,
                resized: false,
                bytes: 0,
                timing: upd.timing,
                received_us: received,
                decoded_us: 0,
                acknowledged: false,
            });
            i.rects.extend_from_slice(self.fb.painted());
            // A frame of many parts is remembered as its bounding box past a point.
            if i.rects.len() > MAX_FRAME_RECTS {
                let bbox = i.rects.iter().copied().reduce(|a, b| a.union(&b));
                i.rects = bbox.into_iter().collect();
            }
            i.lossy |= !upd.lossy.is_empty();
            i.video |= video;
            i.resized |= resized;
            i.bytes += bytes;
            if upd.last {
                let mut done = info
                    .take()
                    .ok_or_else(|| ClientError::Protocol("empty frame".into()))?;
                done.decoded_us = now_us();
                done.acknowledged = upd.ack;
                // The host asks with the frame that fills its window; the answer covers every
                // frame before it.
                if upd.ack {
                    let mut send = self.send.lock().await;
                    write_msg(
                        &mut send,
                        &ViewerMsg::Ack { seq: done.seq },
                        CONTROL_MAX_FRAME,
                    )
                    .await
                    .map_err(lost)?;
                }
                return Ok(done);
            }
        }
    }

    /// The decoded screen.
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// The monitor being viewed.
    pub fn monitor(&self) -> u8 {
        self.monitor
    }

    /// Switches to another monitor; the next frame is that monitor's whole picture.
    pub async fn select_monitor(&mut self, monitor: u8) -> Result<(), ClientError> {
        self.monitor = monitor;
        self.control().select_monitor(monitor).await
    }

    /// Changes the quality mode.
    pub async fn set_quality(&self, quality: Quality) -> Result<(), ClientError> {
        self.control().set_quality(quality).await
    }

    /// A handle that switches monitors while another task waits for frames.
    pub fn control(&self) -> ScreenControl {
        ScreenControl {
            send: self.send.clone(),
        }
    }

    /// Stops viewing.
    pub async fn stop(mut self) {
        let _ = self.send.lock().await.finish();
        let _ = self.recv.stop(close::NORMAL.into());
    }
}

/// Switches a [`ScreenView`]'s monitor from another task.
#[derive(Debug, Clone)]
pub struct ScreenControl {
    send: Arc<Mutex<quinn::SendStream>>,
}

impl ScreenControl {
    /// Switches to another monitor.
    pub async fn select_monitor(&self, monitor: u8) -> Result<(), ClientError> {
        self.send(&ViewerMsg::SelectMonitor { monitor }).await
    }

    /// Changes the quality mode.
    pub async fn set_quality(&self, quality: Quality) -> Result<(), ClientError> {
        self.send(&ViewerMsg::SetQuality { quality }).await
    }

    async fn send(&self, msg: &ViewerMsg) -> Result<(), ClientError> {
        let mut send = self.send.lock().await;
        write_msg(&mut send, msg, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)
    }
}
