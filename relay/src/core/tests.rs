//! The core's rules, with plain calls: queues, accepting, transfers, invitations, leaving,
//! lost connections, and an authorization matrix of who may do what in which session.

use super::*;
use tether_protocol::chat::{Audience, ChatLine, HostNote, SUPPORT_NAME, Speaker};
use tether_protocol::msg::RESUME_WINDOW_SECS;

const HOST: ConnId = 1;
const HOST2: ConnId = 2;
const HOST3: ConnId = 3;
const ALICE: ConnId = 10;
const BOB: ConnId = 11;
const CAROL: ConnId = 12;
const DAVE: ConnId = 13;
const NOBODY: ConnId = 99;

const S1: SessionId = SessionId(0x51);
const S2: SessionId = SessionId(0x52);
const S3: SessionId = SessionId(0x53);

fn profile(login: &str, teams: &[&str]) -> AgentProfile {
    AgentProfile {
        login: login.into(),
        display: format!("{login} D."),
        teams: teams.iter().map(|t| t.to_string()).collect(),
    }
}

fn at(unix: u64) -> Now {
    Now {
        mono: Duration::from_secs(unix),
        unix,
    }
}

fn sends_to(out: &[Output], conn: ConnId) -> Vec<ServerMsg> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, m) if *c == conn => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn alerts(out: &[Output], conn: ConnId) -> Vec<QueueEntry> {
    sends_to(out, conn)
        .into_iter()
        .flat_map(|m| match m {
            ServerMsg::Queue { entries } => entries,
            _ => Vec::new(),
        })
        .filter(|e| e.arrived)
        .collect()
}

fn places(out: &[Output], conn: ConnId) -> Vec<u32> {
    sends_to(out, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::InLine { place } => Some(place),
            _ => None,
        })
        .collect()
}

fn denied(r: Result<Vec<Output>, Refusal>) -> Option<Denied> {
    match r {
        Ok(_) => None,
        Err(Refusal::NotAllowed(d)) => Some(d),
        Err(other) => panic!("unexpected refusal {other:?}"),
    }
}

fn customer(name: &str) -> CustomerInfo {
    CustomerInfo {
        name: name.into(),
        os: "Debian".into(),
        ..CustomerInfo::default()
    }
}

/// Alice and Bob in team support, Carol in billing, Dave in no team; all online.
fn desk() -> Core {
    let mut core = Core::new();
    // Agents who drop leave at once here; the grace has its own tests.
    core.agent_grace = Duration::ZERO;
    core.agent_online(ALICE, profile("alice", &["support"]), None, at(0));
    core.agent_online(BOB, profile("bob", &["support"]), None, at(0));
    core.agent_online(CAROL, profile("carol", &["billing"]), None, at(0));
    core.agent_online(DAVE, profile("dave", &[]), None, at(0));
    core
}

fn team_session(core: &mut Core, host: ConnId, id: SessionId, now: u64) -> Vec<Output> {
    core.host_joined(
        host,
        id,
        KeyOwner::Team("support".into()),
        customer("Customer"),
        at(now),
    )
}

#[test]
fn a_team_key_puts_the_customer_in_the_team_queue_and_alerts_its_members_only() {
    let mut core = desk();
    let out = team_session(&mut core, HOST, S1, 100);
    assert!(matches!(
        &sends_to(&out, HOST)[..],
        [ServerMsg::Joined { queue, .. }, ServerMsg::InLine { place: 1 }] if queue == "support"
    ));
    for who in [ALICE, BOB] {
        let a = alerts(&out, who);
        assert_eq!(a.len(), 1, "{who}");
        assert_eq!(a[0].queue, QueueId::Team("support".into()));
        assert_eq!(a[0].customer.name, "Customer");
        assert!(
            matches!(a[0].kind, EntryKind::Waiting { via: tether_protocol::desk::Via::TeamKey(ref t) } if t == "support")
        );
    }
    assert!(sends_to(&out, CAROL).is_empty());
    assert!(sends_to(&out, DAVE).is_empty());
    // No member yet: nobody streams.
    assert!(core.stream_route(ALICE, S1, StreamKind::Screen).is_err());
    // An agent who logs in later finds it in the queue (listed, not an alert).
    let out = core.agent_online(20, profile("erin", &["support"]), None, at(0));
    assert!(matches!(
        &sends_to(&out, 20)[..],
        [ServerMsg::InSessions { sessions }, ServerMsg::Queue { entries }]
            if sessions.is_empty() && entries.len() == 1 && !entries[0].arrived
    ));
}

#[test]
fn a_personal_key_puts_the_customer_in_its_agents_queue() {
    let mut core = desk();
    let out = core.host_joined(
        HOST,
        S1,
        KeyOwner::Agent {
            login: "carol".into(),
            display: "carol D.".into(),
        },
        customer("Customer"),
        at(100),
    );
    assert_eq!(alerts(&out, CAROL).len(), 1);
    assert!(alerts(&out, ALICE).is_empty());
    assert!(
        matches!(&sends_to(&out, HOST)[0], ServerMsg::Joined { queue, .. } if queue == "carol D.")
    );
    assert_eq!(
        denied(core.accept(ALICE, S1, at(101))),
        Some(Denied::NotYourQueue)
    );
    assert!(core.accept(CAROL, S1, at(101)).is_ok());
}

