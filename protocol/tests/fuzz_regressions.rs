//! Replays every input in `fuzz/regressions/` through the fuzz targets' entry points.

use std::path::Path;

#[test]
fn fuzz_regressions_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut n = 0;
    for (target, run) in [
        (
            "frame",
            tether_protocol::fuzzing::frame_and_messages as fn(&[u8]),
        ),
        ("screen_update", tether_protocol::fuzzing::screen_updates),
    ] {
        let dir = root.join(target);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read");
            run(&data);
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} regression inputs");
}
