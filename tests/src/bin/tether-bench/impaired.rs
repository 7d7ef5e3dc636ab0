//! The impaired scenario: the host reaches the relay through a link with 100 ms of delay each
//! way, 2 % loss, 10 Mbit/s each way and an Ethernet MTU (the harness's UDP forwarder), and the benchmark's typing,
//! Auto-quality photo flipping and a 50 MB upload run over it. The screen must match the X
//! server's pixels exactly once each of them settles.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use tether_protocol::screen::Quality;
use tether_tests::{ImpairedLink, Impairment};

use crate::measure::{Bench, Result_};
use crate::scenarios::{Text, photos, random_file, typing};

/// The link's figures.
pub(crate) const IMPAIRMENT: Impairment = Impairment {
    delay: Duration::from_millis(100),
    jitter: Duration::ZERO,
    loss: 0.02,
    rate_bps: Some(10_000_000),
    cut: false,
    mtu: Some(1472),
};
/// How long the photos may take to be exact after the last flip: the lossless 1080p photo alone
/// is 5.4 MB, 4.4 s at the link's whole rate.
const SETTLE: Duration = Duration::from_secs(60);
/// The upload's size.
const UPLOAD: u64 = 50_000_000;

/// Runs the scenario's parts and returns a row for each.
pub(crate) async fn impaired(b: &Bench, link: &ImpairedLink) -> anyhow::Result<Vec<Result_>> {
    link.set(IMPAIRMENT);
    b.synced(Duration::from_secs(60))
        .await
        .context("the screen behind the link")?;
    let mut rows = Vec::new();
    let mut t = typing(b, Text::AntiAliased)
        .await
        .context("typing behind the link")?;
    t.scenario = "impaired-typing".into();
    eprintln!("impaired typing: p50 {:?} ms", t.latency_p50_ms);
    rows.push(t);
    let p = photos(b, Quality::Auto, "impaired-photo-auto", SETTLE)
        .await
        .context("photos behind the link")?;
    eprintln!(
        "impaired photos: {:?} fps, exact after {:?} ms",
        p.fps, p.exact_ms
    );
    rows.push(p);
    b.control.set_quality(Quality::Auto).await?;
    b.synced(Duration::from_secs(60))
        .await
        .context("the screen after the photos")?;
    let src = tempfile::tempdir()?;
    let file = src.path().join("upload.bin");
    random_file(&file, UPLOAD)?;
    let progress = tether_files::Progress::new(0);
    let start = Instant::now();
    b.agent
        .upload(b.session, &file, "upload.bin", &progress)
        .await?;
    let secs = start.elapsed().as_secs_f64();
    rows.push(Result_ {
        scenario: "impaired-upload".into(),
        upload_mb_s: Some(UPLOAD as f64 / 1e6 / secs),
        ..Result_::default()
    });
    // Exact again once everything settled.
    b.synced(Duration::from_secs(60))
        .await
        .context("the screen after the upload")?;
    Ok(rows)
}
