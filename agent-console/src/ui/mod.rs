//! Panels. Each is a function of the state: it draws, edits the state and queues commands, and
//! never touches the network.

use std::collections::HashMap;

use egui::{Color32, RichText, Ui};
use tether_protocol::msg::{SessionId, SessionKey};
use tether_protocol::pairing::display_pin;
use tether_protocol::screen::Quality;

use tether_protocol::input::{Button, Combo, Grant, InputEvent, Key};

use crate::backend::ViewStats;
use crate::keys::{key_of, modifier_keys, types_text, viewer_to_remote};

use crate::state::{
    Command, ConsoleState, Desk, Link, LoginForm, Phase, Scale, Screen, SessionTab, Settings,
};

mod files;

pub use files::{FileDialog, Pick};

/// A remote screen ready to draw.
pub struct RemoteScreen {
    /// Its pixels.
    pub texture: egui::TextureHandle,
    /// Figures for the overlay.
    pub stats: ViewStats,
}

/// Remote screens, by session.
pub type Textures = HashMap<SessionId, RemoteScreen>;

/// What the panels use besides the state, that lives only while the console runs: the remote
/// screens' textures and an open file dialog.
#[derive(Default)]
pub struct Runtime {
    /// Remote screens.
    pub textures: Textures,
    /// The file dialog, while one is open.
    pub dialog: Option<FileDialog>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("textures", &self.textures.len())
            .field("dialog", &self.dialog.as_ref().map(|d| d.pick))
            .finish()
    }
}

/// Draws the whole console.
pub fn show(ui: &mut Ui, state: &mut ConsoleState, rt: &mut Runtime) {
    let ConsoleState {
        phase,
        outbox,
        settings,
    } = state;
    let mut next = None;
    match phase {
        Phase::Login(form) => {
            egui::CentralPanel::default().show(ui, |ui| {
                if login(ui, form) {
                    outbox.push(Command::Login(form.request.clone()));
                    next = Some(Phase::Connecting(form.clone()));
                }
            });
        }
        Phase::Connecting(form) => {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!(
                        "Logging in to {} as {}…",
                        form.request.relay, form.request.user
                    ));
                });
            });
        }
        Phase::Desk(desk) => {
            if desk_ui(ui, desk, outbox, settings, rt) {
                let request = crate::state::LoginRequest {
                    relay: desk.relay.clone(),
                    fingerprint: desk.fingerprint.clone(),
                    user: desk.agent.clone(),
                    password: String::new(),
                };
                next = Some(Phase::Login(LoginForm {
                    request,
                    error: None,
                }));
            }
        }
    }
    if let Some(p) = next {
        *phase = p;
    }
}

/// The login form. Returns true when the agent submits it.
pub fn login(ui: &mut Ui, form: &mut LoginForm) -> bool {
    ui.heading("Tether Console");
    ui.label("Log in to your relay");
    ui.add_space(8.0);
    let mut submit = false;
    egui::Grid::new("login")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let r = &mut form.request;
            let l = ui.label("Relay (host:port)");
            ui.text_edit_singleline(&mut r.relay).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Relay fingerprint");
            ui.add(egui::TextEdit::singleline(&mut r.fingerprint).desired_width(480.0))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("User");
            ui.text_edit_singleline(&mut r.user).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Password");
            let pw = ui
                .add(egui::TextEdit::singleline(&mut r.password).password(true))
                .labelled_by(l.id);
            if pw.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                submit = true;
            }
            ui.end_row();
        });
    if let Some(e) = &form.error {
        ui.colored_label(Color32::from_rgb(200, 60, 60), e);
    }
    if ui.button("Log in").clicked() {
        submit = true;
    }
    submit
}

