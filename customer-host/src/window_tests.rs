//! The customer's window, driven through egui_kittest: click by label, assert on decisions.

use std::sync::{Arc, Mutex};

use crate::consent::{Decision, HostView, Phase, Prompt};
use crate::failure::Failure;
use crate::window::{WindowState, title};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tether_protocol::input::{Grant, Permission};
use tether_protocol::msg::Refusal;

struct State {
    view: HostView,
    window: WindowState,
    decisions: Arc<Mutex<Vec<Decision>>>,
}

fn harness(view: HostView) -> (Harness<'static, State>, Arc<Mutex<Vec<Decision>>>) {
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let state = State {
        view,
        window: WindowState::default(),
        decisions: decisions.clone(),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(480.0, 400.0))
        .build_ui_state(
            |ui, s: &mut State| {
                let d = s.decisions.clone();
                crate::window::ui(ui, &s.view, &mut s.window, &mut |x| {
                    d.lock().expect("lock").push(x)
                });
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
        viewers: vec![(alice(), 0)],
        ..Default::default()
    }
}

#[test]
fn it_names_who_is_connected_and_what_they_see() {
    let (h, _) = harness(connected());
    assert!(h.query_by_label("Helping you: alice").is_some());
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
        agent: alice(),
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
            agent: alice(),
            permission: Permission::Control,
            allow: true
        }]
    );
    let mut view = connected();
    view.prompts.push(Prompt {
        agent: alice(),
        permission: Permission::Clipboard,
        detail: None,
    });
    let (mut h, decisions) = harness(view);
    h.get_by_label("Deny").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::Answer {
            agent: alice(),
            permission: Permission::Clipboard,
            allow: false
        }]
    );
}

#[test]
fn grants_can_be_stopped_and_the_session_ended() {
    let mut view = connected();
    view.grants.insert(alice(), (Grant::On, Grant::On));
    view.files.insert(alice(), Grant::On);
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
                agent: alice(),
                permission: Permission::Control
            },
            Decision::Revoke {
                agent: alice(),
                permission: Permission::Clipboard
            },
            Decision::Revoke {
                agent: alice(),
                permission: Permission::Files,
            },
            Decision::EndSession,
        ]
    );
}

fn failed(f: Failure) -> HostView {
    HostView {
        phase: Phase::EnterKey,
        failure: Some(f),
        ..Default::default()
    }
}

#[test]
fn the_key_field_connects_with_what_the_customer_typed() {
    let (mut h, decisions) = harness(HostView::default());
    assert!(
        h.query_by_label("Enter the session key your support agent gave you.")
            .is_some()
    );
    h.get_by_label("Session key").focus();
    h.run_steps(2);
    h.get_by_label("Session key").type_text(" 123 456 789 ");
    h.run_steps(2);
    h.get_by_label("Connect").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::Connect("123 456 789".into())]
    );
    // A pasted session link goes through as typed; the host reads the PIN out of it.
    let (mut h, decisions) = harness(HostView::default());
    h.get_by_label("Session key").focus();
    h.run_steps(2);
    h.get_by_label("Session key")
        .type_text("https://relay.example/s/123456789");
    h.run_steps(2);
    h.get_by_label("Connect").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::Connect(
            "https://relay.example/s/123456789".into()
        )]
    );
}

#[test]
fn every_failure_is_shown_under_the_key_field_with_what_to_do() {
    let cases = [
        (
            Failure::Unreachable("relay.example:4433".into()),
            "Cannot reach the support server at relay.example:4433.",
            "Check that this computer is connected to the internet",
        ),
        (
            Failure::WrongServer,
            "The support server did not prove its identity, so Tether did not connect.",
            "Download Tether again",
        ),
        (
            Failure::Refused(Refusal::KeyWrong),
            "That session key is not valid.",
            "Check the 9 digits",
        ),
        (
            Failure::Refused(Refusal::KeyExpired),
            "This session key has expired.",
            "Ask your support agent for a new key.",
        ),
        (
            Failure::Refused(Refusal::KeyUsed),
            "This session key has already been used.",
            "Each key works once.",
        ),
        (
            Failure::Refused(Refusal::RateLimited {
                retry_after_secs: 420,
            }),
            "Too many attempts from this network.",
            "Wait 7 minutes and try again.",
        ),
        (
            Failure::Refused(Refusal::KeyMalformed),
            "That is not a session key.",
            "A session key is 9 digits",
        ),
        (
            Failure::Lost,
            "The connection to the support server was lost.",
            "Check your internet connection",
        ),
    ];
    for (f, headline, advice) in cases {
        let (h, _) = harness(failed(f.clone()));
        assert!(h.query_by_label(headline).is_some(), "{f:?}: no headline");
        assert!(
            h.query_by_label_contains(advice).is_some(),
            "{f:?}: no advice"
        );
        // The field is there to try again.
        assert!(h.query_by_label("Session key").is_some(), "{f:?}");
        assert!(title(&failed(f.clone())).contains(&f.short()));
    }
}

