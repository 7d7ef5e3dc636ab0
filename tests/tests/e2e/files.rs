//! Transfer Files and Push URL end to end: real relay, real host process, real QUIC.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tether_console::net::{AgentClient, ClientError, InputChannel};
use tether_files::{Inbox, Progress};
use tether_net::{read_msg, write_msg};
use tether_protocol::files::FileMsg;
use tether_protocol::frame::CONTROL_MAX_FRAME;
use tether_protocol::input::{AgentMsg, HostMsg};
use tether_protocol::msg::{OpenStream, SessionInfo};
use tether_tests::{
    ChildGuard, RelayProc, TEST_PASSWORD, TestSession, Xvfb, start_session, wait_for, wait_session,
};

async fn setup(relay: Option<RelayProc>, x: &Xvfb, extra: &[&str]) -> anyhow::Result<TestSession> {
    let mut args = vec!["--headless"];
    args.extend_from_slice(extra);
    start_session(x, relay, &args).await
}

/// A session whose headless host allows file access and receives into `dir`.
async fn files_session(x: &Xvfb, dir: &Path) -> anyhow::Result<TestSession> {
    setup(
        None,
        x,
        &[
            "--allow",
            "files",
            "--download-dir",
            &dir.display().to_string(),
        ],
    )
    .await
}

struct Rng(u64);
impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }
}

fn write_random(path: &Path, len: usize, rng: &mut Rng) -> anyhow::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    std::fs::write(path, v)?;
    Ok(())
}

fn hash(path: &Path) -> anyhow::Result<[u8; 32]> {
    Ok(tether_files::hash_file(path)?)
}

