//! Home: the session key card (PIN, URL, expiry, the customer's command, copy buttons).

use egui::{RichText, Ui};
use tether_i18n::t;
use tether_protocol::msg::SessionKey;
use tether_protocol::pairing::display_pin;

use super::info_lines;
use crate::state::{Command, Desk};

/// The customer's command line for a key.
pub fn customer_command(key: &SessionKey, relay: &str, fingerprint: &str) -> String {
    format!(
        "tether-host {} --relay {relay} --relay-fingerprint {fingerprint}",
        key.pin
    )
}

/// Home: the session key card. Returns a notice to show.
pub(super) fn home(ui: &mut Ui, desk: &mut Desk, outbox: &mut Vec<Command>) -> Option<String> {
    let mut notice = None;
    ui.heading(t!("home-title"));
    let Some(key) = desk.key.clone() else {
        ui.label(t!("home-intro"));
        ui.label(t!("home-intro-queue"));
        info_lines(ui, &desk.agent, &t!("screen-none"));
        return None;
    };
    egui::Grid::new("key")
        .num_columns(3)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            ui.label(t!("home-pin"));
            ui.label(RichText::new(display_pin(&key.pin)).monospace().size(22.0));
            if ui
                .button(t!("home-copy-pin"))
                .on_hover_text(t!("home-copy-pin-hint"))
                .clicked()
            {
                ui.ctx().copy_text(key.pin.clone());
                notice = Some(t!("home-pin-copied"));
            }
            ui.end_row();
            ui.label(t!("home-url"));
            ui.label(RichText::new(&key.url).monospace());
            if ui
                .button(t!("home-copy-url"))
                .on_hover_text(t!("home-copy-url-hint"))
                .clicked()
            {
                ui.ctx().copy_text(key.url.clone());
                notice = Some(t!("home-url-copied"));
            }
            ui.end_row();
            ui.label(t!("home-expires"));
            let left = key.expires_at.saturating_sub(crate::state::now_unix());
            ui.label(if left == 0 {
                t!("home-expired")
            } else {
                t!("home-expires-in", min = left.div_ceil(60))
            });
            ui.end_row();
            ui.label(t!("home-customer-runs"));
            let cmd = customer_command(&key, &desk.relay, &desk.fingerprint);
            ui.label(RichText::new(&cmd).monospace().small());
            if ui.button(t!("home-copy-command")).clicked() {
                ui.ctx().copy_text(cmd.clone());
                notice = Some(t!("home-command-copied"));
            }
            ui.end_row();
            // The relay writes the invitation; it sends it, or the mail program does.
            let label = ui.label(t!("home-invite"));
            ui.add(
                egui::TextEdit::singleline(&mut desk.invite_to)
                    .hint_text(t!("home-invite-hint"))
                    .desired_width(260.0),
            )
            .labelled_by(label.id);
            let ready = !desk.invite_to.trim().is_empty() && left > 0;
            if ui
                .add_enabled(ready, egui::Button::new(t!("home-invite-send")))
                .clicked()
            {
                outbox.push(Command::EmailInvite {
                    pin: key.pin.clone(),
                    to: desk.invite_to.trim().to_string(),
                });
            }
            ui.end_row();
        });
    info_lines(ui, &desk.agent, &t!("screen-none"));
    notice
}