/// The logged-in console. Returns true when the agent asks to log in again.
fn desk_ui(
    ui: &mut Ui,
    desk: &mut Desk,
    outbox: &mut Vec<Command>,
    settings: &mut Settings,
    rt: &mut Runtime,
) -> bool {
    let mut relogin = false;
    egui::Panel::top("top").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.strong("Tether");
            ui.separator();
            ui.label(format!("Agent: {}", desk.agent));
            ui.separator();
            match &desk.link {
                Link::Online => {
                    dot(ui, Color32::from_rgb(40, 160, 60));
                    ui.label(format!("Relay {}", desk.relay));
                }
                Link::Lost(why) => {
                    ui.colored_label(
                        Color32::from_rgb(200, 60, 60),
                        format!("Connection lost: {why}"),
                    );
                    if ui.button("Log in again").clicked() {
                        relogin = true;
                    }
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let enabled = desk.link == Link::Online;
                if ui
                    .add_enabled(enabled, egui::Button::new("Generate session key"))
                    .clicked()
                {
                    outbox.push(Command::CreateKey);
                }
            });
        });
    });
    egui::Panel::bottom("status").show(ui, |ui| {
        ui.label(desk.notice.as_deref().unwrap_or("Ready"));
    });
    egui::CentralPanel::default().show(ui, |ui| {
        tabs(ui, desk);
        ui.separator();
        let selected = desk.selected;
        match selected.and_then(|id| desk.sessions.iter().position(|t| t.info.id == id)) {
            Some(i) => {
                let agent = desk.agent.clone();
                let tab = &mut desk.sessions[i];
                if let Some(n) = session(ui, tab, outbox, settings, rt) {
                    desk.notice = Some(n);
                }
                let _ = agent;
            }
            None => {
                if let Some(n) = home(ui, desk) {
                    desk.notice = Some(n);
                }
            }
        }
    });
    files::dialog(ui.ctx(), desk, outbox, settings, rt);
    relogin
}

/// A small filled circle, e.g. a status light.
pub fn dot(ui: &mut Ui, color: Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.0, color);
}

/// Bytes for people.
pub fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The remote control button, with a green dot while control is on.
fn control_button(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>) {
    let id = tab.info.id;
    match tab.control {
        Grant::On => {
            dot(ui, Color32::from_rgb(40, 200, 60));
            if ui.button("Stop control").clicked() {
                outbox.extend(
                    tab.mods
                        .release_all()
                        .into_iter()
                        .map(|event| Command::Input { session: id, event }),
                );
                outbox.push(Command::Control {
                    session: id,
                    on: false,
                });
            }
        }
        Grant::Asked => {
            ui.add_enabled(false, egui::Button::new("Waiting for the customer…"));
        }
        Grant::Off | Grant::Denied => {
            if ui.button("Request control").clicked() {
                outbox.push(Command::Control {
                    session: id,
                    on: true,
                });
                tab.control = Grant::Asked;
            }
        }
    }
}

