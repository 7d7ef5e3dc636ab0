//! The support desk's panels through egui_kittest: the queue view, the arrival alert, the
//! transfer, invite and end dialogs, and the tab markers.

use egui_kittest::kittest::Queryable as _;
use tether_protocol::chat::Audience;
use tether_protocol::desk::{
    AgentInfo, EntryKind, LeftReason, MemberRole, QueueEntry, QueueId, Target, TeamInfo, Unqueued,
};
use tether_protocol::msg::{CustomerInfo, Denied, Refusal, ServerMsg, SessionId};

use super::tests::{harness, logged_in, session};
use crate::queue::Marker;
use crate::state::{Command, ConsoleState, DeskDialog, Event, now_unix, test_member};

fn waiting(id: u64, queue: QueueId, name: &str, arrived: bool) -> QueueEntry {
    QueueEntry {
        session: SessionId(id),
        queue,
        customer: CustomerInfo {
            name: name.into(),
            os: "Windows 11".into(),
            hostname: "front-desk".into(),
            user: "dana".into(),
            request: None,
            monitors: Vec::new(),
        },
        waiting_since: now_unix() - 65,
        kind: EntryKind::Waiting {
            via: tether_protocol::desk::Via::TeamKey("Support".into()),
        },
        arrived,
    }
}

fn with_teams(teams: &[&str]) -> ConsoleState {
    let mut s = logged_in();
    if let Some(d) = s.desk_mut() {
        d.teams = teams.iter().map(|t| t.to_string()).collect();
    }
    s
}

#[test]
fn the_queue_view_lists_queues_with_favourites_first_and_accepts() {
    let mut h = harness(with_teams(&["Billing", "Support"]));
    h.state_mut().apply(Event::Server(ServerMsg::Queue {
        entries: vec![
            waiting(3, QueueId::Team("Support".into()), "Dana Doe", false),
            waiting(4, QueueId::Personal("alice".into()), "Erin Roe", false),
        ],
    }));
    h.run_steps(4);
    for label in [
        "My queue",
        "Team Billing",
        "Team Support",
        "General queue",
        "Dana Doe",
        "Erin Roe",
        "1:05",
        "joined with the team key of Support",
    ] {
        assert!(
            h.query_all_by_label(label).next().is_some(),
            "{label} shown"
        );
    }
    assert!(h.query_by_label("Home (2 waiting)").is_some());
    // No alert: these were listed at login, not new arrivals.
    assert!(h.query_by_label("View").is_none());

    // Star Support (the second team listed): it comes first, and the choice is kept per agent.
    let before: Vec<String> = team_order(&h);
    assert_eq!(before, ["Team Billing", "Team Support"]);
    h.query_all_by_label("☆").nth(1).expect("star").click();
    h.run_steps(4);
    assert_eq!(team_order(&h), ["Team Support", "Team Billing"]);
    let fav = h.state().settings.favourites_of("alice@127.0.0.1:4433");
    assert!(fav.contains("Support"));
    assert!(h.query_by_label("★").is_some());

    // Accept on Dana's row.
    let accept: Vec<_> = h.query_all_by_label("Accept").collect();
    assert_eq!(accept.len(), 2);
    accept[0].click();
    h.run_steps(4);
    let cmds = h.state_mut().take_commands();
    assert_eq!(cmds.len(), 1);
    assert!(matches!(
        cmds[0],
        Command::Accept(SessionId(3) | SessionId(4))
    ));
}

fn team_order(h: &egui_kittest::Harness<'_, ConsoleState>) -> Vec<String> {
    let mut labelled: Vec<(f32, String)> = ["Team Billing", "Team Support"]
        .iter()
        .map(|t| (h.get_by_label(t).rect().top(), t.to_string()))
        .collect();
    labelled.sort_by(|a, b| a.0.total_cmp(&b.0));
    labelled.into_iter().map(|(_, t)| t).collect()
}

