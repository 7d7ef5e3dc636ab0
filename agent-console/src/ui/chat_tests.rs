//! The Chat box through egui_kittest: the log with notes and private lines, To:, Send, the font
//! size and the transcript export.

use egui_kittest::kittest::Queryable as _;
use tether_protocol::chat::{Audience, ChatEntry, ChatLine, Speaker, StatusNote};
use tether_protocol::desk::{MemberRole, ParticipantId};
use tether_protocol::msg::{ServerMsg, SessionId};

use super::tests::{harness, logged_in, session, with_screen};
use crate::state::{Command, Event, test_member};

/// Session 5, Alice in charge and Bob masked.
fn shared(monitors: usize) -> tether_protocol::msg::SessionInfo {
    let mut info = session(5, monitors);
    info.members = vec![
        test_member(1, "alice", MemberRole::Owner, false),
        test_member(2, "bob", MemberRole::Invited, true),
    ];
    info
}

fn line(seq: u64, line: ChatLine) -> ChatEntry {
    ChatEntry {
        seq,
        at: 3600,
        line,
    }
}

#[test]
fn the_chat_box_shows_the_log_and_sends_to_the_chosen_audience() {
    let mut s = logged_in();
    s.apply(Event::Server(ServerMsg::SessionStarted(shared(1))));
    s.take_commands();
    // The log arrives out of order and twice: it is kept once, in order.
    let hello = line(
        2,
        ChatLine::Message {
            from: Speaker::Customer("Carol Customer".into()),
            to: Audience::Everyone,
            text: "my printer is stuck".into(),
        },
    );
    let note = line(
        1,
        ChatLine::Note(StatusNote::Joined {
            name: "Alice".into(),
            masked: false,
        }),
    );
    let private = line(
        3,
        ChatLine::Message {
            from: Speaker::Agent {
                id: ParticipantId(2),
                login: "bob".into(),
                name: "Bob".into(),
            },
            to: Audience::Agent("alice".into()),
            text: "try the spooler".into(),
        },
    );
    for entries in [vec![hello.clone(), note.clone()], vec![private, hello]] {
        s.apply(Event::Server(ServerMsg::Chat {
            session: SessionId(5),
            entries,
        }));
    }
    let mut h = harness(s);
    h.run_steps(4);
    assert_eq!(
        h.state_mut().desk_mut().expect("desk").sessions[0]
            .chat
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for label in [
        "* Alice joined",
        "Carol Customer:",
        "my printer is stuck",
        "Bob (to Alice):",
        "try the spooler",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label} shown");
    }
    // The session's details head the log.
    assert!(
        h.query_by_label_contains("· Carol Customer (carol@carol-pc) · Debian GNU/Linux 12")
            .is_some()
    );
    // To: Bob only, then Send.
    h.get_by_label("To").click();
    h.run_steps(4);
    h.get_by_label("Bob").click();
    h.run_steps(4);
    h.get_by_label("Message").focus();
    h.run_steps(2);
    h.get_by_label("Message").type_text("on it");
    h.run_steps(2);
    h.get_by_label("Send").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Say {
            session: SessionId(5),
            to: Audience::Agent("bob".into()),
            text: "on it".into()
        }]
    );
    // An empty message is not sent.
    h.get_by_label("Send").click();
    h.run_steps(4);
    assert!(h.state_mut().take_commands().is_empty());
    // Text size and export.
    h.get_by_label("A+").click();
    h.run_steps(2);
    assert_eq!(h.state().settings.chat_font, 15.0);
    h.get_by_label("Export").click();
    h.run_steps(2);
    match h.state_mut().take_commands().as_slice() {
        [Command::SaveText { path, text }] => {
            assert!(path.ends_with(format!("tether-chat-{}.txt", SessionId(5))));
            assert_eq!(
                text,
                "[01:00:00] * Alice joined\n[01:00:00] Carol Customer: my printer is stuck\n[01:00:00] Bob (to alice): try the spooler\n"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_right_navigation_shows_details_attendees_and_saves_notes() {
    let mut s = logged_in();
    s.apply(Event::Server(ServerMsg::SessionStarted(shared(2))));
    s.take_commands();
    s.apply(Event::Server(ServerMsg::Notes {
        session: SessionId(5),
        text: "printer on floor 2".into(),
        by: Some("Bob".into()),
    }));
    let mut h = harness(s);
    h.run_steps(4);
    for label in [
        "Details",
        "Attendees",
        "Notes",
        "carol-pc",
        "Debian GNU/Linux 12",
        "My queue",
        "Carol Customer (customer)",
        "Alice (in charge, unmasked, you)",
        "Bob (invited, masked)",
        "saved by Bob",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label} shown");
    }
    h.get_by_label("Session notes").focus();
    h.run_steps(2);
    h.get_by_label("Session notes").type_text("; toner low");
    h.run_steps(2);
    assert!(h.query_by_label("not saved").is_some());
    h.get_by_label("Save notes").click();
    h.run_steps(2);
    match h.state_mut().take_commands().as_slice() {
        [Command::SaveNotes { session, text }] => {
            assert_eq!(*session, SessionId(5));
            assert!(
                text.contains("printer on floor 2") && text.contains("toner low"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The arrow hides the navigation.
    h.get_by_label("Details ▶").click();
    h.run_steps(4);
    assert!(h.query_by_label("Attendees").is_none());
    assert!(h.query_by_label("◀ Details").is_some());
}

#[test]
fn scripted_messages_fill_the_field_and_scripted_urls_are_sent_or_pushed() {
    use tether_protocol::chat::Script;
    let mut s = logged_in();
    s.apply(Event::Server(ServerMsg::SessionStarted(session(5, 1))));
    s.apply(Event::Server(ServerMsg::Scripts(vec![
        Script {
            title: "Greeting".into(),
            text: "Hello, I am looking at your screen now.".into(),
            url: None,
            scope: "team Support".into(),
        },
        Script {
            title: "Driver".into(),
            text: "Download the driver here:".into(),
            url: Some("https://example.com/driver".into()),
            scope: "yours".into(),
        },
    ])));
    s.take_commands();
    let mut h = harness(s);
    h.get_by_label("Scripted messages").click();
    h.run_steps(4);
    h.get_by_label("Greeting (team Support)").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().desk_mut().expect("desk").sessions[0].message,
        "Hello, I am looking at your screen now."
    );
    h.get_by_label("Scripted URLs").click();
    h.run_steps(4);
    h.get_by_label("Driver (yours)").hover();
    h.run_steps(4);
    // The menu's Push URL (the tools row has one too).
    h.query_all_by_label("Push URL")
        .last()
        .expect("the menu's Push URL")
        .click();
    h.run_steps(4);
    assert!(h.state_mut().take_commands().contains(&Command::PushUrl {
        session: SessionId(5),
        url: "https://example.com/driver".into()
    }));
}

#[test]
fn the_thumbnail_shows_the_live_screen_and_the_full_screen_viewer_leaves_with_esc() {
    use crate::state::Screen;
    let mut s = logged_in();
    s.apply(Event::Server(ServerMsg::SessionStarted(session(9, 1))));
    s.take_commands();
    let mut h = with_screen(s, SessionId(9), [640, 480], egui::vec2(1200.0, 800.0));
    h.run_steps(4);
    assert!(h.query_by_label("No picture yet").is_some());
    if let Some(d) = h.state_mut().desk_mut() {
        d.sessions[0].screen = Screen::Live {
            width: 640,
            height: 480,
        };
    }
    h.run_steps(4);
    assert!(h.query_by_label("Customer's Screen").is_some());
    assert!(
        h.query_by_label("No picture yet").is_none(),
        "the thumbnail is live"
    );
    h.get_by_label("Full screen").click();
    h.run_steps(4);
    assert!(h.state_mut().desk_mut().expect("desk").sessions[0].popped_out);
    assert!(
        h.query_by_label("The screen is in the full-screen viewer; press Esc there to come back.")
            .is_some()
    );
    h.key_press(egui::Key::Escape);
    h.run_steps(4);
    assert!(!h.state_mut().desk_mut().expect("desk").sessions[0].popped_out);
}

#[test]
fn the_console_reads_in_french() {
    tether_i18n::set_thread_lang(Some(tether_i18n::Lang::Fr));
    let mut s = logged_in();
    s.apply(Event::Server(ServerMsg::SessionStarted(shared(1))));
    s.apply(Event::Server(ServerMsg::Chat {
        session: SessionId(5),
        entries: vec![line(
            1,
            ChatLine::Note(StatusNote::Joined {
                name: "Bob".into(),
                masked: true,
            }),
        )],
    }));
    s.take_commands();
    let h = harness(s);
    // The seed's words: Chat box, To, Send, right navigation panels.
    for label in [
        "Envoyer",
        "Détails",
        "Participants",
        "Écran du client",
        "Notes de session",
        "Bob (invité, masqué)",
        "* Bob a rejoint la session (masqué)",
        "Demander le contrôle",
        "Quitter la session",
        "Terminer la session",
        "Transférer…",
        "Générer une clé de session",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label}");
    }
    assert!(
        h.query_by_label("Send").is_none(),
        "no English left on the Chat box"
    );
    tether_i18n::set_thread_lang(None);
}