/// Turns the agent's mouse and keyboard on the viewer into remote input.
fn remote_input(
    ui: &mut Ui,
    resp: &egui::Response,
    tab: &mut SessionTab,
    size: (u32, u32),
    outbox: &mut Vec<Command>,
) {
    let id = tab.info.id;
    let mut out: Vec<InputEvent> = Vec::new();
    if resp.clicked() || resp.drag_started() || resp.secondary_clicked() {
        resp.request_focus();
    }
    let focused = resp.has_focus();
    if focused {
        ui.memory_mut(|m| {
            m.set_focus_lock_filter(
                resp.id,
                egui::EventFilter {
                    tab: true,
                    horizontal_arrows: true,
                    vertical_arrows: true,
                    escape: true,
                },
            )
        });
    }
    let shown = resp.rect;
    let move_to = |pos: egui::Pos2, out: &mut Vec<InputEvent>, tab: &mut SessionTab| {
        if let Some(p) = viewer_to_remote(pos, shown, size)
            && tab.pointer != Some(p)
        {
            tab.pointer = Some(p);
            out.push(InputEvent::MouseMove {
                monitor: tab.monitor,
                x: p.0,
                y: p.1,
            });
        }
    };
    if let Some(pos) = ui.input(|i| i.pointer.latest_pos())
        && (resp.hovered() || resp.dragged())
    {
        move_to(pos, &mut out, tab);
    }
    let events = ui.input(|i| i.events.clone());
    for ev in events {
        match ev {
            egui::Event::PointerButton {
                pos,
                button,
                pressed,
                ..
            } => {
                if pressed && !shown.contains(pos) {
                    continue;
                }
                let b = match button {
                    egui::PointerButton::Primary => Button::Left,
                    egui::PointerButton::Secondary => Button::Right,
                    egui::PointerButton::Middle => Button::Middle,
                    egui::PointerButton::Extra1 => Button::Back,
                    egui::PointerButton::Extra2 => Button::Forward,
                };
                move_to(pos, &mut out, tab);
                out.push(InputEvent::Button {
                    button: b,
                    down: pressed,
                });
            }
            egui::Event::MouseWheel { unit, delta, .. } if resp.hovered() => {
                let scale = match unit {
                    egui::MouseWheelUnit::Line => 1.0,
                    egui::MouseWheelUnit::Page => 3.0,
                    egui::MouseWheelUnit::Point => 1.0 / 40.0,
                };
                let (dx, dy) = (
                    (-delta.x * scale).round() as i32,
                    (-delta.y * scale).round() as i32,
                );
                if dx != 0 || dy != 0 {
                    out.push(InputEvent::Wheel { dx, dy });
                }
            }
            egui::Event::Key {
                key,
                physical_key,
                pressed,
                modifiers,
                ..
            } if focused => {
                let Some(k) = key_of(physical_key.unwrap_or(key)) else {
                    continue;
                };
                let shortcut = modifiers.ctrl || modifiers.alt || modifiers.mac_cmd;
                if types_text(k) && !shortcut {
                    continue; // it arrives as text
                }
                out.extend(tab.mods.to(&modifier_keys(modifiers)));
                out.push(tab.mods.key(k, pressed));
            }
            egui::Event::Text(text) if focused => {
                out.extend(tab.mods.release());
                out.push(InputEvent::Text { text });
            }
            egui::Event::Copy | egui::Event::Cut | egui::Event::Paste(_) if focused => {
                let k = match ev {
                    egui::Event::Copy => Key::C,
                    egui::Event::Cut => Key::X,
                    _ => Key::V,
                };
                out.extend(tab.mods.to(&[Key::ControlLeft].into_iter().collect()));
                out.push(InputEvent::Key { key: k, down: true });
                out.push(InputEvent::Key {
                    key: k,
                    down: false,
                });
                out.extend(tab.mods.release());
            }
            _ => {}
        }
    }
    if !focused {
        out.extend(tab.mods.release_all());
    }
    outbox.extend(
        out.into_iter()
            .map(|event| Command::Input { session: id, event }),
    );
}

/// The stats overlay, top left of the remote screen (as Parsec and Moonlight show).
fn overlay(ui: &Ui, over: egui::Rect, st: &ViewStats) {
    let text = overlay_text(st);
    let painter = ui.painter_at(over);
    let galley = painter.layout_no_wrap(text, egui::FontId::monospace(13.0), Color32::WHITE);
    let bg = egui::Rect::from_min_size(
        over.min + egui::vec2(6.0, 6.0),
        galley.size() + egui::vec2(12.0, 8.0),
    );
    painter.rect_filled(bg, 4.0, Color32::from_black_alpha(170));
    painter.galley(bg.min + egui::vec2(6.0, 4.0), galley, Color32::WHITE);
}

/// The overlay's text.
pub fn overlay_text(st: &ViewStats) -> String {
    format!(
        "{:.0} fps | {:.1} ms capture→decode | {:.1} ms capture→screen | {:.2} Mbit/s | {}",
        st.fps,
        st.latency_ms,
        st.present_ms,
        st.bits_per_sec / 1e6,
        if st.codec.is_empty() { "-" } else { st.codec }
    )
}