#[test]
fn of_two_agents_accepting_exactly_one_wins() {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    let out = core.accept(ALICE, S1, at(110)).expect("alice accepts");
    assert!(sends_to(&out, ALICE).iter().any(|m| matches!(m,
        ServerMsg::SessionStarted(info) if info.id == S1 && info.members.len() == 1
            && info.members[0].role == MemberRole::Owner)));
    assert!(sends_to(&out, BOB).contains(&ServerMsg::Unqueued {
        session: S1,
        queue: QueueId::Team("support".into()),
        why: Unqueued::Accepted("alice D.".into()),
    }));
    assert!(sends_to(&out, HOST).contains(&ServerMsg::AgentsChanged {
        session: S1,
        agents: vec!["alice D.".into()],
    }));
    assert_eq!(
        denied(core.accept(BOB, S1, at(110))),
        Some(Denied::AlreadyAccepted("alice D.".into()))
    );
}

#[test]
fn the_place_in_line_follows_the_queue() {
    let mut core = desk();
    let a = team_session(&mut core, HOST, S1, 100);
    let b = team_session(&mut core, HOST2, S2, 101);
    let c = team_session(&mut core, HOST3, S3, 102);
    assert_eq!(
        (places(&a, HOST), places(&b, HOST2), places(&c, HOST3)),
        (vec![1], vec![2], vec![3])
    );
    let out = core.accept(BOB, S1, at(103)).expect("accept");
    assert_eq!(
        (places(&out, HOST2), places(&out, HOST3)),
        (vec![1], vec![2])
    );
    assert!(places(&out, HOST).is_empty());
}

/// A session of team support accepted by Alice, with Bob invited masked; a second one waiting.
fn shared_session() -> Core {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    let out = core
        .invite(ALICE, S1, &Target::Agent("bob".into()), true, at(102))
        .expect("invite");
    let inv = alerts(&out, BOB);
    assert!(matches!(
        inv[..],
        [QueueEntry {
            kind: EntryKind::Invitation { masked: true, .. },
            ..
        }]
    ));
    core.accept(BOB, S1, at(103)).expect("bob joins");
    team_session(&mut core, HOST2, S2, 104);
    core
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Accept,
    Stream(StreamKind),
    Transfer,
    Invite,
    Leave,
    End,
}

fn attempt(core: &mut Core, who: ConnId, act: Act, id: SessionId) -> Option<Denied> {
    let now = at(200);
    match act {
        Act::Accept => denied(core.accept(who, id, now)),
        Act::Stream(k) => match core.stream_route(who, id, k) {
            Ok(_) => None,
            Err(Refusal::NotAllowed(d)) => Some(d),
            Err(e) => panic!("{e:?}"),
        },
        Act::Transfer => denied(core.transfer(who, id, &Target::Team("billing".into()), now)),
        Act::Invite => denied(core.invite(who, id, &Target::Team("billing".into()), false, now)),
        Act::Leave => denied(core.leave(who, id, now)),
        Act::End => denied(core.end_for_all(who, id)),
    }
}

#[test]
fn who_may_do_what_in_which_session() {
    use Act::*;
    use StreamKind::*;
    let none = None;
    let not_in = Some(Denied::NotInSession);
    let masked = Some(Denied::MaskedWatchOnly);
    let not_owner = Some(Denied::NotOwner);
    #[rustfmt::skip]
    let table: Vec<(ConnId, Act, SessionId, Option<Denied>)> = vec![
        // The owner may do everything in their session.
        (ALICE, Stream(Screen), S1, none.clone()),
        (ALICE, Stream(Input), S1, none.clone()),
        (ALICE, Stream(Files), S1, none.clone()),
        (ALICE, Invite, S1, none.clone()),
        (ALICE, Accept, S1, Some(Denied::AlreadyInSession)),
        // A masked member only watches.
        (BOB, Stream(Screen), S1, none.clone()),
        (BOB, Stream(Input), S1, masked.clone()),
        (BOB, Stream(Files), S1, masked.clone()),
        (BOB, Invite, S1, masked.clone()),
        (BOB, Transfer, S1, not_owner.clone()),
        (BOB, End, S1, not_owner.clone()),
        // Outsiders: no stream of any kind, nothing to transfer, end or leave.
        (DAVE, Stream(Screen), S1, not_in.clone()),
        (DAVE, Stream(Input), S1, not_in.clone()),
        (DAVE, Stream(Files), S1, not_in.clone()),
        (DAVE, Transfer, S1, not_in.clone()),
        (DAVE, Invite, S1, not_in.clone()),
        (DAVE, Leave, S1, not_in.clone()),
        (DAVE, End, S1, not_in.clone()),
        (CAROL, Stream(Screen), S1, not_in.clone()),
        // Accepting: a waiting session of another team, or one already taken.
        (CAROL, Accept, S2, Some(Denied::NotYourQueue)),
        (DAVE, Accept, S2, Some(Denied::NotYourQueue)),
        (CAROL, Accept, S1, Some(Denied::AlreadyAccepted("alice D.".into()))),
        // Nobody streams from a session that waits for an owner.
        (ALICE, Stream(Screen), S2, not_in.clone()),
        // No such session; not logged in.
        (ALICE, Stream(Screen), SessionId(9), Some(Denied::NoSuchSession)),
        (NOBODY, Stream(Screen), S1, Some(Denied::NotLoggedIn)),
        (NOBODY, Accept, S2, Some(Denied::NotLoggedIn)),
    ];
    for (who, act, id, expected) in table {
        let mut core = shared_session();
        assert_eq!(
            attempt(&mut core, who, act, id),
            expected,
            "{who} {act:?} {id}"
        );
    }
}

