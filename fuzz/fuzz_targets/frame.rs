#![no_main]
//! Frames and every message decoder. Crashes go to `fuzz/regressions/frame/`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tether_protocol::fuzzing::frame_and_messages(data);
});
