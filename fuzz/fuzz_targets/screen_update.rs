#![no_main]
//! Screen updates applied to a framebuffer. Crashes go to `fuzz/regressions/screen_update/`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tether_protocol::fuzzing::screen_updates(data);
});