#[test]
fn a_masked_members_name_never_reaches_the_host() {
    let mut core = desk();
    let mut to_host = Vec::new();
    to_host.extend(team_session(&mut core, HOST, S1, 100));
    to_host.extend(core.accept(ALICE, S1, at(101)).expect("accept"));
    to_host.extend(
        core.invite(ALICE, S1, &Target::Agent("bob".into()), true, at(102))
            .expect("invite"),
    );
    to_host.extend(core.accept(BOB, S1, at(103)).expect("join"));
    let (_, bob) = core
        .stream_route(BOB, S1, StreamKind::Screen)
        .expect("route");
    assert_eq!(bob.name, None);
    let (_, alice) = core
        .stream_route(ALICE, S1, StreamKind::Input)
        .expect("route");
    assert_eq!(alice.name.as_deref(), Some("alice D."));
    to_host.extend(core.leave(BOB, S1, at(104)).expect("leave"));
    for m in sends_to(&to_host, HOST) {
        let shown = format!("{m:?}");
        assert!(!shown.contains("bob"), "the host learnt of bob: {shown}");
        // Login names never reach the host either: only display names.
        if let ServerMsg::AgentsChanged { agents, .. } = m {
            assert!(agents.iter().all(|a| a == "alice D."), "{agents:?}");
        }
    }
    // The members see Bob, marked masked.
    let out = core.invite(ALICE, S1, &Target::Agent("bob".into()), true, at(105));
    assert!(out.is_ok());
    let out = core.accept(BOB, S1, at(106)).expect("join again");
    assert!(sends_to(&out, ALICE).iter().any(|m| matches!(m,
        ServerMsg::MembersChanged { members, .. } if members.iter().any(|x| x.login == "bob" && x.masked))));
}

#[test]
fn a_transferred_away_agent_can_no_longer_stream_and_the_new_owner_starts_afresh() {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    let (_, before) = core
        .stream_route(ALICE, S1, StreamKind::Input)
        .expect("route");
    let out = core
        .transfer(ALICE, S1, &Target::Team("billing".into()), at(110))
        .expect("transfer");
    assert!(out.contains(&Output::Revoke {
        conn: ALICE,
        session: S1
    }));
    assert!(sends_to(&out, ALICE).contains(&ServerMsg::Left {
        session: S1,
        reason: LeftReason::Transferred(QueueId::Team("billing".into())),
    }));
    assert!(matches!(
        alerts(&out, CAROL)[..],
        [QueueEntry { kind: EntryKind::Transferred { ref from }, .. }] if from == "alice D."
    ));
    assert!(sends_to(&out, HOST).contains(&ServerMsg::InLine { place: 1 }));
    for k in [StreamKind::Screen, StreamKind::Input, StreamKind::Files] {
        assert_eq!(
            core.stream_route(ALICE, S1, k).err(),
            Some(Refusal::NotAllowed(Denied::NotInSession))
        );
    }
    let out = core.accept(CAROL, S1, at(120)).expect("carol takes it");
    assert!(sends_to(&out, HOST).contains(&ServerMsg::AgentsChanged {
        session: S1,
        agents: vec!["carol D.".into()],
    }));
    // A new membership is a new participant: the customer's grants to Alice do not carry over.
    let (_, after) = core
        .stream_route(CAROL, S1, StreamKind::Input)
        .expect("route");
    assert_ne!(before.id, after.id);
    // Transfers to oneself or to an agent who is not online are refused.
    assert_eq!(
        denied(core.transfer(CAROL, S1, &Target::Agent("carol".into()), at(121))),
        Some(Denied::ToYourself)
    );
    assert_eq!(
        denied(core.transfer(CAROL, S1, &Target::Agent("zoe".into()), at(121))),
        Some(Denied::AgentOffline("zoe".into()))
    );
}