/// The tab strip: Home, then one tab per session.
fn tabs(ui: &mut Ui, desk: &mut Desk) {
    ui.horizontal_wrapped(|ui| {
        if ui
            .selectable_label(desk.selected.is_none(), "Home")
            .clicked()
        {
            desk.selected = None;
        }
        for t in &desk.sessions {
            let on = desk.selected == Some(t.info.id);
            if ui.selectable_label(on, t.title()).clicked() {
                desk.selected = Some(t.info.id);
            }
        }
    });
}

/// The customer's command line for a key.
pub fn customer_command(key: &SessionKey, relay: &str, fingerprint: &str) -> String {
    format!(
        "tether-host {} --relay {relay} --relay-fingerprint {fingerprint}",
        key.pin
    )
}

/// Home: the session key card. Returns a notice to show.
fn home(ui: &mut Ui, desk: &Desk) -> Option<String> {
    let mut notice = None;
    ui.heading("Remote support");
    let Some(key) = &desk.key else {
        ui.label("Click \"Generate session key\" and give the Session PIN or the Session URL to your customer.");
        ui.label("Their session opens here by itself when they join.");
        info_lines(ui, &desk.agent, "none");
        return None;
    };
    egui::Grid::new("key")
        .num_columns(3)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            ui.label("Session PIN");
            ui.label(RichText::new(display_pin(&key.pin)).monospace().size(22.0));
            if ui
                .button("Copy PIN")
                .on_hover_text("Copy the PIN to the clipboard")
                .clicked()
            {
                ui.ctx().copy_text(key.pin.clone());
                notice = Some("Session PIN copied to the clipboard".into());
            }
            ui.end_row();
            ui.label("Session URL");
            ui.label(RichText::new(&key.url).monospace());
            if ui
                .button("Copy URL")
                .on_hover_text("Copy the URL to the clipboard")
                .clicked()
            {
                ui.ctx().copy_text(key.url.clone());
                notice = Some("Session URL copied to the clipboard".into());
            }
            ui.end_row();
            ui.label("Expires");
            let left = key.expires_at.saturating_sub(crate::state::now_unix());
            ui.label(if left == 0 {
                "expired".to_string()
            } else {
                format!("in {} min", left.div_ceil(60))
            });
            ui.end_row();
            ui.label("Customer runs");
            let cmd = customer_command(key, &desk.relay, &desk.fingerprint);
            ui.label(RichText::new(&cmd).monospace().small());
            if ui.button("Copy command").clicked() {
                ui.ctx().copy_text(cmd.clone());
                notice = Some("Customer command copied to the clipboard".into());
            }
            ui.end_row();
        });
    info_lines(ui, &desk.agent, "none");
    notice
}

fn info_lines(ui: &mut Ui, users: &str, screen: &str) {
    ui.add_space(6.0);
    ui.label(format!("Users: {users}"));
    ui.label(format!("Screen: {screen}"));
}

