//! The console's panels, driven through egui_kittest: click by label, assert on state.

use crate::state::{Command, ConsoleState, Event, LoginRequest, Phase, Scale, Screen};
use crate::ui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tether_protocol::desk::{MemberRole, ParticipantId, QueueId};
use tether_protocol::msg::{
    CustomerInfo, MonitorInfo, ServerMsg, SessionId, SessionInfo, SessionKey,
};

pub(super) fn harness(state: ConsoleState) -> Harness<'static, ConsoleState> {
    let mut rt = ui::Runtime::default();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(
            move |ui, s: &mut ConsoleState| ui::show(ui, s, &mut rt),
            state,
        );
    h.run_steps(4);
    h
}

/// A harness whose session `id` has a grey remote screen of `px` pixels.
pub(super) fn with_screen(
    state: ConsoleState,
    id: SessionId,
    px: [usize; 2],
    size: egui::Vec2,
) -> Harness<'static, ConsoleState> {
    let tex: std::sync::Arc<std::sync::Mutex<Option<egui::TextureHandle>>> = Default::default();
    Harness::builder().with_size(size).build_ui_state(
        move |ui, s: &mut ConsoleState| {
            let mut slot = tex.lock().expect("lock");
            let t = slot.get_or_insert_with(|| {
                ui.ctx().load_texture(
                    "screen",
                    egui::ColorImage::filled(px, egui::Color32::GRAY),
                    Default::default(),
                )
            });
            let mut rt = ui::Runtime::default();
            rt.textures.insert(
                id,
                ui::RemoteScreen {
                    texture: t.clone(),
                    stats: Default::default(),
                },
            );
            ui::show(ui, s, &mut rt);
        },
        state,
    )
}

pub(super) fn logged_in() -> ConsoleState {
    let mut s = ConsoleState::connecting(LoginRequest::default());
    s.apply(Event::LoggedIn {
        agent: "alice".into(),
        display: "Alice A.".into(),
        teams: vec!["Support".into()],
        relay: "127.0.0.1:4433".into(),
        fingerprint: "ab".repeat(32),
    });
    s
}

pub(super) fn session(id: u64, monitors: usize) -> SessionInfo {
    SessionInfo {
        id: SessionId(id),
        customer: CustomerInfo {
            name: "Carol Customer".into(),
            os: "Debian GNU/Linux 12".into(),
            hostname: "carol-pc".into(),
            user: "carol".into(),
            request: None,
            monitors: (0..monitors)
                .map(|i| MonitorInfo {
                    name: format!("m{i}"),
                    x: i as i32 * 1280,
                    y: 0,
                    width: 1280,
                    height: 1024,
                    primary: i == 0,
                })
                .collect(),
        },
        members: vec![crate::state::test_member(
            1,
            "alice",
            MemberRole::Owner,
            false,
        )],
        me: ParticipantId(1),
        origin: QueueId::Personal("alice".into()),
        started_at: 0,
    }
}

#[test]
fn logging_in_sends_the_details_and_shows_progress() {
    let mut h = harness(ConsoleState::login(LoginRequest {
        relay: "relay:4433".into(),
        fingerprint: "ab".repeat(32),
        ..Default::default()
    }));
    for (field, text) in [("User", "alice"), ("Password", "correct horse")] {
        h.get_by_label(field).focus();
        h.run_steps(2);
        h.get_by_label(field).type_text(text);
        h.run_steps(2);
    }
    h.run_steps(4);
    h.get_by_label("Log in").click();
    h.run_steps(4);
    let cmds = h.state_mut().take_commands();
    assert_eq!(
        cmds,
        vec![Command::Login(LoginRequest {
            relay: "relay:4433".into(),
            fingerprint: "ab".repeat(32),
            user: "alice".into(),
            password: "correct horse".into()
        })]
    );
    assert!(matches!(h.state().phase, Phase::Connecting(_)));
    assert!(
        h.query_by_label_contains("Logging in to relay:4433 as alice")
            .is_some()
    );
}