#[test]
fn a_masked_member_takes_charge_of_a_session_transferred_to_them_as_a_new_participant() {
    let mut core = shared_session();
    let (_, masked) = core
        .stream_route(BOB, S1, StreamKind::Screen)
        .expect("bob watches");
    assert_eq!(masked.name, None);
    // Bob cannot accept the session again while nobody hands it over.
    assert_eq!(
        denied(core.accept(BOB, S1, at(104))),
        Some(Denied::AlreadyInSession)
    );
    core.transfer(ALICE, S1, &Target::Agent("bob".into()), at(105))
        .expect("transfer");
    let out = core.accept(BOB, S1, at(106)).expect("bob takes charge");
    // His masked streams are cut; he comes back as the named owner.
    assert!(out.contains(&Output::Revoke {
        conn: BOB,
        session: S1
    }));
    assert!(sends_to(&out, HOST).contains(&ServerMsg::AgentsChanged {
        session: S1,
        agents: vec!["bob D.".into()],
    }));
    let (_, owner) = core
        .stream_route(BOB, S1, StreamKind::Input)
        .expect("the owner may control");
    assert_ne!(owner.id, masked.id);
    assert_eq!(owner.name.as_deref(), Some("bob D."));
    let started = sends_to(&out, BOB)
        .into_iter()
        .find_map(|m| match m {
            ServerMsg::SessionStarted(i) => Some(i),
            _ => None,
        })
        .expect("a fresh start");
    assert_eq!(started.me, owner.id);
    assert!(
        started
            .members
            .iter()
            .any(|m| m.login == "bob" && m.role == MemberRole::Owner && !m.masked)
    );
}

#[test]
fn leaving_keeps_the_session_for_the_others_and_the_last_one_out_requeues_it() {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    core.invite(ALICE, S1, &Target::Agent("bob".into()), false, at(102))
        .expect("invite");
    core.accept(BOB, S1, at(103)).expect("join");
    // The owner leaves: Bob takes charge, the customer stays with him.
    let out = core.leave(ALICE, S1, at(104)).expect("leave");
    assert!(sends_to(&out, BOB).iter().any(|m| matches!(m,
        ServerMsg::MembersChanged { members, .. }
            if members.len() == 1 && members[0].role == MemberRole::Owner)));
    assert!(!out.iter().any(|o| matches!(o, Output::Ended { .. })));
    assert!(core.end_for_all(BOB, S1).is_ok(), "bob is in charge now");
}

#[test]
fn the_last_agent_leaving_puts_the_customer_back_in_the_queue_it_came_from() {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    let out = core.leave(ALICE, S1, at(110)).expect("leave");
    assert!(!out.iter().any(|o| matches!(o, Output::Ended { .. })));
    assert!(matches!(
        alerts(&out, BOB)[..],
        [QueueEntry { kind: EntryKind::Returned { lost: false, .. }, ref queue, .. }]
            if *queue == QueueId::Team("support".into())
    ));
    assert!(sends_to(&out, HOST).contains(&ServerMsg::InLine { place: 1 }));
    assert!(core.accept(BOB, S1, at(111)).is_ok());
}

#[test]
fn the_owner_ends_the_session_for_everyone() {
    let mut core = shared_session();
    let out = core.end_for_all(ALICE, S1).expect("end");
    let ended = ServerMsg::SessionEnded {
        session: S1,
        reason: EndReason::AgentEnded,
    };
    for who in [HOST, ALICE, BOB] {
        assert!(sends_to(&out, who).contains(&ended), "{who}");
    }
    assert!(out.contains(&Output::Ended {
        session: S1,
        reason: EndReason::AgentEnded
    }));
    assert_eq!(core.session_count(), 1);
}

#[test]
fn a_dropped_owners_session_waits_in_their_queue_then_moves_on() {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    let out = core.closed(ALICE, at(200));
    // Nobody else is told yet: it waits for Alice in her own queue; the host is told it waits.
    assert!(alerts(&out, BOB).is_empty());
    assert!(sends_to(&out, HOST).contains(&ServerMsg::InLine { place: 1 }));
    assert!(sends_to(&out, HOST).contains(&ServerMsg::AgentsChanged {
        session: S1,
        agents: vec![]
    }));
    assert!(core.tick(at(259)).is_empty());
    // Alice comes back in time and finds it.
    let mut again = core_clone_after_drop();
    let out = again.agent_online(30, profile("alice", &["support"]), None, at(0));
    assert!(matches!(
        &sends_to(&out, 30)[..],
        [ServerMsg::InSessions { .. }, ServerMsg::Queue { entries }]
            if entries[0].queue == QueueId::Personal("alice".into())
    ));
    assert!(again.accept(30, S1, at(230)).is_ok());
    // Otherwise, after the wait, it moves to the team's queue and the team is alerted.
    let out = core.tick(at(260));
    assert!(matches!(
        alerts(&out, BOB)[..],
        [QueueEntry { kind: EntryKind::Returned { lost: true, .. }, ref queue, .. }]
            if *queue == QueueId::Team("support".into())
    ));
    assert!(core.accept(BOB, S1, at(270)).is_ok());
}

fn core_clone_after_drop() -> Core {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    core.closed(ALICE, at(200));
    core
}

#[test]
fn a_customer_who_leaves_or_drops_ends_the_session_and_leaves_every_queue() {
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    team_session(&mut core, HOST2, S2, 101);
    let out = core.closed(HOST, at(102));
    assert!(sends_to(&out, ALICE).contains(&ServerMsg::Unqueued {
        session: S1,
        queue: QueueId::Team("support".into()),
        why: Unqueued::Ended,
    }));
    assert_eq!(places(&out, HOST2), vec![1]);
    let out = core.end_by_host(HOST2);
    assert!(out.contains(&Output::Ended {
        session: S2,
        reason: EndReason::CustomerEnded
    }));
    assert_eq!(core.session_count(), 0);
}