#[test]
fn a_download_without_relay_settings_says_so_and_only_closes() {
    let view = HostView {
        phase: Phase::Broken,
        failure: Some(Failure::NotConfigured("no relay address".into())),
        ..Default::default()
    };
    let (mut h, decisions) = harness(view);
    assert!(
        h.query_by_label("This copy of Tether does not know which support server to use.")
            .is_some()
    );
    assert!(h.query_by_label("Session key").is_none());
    h.get_by_label("Close").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::CloseWindow]
    );
}

#[test]
fn waiting_shows_the_place_in_line_and_a_lost_representative_is_told() {
    let view = HostView {
        phase: Phase::Waiting,
        owner: Some("alice".into()),
        ..Default::default()
    };
    let (h, _) = harness(view.clone());
    assert!(h.query_by_label("Waiting for a representative").is_some());
    assert!(h.query_by_label("Your request is with alice.").is_some());
    assert_eq!(
        title(&view),
        "Tether remote support — Waiting for a representative"
    );
    let in_line = HostView {
        place: Some(3),
        ..view.clone()
    };
    let (h, _) = harness(in_line.clone());
    assert!(h.query_by_label("You are number 3 in line.").is_some());
    assert_eq!(
        title(&in_line),
        "Tether remote support — Waiting for a representative (number 3 in line)"
    );
    let (h, _) = harness(HostView {
        phase: Phase::AgentAway,
        ..view
    });
    assert!(
        h.query_by_label(
            "Your representative is no longer connected; the next one will take over here."
        )
        .is_some()
    );
    assert!(h.query_by_label("End session").is_some());
}

#[test]
fn an_ended_session_stays_on_screen_until_closed_or_restarted() {
    let view = HostView {
        phase: Phase::Ended("Your support agent ended the session.".into()),
        ..Default::default()
    };
    let (mut h, decisions) = harness(view);
    assert!(
        h.query_by_label("Your support agent ended the session.")
            .is_some()
    );
    assert!(h.query_by_label("End session").is_none());
    h.get_by_label("New session").click();
    h.run_steps(3);
    h.get_by_label("Close").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::NewSession, Decision::CloseWindow]
    );
}

fn alice() -> tether_protocol::desk::Participant {
    tether_protocol::desk::Participant {
        id: tether_protocol::desk::ParticipantId(1),
        name: Some("alice".into()),
    }
}

#[test]
fn the_customer_chats_from_the_window() {
    let mut view = connected();
    view.chat.push(crate::consent::ChatShown {
        from: "Alice Archer".into(),
        text: "Hello, I can see your screen".into(),
        mine: false,
    });
    view.chat.push(crate::consent::ChatShown {
        from: "Support".into(),
        text: "A colleague is here too".into(),
        mine: false,
    });
    let (mut h, decisions) = harness(view);
    for label in [
        "Chat",
        "Alice Archer:",
        "Hello, I can see your screen",
        "Support:",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label}");
    }
    h.get_by_label("Message").focus();
    h.run_steps(2);
    h.get_by_label("Message").type_text("Thanks!");
    h.run_steps(2);
    h.get_by_label("Send").click();
    h.run_steps(3);
    assert_eq!(
        decisions.lock().expect("lock").as_slice(),
        &[Decision::Say("Thanks!".into())]
    );
    // A blank message is not sent.
    h.get_by_label("Send").click();
    h.run_steps(3);
    assert_eq!(decisions.lock().expect("lock").len(), 1);
}

#[test]
fn the_window_speaks_french() {
    tether_i18n::set_thread_lang(Some(tether_i18n::Lang::Fr));
    let mut view = connected();
    view.prompts.push(Prompt {
        agent: alice(),
        permission: Permission::Control,
        detail: None,
    });
    let (h, _) = harness(view.clone());
    for label in [
        "Assistance à distance Tether",
        "Vous aide : alice",
        "alice demande à contrôler votre souris et votre clavier.",
        "Autoriser",
        "Refuser",
        "Terminer la session",
        "Envoyer",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label}");
    }
    assert_eq!(
        title(&view),
        "Assistance à distance Tether — Connecté à alice"
    );
    let broken = HostView {
        phase: Phase::EnterKey,
        failure: Some(Failure::Refused(Refusal::KeyExpired)),
        ..Default::default()
    };
    let (h, _) = harness(broken);
    assert!(h.query_by_label("Cette clé de session a expiré.").is_some());
    assert!(h.query_by_label("Se connecter").is_some());
    tether_i18n::set_thread_lang(None);
}

#[test]
fn a_dropped_connection_says_it_reconnects_and_keeps_end_session() {
    let mut view = connected();
    view.connection_lost(3);
    assert!(view.grants.is_empty() && view.viewers.is_empty());
    assert_eq!(
        crate::window::title(&view),
        "Tether remote support — Reconnecting (attempt 3)"
    );
    let (h, decisions) = harness(view);
    assert!(
        h.query_by_label("Connection lost, reconnecting… (attempt 3)")
            .is_some()
    );
    h.get_by_label("End session").click();
    let mut h = h;
    h.run_steps(3);
    assert_eq!(
        *decisions.lock().unwrap_or_else(|e| e.into_inner()),
        vec![Decision::EndSession]
    );
}
