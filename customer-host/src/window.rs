//! The customer's window: the session key field, what is happening (connecting, waiting for whom,
//! who is connected, why it failed and what to do), consent prompts (Allow / Deny), what is
//! granted (with Stop buttons), transfers and End session. Each part is a function of the view.

use egui::{Color32, RichText, Ui};
use tether_i18n::t;
use tether_protocol::input::{Grant, Permission};

use crate::consent::{Decision, HostView, Phase, Shared, TransferState};
use crate::failure::Failure;

/// What the window itself remembers between frames (not part of the session's view).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowState {
    /// The key being typed.
    pub key: String,
    /// The chat message being typed.
    pub message: String,
}

const RED: Color32 = Color32::from_rgb(200, 60, 60);
const GREEN: Color32 = Color32::from_rgb(40, 160, 60);

/// The window title for a view: the program, then where things stand.
pub fn title(view: &HostView) -> String {
    let state = match &view.phase {
        Phase::EnterKey => match &view.failure {
            Some(f) => f.short(),
            None => t!("host-state-enter-key"),
        },
        Phase::Connecting => t!("host-state-connecting"),
        Phase::Waiting | Phase::AgentAway => match view.place {
            Some(p) => t!("host-state-waiting-place", place = p),
            None => t!("host-state-waiting"),
        },
        Phase::Connected => t!("host-state-connected", agents = view.agents.join(", ")),
        Phase::Reconnecting(n) => t!("host-state-reconnecting", n = *n),
        Phase::Ended(_) => t!("host-state-ended"),
        Phase::Broken => view
            .failure
            .as_ref()
            .map(|f| f.short())
            .unwrap_or_else(|| t!("host-state-error")),
    };
    t!("host-title", state = state)
}

/// Waiting in line: for whom, the place, and (after a representative left) that another one
/// will take over.
fn waiting(ui: &mut Ui, view: &HostView) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(RichText::new(t!("host-waiting")).strong());
    });
    if view.phase == Phase::AgentAway {
        ui.label(t!("host-agent-away"));
    } else if let Some(o) = &view.owner {
        ui.label(t!("host-request-with", queue = o.as_str()));
    }
    if let Some(p) = view.place {
        ui.label(if p == 1 {
            t!("host-next-in-line")
        } else {
            t!("host-place-in-line", place = p)
        });
    }
}

/// Draws the window's contents; decisions go to `decide`.
pub fn ui(ui: &mut Ui, view: &HostView, state: &mut WindowState, decide: &mut dyn FnMut(Decision)) {
    ui.heading(t!("host-app"));
    ui.add_space(4.0);
    match &view.phase {
        Phase::EnterKey => key_entry(ui, view.failure.as_ref(), state, decide),
        Phase::Broken => {
            if let Some(f) = &view.failure {
                failure(ui, f);
            }
            if ui.button(t!("host-close")).clicked() {
                decide(Decision::CloseWindow);
            }
        }
        Phase::Connecting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("host-connecting"));
            });
        }
        Phase::Waiting | Phase::AgentAway => waiting(ui, view),
        Phase::Reconnecting(n) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new(t!("host-reconnecting", n = *n)).strong());
            });
            ui.label(t!("host-reconnecting-hint"));
        }
        Phase::Connected => {
            ui.label(RichText::new(t!("host-helping", agents = view.agents.join(", "))).strong());
        }
        Phase::Ended(words) => {
            ui.label(RichText::new(words).strong());
            ui.horizontal(|ui| {
                if ui.button(t!("host-new-session")).clicked() {
                    decide(Decision::NewSession);
                }
                if ui.button(t!("host-close")).clicked() {
                    decide(Decision::CloseWindow);
                }
            });
        }
    }
    if view.phase.in_session() {
        session_parts(ui, view, decide);
        chat(ui, view, state, decide);
        ui.separator();
        if ui.button(t!("host-end-session")).clicked() {
            decide(Decision::EndSession);
        }
    } else if !view.transfers.is_empty() {
        transfers(ui, view, decide);
    }
    if !view.log.is_empty() {
        egui::CollapsingHeader::new(t!("host-activity"))
            .default_open(false)
            .show(ui, |ui| {
                for line in view.log.iter().rev().take(20) {
                    ui.label(RichText::new(line).small());
                }
            });
    }
}

/// The chat with the representatives: the messages, a field and Send (or Enter).
fn chat(ui: &mut Ui, view: &HostView, state: &mut WindowState, decide: &mut dyn FnMut(Decision)) {
    ui.separator();
    ui.strong(t!("host-chat"));
    egui::ScrollArea::vertical()
        .id_salt("chat")
        .max_height(160.0)
        .stick_to_bottom(true)
        .show(ui, |ui| {
            if view.chat.is_empty() {
                ui.label(RichText::new(t!("host-chat-empty")).weak());
            }
            for line in &view.chat {
                ui.horizontal_wrapped(|ui| {
                    let name = RichText::new(format!("{}:", line.from)).strong();
                    ui.label(if line.mine { name } else { name.color(GREEN) });
                    ui.label(&line.text);
                });
            }
        });
    let mut send = false;
    ui.horizontal(|ui| {
        let l = ui.label(t!("host-message"));
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut state.message)
                    .hint_text(t!("host-message-hint"))
                    .desired_width(260.0),
            )
            .labelled_by(l.id);
        if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            send = true;
            field.request_focus();
        }
        if ui.button(t!("host-send")).clicked() {
            send = true;
        }
    });
    if send {
        if let Ok(text) = tether_protocol::chat::check_text(&state.message) {
            decide(Decision::Say(text));
        }
        state.message.clear();
    }
}

fn failure(ui: &mut Ui, f: &Failure) {
    ui.colored_label(RED, RichText::new(f.headline()).strong());
    ui.label(f.advice());
}