#[test]
fn logins_are_counted_before_the_check_and_one_at_a_time_per_source() {
    let mut a = Admission::new();
    let ip: std::net::IpAddr = "192.0.2.7".parse().expect("ip");
    let t = Duration::from_secs(1);
    assert!(a.begin_login(ip, t).is_ok());
    assert_eq!(a.begin_login(ip, t), Err(Refusal::LoginInProgress));
    a.end_login(ip, false);
    for _ in 1..pairing_limit() {
        assert!(a.begin_login(ip, t).is_ok());
        a.end_login(ip, false);
    }
    assert!(matches!(
        a.begin_login(ip, t),
        Err(Refusal::RateLimited { .. })
    ));
}

fn pairing_limit() -> u32 {
    tether_protocol::pairing::SOURCE_MAX_FAILURES
}

fn chat_of(out: &[Output], conn: ConnId) -> Vec<ChatEntry> {
    sends_to(out, conn)
        .into_iter()
        .flat_map(|m| match m {
            ServerMsg::Chat { entries, .. } => entries,
            _ => Vec::new(),
        })
        .collect()
}

fn texts(entries: &[ChatEntry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match &e.line {
            ChatLine::Message { text, .. } => Some(text.clone()),
            ChatLine::Note(_) => None,
        })
        .collect()
}

#[test]
fn chat_lines_reach_only_their_audience_and_the_host_never_learns_a_masked_name() {
    // Alice owns S1 and Bob watches masked; Carol joins unmasked on an invitation.
    let mut core = shared_session();
    core.invite(ALICE, S1, &Target::Agent("carol".into()), false, at(104))
        .expect("invite");
    core.accept(CAROL, S1, at(105)).expect("carol joins");
    /// Who says what to whom; who reads it; who must not.
    type Case<'a> = (ConnId, Audience, &'a str, &'a [ConnId], &'a [ConnId]);
    let cases: [Case<'_>; 5] = [
        (
            ALICE,
            Audience::Agent("bob".into()),
            "psst bob",
            &[ALICE, BOB],
            &[HOST, CAROL, DAVE],
        ),
        (
            ALICE,
            Audience::Representatives,
            "reps only",
            &[ALICE, BOB, CAROL],
            &[HOST, DAVE],
        ),
        (
            ALICE,
            Audience::Everyone,
            "hello all",
            &[ALICE, BOB, CAROL, HOST],
            &[DAVE],
        ),
        (
            BOB,
            Audience::Everyone,
            "masked hello",
            &[ALICE, BOB, CAROL, HOST],
            &[DAVE],
        ),
        // A host always speaks to everyone, whatever it asks for.
        (
            HOST,
            Audience::Agent("bob".into()),
            "from the customer",
            &[ALICE, BOB, CAROL, HOST],
            &[DAVE],
        ),
    ];
    for (who, to, text, readers, not) in cases {
        let out = core.say(who, S1, to, text, at(110)).expect("said");
        for r in readers {
            assert_eq!(texts(&chat_of(&out, *r)), [text], "{text} to {r}");
        }
        for n in not {
            assert!(chat_of(&out, *n).is_empty(), "{text} reached {n}");
        }
        // The host sees a masked sender as Support, and no login at all.
        for e in chat_of(&out, HOST) {
            if let ChatLine::Message {
                from: Speaker::Agent { login, name, .. },
                ..
            } = &e.line
            {
                assert!(login.is_empty());
                assert_ne!(name, "bob D.");
                if who == BOB {
                    assert_eq!(name, SUPPORT_NAME);
                }
            }
        }
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Chat { session: S1, .. }))
        );
    }
    // Status notes go to the agents only.
    let out = core.leave(CAROL, S1, at(120)).expect("carol leaves");
    assert!(
        chat_of(&out, ALICE)
            .iter()
            .any(|e| e.line == ChatLine::Note(StatusNote::Left("carol D.".into())))
    );
    assert!(chat_of(&out, HOST).is_empty());
    // Non-members may not speak; bad text is refused.
    assert_eq!(
        denied(core.say(DAVE, S1, Audience::Everyone, "hi", at(121))),
        Some(Denied::NotInSession)
    );
    assert_eq!(
        denied(core.say(ALICE, S1, Audience::Everyone, "   ", at(121))),
        Some(Denied::Chat(tether_protocol::chat::ChatError::Empty))
    );
    assert_eq!(
        denied(core.say(ALICE, S1, Audience::Agent("dave".into()), "x", at(121))),
        Some(Denied::NoSuchAgent("dave".into()))
    );
}

