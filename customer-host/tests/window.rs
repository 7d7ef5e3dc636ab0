//! The customer's window, driven through egui_kittest.

use std::sync::{Arc, Mutex};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tether_host::consent::{Decision, HostView, Phase, Prompt};
use tether_protocol::input::{Grant, Permission};

struct State {
    view: HostView,
    decisions: Arc<Mutex<Vec<Decision>>>,
}

fn harness(view: HostView) -> (Harness<'static, State>, Arc<Mutex<Vec<Decision>>>) {
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let state = State {
        view,
        decisions: decisions.clone(),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(480.0, 400.0))
        .build_ui_state(
            |ui, s: &mut State| {
                let d = s.decisions.clone();
                tether_host::window::ui(ui, &s.view, &mut |x| d.lock().expect("lock").push(x));
            },
            state,
        );
    h.run_steps(3);
    (h, decisions)
}

fn connected() -> HostView {
    HostView {
        phase: Phase::Connected,
        owner: Some("alice".into()),
        agents: vec!["alice".into()],
        viewers: vec![("alice".into(), 0)],
        ..Default::default()
    }
}

#[test]
fn it_names_who_is_connected_and_what_they_see() {
    let (h, _) = harness(connected());
    assert!(h.query_by_label("Connected: alice").is_some());
    assert!(
        h.query_by_label("alice is viewing your screen (monitor 1)")
            .is_some()
    );
    assert!(h.query_by_label("End session").is_some());
}

#[test]
fn a_control_request_is_answered_allow_or_deny() {
    let mut view = connected();
    view.prompts.push(Prompt {
        agent: "alice".into(),
        permission: Permission::Control,
        detail: None,
    });
    let (mut h, decisions) = harness(view);
    assert!(
        h.query_by_label("alice asks to control your mouse and keyboard.")
            .is_some()
    );
    h.get_by_label("Allow").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::Answer {
            agent: "alice".into(),
            permission: Permission::Control,
            allow: true
        }]
    );
    let mut view = connected();
    view.prompts.push(Prompt {
        agent: "alice".into(),
        permission: Permission::Clipboard,
        detail: None,
    });
    let (mut h, decisions) = harness(view);
    h.get_by_label("Deny").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::Answer {
            agent: "alice".into(),
            permission: Permission::Clipboard,
            allow: false
        }]
    );
}

#[test]
fn grants_can_be_stopped_and_the_session_ended() {
    let mut view = connected();
    view.grants.insert("alice".into(), (Grant::On, Grant::On));
    view.files.insert("alice".into(), Grant::On);
    let (mut h, decisions) = harness(view);
    assert!(
        h.query_by_label("alice controls your mouse and keyboard")
            .is_some()
    );
    h.get_by_label("Stop control").click();
    h.run_steps(3);
    h.get_by_label("Stop clipboard").click();
    h.run_steps(3);
    h.get_by_label("Stop file access").click();
    h.run_steps(3);
    h.get_by_label("End session").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[
            Decision::Revoke {
                agent: "alice".into(),
                permission: Permission::Control
            },
            Decision::Revoke {
                agent: "alice".into(),
                permission: Permission::Clipboard
            },
            Decision::Revoke {
                agent: "alice".into(),
                permission: Permission::Files,
            },
            Decision::EndSession,
        ]
    );
}
