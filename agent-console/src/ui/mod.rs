//! Panels. Each is a function of the state: it draws, edits the state and queues commands, and
//! never touches the network.

use std::collections::HashMap;
use tether_i18n::t;

use egui::{Color32, Ui};
use tether_protocol::msg::SessionId;

use crate::backend::ViewStats;

use crate::queue::Marker;
use crate::state::{Command, ConsoleState, Desk, Link, LoginForm, Phase, Settings};

mod chat;
#[cfg(test)]
mod chat_tests;
mod desk;
#[cfg(test)]
mod desk_tests;
mod files;
mod home;
mod login;
mod nav;
mod session;
#[cfg(test)]
mod tests;
mod viewer;

pub use desk::{describe, queue_title};
pub use files::{FileDialog, Pick};
pub use home::customer_command;
pub use login::login;
pub use viewer::overlay_text;

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
    /// Whether the settings window is open.
    pub settings_open: bool,
    /// How long the last frame took to lay out and draw, milliseconds.
    pub draw_ms: f32,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("textures", &self.textures.len())
            .field("dialog", &self.dialog.as_ref().map(|d| d.pick))
            .finish()
    }
}

/// The background every panel has: the window is cleared to it ([`crate::app`]), so panels do
/// not fill it again. Software rendering (a VM, a remote desktop) draws each frame's every
/// pixel on the processor, and a fill per panel doubled that work.
pub fn background(visuals: &egui::Visuals) -> Color32 {
    visuals.panel_fill
}

/// A side, top or bottom panel's frame, without the fill the window already has.
pub(crate) fn side_frame(ui: &Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(Color32::TRANSPARENT)
}

/// The central panel's frame, without the fill the window already has.
pub(crate) fn central_frame(ui: &Ui) -> egui::Frame {
    egui::Frame::central_panel(ui.style()).fill(Color32::TRANSPARENT)
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
                    ui.label(t!(
                        "desk-logging-in",
                        relay = form.request.relay.as_str(),
                        user = form.request.user.as_str()
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

/// The logged-in console. Returns true when the agent asks to log in again.
fn desk_ui(
    ui: &mut Ui,
    desk: &mut Desk,
    outbox: &mut Vec<Command>,
    settings: &mut Settings,
    rt: &mut Runtime,
) -> bool {
    let mut relogin = false;
    egui::Panel::top("top")
        .frame(side_frame(ui))
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Tether");
                ui.separator();
                ui.label(t!(
                    "desk-agent",
                    display = desk.display.as_str(),
                    login = desk.agent.as_str()
                ));
                ui.separator();
                match &desk.link {
                    Link::Online => {
                        dot(ui, Color32::from_rgb(40, 160, 60));
                        ui.label(t!("desk-relay", relay = desk.relay.as_str()));
                    }
                    Link::Reconnecting { attempt, why } => {
                        ui.spinner();
                        ui.colored_label(
                            Color32::from_rgb(200, 140, 20),
                            t!("desk-reconnecting", attempt = *attempt),
                        )
                        .on_hover_text(why.as_str());
                    }
                    Link::Lost(why) => {
                        ui.colored_label(
                            Color32::from_rgb(200, 60, 60),
                            t!("desk-connection-lost", why = why.as_str()),
                        );
                        if ui.button(t!("desk-log-in-again")).clicked() {
                            relogin = true;
                        }
                    }
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button(t!("desk-settings")).clicked() {
                        rt.settings_open = !rt.settings_open;
                    }
                    ui.separator();
                    key_controls(ui, desk, outbox);
                });
            });
        });
    egui::Panel::bottom("status")
        .frame(side_frame(ui))
        .show(ui, |ui| {
            ui.label(desk.notice.clone().unwrap_or_else(|| t!("desk-ready")));
        });
    egui::CentralPanel::default()
        .frame(central_frame(ui))
        .show(ui, |ui| {
            tabs(ui, desk, settings);
            ui.separator();
            let selected = desk.selected;
            match selected.and_then(|id| desk.sessions.iter().position(|t| t.info.id == id)) {
                Some(i) => {
                    let tab = &mut desk.sessions[i];
                    let parts = session::Parts {
                        settings,
                        rt,
                        dialog: &mut desk.dialog,
                        scripts: &desk.scripts,
                    };
                    let notice = session::session(ui, tab, outbox, parts);
                    if let Some(n) = notice {
                        desk.notice = Some(n);
                    }
                }
                None => {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        if let Some(n) = home::home(ui, desk, outbox) {
                            desk.notice = Some(n);
                        }
                        ui.separator();
                        desk::queues(ui, desk, outbox, settings);
                    });
                }
            }
        });
    let ctx = ui.ctx().clone();
    desk::alerts(&ctx, desk, outbox);
    desk::dialog(&ctx, desk, outbox);
    desk::settings_window(&ctx, &mut rt.settings_open, settings);
    files::dialog(&ctx, desk, outbox, settings, rt);
    relogin
}

