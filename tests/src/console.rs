//! The real `tether-console` window as a person uses it: where its buttons are (found by laying
//! out the console's own panels in egui_kittest at the window's size, with the same kind of
//! state) and clicks on them through xdotool.

use std::process::Stdio;

use egui_kittest::kittest::Queryable as _;
use tether_console::state::{ConsoleState, Event, LoginRequest};
use tether_protocol::desk::{
    EntryKind, MemberInfo, MemberRole, ParticipantId, QueueEntry, QueueId,
};
use tether_protocol::msg::{CustomerInfo, ServerMsg, SessionId, SessionInfo};

use crate::{RelayProc, Xvfb, wait_for};

/// A console logged in as `agent`.
fn logged_in(agent: &str) -> ConsoleState {
    let mut state = ConsoleState::connecting(LoginRequest::default());
    state.apply(Event::LoggedIn {
        agent: agent.into(),
        display: agent.into(),
        teams: Vec::new(),
        relay: "r".into(),
        fingerprint: "f".into(),
    });
    state
}

fn customer() -> CustomerInfo {
    CustomerInfo {
        name: "Carol".into(),
        os: "Linux".into(),
        hostname: "pc".into(),
        user: "carol".into(),
        request: None,
        monitors: Vec::new(),
    }
}

/// Lays `state` out in a window of `size` and gives the centre of the widget labelled `label`
/// that `pick` chooses, after `before` (clicks that open a menu, say).
fn point_of(
    state: ConsoleState,
    size: (f32, f32),
    before: &[&str],
    label: &str,
    pick: impl Fn(&egui::Rect) -> bool,
) -> anyhow::Result<(i32, i32)> {
    let mut rt = tether_console::ui::Runtime::default();
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(size.0, size.1))
        .build_ui_state(
            move |ui, s: &mut ConsoleState| tether_console::ui::show(ui, s, &mut rt),
            state,
        );
    h.run_steps(4);
    for b in before {
        h.get_by_label(b).click();
        h.run_steps(4);
    }
    let r = h
        .query_all_by_label(label)
        .map(|n| n.rect())
        .find(|r| pick(r))
        .ok_or_else(|| anyhow::anyhow!("no {label:?} in the console"))?;
    let c = r.center();
    Ok((c.x.round() as i32, c.y.round() as i32))
}

/// Where the arrival alert's Accept button is in a console window of `size` logged in as
/// `agent` (the alert is anchored to the window's lower-left corner, so its buttons sit at the
/// same place whatever the customer's details).
pub fn alert_accept_point(agent: &str, size: (f32, f32)) -> anyhow::Result<(i32, i32)> {
    let mut state = logged_in(agent);
    state.apply(Event::Server(ServerMsg::Queue {
        entries: vec![QueueEntry {
            session: SessionId(1),
            queue: QueueId::Personal(agent.into()),
            customer: customer(),
            waiting_since: 0,
            kind: EntryKind::Waiting {
                via: tether_protocol::desk::Via::AgentKey(agent.into()),
            },
            arrived: true,
        }],
    }));
    point_of(state, size, &[], "Accept", |r| r.left() < 200.0)
}

/// Where a session tab's quality menu offers `quality` ("Sharp", "Smooth", "Auto") once its
/// Quality button is clicked, in a console window of `size` logged in as `agent`: the Quality
/// button first, then the entry.
pub fn quality_points(
    agent: &str,
    size: (f32, f32),
    quality: &str,
) -> anyhow::Result<[(i32, i32); 2]> {
    let session = || {
        let mut state = logged_in(agent);
        state.apply(Event::Server(ServerMsg::SessionStarted(SessionInfo {
            id: SessionId(1),
            customer: customer(),
            members: vec![MemberInfo {
                id: ParticipantId(1),
                login: agent.into(),
                display: agent.into(),
                role: MemberRole::Owner,
                masked: false,
            }],
            me: ParticipantId(1),
            started_at: 0,
            origin: QueueId::Personal(agent.into()),
        })));
        state
    };
    let button = point_of(session(), size, &[], "Quality", |_| true)?;
    let entry = point_of(session(), size, &["Quality"], quality, |_| true)?;
    Ok([button, entry])
}

/// Clicks at a point of the display, as a person would.
pub fn click(x: &Xvfb, at: (i32, i32)) -> anyhow::Result<()> {
    let st = std::process::Command::new("xdotool")
        .args([
            "mousemove",
            &at.0.to_string(),
            &at.1.to_string(),
            "click",
            "1",
        ])
        .env("DISPLAY", x.display())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "xdotool failed: {st}");
    Ok(())
}

/// Waits until the relay's audit log shows an agent's login (the console's, once it has one).
pub fn wait_login(relay: &RelayProc) -> anyhow::Result<()> {
    wait_for(
        "the console's login",
        std::time::Duration::from_secs(30),
        || {
            relay
                .cli(&["audit", "--limit", "20"], None)
                .ok()
                .filter(|a| a.contains("agent.login"))
        },
    )?;
    Ok(())
}
