#![no_main]
//! See `tether_protocol::fuzzing::input_gate`. Crashes go to `fuzz/regressions/input_gate/`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tether_protocol::fuzzing::input_gate(data);
});
