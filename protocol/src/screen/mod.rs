//! The screen codec: changed tiles, lossless (palette indices or BGR, zstd) or lossy (JPEG).
//!
//! The host keeps, per viewer, a copy of the last frame that viewer was sent. Each new capture is
//! compared with it tile by tile; inside a changed tile only the bounding box of the changed pixels
//! is kept, and adjacent boxes are merged sideways and downwards. The changed rectangles, as
//! palette indices when they have few colours and as BGR (3 bytes a pixel) otherwise, go in parts
//! of at most [`PART_RAW_BYTES`], so that no frame on the wire approaches the media frame limit
//! and a viewer can start applying a big update before all of it has arrived. Parts of photos are
//! compressed with zstd on every core; the others (text, UI) go through the stream's
//! long-lived zstd context, which refers back to what the stream carried before, with palettes
//! of many shades indexing the stream's colour tables, and glyph operations through the
//! stream's model of them. Photo-like rectangles in motion
//! (or any sizeable one in Smooth, or on a slow link in Auto) go as JPEG instead, and are sent
//! again losslessly once they settle.
//!
//! Pixels are 32-bit BGRX, as X11 and the other capture APIs deliver them.
//!
//! - [`wire`]: what travels (rectangles, update parts, timings) and the limits every decoder
//!   checks.
//! - [`encoder`]: [`TileEncoder`], which remembers what one viewer has and finds what changed, and
//!   the [`ScreenEncoder`] trait a video codec can implement too.
//! - [`pack`]: turning changed rectangles into update parts; the independent compression jobs
//!   run on an [`Executor`] the caller provides (the host runs them on all cores).
//! - [`predict`]: the predicted coding of photo-like rectangles (median edge detector, green
//!   subtracted), which zstd compresses to well under their raw size.
//! - [`scroll`]: finding regions that moved up or down, which go as copies of what the viewer
//!   has plus their newly exposed lines.
//! - [`attic`]: the rows scrolled out of view, kept on both sides, so that rows scrolled back
//!   into view go as a recall of them.
//! - [`glyphs`]: the glyph cache, which sends a piece of text the viewer holds already as a
//!   reference to its copy.
//! - [`decoder`]: [`Framebuffer`], the viewer's copy, which validates every update before writing.
//! - [`stream`]: what a stream leaves out because the viewer knows it (the size while it holds,
//!   capture times as gaps, and what earlier parts carried: parts are packed by one zstd context
//!   per stream).
//! - [`model`]: the stream's model of glyph operations, an arithmetic coder with probabilities
//!   learned from the operations before.
//!
//! Nothing here starts a thread or reads a clock: time and parallelism come from the caller.

mod attic;
mod decoder;
mod encoder;
mod glyphs;
mod model;
mod pack;
mod predict;
mod scroll;
mod stream;
mod under;
mod video;
mod wire;

pub use attic::ATTIC_BYTES;
pub use decoder::Framebuffer;
pub use encoder::{MIN_SETTLE_MS, SETTLE_MS, ScreenEncoder, TileEncoder, VIDEO_MIN_AREA};
pub use glyphs::{
    GLYPH_SLOTS, GlyphOp, MAX_GLYPH_H, MAX_GLYPH_OPS_BYTES, MAX_GLYPH_W, decode_ops, encode_ops,
};
pub use pack::{Executor, InOrder, Job};
pub use stream::{MAX_PACKED, PACK_WINDOW, StreamReader, StreamWriter, TABLES};
pub use video::{NoVideo, VideoDecoder, VideoEncoder, video_rect};
pub use wire::*;

#[cfg(test)]
mod tests;