/// Generate session key, and whose queue the key leads to (the agent's own, or a team's).
fn key_controls(ui: &mut Ui, desk: &mut Desk, outbox: &mut Vec<Command>) {
    let enabled = desk.link == Link::Online;
    if ui
        .add_enabled(enabled, egui::Button::new(t!("desk-generate-key")))
        .clicked()
    {
        outbox.push(Command::CreateKey {
            team: desk.key_team.clone(),
            ttl_secs: Some(desk.key_minutes * 60),
        });
    }
    let valid = egui::ComboBox::from_id_salt("key-validity")
        .selected_text(minutes_words(desk.key_minutes))
        .show_ui(ui, |ui| {
            for m in crate::state::KEY_MINUTES {
                ui.selectable_value(&mut desk.key_minutes, m, minutes_words(m));
            }
        });
    let label = ui.label(t!("desk-key-valid"));
    valid.response.labelled_by(label.id);
    if desk.teams.is_empty() {
        return;
    }
    let shown = match &desk.key_team {
        Some(team) => t!("desk-team", team = team.as_str()),
        None => t!("desk-my-queue"),
    };
    // Right to left: the combo box, then its label on its left.
    let combo = egui::ComboBox::from_id_salt("key-for")
        .selected_text(shown)
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut desk.key_team, None, t!("desk-my-queue"));
            for t in desk.teams.clone() {
                let label = t!("desk-team", team = t.as_str());
                ui.selectable_value(&mut desk.key_team, Some(t), label);
            }
        });
    let label = ui.label(t!("desk-key-for"));
    combo.response.labelled_by(label.id);
}

/// A small filled circle, e.g. a status light.
pub fn dot(ui: &mut Ui, color: Color32) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.0, color);
    response
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

/// The tab strip: Home (with the number waiting), then one tab per session with the customer's
/// name and a marker of how long since the agent acted in it.
fn tabs(ui: &mut Ui, desk: &mut Desk, settings: &Settings) {
    let now = crate::state::now_unix();
    ui.horizontal_wrapped(|ui| {
        let waiting = desk.queues.entries.len();
        let home = if waiting == 0 {
            t!("desk-home")
        } else {
            t!("desk-home-waiting", n = waiting)
        };
        if ui.selectable_label(desk.selected.is_none(), home).clicked() {
            desk.selected = None;
        }
        for t in &desk.sessions {
            let idle = now.saturating_sub(t.last_said);
            let colour = match settings.activity.marker(idle) {
                Marker::Green => Color32::from_rgb(40, 170, 60),
                Marker::Amber => Color32::from_rgb(230, 160, 20),
                Marker::Red => Color32::from_rgb(210, 50, 50),
            };
            ui.separator();
            dot(ui, colour).on_hover_text(t!("tab-idle", wait = crate::queue::wait_time(idle)));
            let on = desk.selected == Some(t.info.id);
            if ui.selectable_label(on, t.title()).clicked() {
                desk.selected = Some(t.info.id);
            }
        }
    });
}

fn info_lines(ui: &mut Ui, users: &str, screen: &str) {
    ui.add_space(6.0);
    ui.label(t!("desk-users", users = users));
    ui.label(t!("desk-screen", screen = screen));
}

/// A customer's request from the portal in one line: the problem type, then their words.
pub(crate) fn request_words(r: &tether_protocol::msg::Request) -> String {
    let text = r.description.replace('\n', " ");
    match &r.problem {
        Some(p) if text.is_empty() => p.clone(),
        Some(p) => format!("{p}: {text}"),
        None => text,
    }
}

/// A key's validity, for people: "30 min", "4 h", "7 days".
fn minutes_words(m: u32) -> String {
    match m {
        m if m < 60 => t!("minutes", n = m),
        m if m < 1440 => t!("hours", n = m / 60),
        m => t!("days", n = m / 1440),
    }
}