#[test]
fn a_failed_login_shows_why() {
    let mut s = ConsoleState::connecting(LoginRequest::default());
    s.apply(Event::LoginFailed("wrong user name or password".into()));
    let h = harness(s);
    assert!(h.query_by_label("wrong user name or password").is_some());
}

#[test]
fn generating_a_key_shows_pin_and_url_with_copy_buttons() {
    let mut h = harness(logged_in());
    assert!(
        h.query_by_label("Screen: none").is_some(),
        "Screen line reads none before a customer joins"
    );
    h.get_by_label("Generate session key").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::CreateKey {
            team: None,
            ttl_secs: Some(1800)
        }]
    );
    let key = SessionKey {
        pin: "123456789".into(),
        url: "https://relay.example/s/123456789".into(),
        expires_at: u64::MAX / 2,
        team: None,
    };
    h.state_mut()
        .apply(Event::Server(ServerMsg::KeyCreated(key)));
    h.run_steps(4);
    assert!(h.query_by_label("123 456 789").is_some());
    assert!(
        h.query_by_label("https://relay.example/s/123456789")
            .is_some()
    );
    h.get_by_label("Copy PIN").click();
    let mut copied: Vec<String> = Vec::new();
    for _ in 0..4 {
        h.step();
        copied.extend(
            h.output()
                .platform_output
                .commands
                .iter()
                .filter_map(|c| match c {
                    egui::OutputCommand::CopyText(t) => Some(t.clone()),
                    _ => None,
                }),
        );
    }
    assert_eq!(copied, vec!["123456789".to_string()]);
    h.get_by_label("Copy URL").click();
    h.run_steps(4);
    assert!(
        h.query_by_label("Session URL copied to the clipboard")
            .is_some()
    );

    // Email invitation: the relay writes it; without a mail server, the mail program sends it.
    h.get_by_label("Email invitation").focus();
    h.run_steps(2);
    h.get_by_label("Email invitation")
        .type_text("carol@example.com");
    h.run_steps(2);
    h.get_by_label("Send invitation").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::EmailInvite {
            pin: "123456789".into(),
            to: "carol@example.com".into()
        }]
    );
    h.state_mut().apply(Event::Server(ServerMsg::Invitation {
        to: "carol@example.com".into(),
        sent: false,
        subject: "Alice invites you".into(),
        body: "Open https://relay.example/s/123456789\nthen run it".into(),
    }));
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::OpenLink(
            "mailto:carol@example.com?subject=Alice%20invites%20you\
             &body=Open%20https%3A%2F%2Frelay.example%2Fs%2F123456789%0D%0Athen%20run%20it"
                .into()
        )]
    );
    assert!(
        h.query_by_label("Your mail program opens with the invitation to carol@example.com")
            .is_some()
    );
    // An invitation the console did not ask for (or asked once already) opens nothing.
    for to in ["mallory@example.com", "carol@example.com"] {
        h.state_mut().apply(Event::Server(ServerMsg::Invitation {
            to: to.into(),
            sent: false,
            subject: "s".into(),
            body: "b".into(),
        }));
        h.run_steps(2);
        assert_eq!(h.state_mut().take_commands(), Vec::new());
    }
}