#[test]
fn an_arrival_pops_an_alert_with_view_and_accept() {
    let mut h = harness(with_teams(&["Support"]));
    h.state_mut().apply(Event::Server(ServerMsg::Queue {
        entries: vec![waiting(
            9,
            QueueId::Team("Support".into()),
            "Dana Doe",
            true,
        )],
    }));
    h.run_steps(4);
    assert!(h.query_by_label("New customer — Team Support").is_some());
    // Waiting since 65 s before the entry was made: a second may tick before it is drawn.
    assert!(["1:05", "1:06"].iter().any(|t| {
        h.query_by_label(&format!("Windows 11 · waiting {t}"))
            .is_some()
    }));
    // The alert sits in the lower-left corner.
    let view = h.get_by_label("View").rect();
    assert!(view.left() < 100.0 && view.top() > 600.0, "{view:?}");

    // View: the home tab with the entry picked out, the alert gone.
    h.state_mut()
        .apply(Event::Server(ServerMsg::SessionStarted(session(1, 1))));
    h.run_steps(4);
    h.state_mut().take_commands();
    h.get_by_label("View").click();
    h.run_steps(4);
    let d = h.state_mut().desk_mut().expect("desk").clone();
    assert_eq!(d.selected, None);
    assert_eq!(d.queues.focus, Some(SessionId(9)));
    assert!(d.queues.alerts.is_empty());
    assert!(h.query_by_label("New customer — Team Support").is_none());

    // Another arrival, accepted from the alert.
    h.state_mut().apply(Event::Server(ServerMsg::Queue {
        entries: vec![waiting(
            10,
            QueueId::Personal("alice".into()),
            "Erin Roe",
            true,
        )],
    }));
    h.run_steps(4);
    assert!(h.query_by_label("New customer — My queue").is_some());
    h.query_all_by_label("Accept")
        .find(|n| n.rect().left() < 100.0)
        .expect("the alert's Accept")
        .click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Accept(SessionId(10))]
    );
    // Another agent was first: the relay says so, and the entry leaves the queue.
    h.state_mut()
        .apply(Event::Server(ServerMsg::Refused(Refusal::NotAllowed(
            Denied::AlreadyAccepted("Bob B.".into()),
        ))));
    h.state_mut().apply(Event::Server(ServerMsg::Unqueued {
        session: SessionId(10),
        queue: QueueId::Personal("alice".into()),
        why: Unqueued::Accepted("Bob B.".into()),
    }));
    h.run_steps(4);
    let n = h.state_mut().desk_mut().expect("desk").notice.clone();
    assert!(
        h.query_by_label("Already accepted by Bob B.").is_some(),
        "{n:?}"
    );
    assert!(h.query_by_label("Erin Roe").is_none());
}

fn in_session(owner: bool) -> egui_kittest::Harness<'static, ConsoleState> {
    let mut s = with_teams(&["Support"]);
    let mut info = session(5, 1);
    if !owner {
        info.members = vec![
            test_member(2, "bob", MemberRole::Owner, false),
            test_member(1, "alice", MemberRole::Invited, false),
        ];
    }
    s.apply(Event::Server(ServerMsg::SessionStarted(info)));
    s.take_commands();
    harness(s)
}

fn directory() -> Event {
    Event::Server(ServerMsg::Directory {
        teams: vec![TeamInfo {
            name: "Support".into(),
            online: 2,
            mine: true,
        }],
        agents: vec![
            AgentInfo {
                login: "alice".into(),
                display: "Alice A.".into(),
                online: true,
            },
            AgentInfo {
                login: "bob".into(),
                display: "Bob B.".into(),
                online: true,
            },
            AgentInfo {
                login: "carl".into(),
                display: "Carl C.".into(),
                online: false,
            },
        ],
    })
}

#[test]
fn the_transfer_dialog_offers_teams_and_online_agents() {
    let mut h = in_session(true);
    h.get_by_label("Transfer…").click();
    h.run_steps(4);
    assert_eq!(h.state_mut().take_commands(), vec![Command::Directory]);
    assert!(
        h.query_by_label("Asking the relay for teams and agents…")
            .is_some()
    );
    h.state_mut().apply(directory());
    h.run_steps(4);
    assert!(h.query_by_label("Support (2 online)").is_some());
    assert!(h.query_by_label("Bob B. (bob)").is_some());
    assert!(
        h.query_by_label("Carl C. (carl)").is_none(),
        "offline agents are not offered"
    );
    assert!(
        h.query_by_label("Alice A. (alice)").is_none(),
        "nor oneself"
    );
    h.get_by_label("Bob B. (bob)").click();
    h.run_steps(4);
    h.get_by_label("Transfer").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Transfer {
            session: SessionId(5),
            to: Target::Agent("bob".into())
        }]
    );
    assert_eq!(h.state_mut().desk_mut().expect("desk").dialog, None);
    // The relay confirms: the tab closes with a word on where the session went.
    h.state_mut().apply(Event::Server(ServerMsg::Left {
        session: SessionId(5),
        reason: LeftReason::Transferred(QueueId::Personal("bob".into())),
    }));
    h.run_steps(4);
    let d = h.state_mut().desk_mut().expect("desk").clone();
    assert!(d.sessions.is_empty());
    assert_eq!(
        d.notice.as_deref(),
        Some("The session with Carol Customer went to the personal queue of bob")
    );
}

