#![no_main]
//! See `tether_protocol::fuzzing::paths`. Crashes go to `fuzz/regressions/paths/`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tether_protocol::fuzzing::paths(data);
});