/// Uploads a file or folder the way the console does: one stream per file, relative names.
async fn upload_tree(
    agent: &AgentClient,
    s: &SessionInfo,
    root: &Path,
) -> anyhow::Result<Vec<String>> {
    let mut saved = Vec::new();
    for (path, rel, _) in tether_files::walk(root, 100_000)? {
        saved.push(
            agent
                .upload(s.id, &path, &rel, &Progress::new(0))
                .await
                .with_context(|| format!("uploading {rel} (#{})", saved.len()))?,
        );
    }
    Ok(saved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_folders_round_trip_exactly() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let host_dir = tempfile::tempdir()?;
    let s = files_session(&x, host_dir.path()).await?;
    let src = tempfile::tempdir()?;
    let root = src.path().join("bundle");
    let mut rng = Rng(42);
    write_random(&root.join("empty.bin"), 0, &mut rng)?;
    write_random(&root.join("one.bin"), 1, &mut rng)?;
    write_random(
        &root.join("big.bin"),
        3 * tether_files::CHUNK + 12345,
        &mut rng,
    )?;
    for i in 0..1500 {
        write_random(
            &root.join(format!("deep/d{}/e{}/f{i}.txt", i % 7, i % 3)),
            1 + i % 97,
            &mut rng,
        )?;
    }
    let saved = match upload_tree(&s.agent, &s.info, &root).await {
        Ok(v) => v,
        Err(e) => {
            let err = s.host.stderr_text();
            let tail: String = err.lines().rev().take(15).collect::<Vec<_>>().join("\n");
            anyhow::bail!("{e:#}\nhost stderr (last lines, newest first):\n{tail}");
        }
    };
    assert_eq!(saved.len(), 1503);
    // Everything arrived under the same relative paths with the same hashes.
    for (path, rel, _) in tether_files::walk(&root, 100_000)? {
        let got = host_dir.path().join(&rel);
        assert_eq!(hash(&got)?, hash(&path)?, "{rel}");
    }
    // A second upload of the same file does not replace the first.
    let again = s
        .agent
        .upload(
            s.info.id,
            &root.join("one.bin"),
            "bundle/one.bin",
            &Progress::new(0),
        )
        .await?;
    assert_eq!(again, "bundle/one (1).bin");

    // Browse the customer's side and fetch the folder back.
    let (path, _, entries) = s
        .agent
        .list(s.info.id, &host_dir.path().display().to_string(), false)
        .await?;
    assert!(
        entries.iter().any(|e| e.name == "bundle" && e.dir),
        "{path}: {entries:?}"
    );
    let (_, _, all) = s
        .agent
        .list(
            s.info.id,
            &host_dir.path().join("bundle").display().to_string(),
            true,
        )
        .await?;
    assert_eq!(all.len(), 1504);
    let mine = tempfile::tempdir()?;
    let inbox = Inbox::new(mine.path().to_path_buf(), 1 << 40);
    for e in all
        .iter()
        .filter(|e| e.name == "big.bin" || e.name == "empty.bin" || e.name.starts_with("deep/d1/"))
    {
        let remote = host_dir.path().join("bundle").join(&e.name);
        let got = s
            .agent
            .download(
                s.info.id,
                &remote.display().to_string(),
                Some(&format!("back/{}", e.name)),
                &inbox,
                &Progress::new(0),
            )
            .await?;
        assert_eq!(
            hash(&mine.path().join(&got))?,
            hash(&root.join(&e.name))?,
            "{}",
            e.name
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_corrupted_transfers_leave_no_file() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let host_dir = tempfile::tempdir()?;
    let s = files_session(&x, host_dir.path()).await?;
    let src = tempfile::tempdir()?;
    let big = src.path().join("big.bin");
    write_random(&big, 48 << 20, &mut Rng(7))?;

    // Cancelled halfway by the agent: no file, and no partial file either.
    let progress = Progress::new(0);
    let p = progress.clone();
    let canceller = tokio::spawn(async move {
        let halfway = tether_tests::until("8 MiB sent", Duration::from_secs(30), || {
            p.done.load(Ordering::Relaxed) >= 8 << 20
        })
        .await;
        p.cancel.store(true, Ordering::Relaxed);
        halfway
    });
    let res = s.agent.upload(s.info.id, &big, "big.bin", &progress).await;
    canceller.await??;
    assert!(res.is_err(), "a cancelled upload succeeded");
    let partial_dir = host_dir.path().join(".tether-partial");
    wait_for("the partial file to go", Duration::from_secs(10), || {
        let left = std::fs::read_dir(&partial_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        (left == 0).then_some(())
    })?;
    assert!(!host_dir.path().join("big.bin").exists());

    // Corrupted on the way: the bytes do not match the announced hash.
    let good = std::fs::read(&big)?;
    let (mut send, mut recv) = s.agent.connection().open_bi().await?;
    write_msg(
        &mut send,
        &OpenStream::Files { session: s.info.id },
        CONTROL_MAX_FRAME,
    )
    .await?;
    let h = *blake3::hash(&good[..1 << 20]).as_bytes();
    write_msg(
        &mut send,
        &FileMsg::Put {
            name: "corrupt.bin".into(),
            size: 1 << 20,
            hash: h,
        },
        CONTROL_MAX_FRAME,
    )
    .await?;
    let ready = read_msg::<FileMsg>(&mut recv, CONTROL_MAX_FRAME).await?;
    assert!(
        matches!(ready, Some(FileMsg::Ready { have: 0, .. })),
        "{ready:?}"
    );
    write_msg(&mut send, &FileMsg::Start { from: 0 }, CONTROL_MAX_FRAME).await?;
    let mut bad = good[..1 << 20].to_vec();
    bad[777] ^= 0x40;
    send.write_all(&bad).await?;
    send.finish()?;
    let reply = read_msg::<FileMsg>(&mut recv, CONTROL_MAX_FRAME).await?;
    assert!(
        matches!(&reply, Some(FileMsg::Error(e)) if e.contains("corrupted")),
        "{reply:?}"
    );
    assert!(!host_dir.path().join("corrupt.bin").exists());
    assert_eq!(
        std::fs::read_dir(&partial_dir)?.count(),
        0,
        "corrupt partial removed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_is_refused_on_both_sides_and_audited() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let base = tempfile::tempdir()?;
    let host_dir = base.path().join("inbox");
    let s = setup(
        None,
        &x,
        &[
            "--allow",
            "files",
            "--download-dir",
            &host_dir.display().to_string(),
        ],
    )
    .await?;
    let src = tempfile::tempdir()?;
    let f = src.path().join("f.txt");
    std::fs::write(&f, b"payload")?;
    for evil in [
        "../escaped.txt",
        "/tmp/abs.txt",
        "a/../../escaped.txt",
        "CON",
        "C:/x.txt",
        "a\\..\\b",
    ] {
        let r = s.agent.upload(s.info.id, &f, evil, &Progress::new(0)).await;
        assert!(
            matches!(&r, Err(ClientError::Local(tether_console::net::ClientFailure::Files(e))) if e.contains("refused path")),
            "{evil}: {r:?}"
        );
    }
    assert!(!base.path().join("escaped.txt").exists());
    // A symlink planted in the download folder is not followed.
    std::fs::create_dir_all(&host_dir)?;
    let outside = tempfile::tempdir()?;
    std::os::unix::fs::symlink(outside.path(), host_dir.join("link"))?;
    let r = s
        .agent
        .upload(s.info.id, &f, "link/f.txt", &Progress::new(0))
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(std::fs::read_dir(outside.path())?.count(), 0);

    // The agent's side refuses a name from the customer that would leave its folder.
    assert!(Inbox::check_name("../../etc/passwd").is_err());
    let mine = tempfile::tempdir()?;
    let inbox = Inbox::new(mine.path().join("in"), 1 << 30);
    let r = s
        .agent
        .download(
            s.info.id,
            &f.display().to_string(),
            Some("../out.txt"),
            &inbox,
            &Progress::new(0),
        )
        .await;
    assert!(
        matches!(&r, Err(ClientError::Local(tether_console::net::ClientFailure::Files(e))) if e.contains("refused path") || e.contains("climbs")),
        "{r:?}"
    );
    assert!(!mine.path().join("out.txt").exists());

    // The host audited every refusal.
    let err = s.host.stderr_text();
    assert!(err.matches("refused an upload").count() >= 6, "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_cut_by_a_killed_host_resumes_from_its_verified_prefix() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let host_dir = tempfile::tempdir()?;
    let dir_arg = host_dir.path().display().to_string();
    let s = setup(None, &x, &["--allow", "files", "--download-dir", &dir_arg]).await?;
    let src = tempfile::tempdir()?;
    let big = src.path().join("large.bin");
    write_random(&big, 160 << 20, &mut Rng(99))?;
    let progress = Progress::new(0);
    let mut host = s.host;
    // Killed once the customer holds 16 MiB: what the agent has sent by then may still be in
    // the relay's and the connections' buffers, the more so on a loaded machine.
    let partial = host_dir.path().join(".tether-partial");
    let killer = tokio::spawn(async move {
        let reached = tether_tests::until("16 MiB held", Duration::from_secs(60), || {
            std::fs::read_dir(&partial).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.metadata().is_ok_and(|m| m.len() >= 16 << 20))
            })
        })
        .await;
        host.kill();
        reached.map(|()| host)
    });
    let first = s
        .agent
        .upload(s.info.id, &big, "large.bin", &progress)
        .await;
    let _dead = killer.await??;
    assert!(first.is_err(), "the upload survived a killed host");
    s.agent.close().await;

    // The customer runs the host again with a new key; the agent retries the same file (the
    // old session waits for its killed host to come back, and is left alone).
    let s2 = tether_tests::start_session_except(
        &x,
        Some(s.relay),
        &["--headless", "--allow", "files", "--download-dir", &dir_arg],
        &[s.info.id],
    )
    .await?;
    let retry = Progress::new(0);
    let saved = s2
        .agent
        .upload(s2.info.id, &big, "large.bin", &retry)
        .await?;
    let from = retry.resumed_from.load(Ordering::Relaxed);
    assert!(
        from >= 8 << 20,
        "the retry started at {from}, not after the verified prefix"
    );
    assert!(from < 160 << 20);
    assert_eq!(saved, "large.bin");
    assert_eq!(hash(&host_dir.path().join("large.bin"))?, hash(&big)?);
    Ok(())
}

async fn expect_input(
    chan: &mut InputChannel,
    pred: impl Fn(&HostMsg) -> bool,
) -> anyhow::Result<HostMsg> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = chan.next().await?;
            if pred(&m) {
                return anyhow::Ok(m);
            }
        }
    })
    .await
    .context("no such message")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_read_written_or_opened_without_consent() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let host_dir = tempfile::tempdir()?;
    let s = setup(
        None,
        &x,
        &["--download-dir", &host_dir.path().display().to_string()],
    )
    .await?;
    let src = tempfile::tempdir()?;
    let f = src.path().join("f.txt");
    std::fs::write(&f, b"payload")?;
    let r = s
        .agent
        .upload(s.info.id, &f, "f.txt", &Progress::new(0))
        .await;
    assert!(
        matches!(&r, Err(ClientError::Local(tether_console::net::ClientFailure::Files(e))) if e.contains("did not allow file access")),
        "{r:?}"
    );
    let r = s.agent.list(s.info.id, "", false).await;
    assert!(r.is_err(), "{r:?}");
    assert!(!host_dir.path().join("f.txt").exists());

    // Push URL: refused without consent, and refused for anything but http(s).
    let mut chan = s.agent.input(s.info.id).await?;
    chan.send(&AgentMsg::PushUrl {
        url: "https://example.com/help".into(),
    })
    .await?;
    let m = expect_input(&mut chan, |m| {
        matches!(m, HostMsg::Refused(_) | HostMsg::UrlOpened(_))
    })
    .await?;
    assert!(
        matches!(&m, HostMsg::Refused(e) if e.contains("declined")),
        "{m:?}"
    );
    chan.send(&AgentMsg::PushUrl {
        url: "file:///etc/passwd".into(),
    })
    .await?;
    let m = expect_input(&mut chan, |m| {
        matches!(m, HostMsg::Refused(_) | HostMsg::UrlOpened(_))
    })
    .await?;
    assert!(
        matches!(&m, HostMsg::Refused(e) if e.contains("only http and https")),
        "{m:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_url_opens_in_the_default_browser() -> anyhow::Result<()> {
    let x = Xvfb::start(320, 240)?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("opened.txt");
    let browser = dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", log.display()),
    )?;
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&browser)?.permissions(),
        0o700,
    );
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    // SAFETY: set before any host process starts; the host inherits it.
    let (relay, pin, mut agent) = tether_tests::relay_with_alice().await?;
    let child = tether_tests::Program::host()
        .command()
        .arg(&pin)
        .args([
            "--relay",
            &relay.addr,
            "--relay-fingerprint",
            &relay.fingerprint,
            "--headless",
            "--allow",
            "url",
        ])
        .env("DISPLAY", x.display())
        .env("BROWSER", &browser)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let _host = ChildGuard::new("tether-host", child);
    let info = wait_session(&mut agent).await?;
    let mut chan = agent.input(info.id).await?;
    chan.send(&AgentMsg::PushUrl {
        url: "https://example.com/help?q=1".into(),
    })
    .await?;
    let m = expect_input(&mut chan, |m| {
        matches!(m, HostMsg::Refused(_) | HostMsg::UrlOpened(_))
    })
    .await?;
    assert_eq!(m, HostMsg::UrlOpened("https://example.com/help?q=1".into()));
    let opened = wait_for("the browser", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).ok().filter(|s| !s.is_empty())
    })?;
    assert_eq!(opened.trim(), "https://example.com/help?q=1");
    let _: PathBuf = log;
    Ok(())
}