#[test]
fn a_joining_customer_opens_a_tab_with_users_and_screen_lines() {
    let mut h = harness(logged_in());
    h.state_mut()
        .apply(Event::Server(ServerMsg::SessionStarted(session(7, 2))));
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![
            Command::View {
                session: SessionId(7),
                monitor: 0
            },
            Command::ChatHistory(SessionId(7))
        ]
    );
    assert!(
        h.query_all_by_label("Carol Customer").next().is_some(),
        "tab titled after the customer"
    );
    assert!(
        h.query_by_label("Users: Alice (owner, unmasked, you)")
            .is_some()
    );
    assert!(h.query_by_label("Screen: none").is_some());
    if let Some(d) = h.state_mut().desk_mut() {
        d.sessions[0].screen = Screen::Live {
            width: 1280,
            height: 1024,
        };
    }
    h.run_steps(4);
    assert!(h.query_by_label("Screen: 1 — 1280x1024").is_some());
    h.get_by_label("Next Screen (2)").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::SelectMonitor {
            session: SessionId(7),
            monitor: 1
        }]
    );
    h.get_by_label("Quality").click();
    h.run_steps(4);
    h.get_by_label("Smooth").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::SetQuality {
            session: SessionId(7),
            quality: tether_protocol::screen::Quality::Smooth
        }]
    );
    h.get_by_label("Stats").click();
    h.run_steps(4);
    assert!(
        h.state_mut()
            .desk_mut()
            .is_some_and(|d| d.sessions[0].overlay)
    );
    // The scale is remembered: the next session opens at actual size too.
    assert_eq!(h.state().settings.scale, Scale::Fit);
    h.get_by_label("Actual size").click();
    h.run_steps(4);
    assert_eq!(h.state().settings.scale, Scale::Actual);
    h.get_by_label("Leave Session").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Leave(SessionId(7))]
    );
    h.state_mut()
        .apply(Event::Server(ServerMsg::SessionStarted(session(8, 1))));
    h.run_steps(4);
    let next = h
        .state_mut()
        .desk_mut()
        .and_then(|d| d.tab_mut(SessionId(8)));
    assert_eq!(next.map(|t| t.scale), Some(Scale::Actual));
}

#[test]
fn a_lost_relay_is_shown_and_offers_a_new_login() {
    let mut h = harness(logged_in());
    h.state_mut().apply(Event::Lost("timed out".into()));
    h.run_steps(4);
    assert!(h.query_by_label("Connection lost: timed out").is_some());
    h.get_by_label("Log in again").click();
    h.run_steps(4);
    assert!(matches!(h.state().phase, Phase::Login(_)));
}

#[test]
fn a_dropped_relay_shows_the_attempts_and_the_tab_waits() {
    let mut state = logged_in();
    state.apply(Event::Server(ServerMsg::SessionStarted(session(9, 1))));
    state.take_commands();
    let mut h = harness(state);
    h.state_mut().apply(Event::Reconnecting {
        attempt: 3,
        why: "timed out".into(),
    });
    h.run_steps(4);
    assert!(
        h.query_by_label("Connection lost, reconnecting… (attempt 3)")
            .is_some()
    );
    assert!(h.query_by_label("Reconnecting to the relay…").is_some());
    // Nothing that would go to the customer can be clicked while the relay is away.
    h.get_by_label("Request control").click();
    h.run_steps(4);
    assert!(
        h.state_mut().take_commands().is_empty(),
        "a click while reconnecting sent nothing"
    );
    h.state_mut().apply(Event::Reconnected);
    h.run_steps(4);
    assert!(h.query_by_label("Connection back.").is_some());
}

