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

/// The regression inputs in `fuzz/regressions/`, replayed on every `cargo test`.
#[cfg(test)]
mod regressions {
    use std::path::Path;

    #[test]
    fn fuzz_regressions_do_not_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut n = 0;
        for (target, run) in [
            ("frame", super::frame_and_messages as fn(&[u8])),
            ("screen_update", super::screen_updates),
        ] {
            let dir = root.join(target);
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.expect("entry").path();
                let data = std::fs::read(&path).expect("read");
                run(&data);
                n += 1;
            }
        }
        assert!(n >= 8, "only {n} regression inputs");
    }
}