/// The key field, Connect, and the last failure under them.
fn key_entry(
    ui: &mut Ui,
    last: Option<&Failure>,
    state: &mut WindowState,
    decide: &mut dyn FnMut(Decision),
) {
    ui.label(t!("host-enter-key"));
    let mut submit = false;
    ui.horizontal(|ui| {
        let l = ui.label(t!("host-session-key"));
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut state.key)
                    .hint_text(t!("host-session-key-hint"))
                    .desired_width(240.0),
            )
            .labelled_by(l.id);
        // The customer can type at once.
        if ui.memory(|m| m.focused().is_none()) {
            field.request_focus();
        }
        if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            submit = true;
        }
        let ready = !state.key.trim().is_empty();
        if ui
            .add_enabled(ready, egui::Button::new(t!("host-connect")))
            .clicked()
        {
            submit = true;
        }
    });
    if submit && !state.key.trim().is_empty() {
        decide(Decision::Connect(state.key.trim().to_string()));
    }
    if let Some(f) = last {
        ui.add_space(6.0);
        failure(ui, f);
    }
}

/// Who views what, prompts, grants and transfers.
fn session_parts(ui: &mut Ui, view: &HostView, decide: &mut dyn FnMut(Decision)) {
    for (agent, monitor) in &view.viewers {
        ui.label(t!(
            "host-viewing",
            agent = agent.to_string(),
            monitor = u32::from(*monitor) + 1
        ));
    }
    for p in &view.prompts {
        ui.separator();
        ui.label(RichText::new(p.question()).strong());
        ui.horizontal(|ui| {
            for (label, allow) in [(t!("host-allow"), true), (t!("host-deny"), false)] {
                if ui.button(label).clicked() {
                    decide(Decision::Answer {
                        agent: p.agent.clone(),
                        permission: p.permission,
                        allow,
                    });
                }
            }
        });
    }
    for (agent, (control, clipboard)) in &view.grants {
        if *control == Grant::On {
            granted(
                ui,
                GREEN,
                t!("host-controls", agent = agent.to_string()),
                &t!("host-stop-control"),
                || {
                    decide(Decision::Revoke {
                        agent: agent.clone(),
                        permission: Permission::Control,
                    })
                },
            );
        }
        if *clipboard == Grant::On {
            granted(
                ui,
                ui.visuals().text_color(),
                t!("host-clipboard-shared", agent = agent.to_string()),
                &t!("host-stop-clipboard"),
                || {
                    decide(Decision::Revoke {
                        agent: agent.clone(),
                        permission: Permission::Clipboard,
                    })
                },
            );
        }
    }
    for (agent, g) in &view.files {
        if *g == Grant::On {
            granted(
                ui,
                ui.visuals().text_color(),
                t!("host-files-allowed", agent = agent.to_string()),
                &t!("host-stop-files"),
                || {
                    decide(Decision::Revoke {
                        agent: agent.clone(),
                        permission: Permission::Files,
                    })
                },
            );
        }
    }
    transfers(ui, view, decide);
}

fn granted(ui: &mut Ui, colour: Color32, what: String, stop: &str, on_stop: impl FnOnce()) {
    ui.horizontal(|ui| {
        ui.colored_label(colour, what);
        if ui.button(stop).clicked() {
            on_stop();
        }
    });
}

fn transfers(ui: &mut Ui, view: &HostView, decide: &mut dyn FnMut(Decision)) {
    if view.transfers.is_empty() {
        return;
    }
    ui.separator();
    ui.label(RichText::new(t!("host-files")).strong());
    for t in view.transfers.iter().rev().take(8) {
        ui.horizontal(|ui| {
            let arrow = if t.incoming { "⬇" } else { "⬆" };
            ui.label(format!("{arrow} {}", t.name));
            match &t.state {
                TransferState::Running => {
                    ui.add(
                        egui::ProgressBar::new(tether_files::fraction(t.done, t.total))
                            .desired_width(120.0)
                            .show_percentage(),
                    );
                    if ui
                        .button(t!("host-stop"))
                        .on_hover_text(t!("host-stop-transfer"))
                        .clicked()
                    {
                        decide(Decision::CancelTransfer(t.id));
                    }
                }
                TransferState::Done => {
                    ui.label(t!("host-done"));
                }
                TransferState::Failed(why) => {
                    ui.colored_label(RED, why);
                }
            }
        });
    }
}

/// The eframe application around [`ui`].
pub struct HostWindow {
    shared: Shared,
    state: WindowState,
    title: String,
    prompts: usize,
    /// Chat lines from representatives seen so far.
    heard: usize,
}

impl std::fmt::Debug for HostWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostWindow")
    }
}

impl HostWindow {
    /// A window over the shared view; `key` prefills the key field.
    pub fn new(shared: Shared, key: String) -> Self {
        Self {
            shared,
            state: WindowState {
                key,
                message: String::new(),
            },
            title: String::new(),
            prompts: 0,
            heard: 0,
        }
    }
}

impl eframe::App for HostWindow {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        let view = self.shared.view().clone();
        let ctx = ui.ctx().clone();
        let title = title(&view);
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        // A new question raises the window's attention (the taskbar flashes).
        if view.prompts.len() > self.prompts {
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Critical,
            ));
        }
        self.prompts = view.prompts.len();
        // So does a new message from a representative.
        let heard = view.chat.iter().filter(|l| !l.mine).count();
        if heard > self.heard {
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Informational,
            ));
        }
        self.heard = heard;
        let shared = self.shared.clone();
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                self::ui(ui, &view, &mut self.state, &mut |d| match d {
                    Decision::CloseWindow => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
                    d => shared.decide(d),
                });
            });
        });
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