#[test]
fn control_is_requested_and_the_scaled_viewer_maps_clicks_to_remote_pixels() {
    use tether_protocol::input::{Button, Combo, Grant, InputEvent};
    let mut state = logged_in();
    state.apply(Event::Server(ServerMsg::SessionStarted(session(9, 1))));
    state.take_commands();
    if let Some(d) = state.desk_mut() {
        d.sessions[0].screen = Screen::Live {
            width: 1280,
            height: 1024,
        };
    }
    let mut h = with_screen(state, SessionId(9), [1280, 1024], egui::vec2(1000.0, 800.0));
    h.run_steps(4);
    h.get_by_label("Send Keys").click();
    h.run_steps(4);
    assert!(
        h.query_by_label("Ctrl+Alt+Del").is_none(),
        "no Send Keys without control"
    );
    h.get_by_label("Request control").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Control {
            session: SessionId(9),
            on: true
        }]
    );
    assert!(h.query_by_label("Waiting for the customer…").is_some());
    h.state_mut().apply(Event::Control {
        session: SessionId(9),
        grant: Grant::On,
    });
    h.run_steps(4);
    assert!(h.query_by_label("Stop control").is_some());
    h.state_mut().take_commands();

    // The viewer is scaled to fit: find the image (the largest: the thumbnail is one too) and
    // click at its centre.
    let img = h
        .query_all_by_role(egui::accesskit::Role::Image)
        .map(|n| n.rect())
        .max_by(|a, b| a.width().total_cmp(&b.width()))
        .expect("the viewer");
    assert!(
        img.width() < 1280.0,
        "the view is scaled down ({})",
        img.width()
    );
    let centre = img.center();
    h.hover_at(centre);
    h.run_steps(2);
    h.event(egui::Event::PointerButton {
        pos: centre,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.event(egui::Event::PointerButton {
        pos: centre,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.run_steps(4);
    let events: Vec<InputEvent> = h
        .state_mut()
        .take_commands()
        .into_iter()
        .filter_map(|c| {
            if let Command::Input { event, .. } = c {
                Some(event)
            } else {
                None
            }
        })
        .collect();
    let moves: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| {
            if let InputEvent::MouseMove { x, y, .. } = e {
                Some((*x, *y))
            } else {
                None
            }
        })
        .collect();
    let (x, y) = *moves.last().expect("a pointer move");
    assert!(
        (638..=642).contains(&x) && (510..=514).contains(&y),
        "centre maps to ({x}, {y})"
    );
    assert!(events.contains(&InputEvent::Button {
        button: Button::Left,
        down: true
    }));
    assert!(events.contains(&InputEvent::Button {
        button: Button::Left,
        down: false
    }));

    h.get_by_label("Send Keys").click();
    h.run_steps(4);
    h.get_by_label("Ctrl+Alt+Del").click();
    h.run_steps(4);
    assert!(h.state_mut().take_commands().contains(&Command::Input {
        session: SessionId(9),
        event: InputEvent::Combo(Combo::CtrlAltDel)
    }));
    h.get_by_label("Sync clipboard").click();
    h.run_steps(4);
    assert!(
        h.state_mut()
            .take_commands()
            .contains(&Command::ClipboardSync {
                session: SessionId(9),
                on: true
            })
    );
}

#[test]
fn the_overlay_shows_fps_latency_drawing_bandwidth_and_codec() {
    let st = crate::backend::ViewStats {
        fps: 60.0,
        latency_ms: 4.5,
        bits_per_sec: 2e6,
        codec: "lossless",
        present_ms: 9.0,
        draw_ms: 7.5,
    };
    let text = ui::overlay_text(&st);
    for part in [
        "60 fps",
        "4.5 ms capture→decode",
        "9.0 ms capture→screen",
        "7.5 ms to draw",
        "2.00 Mbit/s",
        "lossless",
    ] {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
}

/// A logged-in console with session 5 open and its Transfer Files panel showing `entries`.
fn files_open(entries: Vec<tether_protocol::files::Entry>) -> Harness<'static, ConsoleState> {
    let mut state = logged_in();
    state.apply(Event::Server(ServerMsg::SessionStarted(session(5, 1))));
    state.take_commands();
    let mut h = harness(state);
    h.get_by_label("Transfer Files").click();
    h.run_steps(3);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::ListRemote {
            session: SessionId(5),
            path: String::new()
        }]
    );
    h.state_mut().apply(Event::Listing {
        session: SessionId(5),
        path: "/home/carol".into(),
        parent: Some("/home".into()),
        entries,
    });
    h.run_steps(3);
    h
}

fn entry(name: &str, dir: bool, size: u64, modified: u64) -> tether_protocol::files::Entry {
    tether_protocol::files::Entry {
        name: name.into(),
        dir,
        size,
        modified: Some(modified),
    }
}

