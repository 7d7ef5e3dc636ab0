//! Entry points shared by the fuzz targets (`fuzz/`) and the test that replays their regression
//! inputs. Each must return without panicking for any input.

use crate::frame::{self, FrameDecoder};
use crate::msg::{ClientMsg, Hello, HostStream, OpenStream, ScreenMsg, ServerMsg, ViewerMsg};
use crate::screen::Framebuffer;

/// Feeds arbitrary bytes to a frame decoder and every message decoder.
pub fn frame_and_messages(data: &[u8]) {
    let mut d = FrameDecoder::new(frame::CONTROL_MAX_FRAME);
    // Split the input at a data-chosen point to exercise reassembly.
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    d.push(&data[..cut]);
    let _ = d.next_body();
    d.push(&data[cut..]);
    while let Ok(Some(body)) = d.next_body() {
        decode_all(&body);
    }
    decode_all(data);
}

fn decode_all(body: &[u8]) {
    let _ = frame::decode_body::<Hello>(body);
    let _ = frame::decode_body::<ClientMsg>(body);
    let _ = frame::decode_body::<ServerMsg>(body);
    let _ = frame::decode_body::<OpenStream>(body);
    let _ = frame::decode_body::<HostStream>(body);
    let _ = frame::decode_body::<ViewerMsg>(body);
    let _ = frame::decode_body::<ScreenMsg>(body);
    let _ = frame::decode_body::<crate::input::AgentMsg>(body);
    let _ = frame::decode_body::<crate::input::HostMsg>(body);
}

/// Decodes arbitrary bytes as screen updates and applies them to one framebuffer.
pub fn screen_updates(data: &[u8]) {
    let mut fb = Framebuffer::new();
    let mut rest = data;
    while !rest.is_empty() {
        match postcard::take_from_bytes::<ScreenMsg>(rest) {
            Ok((ScreenMsg::Update(u), tail)) => {
                let _ = fb.apply(&u);
                rest = tail;
            }
            Err(_) => break,
        }
    }
}
