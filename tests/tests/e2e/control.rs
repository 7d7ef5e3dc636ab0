//! Remote control, Send Keys and clipboard sync against a real X server with real injection
//! (enigo/XTest in the host process).

use std::time::Duration;

use anyhow::Context as _;
use tether_console::net::InputChannel;
use tether_protocol::input::{AgentMsg, Button, Combo, Grant, HostMsg, InputEvent, Key};
use tether_tests::{
    ChildGuard, EventWindow, TestSession, XInput, Xvfb, clipboard_text, set_clipboard_text,
    start_session, wait_for,
};

async fn setup(x: &Xvfb, extra: &[&str]) -> anyhow::Result<TestSession> {
    start_session(x, None, extra).await
}

async fn expect(chan: &mut InputChannel, want: HostMsg) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = chan.next().await?;
            if m == want {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .with_context(|| format!("never got {want:?}"))?
}

async fn control(chan: &mut InputChannel) -> anyhow::Result<()> {
    chan.send(&AgentMsg::RequestControl).await?;
    expect(chan, HostMsg::Control(Grant::On)).await
}

fn key(k: Key, down: bool) -> AgentMsg {
    AgentMsg::Input(InputEvent::Key { key: k, down })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_text_and_shortcuts_arrive_exactly() -> anyhow::Result<()> {
    let x = Xvfb::start(1024, 768)?;
    let s = setup(&x, &["--headless", "--allow", "control"]).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("typed.txt");
    let _term = ChildGuard::new(
        "xterm",
        std::process::Command::new("xterm")
            .args(["-u8", "-geometry", "80x20+0+0", "-e", "sh", "-c"])
            .arg(format!("stty -echo; cat > {}", out.display()))
            .env("DISPLAY", x.display())
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .spawn()?,
    );
    let mut chan = s.agent.input(s.info.id).await?;
    control(&mut chan).await?;
    // Point at the terminal (no window manager: the keyboard follows the pointer).
    chan.send(&AgentMsg::Input(InputEvent::MouseMove {
        monitor: 0,
        x: 200,
        y: 100,
    }))
    .await?;
    // Wait for the terminal to be there before typing.
    wait_for("xterm", Duration::from_secs(15), || {
        out.exists().then_some(())
    })?;
    chan.send(&AgentMsg::Input(InputEvent::Text {
        text: "wrong".into(),
    }))
    .await?;
    // Ctrl+U is a shortcut: it erases the line, it does not type a "u".
    for m in [
        key(Key::ControlLeft, true),
        key(Key::U, true),
        key(Key::U, false),
        key(Key::ControlLeft, false),
    ] {
        chan.send(&m).await?;
    }
    chan.send(&AgentMsg::Input(InputEvent::Text {
        text: "héllo wörld, ça va? ß€".into(),
    }))
    .await?;
    chan.send(&key(Key::Enter, true)).await?;
    chan.send(&key(Key::Enter, false)).await?;
    let text = wait_for("the typed line", Duration::from_secs(15), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .with_context(|| format!("file holds {:?}", std::fs::read_to_string(&out)))?;
    assert_eq!(text, "héllo wörld, ça va? ß€\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_lands_on_the_right_pixel_of_the_second_monitor() -> anyhow::Result<()> {
    let x = Xvfb::start(2560, 1024)?;
    for (name, geom) in [
        ("LEFT", "1280/340x1024/270+0+0"),
        ("RIGHT", "1280/340x1024/270+1280+0"),
    ] {
        let st = std::process::Command::new("xrandr")
            .args(["--setmonitor", name, geom, "none"])
            .env("DISPLAY", x.display())
            .status()?;
        assert!(st.success());
    }
    let win = EventWindow::open(&x.display(), 1280 + 300, 200, 400, 300)?;
    let s = setup(&x, &["--headless", "--allow", "control"]).await?;
    assert_eq!(s.info.customer.monitors.len(), 2);
    let mut chan = s.agent.input(s.info.id).await?;
    control(&mut chan).await?;
    // Monitor 2, pixel (345, 267) is window pixel (45, 67). (The console maps its scaled view to
    // these monitor pixels; see the console's pointer tests.)
    chan.send(&AgentMsg::Input(InputEvent::MouseMove {
        monitor: 1,
        x: 345,
        y: 267,
    }))
    .await?;
    chan.send(&AgentMsg::Input(InputEvent::Button {
        button: Button::Left,
        down: true,
    }))
    .await?;
    chan.send(&AgentMsg::Input(InputEvent::Button {
        button: Button::Left,
        down: false,
    }))
    .await?;
    let got = wait_for("the click", Duration::from_secs(10), || {
        win.drain().ok().and_then(|evs| {
            evs.into_iter()
                .find(|e| matches!(e, XInput::ButtonPress(..)))
        })
    })?;
    assert_eq!(got, XInput::ButtonPress(1, 45, 67));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_arrives_without_consent_or_after_control_ends() -> anyhow::Result<()> {
    let x = Xvfb::start(800, 600)?;
    let win = EventWindow::open(&x.display(), 0, 0, 800, 600)?;
    // Headless with nothing allowed: every request is denied.
    let s = setup(&x, &["--headless"]).await?;
    let mut chan = s.agent.input(s.info.id).await?;
    chan.send(&key(Key::A, true)).await?;
    chan.send(&key(Key::A, false)).await?;
    chan.send(&AgentMsg::RequestControl).await?;
    expect(&mut chan, HostMsg::Control(Grant::Denied)).await?;
    chan.send(&key(Key::B, true)).await?;
    chan.send(&key(Key::B, false)).await?;
    chan.send(&AgentMsg::Input(InputEvent::Combo(Combo::AltTab)))
        .await?;
    // A marker that proves the stream was processed: a clipboard request, also denied.
    chan.send(&AgentMsg::RequestClipboard).await?;
    expect(&mut chan, HostMsg::ClipboardSync(Grant::Denied)).await?;
    assert!(
        win.drain()?.is_empty(),
        "input reached the desktop without consent"
    );
    drop(s);

    // Keys sent before control was granted, and after it was given back, never arrive. The
    // proof waits on the injection thread: it injects in order, so once a marker key sent later
    // has arrived, anything queued before it would have too.
    let s = setup(&x, &["--headless", "--allow", "control"]).await?;
    win.focus()?;
    let mut chan = s.agent.input(s.info.id).await?;
    let marker = |chan_key: Key, code: u8| {
        move |got: &Vec<XInput>| {
            (got.contains(&XInput::KeyPress(code)) && got.contains(&XInput::KeyRelease(code)))
                .then_some(chan_key)
        }
    };
    chan.send(&key(Key::A, true)).await?;
    chan.send(&key(Key::A, false)).await?;
    control(&mut chan).await?;
    chan.send(&key(Key::C, true)).await?;
    chan.send(&key(Key::C, false)).await?;
    let mut got = Vec::new();
    let is_c = marker(Key::C, 54);
    wait_for("the marker C", Duration::from_secs(10), || {
        got.extend(win.drain().ok()?);
        is_c(&got)
    })?;
    assert_eq!(
        got,
        vec![XInput::KeyPress(54), XInput::KeyRelease(54)],
        "input before consent reached the desktop"
    );
    chan.send(&AgentMsg::ReleaseControl).await?;
    expect(&mut chan, HostMsg::Control(Grant::Off)).await?;
    chan.send(&key(Key::B, true)).await?;
    chan.send(&key(Key::B, false)).await?;
    control(&mut chan).await?;
    chan.send(&key(Key::D, true)).await?;
    chan.send(&key(Key::D, false)).await?;
    let mut got = Vec::new();
    let is_d = marker(Key::D, 40);
    wait_for("the marker D", Duration::from_secs(10), || {
        got.extend(win.drain().ok()?);
        is_d(&got)
    })?;
    assert_eq!(
        got,
        vec![XInput::KeyPress(40), XInput::KeyRelease(40)],
        "input after control ended reached the desktop"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_held_when_the_agent_disconnects_are_released() -> anyhow::Result<()> {
    let x = Xvfb::start(800, 600)?;
    let win = EventWindow::open(&x.display(), 0, 0, 800, 600)?;
    let s = setup(&x, &["--headless", "--allow", "control"]).await?;
    let mut chan = s.agent.input(s.info.id).await?;
    control(&mut chan).await?;
    chan.send(&key(Key::ShiftLeft, true)).await?;
    chan.send(&key(Key::ControlLeft, true)).await?;
    wait_for("shift and control held", Duration::from_secs(10), || {
        (win.key_down(50).ok()? && win.key_down(37).ok()?).then_some(())
    })?;
    // The agent goes away without releasing anything.
    s.agent.close().await;
    wait_for("held keys released", Duration::from_secs(15), || {
        (!win.key_down(50).ok()? && !win.key_down(37).ok()?).then_some(())
    })?;
    drop(s.host);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_keys_combinations_arrive_as_key_events() -> anyhow::Result<()> {
    let x = Xvfb::start(800, 600)?;
    let win = EventWindow::open(&x.display(), 0, 0, 800, 600)?;
    let s = setup(&x, &["--headless", "--allow", "control"]).await?;
    let mut chan = s.agent.input(s.info.id).await?;
    control(&mut chan).await?;
    chan.send(&AgentMsg::Input(InputEvent::Combo(Combo::CtrlAltDel)))
        .await?;
    let mut all = Vec::new();
    let evs = wait_for("Ctrl+Alt+Del", Duration::from_secs(10), || {
        all.extend(win.drain().ok()?);
        (all.len() >= 6).then(|| all.clone())
    })?;
    assert_eq!(
        evs,
        vec![
            XInput::KeyPress(37),
            XInput::KeyPress(64),
            XInput::KeyPress(119),
            XInput::KeyRelease(119),
            XInput::KeyRelease(64),
            XInput::KeyRelease(37),
        ]
    );
    for c in [
        Combo::AltF4,
        Combo::CtrlEsc,
        Combo::AltTab,
        Combo::Super,
        Combo::PrintScreen,
    ] {
        chan.send(&AgentMsg::Input(InputEvent::Combo(c))).await?;
        // Events may come in more than one drain: count them all.
        let want = c.keys().len() * 2;
        let mut got = 0;
        wait_for(c.label(), Duration::from_secs(10), || {
            got += win.drain().ok()?.len();
            (got >= want).then_some(())
        })?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_round_trips_and_stops_when_unchecked() -> anyhow::Result<()> {
    let x = Xvfb::start(640, 480)?;
    let s = setup(&x, &["--headless", "--allow", "clipboard"]).await?;
    let mut chan = s.agent.input(s.info.id).await?;
    chan.send(&AgentMsg::RequestClipboard).await?;
    expect(&mut chan, HostMsg::ClipboardSync(Grant::On)).await?;

    // Agent to customer.
    chan.send(&AgentMsg::Clipboard {
        text: "from the agent: ünïcode ✓".into(),
    })
    .await?;
    wait_for("the customer's clipboard", Duration::from_secs(10), || {
        clipboard_text(&x.display()).filter(|t| t == "from the agent: ünïcode ✓")
    })?;

    // Customer to agent; what the agent sent is not echoed back.
    let _owner = set_clipboard_text(&x.display(), "from the customer")?;
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let HostMsg::Clipboard { text } = chan.next().await? {
                return anyhow::Ok(text);
            }
        }
    })
    .await??;
    assert_eq!(got, "from the customer");

    // Unchecked: no more text either way.
    chan.send(&AgentMsg::StopClipboard).await?;
    expect(&mut chan, HostMsg::ClipboardSync(Grant::Off)).await?;
    let _owner2 = set_clipboard_text(&x.display(), "not to be sent")?;
    chan.send(&AgentMsg::Clipboard {
        text: "not to be set".into(),
    })
    .await?;
    let quiet = tokio::time::timeout(Duration::from_millis(1200), async {
        loop {
            if let HostMsg::Clipboard { text } = chan.next().await? {
                return anyhow::Ok(text);
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "clipboard text arrived after sync stopped: {quiet:?}"
    );
    assert_eq!(
        clipboard_text(&x.display()).as_deref(),
        Some("not to be sent")
    );
    Ok(())
}