/// One session: toolbar, Users and Screen lines, and the remote screen.
fn session(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    settings: &mut Settings,
    rt: &mut Runtime,
) -> Option<String> {
    let id = tab.info.id;
    files::take_dropped(ui, tab, outbox);
    let mut notice = None;
    ui.horizontal(|ui| {
        let n = tab.monitor_count().max(1);
        if ui.button(format!("Next Screen ({n})")).clicked() && n > 1 {
            tab.monitor = ((usize::from(tab.monitor) + 1) % n) as u8;
            tab.screen = Screen::Connecting;
            outbox.push(Command::SelectMonitor {
                session: id,
                monitor: tab.monitor,
            });
        }
        ui.separator();
        ui.selectable_value(&mut tab.scale, Scale::Fit, "Fit to window");
        ui.selectable_value(&mut tab.scale, Scale::Actual, "Actual size");
        ui.separator();
        let before = tab.quality;
        egui::ComboBox::from_label("Quality")
            .selected_text(tab.quality.label())
            .show_ui(ui, |ui| {
                for q in [Quality::Auto, Quality::Sharp, Quality::Smooth] {
                    ui.selectable_value(&mut tab.quality, q, q.label());
                }
            });
        if tab.quality != before {
            outbox.push(Command::SetQuality {
                session: id,
                quality: tab.quality,
            });
        }
        ui.checkbox(&mut tab.overlay, "Stats");
        ui.separator();
        control_button(ui, tab, outbox);
        ui.add_enabled_ui(tab.control == Grant::On, |ui| {
            ui.menu_button("Send Keys", |ui| {
                for c in Combo::ALL {
                    if ui.button(c.label()).clicked() {
                        outbox.push(Command::Input {
                            session: id,
                            event: InputEvent::Combo(c),
                        });
                        ui.close();
                    }
                }
            });
        });
        let mut sync = matches!(tab.clipboard, Grant::On | Grant::Asked);
        if ui.checkbox(&mut sync, "Sync clipboard").changed() {
            outbox.push(Command::ClipboardSync {
                session: id,
                on: sync,
            });
            tab.clipboard = if sync { Grant::Asked } else { Grant::Off };
        }
        ui.separator();
        if ui.button("Leave Session").clicked() {
            outbox.push(Command::Leave(id));
            notice = Some(format!("Left the session with {}", tab.title()));
        }
    });
    ui.horizontal(|ui| {
        if ui
            .selectable_label(tab.files_open, "Transfer Files")
            .clicked()
        {
            tab.files_open = !tab.files_open;
            if tab.files_open && tab.remote.is_none() {
                outbox.push(Command::ListRemote {
                    session: id,
                    path: String::new(),
                });
            }
        }
        ui.separator();
        let l = ui.label("URL");
        ui.add(
            egui::TextEdit::singleline(&mut tab.url)
                .hint_text("https://…")
                .desired_width(280.0),
        )
        .labelled_by(l.id);
        if ui.button("Push URL").clicked() {
            match tether_protocol::files::check_url(&tab.url) {
                Ok(url) => {
                    notice = Some(format!("Asking the customer to open {url}"));
                    outbox.push(Command::PushUrl { session: id, url });
                }
                Err(e) => notice = Some(format!("Not pushed: {e}")),
            }
        }
    });
    if tab.files_open {
        files::panel(ui, tab, outbox, settings, &mut rt.dialog);
    }
    let remote = rt.textures.get(&id);
    let c = &tab.info.customer;
    ui.label(format!("Customer: {}@{} — {}", c.user, c.hostname, c.os));
    info_lines(ui, &tab.agents.join(", "), &tab.screen_line());
    ui.separator();
    match (tab.screen.clone(), remote) {
        (Screen::Live { width, height }, Some(remote)) => {
            let tex = &remote.texture;
            let size = egui::vec2(width as f32, height as f32);
            let sense = if tab.control == Grant::On {
                egui::Sense::click_and_drag()
            } else {
                egui::Sense::hover()
            };
            let resp = match tab.scale {
                Scale::Fit => {
                    let avail = ui.available_size();
                    let k = (avail.x / size.x).min(avail.y / size.y).max(0.01);
                    ui.add(egui::Image::from_texture((tex.id(), size * k)).sense(sense))
                }
                Scale::Actual => {
                    let ppp = ui.ctx().pixels_per_point();
                    egui::ScrollArea::both()
                        .show(ui, |ui| {
                            ui.add(egui::Image::from_texture((tex.id(), size / ppp)).sense(sense))
                        })
                        .inner
                }
            };
            if tab.control == Grant::On {
                remote_input(ui, &resp, tab, (width, height), outbox);
            }
            if tab.overlay {
                overlay(ui, resp.rect, &remote.stats);
            }
        }
        (Screen::Failed(why), _) => {
            ui.colored_label(
                Color32::from_rgb(200, 60, 60),
                format!("Screen unavailable: {why}"),
            );
        }
        _ => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Waiting for the customer's screen…");
            });
        }
    }
    notice
}
