//! H.264 for the screen's regions that keep changing, through OpenH264 (built from source by
//! the `openh264` crate): [`H264Encoder`] for the host, [`H264Decoder`] for the viewer, behind
//! the screen codec's [`VideoEncoder`] and [`VideoDecoder`] traits.
//!
//! Pictures are converted between BGRX and 4:2:0 YUV here, full range with BT.601 weights, the
//! same on both sides (nothing else reads the stream). The encoder runs OpenH264's real-time
//! screen mode at a bit rate proportional to the region's area (4 Mbit/s for 1920x1080 at 30
//! pictures a second), one reference picture, no B pictures: every picture the viewer gets
//! decodes at once.

mod yuv;

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod,
    RateControlMode, UsageType,
};
use openh264::formats::{YUVSlices, YUVSource};
use tether_protocol::screen::{CodecError, FrameRef, Rect, VideoDecoder, VideoEncoder};

pub use yuv::{Planes, bgrx_to_i420, i420_to_bgrx};

/// Bits a second per pixel of the region at [`FRAME_RATE`]: 4 Mbit/s for 1920x1080.
const BITS_PER_PIXEL_SECOND: f64 = 4_000_000.0 / (1920.0 * 1080.0);
/// The picture rate the bit rate is shared over.
const FRAME_RATE: f32 = 30.0;
/// Least bit rate, for small regions.
const MIN_BITRATE: u32 = 300_000;

fn video_err(e: impl std::fmt::Display) -> CodecError {
    CodecError::Video(e.to_string().to_lowercase())
}

/// The host's H.264 encoder: one video at a time, recreated when its size changes.
pub struct H264Encoder {
    /// The encoder and the picture size it was made for.
    enc: Option<(Encoder, u32, u32)>,
    planes: Planes,
    /// Whether OpenH264 coded the last picture whole by itself (its scene-change detection).
    cut: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("size", &self.enc.as_ref().map(|e| (e.1, e.2)))
            .finish()
    }
}

impl Default for H264Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl H264Encoder {
    /// An encoder; its first picture is a key picture.
    pub fn new() -> Self {
        H264Encoder {
            enc: None,
            planes: Planes::default(),
            cut: false,
        }
    }

    fn open(w: u32, h: u32) -> Result<Encoder, CodecError> {
        let bps = (f64::from(w) * f64::from(h) * BITS_PER_PIXEL_SECOND) as u32;
        let config = EncoderConfig::new()
            .usage_type(UsageType::ScreenContentRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bps.max(MIN_BITRATE)))
            .max_frame_rate(FrameRate::from_hz(FRAME_RATE))
            .complexity(Complexity::Low)
            // Not available for screen content: asking only logs a warning.
            .adaptive_quantization(false)
            .background_detection(false)
            // Every picture is coded: the last one of a motion must reach the viewer.
            .skip_frames(false)
            // Key pictures only when asked for (a new video or a new size).
            .intra_frame_period(IntraFramePeriod::from_num_frames(0));
        let mut enc =
            Encoder::with_api_config(OpenH264API::from_source(), config).map_err(video_err)?;
        // OpenH264 logs warnings on standard error as it starts (that a bit rate without frame
        // skipping is approximate); nobody reads that there.
        let mut quiet = openh264_sys2::WELS_LOG_QUIET as std::ffi::c_int;
        // SAFETY: the encoder was created and not yet initialised, which this option allows;
        // the option reads one int, which outlives the call.
        unsafe {
            enc.raw_api().set_option(
                openh264_sys2::ENCODER_OPTION_TRACE_LEVEL,
                (&raw mut quiet).cast(),
            );
        }
        Ok(enc)
    }
}

impl VideoEncoder for H264Encoder {
    fn encode(
        &mut self,
        frame: &FrameRef<'_>,
        rect: &Rect,
        key: bool,
    ) -> Result<Vec<u8>, CodecError> {
        let fits = rect.w > 0
            && rect.h > 0
            && rect.w.is_multiple_of(2)
            && rect.h.is_multiple_of(2)
            && u64::from(rect.x) + u64::from(rect.w) <= u64::from(frame.width)
            && u64::from(rect.y) + u64::from(rect.h) <= u64::from(frame.height)
            && frame.stride >= frame.width as usize * 4
            && frame.data.len() >= frame.stride * frame.height as usize;
        if !fits {
            return Err(CodecError::OutOfBounds(*rect));
        }
        let fresh = !matches!(&self.enc, Some((_, w, h)) if (*w, *h) == (rect.w, rect.h));
        if fresh {
            self.enc = Some((Self::open(rect.w, rect.h)?, rect.w, rect.h));
        }
        let Some((enc, _, _)) = self.enc.as_mut() else {
            return Err(video_err("no encoder"));
        };
        if key && !fresh {
            enc.force_intra_frame();
        }
        let start = rect.y as usize * frame.stride + rect.x as usize * 4;
        bgrx_to_i420(
            &frame.data[start..],
            frame.stride,
            rect.w,
            rect.h,
            &mut self.planes,
        );
        let (w, h) = (rect.w as usize, rect.h as usize);
        let p = &self.planes;
        let src = YUVSlices::new((&p.y, &p.u, &p.v), (w, h), (w, w / 2, w / 2));
        let coded = enc.encode(&src).map_err(video_err)?;
        self.cut = !key && matches!(coded.frame_type(), FrameType::IDR | FrameType::I);
        let out = coded.to_vec();
        if out.is_empty() {
            return Err(video_err("the encoder skipped a picture"));
        }
        Ok(out)
    }

    fn scene_cut(&self) -> bool {
        self.cut
    }
}

/// The viewer's H.264 decoder.
pub struct H264Decoder {
    dec: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H264Decoder")
    }
}

impl H264Decoder {
    /// A decoder, waiting for a video's key picture.
    pub fn new() -> Result<Self, CodecError> {
        let dec = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(video_err)?;
        Ok(H264Decoder { dec })
    }
}

impl VideoDecoder for H264Decoder {
    fn decode(
        &mut self,
        data: &[u8],
        w: u32,
        h: u32,
        dst: &mut [u8],
        stride: usize,
    ) -> Result<(), CodecError> {
        let needed = (h as usize).saturating_sub(1) * stride + w as usize * 4;
        if w % 2 == 1 || h % 2 == 1 || stride < w as usize * 4 || dst.len() < needed {
            return Err(video_err(format!(
                "a {w}x{h} picture does not fit its buffer"
            )));
        }
        let pic = self
            .dec
            .decode(data)
            .map_err(video_err)?
            .ok_or_else(|| video_err("the data holds no whole picture"))?;
        if pic.dimensions() != (w as usize, h as usize) {
            let (pw, ph) = pic.dimensions();
            return Err(video_err(format!(
                "the picture is {pw}x{ph}, its rectangle {w}x{h}"
            )));
        }
        let (ys, us, vs) = pic.strides();
        i420_to_bgrx(
            (pic.y(), ys),
            (pic.u(), us),
            (pic.v(), vs),
            w,
            h,
            dst,
            stride,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