#[test]
fn the_customers_files_are_a_sortable_table_downloaded_into_the_picked_folder() {
    let mut h = files_open(vec![
        entry("report.pdf", false, 2_500_000, 1_700_000_000),
        entry("docs", true, 0, 1_690_000_000),
        entry("a.txt", false, 12, 1_710_000_000),
    ]);
    for label in [
        "Name ⬆",
        "Size",
        "Modified",
        "🗀 docs/",
        "report.pdf",
        "2.5 MB",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label} missing");
    }
    // A date in the Modified column.
    assert!(h.query_by_label_contains("2023-11-1").is_some());
    h.get_by_label("Size").click();
    h.run_steps(3);
    assert_eq!(
        h.state_mut().desk_mut().map(|d| d.sessions[0].sort),
        Some(crate::state::FileSort {
            key: crate::state::SortKey::Size,
            descending: false
        })
    );
    assert!(h.query_by_label("Size ⬆").is_some());
    h.get_by_label("report.pdf").click();
    h.run_steps(3);
    h.get_by_label("🗀 docs/").click();
    h.run_steps(3);
    let into = h.state().settings.download_dir.clone();
    h.get_by_label("Download selected (2)").click();
    h.run_steps(3);
    let mut cmds = h.state_mut().take_commands();
    cmds.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        cmds,
        vec![
            Command::Download {
                session: SessionId(5),
                remote: "/home/carol/docs".into(),
                dir: true,
                into: into.clone(),
            },
            Command::Download {
                session: SessionId(5),
                remote: "/home/carol/report.pdf".into(),
                dir: false,
                into,
            },
        ]
    );
    // Double-clicking a folder opens it.
    let at = h.get_by_label("🗀 docs/").rect().center();
    h.hover_at(at);
    h.step();
    for pressed in [true, false, true, false] {
        h.input_mut().events.push(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: Default::default(),
        });
    }
    h.step();
    assert!(
        h.state_mut()
            .take_commands()
            .contains(&Command::ListRemote {
                session: SessionId(5),
                path: "/home/carol/docs".into()
            })
    );
}

#[test]
fn files_are_picked_in_a_dialog_and_the_download_folder_is_chosen_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), b"hello").expect("write");
    std::fs::create_dir(dir.path().join("incoming")).expect("mkdir");
    let mut h = files_open(Vec::new());
    h.state_mut().settings.send_dir = dir.path().to_path_buf();
    h.get_by_label("Send files…").click();
    h.run_steps(4);
    h.get_by_label("🗋 notes.txt").click();
    h.run_steps(3);
    h.get_by_label("Open").click();
    h.run_steps(4);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Upload {
            session: SessionId(5),
            local: dir.path().join("notes.txt")
        }]
    );
    // The download folder is picked in a folder dialog.
    h.state_mut().settings.download_dir = dir.path().to_path_buf();
    h.get_by_label("Change…").click();
    h.run_steps(4);
    h.get_by_label("🗀 incoming").click();
    h.run_steps(3);
    h.get_by_label("Open").click();
    h.run_steps(4);
    assert_eq!(h.state().settings.download_dir, dir.path().join("incoming"));
    assert!(
        h.query_by_label(&format!(
            "Download to {}",
            dir.path().join("incoming").display()
        ))
        .is_some()
    );
}

/// A file dropped from the desktop, as the windowing layer hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn files_dropped_on_a_session_tab_are_sent_and_finished_downloads_show_their_folder() {
    use crate::state::{TransferInfo, TransferStatus};
    let mut h = files_open(Vec::new());
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped("/tmp/dropped.bin".into())));
    h.run_steps(2);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::Upload {
            session: SessionId(5),
            local: "/tmp/dropped.bin".into()
        }]
    );
    if let Some(d) = h.state_mut().desk_mut() {
        d.sessions[0].transfers.push(TransferInfo {
            id: 1,
            name: "report.pdf".into(),
            upload: false,
            done: 10,
            total: 10,
            rate: 0.0,
            state: TransferStatus::Done {
                saved: "/home/alice/Downloads/report.pdf".into(),
                folder: Some("/home/alice/Downloads".into()),
            },
        });
    }
    h.run_steps(2);
    h.get_by_label("Show in folder").click();
    h.run_steps(2);
    assert_eq!(
        h.state_mut().take_commands(),
        vec![Command::ShowInFolder("/home/alice/Downloads".into())]
    );
}