/// A file dropped from the desktop onto the console window.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Steps the real console in a test harness until `done` says so (30 s at most).
fn step_until(
    h: &mut egui_kittest::Harness<'_, tether_console::app::ConsoleApp>,
    what: &str,
    mut done: impl FnMut(&mut egui_kittest::Harness<'_, tether_console::app::ConsoleApp>) -> bool,
) -> anyhow::Result<()> {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !done(h) {
        if std::time::Instant::now() > end {
            anyhow::bail!("timed out waiting for {what}");
        }
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn a_file_picked_in_the_console_and_a_file_dropped_on_it_both_arrive_on_the_host()
-> anyhow::Result<()> {
    use egui_kittest::kittest::Queryable as _;
    use tether_console::backend::{BackendOptions, Startup};
    use tether_console::state::{ConsoleState, LoginRequest};
    use tether_desktop::opener::RecordingOpener;
    let x = Xvfb::start(640, 480)?;
    let inbox = tempfile::tempdir()?;
    let relay = RelayProc::start()?;
    relay.add_agent("alice", TEST_PASSWORD)?;
    let (pin, _) = relay.create_key("alice")?;
    let _host = tether_tests::spawn_host_args(
        &x.display(),
        &pin,
        &relay.addr,
        &relay.fingerprint,
        &[
            "--headless",
            "--allow",
            "files",
            "--download-dir",
            &inbox.path().display().to_string(),
        ],
    )?;
    let local = tempfile::tempdir()?;
    std::fs::write(local.path().join("picked.txt"), b"picked in the dialog")?;
    std::fs::write(local.path().join("dropped.txt"), b"dropped on the window")?;

    let req = LoginRequest {
        relay: relay.addr.clone(),
        fingerprint: relay.fingerprint.clone(),
        user: "alice".into(),
        password: TEST_PASSWORD.into(),
    };
    let mut state = ConsoleState::connecting(req.clone());
    state.settings.send_dir = local.path().to_path_buf();
    let options = BackendOptions {
        clipboard: tether_desktop::clipboard::MemoryClipboard::default().factory(),
        opener: std::sync::Arc::new(RecordingOpener::default()),
        ..BackendOptions::system()
    };
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(
            |ui, app: &mut tether_console::app::ConsoleApp| app.frame(ui),
            tether_console::app::ConsoleApp::new(
                &egui::Context::default(),
                state,
                Startup::Login(req),
                options,
            )?,
        );
    // The customer waits in alice's queue; she accepts (from the queue view, or from the alert
    // if the customer arrived after her login).
    step_until(&mut h, "the customer in the queue", |h| {
        h.query_all_by_label("Accept").next().is_some()
    })?;
    h.query_all_by_label("Accept")
        .next()
        .ok_or_else(|| anyhow::anyhow!("no Accept button"))?
        .click();
    step_until(&mut h, "the session tab", |h| {
        h.query_by_label("Transfer Files").is_some()
    })?;
    h.get_by_label("Transfer Files").click();
    h.run_steps(2);
    // Picked in the file dialog.
    h.get_by_label("Send files…").click();
    h.run_steps(3);
    h.get_by_label("🗋 picked.txt").click();
    h.run_steps(2);
    h.get_by_label("Open").click();
    h.run_steps(2);
    // Dropped from the desktop.
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(
            local.path().join("dropped.txt"),
        )));
    h.run_steps(2);
    step_until(&mut h, "both files on the host", |_| {
        ["picked.txt", "dropped.txt"]
            .iter()
            .all(|f| inbox.path().join(f).exists())
    })?;
    assert_eq!(
        std::fs::read(inbox.path().join("picked.txt"))?,
        b"picked in the dialog"
    );
    assert_eq!(
        std::fs::read(inbox.path().join("dropped.txt"))?,
        b"dropped on the window"
    );
    Ok(())
}
