//! The video codec's place in the screen codec: a region that keeps changing (a video playing, a
//! 3D view turning) goes as pictures of a video, which code each picture as its difference from
//! the previous one, instead of as a JPEG a frame.
//!
//! The codec itself (H.264, in the `tether-video` crate) lives outside this crate, which does no
//! I/O and links no C: the host hands its [`super::TileEncoder`] a [`VideoEncoder`], and the
//! viewer hands [`super::Framebuffer::apply_with`] a [`VideoDecoder`].

use super::wire::{CodecError, FrameRef, Rect};

/// Encodes pictures of one region of the screen, each depending on the ones before it.
pub trait VideoEncoder: Send + std::fmt::Debug {
    /// Encodes `rect` of `frame` as the next picture. With `key`, the picture depends on no
    /// earlier one (a new video: the first picture, or a new rectangle); the encoder also starts
    /// one by itself when the rectangle's size changes.
    fn encode(
        &mut self,
        frame: &FrameRef<'_>,
        rect: &Rect,
        key: bool,
    ) -> Result<Vec<u8>, CodecError>;

    /// Whether the last picture was coded whole, though no key picture was asked for, because
    /// the encoder saw a scene cut (a picture unlike the one before).
    fn scene_cut(&self) -> bool {
        false
    }
}

/// Decodes the pictures of one video into a framebuffer.
pub trait VideoDecoder: std::fmt::Debug {
    /// Decodes one picture, which must be exactly `w` x `h`, into `dst` as BGRX rows of
    /// `stride` bytes (`dst` holds at least `(h - 1) * stride + w * 4` bytes). Writes nothing
    /// outside those rows and columns, and nothing at all if the picture is not exactly that
    /// size.
    fn decode(
        &mut self,
        data: &[u8],
        w: u32,
        h: u32,
        dst: &mut [u8],
        stride: usize,
    ) -> Result<(), CodecError>;
}

/// The decoder of a viewer that has none: any video is an error.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoVideo;

impl VideoDecoder for NoVideo {
    fn decode(
        &mut self,
        _: &[u8],
        _: u32,
        _: u32,
        _: &mut [u8],
        _: usize,
    ) -> Result<(), CodecError> {
        Err(CodecError::NoVideoDecoder)
    }
}

/// The rectangle a video covers for a changing region `r` of a `w` x `h` screen: `r` grown to
/// whole 16-pixel macroblocks where the screen allows, with an even width and height (the
/// chroma planes are half the size), or `None` if it is too small or too large for video.
pub fn video_rect(r: &Rect, w: u32, h: u32) -> Option<Rect> {
    let x0 = r.x / 16 * 16;
    let y0 = r.y / 16 * 16;
    let x1 = (r.x + r.w).next_multiple_of(16).min(w);
    let y1 = (r.y + r.h).next_multiple_of(16).min(h);
    let (vw, vh) = ((x1 - x0) & !1, (y1 - y0) & !1);
    let (max_w, max_h) = super::wire::MAX_VIDEO_SIDES;
    (vw >= 16 && vh >= 16 && vw <= max_w && vh <= max_h).then_some(Rect {
        x: x0,
        y: y0,
        w: vw,
        h: vh,
    })
}
