//! The screen pipeline against a real X server: damage-driven capture stays exact, an idle screen
//! sends nothing, and each viewer watches its own monitor.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tether_console::net::{AgentClient, ScreenView};
use tether_protocol::msg::SessionInfo;
use tether_tests::{RelayProc, Xvfb, same_colours, start_session, test_picture};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

async fn session_with_host(
    x: &Xvfb,
) -> anyhow::Result<(
    RelayProc,
    tether_tests::ChildGuard,
    AgentClient,
    SessionInfo,
)> {
    let s = start_session(x, None, &["--headless"]).await?;
    Ok((s.relay, s.host, s.agent, s.info))
}

async fn sync(
    view: &mut ScreenView,
    x: &Xvfb,
    rx: i16,
    ry: i16,
    w: u16,
    h: u16,
) -> anyhow::Result<()> {
    let expected = x.read(rx, ry, w, h)?;
    if same_colours(view.framebuffer().pixels(), &expected) {
        return Ok(());
    }
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            view.next_frame().await?;
            if same_colours(view.framebuffer().pixels(), &expected) {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .context("view never matched the X server")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_driven_capture_is_exact_after_random_drawing_and_idle_costs_nothing()
-> anyhow::Result<()> {
    let (w, h) = (800u16, 600u16);
    let x = Xvfb::start(w.into(), h.into())?;
    x.put(0, 0, w, h, &test_picture(w.into(), h.into(), 5))?;
    let (_relay, _host, agent, info) = session_with_host(&x).await?;
    let mut view = agent.view(info.id, 0).await?;
    sync(&mut view, &x, 0, 0, w, h).await?;

    let mut rng = Rng(0x9e3779b97f4a7c15);
    for round in 0..5 {
        for _ in 0..40 {
            let rw = 1 + rng.below(120) as u16;
            let rh = 1 + rng.below(90) as u16;
            let rx = rng.below(u32::from(w - rw)) as i16;
            let ry = rng.below(u32::from(h - rh)) as i16;
            x.fill(rx, ry, rw, rh, rng.next() & 0xffffff)?;
        }
        sync(&mut view, &x, 0, 0, w, h)
            .await
            .with_context(|| format!("round {round}"))?;
    }

    // Nothing changes: nothing is sent.
    match tokio::time::timeout(Duration::from_secs(2), view.next_frame()).await {
        Err(_) => {}
        Ok(f) => bail!("an idle screen sent a frame: {f:?}"),
    }
    // And a single pixel still arrives.
    x.fill(10, 10, 1, 1, 0x123456)?;
    let f = tokio::time::timeout(Duration::from_secs(5), view.next_frame()).await??;
    assert_eq!(
        f.rects.iter().map(|r| r.area()).sum::<u64>(),
        1,
        "{:?}",
        f.rects
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystroke_sized_frames_are_acknowledged_once_per_window_and_never_stall()
-> anyhow::Result<()> {
    let (w, h) = (320u16, 240u16);
    let x = Xvfb::start(w.into(), h.into())?;
    x.put(0, 0, w, h, &test_picture(w.into(), h.into(), 9))?;
    let (_relay, _host, agent, info) = session_with_host(&x).await?;
    let mut view = agent.view(info.id, 0).await?;
    sync(&mut view, &x, 0, 0, w, h).await?;
    // Sixty one-pixel changes, each its own frame: more than three windows' worth. A viewer
    // that did not answer when asked would stall the host after the first window.
    let (mut frames, mut asked) = (0, 0);
    for i in 0..60i16 {
        x.fill(10 + i, 20, 1, 1, 0x10_2030 + i as u32)?;
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let f = view.next_frame().await?;
                frames += 1;
                asked += usize::from(f.acknowledged);
                let px = 10 + i as u32;
                if f.rects.iter().any(|r| r.x <= px && px < r.x + r.w) {
                    return anyhow::Ok(());
                }
            }
        })
        .await
        .with_context(|| format!("change {i} never arrived"))??;
    }
    assert!(frames >= 60);
    assert!(
        (1..frames / 4).contains(&asked),
        "{asked} of {frames} frames asked for an acknowledgement"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_viewers_watch_two_monitors_independently() -> anyhow::Result<()> {
    let x = Xvfb::start(2560, 1024)?;
    for (name, geom) in [
        ("LEFT", "1280/340x1024/270+0+0"),
        ("RIGHT", "1280/340x1024/270+1280+0"),
    ] {
        let st = Command::new("xrandr")
            .args(["--setmonitor", name, geom, "none"])
            .env("DISPLAY", x.display())
            .status()?;
        assert!(st.success(), "xrandr --setmonitor failed");
    }
    x.put(0, 0, 1280, 1024, &test_picture(1280, 1024, 11))?;
    x.put(1280, 0, 1280, 1024, &test_picture(1280, 1024, 23))?;
    let (_relay, _host, agent, info) = session_with_host(&x).await?;
    let monitors = &info.customer.monitors;
    assert_eq!(monitors.len(), 2, "{monitors:?}");
    assert_eq!(
        (monitors[0].x, monitors[0].width, monitors[0].height),
        (0, 1280, 1024)
    );
    assert_eq!(
        (monitors[1].x, monitors[1].width, monitors[1].height),
        (1280, 1280, 1024)
    );

    let mut left = agent.view(info.id, 0).await?;
    let mut right = agent.view(info.id, 1).await?;
    sync(&mut left, &x, 0, 0, 1280, 1024).await?;
    sync(&mut right, &x, 1280, 0, 1280, 1024).await?;

    // A change on the right monitor reaches the right viewer only.
    x.fill(1280 + 100, 100, 50, 50, 0x00ff00)?;
    sync(&mut right, &x, 1280, 0, 1280, 1024).await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(700), left.next_frame())
            .await
            .is_err(),
        "left viewer got the right monitor's change"
    );

    // Next Screen: the left viewer switches to monitor 2 and gets its picture.
    left.select_monitor(1).await?;
    sync(&mut left, &x, 1280, 0, 1280, 1024).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smooth_and_auto_send_video_and_converge_to_exact_while_sharp_stays_lossless()
-> anyhow::Result<()> {
    use tether_protocol::screen::Quality;
    let (w, h) = (640u16, 480u16);
    let x = Xvfb::start(w.into(), h.into())?;
    let (_relay, _host, agent, info) = session_with_host(&x).await?;
    let mut view = agent.view(info.id, 0).await?;
    sync(&mut view, &x, 0, 0, w, h).await?;

    // Sharp: every frame of a changing picture is lossless, and exact.
    view.set_quality(Quality::Sharp).await?;
    for seed in 0..3 {
        x.put(0, 0, w, h, &test_picture(w.into(), h.into(), 40 + seed))?;
        let expected = x.read(0, 0, w, h)?;
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let f = view.next_frame().await?;
                assert!(!f.lossy, "Sharp sent a lossy frame");
                if same_colours(view.framebuffer().pixels(), &expected) {
                    return anyhow::Ok(());
                }
            }
        })
        .await??;
    }

    // Smooth: a big change arrives lossy first (a key picture of H.264), then is refined to
    // exact once it stops.
    view.set_quality(Quality::Smooth).await?;
    let (mut lossy, mut video) = (false, false);
    for seed in [77, 78, 79] {
        x.put(0, 0, w, h, &test_picture(w.into(), h.into(), seed))?;
        let expected = x.read(0, 0, w, h)?;
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let f = view.next_frame().await?;
                lossy |= f.lossy;
                video |= f.video;
                if same_colours(view.framebuffer().pixels(), &expected) {
                    return anyhow::Ok(());
                }
            }
        })
        .await
        .context("lossy picture never converged to exact")??;
    }
    assert!(lossy, "Smooth sent no lossy frame for a full-screen change");
    assert!(
        video,
        "Smooth sent a full-screen picture change as JPEG, not video"
    );

    // Auto: pictures that keep changing, 30 a second, go as H.264 once they are seen moving,
    // and the last one is exact soon after they stop.
    view.set_quality(Quality::Auto).await?;
    let pictures: Vec<Vec<u8>> = (0..12)
        .map(|i| test_picture(w.into(), h.into(), 100 + i))
        .collect();
    let reader = tokio::spawn(async move {
        let mut video = 0;
        loop {
            let f = view.next_frame().await?;
            video += usize::from(f.video);
            if video >= 3 {
                return anyhow::Ok((view, video));
            }
        }
    });
    let start = tokio::time::Instant::now();
    for (i, p) in pictures.iter().cycle().take(90).enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(33) * i as u32).await;
        x.put(0, 0, w, h, p)?;
        if reader.is_finished() {
            break;
        }
    }
    let (mut view, pictures) = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .context("moving pictures never went as video")???;
    assert!(pictures >= 3);
    until_exact(&mut view, &x, w, h).await?;
    Ok(())
}

