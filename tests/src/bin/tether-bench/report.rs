//! The results as a table on standard output and as JSON.

use crate::measure::Result_;

/// Prints one row per scenario.
pub(crate) fn table(results: &[Result_]) {
    let f = |v: Option<f64>, d: usize| v.map(|v| format!("{v:.d$}")).unwrap_or_else(|| "-".into());
    println!(
        "{:<13} {:>9} {:>9} {:>12} {:>11} {:>8} {:>8} {:>7} {:>10} {:>11} {:>8} {:>10} {:>9} {:>7} {:>7}",
        "scenario",
        "p50 ms",
        "p95 ms",
        "bytes/event",
        "wire/event",
        "wire in",
        "wire IP",
        "fps",
        "host CPU s",
        "relay CPU s",
        "up MB/s",
        "down MB/s",
        "exact ms",
        "Mbit/s",
        "PSNR dB"
    );
    for r in results {
        println!(
            "{:<13} {:>9} {:>9} {:>12} {:>11} {:>8} {:>8} {:>7} {:>10.2} {:>11.2} {:>8} {:>10} {:>9} {:>7} {:>7}",
            r.scenario,
            f(r.latency_p50_ms, 1),
            f(r.latency_p95_ms, 1),
            f(r.bytes_per_event, 0),
            f(r.wire_bytes_per_event, 0),
            f(r.wire_in_per_event, 0),
            f(r.wire_ip_bytes_per_event, 0),
            f(r.fps, 1),
            r.host_cpu_s,
            r.relay_cpu_s,
            f(r.upload_mb_s, 2),
            f(r.download_mb_s, 2),
            f(r.exact_ms, 0),
            f(r.mbit_s, 2),
            f(r.psnr_db, 1)
        );
    }
}

/// Writes the results as a JSON array of objects, one per scenario (the screen scenarios', then
/// the others' rows).
pub(crate) fn json(
    path: &std::path::Path,
    results: &[Result_],
    others: Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    let json = serde_json::Value::Array(results.iter().map(Result_::json).chain(others).collect());
    std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