#[test]
fn the_log_holds_messages_and_notes_in_order_and_each_reader_gets_their_part() {
    let mut core = shared_session();
    core.say(ALICE, S1, Audience::Agent("bob".into()), "private", at(110))
        .expect("said");
    core.say(HOST, S1, Audience::Everyone, "hello", at(111))
        .expect("said");
    core.host_note(HOST, HostNote::ControlGranted("alice D.".into()), at(112));
    let read = |core: &Core, who| chat_of(&core.chat_history(who, S1).expect("history"), who);
    let alice = read(&core, ALICE);
    let seqs: Vec<u64> = alice.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let lines: Vec<String> = alice.iter().map(ChatEntry::transcript).collect();
    let expect = [
        "* the customer waits in the team support",
        "* alice D. joined",
        "* alice D. invited the personal queue of bob (masked)",
        "* bob D. joined (masked)",
        "alice D. (to bob): private",
        "Customer: hello",
        "* the customer gave alice D. control",
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    for (l, e) in lines.iter().zip(expect) {
        assert!(l.ends_with(e), "{l} should end with {e}");
    }
    // Carol, invited later, reads everything but Alice's private line to Bob.
    core.invite(ALICE, S1, &Target::Agent("carol".into()), false, at(113))
        .expect("invite");
    core.accept(CAROL, S1, at(114)).expect("carol joins");
    let carol = read(&core, CAROL);
    assert!(!texts(&carol).contains(&"private".to_string()));
    assert!(texts(&carol).contains(&"hello".to_string()));
    assert_eq!(
        core.chat_history(DAVE, S1).err(),
        Some(Refusal::NotAllowed(Denied::NotInSession))
    );
}

#[test]
fn notes_are_shared_among_members_only_and_bounded() {
    let mut core = shared_session();
    let out = core
        .set_notes(BOB, S1, "printer on floor 2")
        .expect("saved");
    for who in [ALICE, BOB] {
        assert!(sends_to(&out, who).contains(&ServerMsg::Notes {
            session: S1,
            text: "printer on floor 2".into(),
            by: Some("bob D.".into()),
        }));
    }
    assert!(
        sends_to(&out, HOST).is_empty(),
        "the customer never sees the notes"
    );
    assert!(out.contains(&Output::Notes {
        session: S1,
        text: "printer on floor 2".into(),
        by: "bob".into(),
    }));
    // They come with the log when a tab opens.
    let h = core.chat_history(ALICE, S1).expect("history");
    assert!(
        matches!(sends_to(&h, ALICE).last(), Some(ServerMsg::Notes { text, .. }) if text == "printer on floor 2")
    );
    assert_eq!(
        core.set_notes(DAVE, S1, "x").err(),
        Some(Refusal::NotAllowed(Denied::NotInSession))
    );
    let long = "x".repeat(tether_protocol::msg::NOTES_MAX + 1);
    assert_eq!(
        core.set_notes(ALICE, S1, &long).err(),
        Some(Refusal::NotAllowed(Denied::NotesTooLong))
    );
}

#[test]
fn an_agent_back_before_their_old_connection_is_noticed_finds_their_sessions_open() {
    const ALICE2: ConnId = 20;
    let mut core = desk();
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");
    // The console restarts: a new connection logs in while the old one still looks alive.
    let out = core.agent_online(ALICE2, profile("alice", &["support"]), None, at(0));
    assert!(matches!(
        sends_to(&out, ALICE2).first(),
        Some(ServerMsg::SessionStarted(i)) if i.id == S1
    ));
    // The old connection's end changes nothing: Alice is online and still in charge.
    let out = core.closed(ALICE, at(130));
    assert!(sends_to(&out, HOST).is_empty(), "{out:?}");
    assert!(core.stream_route(ALICE2, S1, StreamKind::Input).is_ok());
}

#[test]
fn a_flood_of_chat_lines_is_refused_and_the_record_stays_bounded() {
    use tether_protocol::chat::{CHAT_BURST, CHAT_WINDOW_SECS};
    let mut core = shared_session();
    for i in 0..CHAT_BURST {
        core.say(HOST, S1, Audience::Everyone, &format!("line {i}"), at(200))
            .expect("within the burst");
    }
    assert_eq!(
        denied(core.say(HOST, S1, Audience::Everyone, "one too many", at(200))),
        Some(Denied::TooFast)
    );
    // Host notes beyond the burst are dropped, not recorded.
    let out = core.host_note(
        HOST,
        HostNote::UrlOpened("https://x.example".into()),
        at(201),
    );
    assert!(out.is_empty(), "{out:?}");
    // Another speaker has a burst of their own, and the window passes.
    assert!(
        core.say(ALICE, S1, Audience::Everyone, "hi", at(201))
            .is_ok()
    );
    assert!(
        core.say(
            HOST,
            S1,
            Audience::Everyone,
            "later",
            at(200 + CHAT_WINDOW_SECS)
        )
        .is_ok()
    );
}

#[test]
fn a_dropped_host_comes_back_with_its_token_once_and_only_as_itself() {
    let mut core = desk();
    let key = ResumeKey {
        token: [7; 32],
        client: [9; 32],
    };
    let arrival = Arrival {
        owner: KeyOwner::Team("support".into()),
        customer: customer("Customer"),
        portal: false,
        resume: Some(key),
    };
    let out = core.host_joined_via(HOST, S1, arrival, at(100));
    assert!(matches!(
        &sends_to(&out, HOST)[0],
        ServerMsg::Joined { resume, .. } if *resume == [7; 32]
    ));
    core.accept(ALICE, S1, at(101)).expect("accept");

    // The connection drops: the session waits, Alice is told, and no stream reaches the host.
    let out = core.closed(HOST, at(110));
    assert!(sends_to(&out, ALICE).contains(&ServerMsg::CustomerAway { session: S1 }));
    assert!(!out.iter().any(|o| matches!(o, Output::Ended { .. })));
    assert_eq!(
        core.stream_route(ALICE, S1, StreamKind::Screen).err(),
        Some(Refusal::NotAllowed(Denied::CustomerGone))
    );

    // Another identity with the token, or a wrong token, is refused.
    assert_eq!(
        core.resume(HOST2, [7; 32], [1; 32], [8; 32], at(111)).err(),
        Some(Refusal::KeyWrong)
    );
    assert_eq!(
        core.resume(HOST2, [6; 32], [9; 32], [8; 32], at(111)).err(),
        Some(Refusal::KeyWrong)
    );

    // The host comes back on a new connection: a new token, the helpers, and Alice is told.
    let (id, out) = core
        .resume(HOST2, [7; 32], [9; 32], [8; 32], at(112))
        .expect("resume");
    assert_eq!(id, S1);
    let to_host = sends_to(&out, HOST2);
    assert!(to_host.contains(&ServerMsg::Resumed {
        session: S1,
        queue: "support".into(),
        resume: [8; 32],
    }));
    assert!(to_host.contains(&ServerMsg::AgentsChanged {
        session: S1,
        agents: vec!["alice D.".into()],
    }));
    assert!(sends_to(&out, ALICE).contains(&ServerMsg::CustomerBack { session: S1 }));
    assert_eq!(
        core.stream_route(ALICE, S1, StreamKind::Screen)
            .ok()
            .map(|r| r.0),
        Some(HOST2)
    );

    // The token is spent; the new one works, and an old connection still open is closed.
    assert_eq!(
        core.resume(HOST3, [7; 32], [9; 32], [5; 32], at(113)).err(),
        Some(Refusal::KeyWrong)
    );
    let (_, out) = core
        .resume(HOST3, [8; 32], [9; 32], [5; 32], at(113))
        .expect("second resume");
    assert!(out.contains(&Output::Close(HOST2)));
    assert!(core.closed(HOST2, at(114)).is_empty());

    // Away for longer than the window, the session ends.
    core.closed(HOST3, at(120));
    assert!(
        !core
            .tick(at(120 + RESUME_WINDOW_SECS - 1))
            .iter()
            .any(|o| matches!(o, Output::Ended { .. }))
    );
    let out = core.tick(at(120 + RESUME_WINDOW_SECS));
    assert!(out.contains(&Output::Ended {
        session: S1,
        reason: EndReason::CustomerDisconnected,
    }));
}

fn note_of(out: &[Output]) -> Vec<StatusNote> {
    out.iter()
        .filter_map(|o| match o {
            Output::Chat {
                entry:
                    ChatEntry {
                        line: ChatLine::Note(n),
                        ..
                    },
                ..
            } => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// A team session with a resume key ([7; 32] from client [9; 32]) that Alice accepted.
fn resumable_session(core: &mut Core) {
    let arrival = Arrival {
        owner: KeyOwner::Team("support".into()),
        customer: customer("Customer"),
        portal: false,
        resume: Some(ResumeKey {
            token: [7; 32],
            client: [9; 32],
        }),
    };
    core.host_joined_via(HOST, S1, arrival, at(100));
    core.accept(ALICE, S1, at(101)).expect("accept");
}

#[test]
fn an_agent_who_drops_keeps_their_place_for_the_grace_then_leaves_as_lost() {
    const ALICE2: ConnId = 20;
    let mut core = desk();
    core.agent_grace = Duration::from_secs(30);
    team_session(&mut core, HOST, S1, 100);
    core.accept(ALICE, S1, at(101)).expect("accept");

    // The drop: the session keeps Alice, nobody is alerted, the log says she is away.
    let out = core.closed(ALICE, at(200));
    assert!(alerts(&out, BOB).is_empty(), "{out:?}");
    assert!(places(&out, HOST).is_empty());
    assert_eq!(
        note_of(&out),
        vec![StatusNote::AgentAway("alice D.".into())]
    );
    assert!(core.tick(at(229)).is_empty());

    // She is back in time: her session opens again on the new connection.
    let out = core.agent_online(ALICE2, profile("alice", &["support"]), None, at(210));
    assert!(matches!(
        sends_to(&out, ALICE2).first(),
        Some(ServerMsg::SessionStarted(i)) if i.id == S1
    ));
    assert_eq!(
        note_of(&out),
        vec![StatusNote::AgentBack("alice D.".into())]
    );
    assert!(core.stream_route(ALICE2, S1, StreamKind::Input).is_ok());
    assert!(
        core.tick(at(240)).is_empty(),
        "her grace ended when she came back"
    );

    // Gone for longer than the grace: she leaves as lost and the session waits for her.
    core.closed(ALICE2, at(300));
    let out = core.tick(at(330));
    assert_eq!(note_of(&out)[0], StatusNote::Lost("alice D.".into()));
    assert_eq!(places(&out, HOST), vec![1]);
    assert_eq!(
        core.stream_route(ALICE2, S1, StreamKind::Screen).err(),
        Some(Refusal::NotAllowed(Denied::NotLoggedIn))
    );
}

#[test]
fn a_console_comes_back_with_its_pass_once_only_as_itself_and_in_time() {
    const ALICE2: ConnId = 20;
    const ALICE3: ConnId = 21;
    let mut core = desk();
    core.agent_grace = Duration::from_secs(30);
    let key = ResumeKey {
        token: [3; 32],
        client: [4; 32],
    };
    core.agent_online(ALICE2, profile("alice", &["support"]), Some(key), at(100));
    core.closed(ALICE2, at(110));
    assert_eq!(
        core.agent_resume([3; 32], [5; 32], at(111)).err(),
        Some(Refusal::KeyWrong),
        "another console with the token"
    );
    assert_eq!(
        core.agent_resume([2; 32], [4; 32], at(111)).err(),
        Some(Refusal::KeyWrong),
        "a wrong token"
    );
    let (who, out) = core
        .agent_resume([3; 32], [4; 32], at(112))
        .expect("resume");
    assert_eq!(who.login, "alice");
    assert!(out.is_empty());
    assert_eq!(
        core.agent_resume([3; 32], [4; 32], at(113)).err(),
        Some(Refusal::KeyWrong),
        "the pass is spent"
    );

    // A new pass, still open as far as the relay knows: resuming closes the old connection.
    let next = ResumeKey {
        token: [6; 32],
        client: [4; 32],
    };
    core.agent_online(ALICE3, profile("alice", &["support"]), Some(next), at(114));
    let (_, out) = core
        .agent_resume([6; 32], [4; 32], at(115))
        .expect("resume");
    assert_eq!(out, vec![Output::Close(ALICE3)]);

    // A pass expires the resume window after its connection closed.
    let late = ResumeKey {
        token: [8; 32],
        client: [4; 32],
    };
    core.agent_online(30, profile("alice", &["support"]), Some(late), at(200));
    core.closed(30, at(210));
    core.tick(at(210 + RESUME_WINDOW_SECS));
    assert_eq!(
        core.agent_resume([8; 32], [4; 32], at(210 + RESUME_WINDOW_SECS))
            .err(),
        Some(Refusal::KeyWrong)
    );
}

#[test]
fn a_restart_hands_the_sessions_that_can_come_back_to_the_next_relay() {
    let mut core = desk();
    let pass = ResumeKey {
        token: [3; 32],
        client: [4; 32],
    };
    core.agent_online(40, profile("alice", &["support"]), Some(pass), at(90));
    resumable_session(&mut core);
    core.say(ALICE, S1, Audience::Everyone, "hello", at(102))
        .expect("say");
    // A session whose host has no token cannot come back: it ends, and its host is told.
    team_session(&mut core, HOST2, S2, 103);
    let (out, snapshot) = core.shutdown(at(150), true);
    assert!(sends_to(&out, HOST2).contains(&ServerMsg::SessionEnded {
        session: S2,
        reason: EndReason::RelayShutdown
    }));
    assert!(sends_to(&out, HOST).is_empty(), "{out:?}");
    assert_eq!(snapshot.session_count(), 1);
    assert_eq!(core.session_count(), 0);

    // The next relay reads it back and waits for everyone.
    let json = serde_json::to_string(&snapshot).expect("save");
    let mut next = Core::new();
    let out = next.restore(serde_json::from_str(&json).expect("load"), at(160));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Audit {
            action: "session.restored",
            ..
        }
    )));
    assert_eq!(next.session_count(), 1);
    let (who, _) = next
        .agent_resume([3; 32], [4; 32], at(161))
        .expect("console back");
    let out = next.agent_online(ALICE, who, None, at(161));
    let started = sends_to(&out, ALICE);
    let Some(ServerMsg::SessionStarted(info)) = started.first() else {
        panic!("{started:?}");
    };
    assert_eq!(info.id, S1);
    assert_eq!(info.members.len(), 1);
    assert_eq!(
        note_of(&out),
        vec![StatusNote::AgentBack("alice D.".into())]
    );
    let (id, out) = next
        .resume(HOST3, [7; 32], [9; 32], [8; 32], at(162))
        .expect("host back");
    assert_eq!(id, S1);
    assert!(sends_to(&out, ALICE).contains(&ServerMsg::CustomerBack { session: S1 }));
    let history = next.chat_history(ALICE, S1).expect("history");
    assert!(format!("{history:?}").contains("hello"), "{history:?}");
    assert!(next.stream_route(ALICE, S1, StreamKind::Input).is_ok());

    // A relay that keeps nothing (the console's embedded one) ends every session.
    let mut gone = Core::new();
    gone.restore(serde_json::from_str(&json).expect("load"), at(160));
    let (out, snapshot) = gone.shutdown(at(170), false);
    assert_eq!(snapshot.session_count(), 0);
    assert!(out.contains(&Output::Ended {
        session: S1,
        reason: EndReason::RelayShutdown
    }));

    // Nobody comes back: the session ends when the customer's window closes.
    let mut alone = Core::new();
    alone.restore(serde_json::from_str(&json).expect("load"), at(160));
    let out = alone.tick(at(160 + RESUME_WINDOW_SECS));
    assert!(out.contains(&Output::Ended {
        session: S1,
        reason: EndReason::CustomerDisconnected
    }));
}
