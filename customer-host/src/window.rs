//! The customer's window: who is connected, the session's state, consent prompts (Allow / Deny),
//! what is granted (with Stop buttons), and End session. Each part is a function of the view.

use egui::{Color32, RichText, Ui};
use tether_protocol::input::{Grant, Permission};

use crate::consent::{Decision, HostView, Phase, Shared, TransferState};

/// Draws the window's contents; decisions go to `decide`.
pub fn ui(ui: &mut Ui, view: &HostView, decide: &mut dyn FnMut(Decision)) {
    ui.heading("Tether remote support");
    match &view.phase {
        Phase::Connecting => {
            ui.label("Connecting to your support agent…");
        }
        Phase::Waiting => {
            ui.label("Waiting for your support agent to connect.");
        }
        Phase::Connected => {
            ui.label(RichText::new(format!("Connected: {}", view.agents.join(", "))).strong());
        }
        Phase::Ended(why) => {
            ui.label(format!("Session ended: {why}"));
        }
    }
    for (agent, monitor) in &view.viewers {
        ui.label(format!(
            "{agent} is viewing your screen (monitor {})",
            u32::from(*monitor) + 1
        ));
    }
    for p in &view.prompts {
        ui.separator();
        ui.label(RichText::new(p.question()).strong());
        ui.horizontal(|ui| {
            if ui.button("Allow").clicked() {
                decide(Decision::Answer {
                    agent: p.agent.clone(),
                    permission: p.permission,
                    allow: true,
                });
            }
            if ui.button("Deny").clicked() {
                decide(Decision::Answer {
                    agent: p.agent.clone(),
                    permission: p.permission,
                    allow: false,
                });
            }
        });
    }
    for (agent, (control, clipboard)) in &view.grants {
        if *control == Grant::On {
            ui.horizontal(|ui| {
                ui.colored_label(
                    Color32::from_rgb(40, 160, 60),
                    format!("{agent} controls your mouse and keyboard"),
                );
                if ui.button("Stop control").clicked() {
                    decide(Decision::Revoke {
                        agent: agent.clone(),
                        permission: Permission::Control,
                    });
                }
            });
        }
        if *clipboard == Grant::On {
            ui.horizontal(|ui| {
                ui.label(format!("Clipboard shared with {agent}"));
                if ui.button("Stop clipboard").clicked() {
                    decide(Decision::Revoke {
                        agent: agent.clone(),
                        permission: Permission::Clipboard,
                    });
                }
            });
        }
    }
    for (agent, g) in &view.files {
        if *g == Grant::On {
            ui.horizontal(|ui| {
                ui.label(format!("{agent} may send and fetch files"));
                if ui.button("Stop file access").clicked() {
                    decide(Decision::Revoke {
                        agent: agent.clone(),
                        permission: Permission::Files,
                    });
                }
            });
        }
    }
    if !view.transfers.is_empty() {
        ui.separator();
        ui.label(RichText::new("Files").strong());
        for t in view.transfers.iter().rev().take(8) {
            ui.horizontal(|ui| {
                let arrow = if t.incoming { "↓" } else { "↑" };
                ui.label(format!("{arrow} {}", t.name));
                match &t.state {
                    TransferState::Running => {
                        let f = if t.total == 0 {
                            1.0
                        } else {
                            t.done as f32 / t.total as f32
                        };
                        ui.add(
                            egui::ProgressBar::new(f)
                                .desired_width(120.0)
                                .show_percentage(),
                        );
                        if ui
                            .button("Stop")
                            .on_hover_text("Stop this transfer")
                            .clicked()
                        {
                            decide(Decision::CancelTransfer(t.id));
                        }
                    }
                    TransferState::Done => {
                        ui.label("done");
                    }
                    TransferState::Failed(why) => {
                        ui.colored_label(Color32::from_rgb(200, 60, 60), why);
                    }
                }
            });
        }
    }
    ui.separator();
    if !matches!(view.phase, Phase::Ended(_)) && ui.button("End session").clicked() {
        decide(Decision::EndSession);
    }
    egui::CollapsingHeader::new("Activity")
        .default_open(false)
        .show(ui, |ui| {
            for line in view.log.iter().rev().take(20) {
                ui.label(RichText::new(line).small());
            }
        });
}

/// The eframe application around [`ui`].
pub struct HostWindow {
    shared: Shared,
}

impl std::fmt::Debug for HostWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostWindow")
    }
}

impl HostWindow {
    /// A window over the shared view.
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

impl eframe::App for HostWindow {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        let view = self.shared.view().clone();
        let shared = self.shared.clone();
        egui::CentralPanel::default().show(ui, |ui| {
            self::ui(ui, &view, &mut |d| shared.decide(d));
        });
        if matches!(view.phase, Phase::Ended(_)) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}