#[test]
fn the_invite_dialog_invites_masked_and_members_show_their_marks() {
    let mut h = in_session(true);
    h.get_by_label("Invite…").click();
    h.run_steps(4);
    h.state_mut().take_commands();
    h.state_mut().apply(directory());
    h.run_steps(4);
    h.get_by_label("Support (2 online)").click();
    h.get_by_label("Masked: hidden from the customer, watch only")
        .click();
    h.run_steps(4);
    h.get_by_label("Invite").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Invite {
            session: SessionId(5),
            to: Target::Team("Support".into()),
            masked: true
        }]
    );
    h.state_mut()
        .apply(Event::Server(ServerMsg::MembersChanged {
            session: SessionId(5),
            members: vec![
                test_member(1, "alice", MemberRole::Owner, false),
                test_member(3, "bob", MemberRole::Invited, true),
            ],
        }));
    h.run_steps(4);
    assert!(
        h.query_by_label("Users: Alice (owner, unmasked, you); Bob (masked)")
            .is_some()
    );
}

#[test]
fn end_session_asks_first_and_only_the_owner_has_it() {
    let mut h = in_session(true);
    h.get_by_label("End Session").click();
    h.run_steps(4);
    assert!(
        h.state_mut().take_commands().is_empty(),
        "nothing before the confirmation"
    );
    h.get_by_label("Cancel").click();
    h.run_steps(4);
    assert_eq!(h.state_mut().desk_mut().expect("desk").dialog, None);
    h.get_by_label("End Session").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().desk_mut().expect("desk").dialog,
        Some(DeskDialog::ConfirmEnd {
            session: SessionId(5)
        })
    );
    let end: Vec<_> = h.query_all_by_label("End Session").collect();
    end.last().expect("the dialog's button").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::EndForAll(SessionId(5))]
    );

    // An invited member may leave, not end or transfer.
    let mut h = in_session(false);
    assert!(h.query_by_label("End Session").is_none());
    h.get_by_label("Transfer…").click();
    h.run_steps(4);
    assert_eq!(h.state_mut().desk_mut().expect("desk").dialog, None);
    h.get_by_label("Leave Session").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Leave(SessionId(5))]
    );
}

#[test]
fn tab_markers_turn_with_the_time_since_the_customer_was_last_written_to() {
    let mut s = with_teams(&[]);
    s.apply(Event::Server(ServerMsg::SessionStarted(session(5, 1))));
    s.take_commands();
    let activity = s.settings.activity;
    let d = s.desk_mut().expect("desk");
    d.sessions[0].last_said = now_unix() - 200;
    assert_eq!(
        activity.marker(now_unix() - d.sessions[0].last_said),
        Marker::Amber
    );
    // Other work in the session, or a word only representatives read, does not count.
    s.outbox.push(Command::Control {
        session: SessionId(5),
        on: true,
    });
    s.outbox.push(Command::Say {
        session: SessionId(5),
        to: Audience::Representatives,
        text: "brb".into(),
    });
    s.take_commands();
    assert!(now_unix() - s.desk_mut().expect("desk").sessions[0].last_said >= 200);
    // A message to the customer does.
    s.outbox.push(Command::Say {
        session: SessionId(5),
        to: Audience::Everyone,
        text: "Still with you".into(),
    });
    s.take_commands();
    let d = s.desk_mut().expect("desk");
    assert!(now_unix() - d.sessions[0].last_said < 5);
    d.sessions[0].last_said = now_unix() - 400;
    let mut h = harness(s);
    assert_eq!(h.state().settings.activity.marker(400), Marker::Red);
    // The thresholds are the console's settings.
    h.get_by_label("Settings").click();
    h.run_steps(4);
    assert!(h.query_by_label("Session tab markers").is_some());
    assert!(h.query_by_label("Amber after").is_some());
    assert!(h.query_by_label("Red after").is_some());
}

#[test]
fn a_portal_request_shows_in_the_queue_as_text_never_as_markup() {
    let mut h = harness(with_teams(&["Support"]));
    let mut e = waiting(11, QueueId::Team("Support".into()), "<b>Carol</b>", false);
    e.customer.request = Some(tether_protocol::msg::Request {
        problem: Some("Printer problems".into()),
        description: "It prints <script>x</script>".into(),
    });
    h.state_mut()
        .apply(Event::Server(ServerMsg::Queue { entries: vec![e] }));
    h.run_steps(4);
    assert!(h.query_by_label("<b>Carol</b>").is_some());
    assert!(
        h.query_by_label("Printer problems: It prints <script>x</script>")
            .is_some()
    );
}
