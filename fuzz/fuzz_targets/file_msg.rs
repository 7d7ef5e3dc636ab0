#![no_main]
//! See `tether_protocol::fuzzing::file_messages`. Crashes go to `fuzz/regressions/file_msg/`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tether_protocol::fuzzing::file_messages(data);
});