/// Waits until the whole view equals the display; returns whether any frame on the way was
/// lossy.
async fn until_exact(view: &mut ScreenView, x: &Xvfb, w: u16, h: u16) -> anyhow::Result<bool> {
    let expected = x.read(0, 0, w, h)?;
    let mut lossy = false;
    tokio::time::timeout(Duration::from_secs(20), async {
        while !same_colours(view.framebuffer().pixels(), &expected) {
            lossy |= view.next_frame().await?.lossy;
        }
        anyhow::Ok(())
    })
    .await
    .context("the view never became exact")??;
    Ok(lossy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_goes_lossy_at_once_when_acknowledgements_come_back_slowly() -> anyhow::Result<()> {
    use tether_tests::{ImpairedLink, Impairment, spawn_host_args, wait_session};
    let (w, h) = (640u16, 480u16);
    let x = Xvfb::start(w.into(), h.into())?;
    let (relay, pin, mut agent) = tether_tests::relay_with_alice().await?;
    // The host reaches the relay through a link the test can slow down.
    let link = ImpairedLink::start(relay.addr.parse()?).await?;
    let via = link.addr().to_string();
    let _host = spawn_host_args(
        &x.display(),
        &pin,
        &via,
        &relay.fingerprint,
        &["--headless"],
    )?;
    let info = wait_session(&mut agent).await?;
    let mut view = agent.view(info.id, 0).await?;
    until_exact(&mut view, &x, w, h).await?;

    // Quick link: one large photo-like change that does not move stays lossless in Auto.
    x.put(0, 0, w / 2, 400, &test_picture((w / 2).into(), 400, 11))?;
    assert!(
        !until_exact(&mut view, &x, w, h).await?,
        "Auto sent a lossy frame for a still change on a quick link"
    );

    // Slow link: 100 ms each way. Small changes (lossless at any speed) let the host measure
    // the round trip from their acknowledgements, which it asks for once a second while only
    // small changes flow: keep them coming for a few seconds.
    link.set(Impairment {
        delay: Duration::from_millis(100),
        ..Impairment::default()
    });
    let small_until = std::time::Instant::now() + Duration::from_millis(3_500);
    for i in 0u16.. {
        if i >= 12 && std::time::Instant::now() > small_until {
            break;
        }
        x.put(
            (i % 30 * 20) as i16,
            440,
            16,
            16,
            &test_picture(16, 16, u32::from(i)),
        )?;
        assert!(
            !until_exact(&mut view, &x, w, h).await?,
            "a 16×16 change went lossy"
        );
    }
    // The same kind of change, on tiles that never changed before, now goes lossy at once.
    x.put(
        (w / 2) as i16,
        0,
        w / 2,
        400,
        &test_picture((w / 2).into(), 400, 12),
    )?;
    assert!(
        until_exact(&mut view, &x, w, h).await?,
        "Auto stayed lossless on a 200 ms round trip"
    );
    Ok(())
}
