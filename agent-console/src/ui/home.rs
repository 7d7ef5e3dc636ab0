//! Home: the session key card (PIN, URL, expiry, the customer's command, copy buttons).

use egui::{RichText, Ui};
use tether_protocol::msg::SessionKey;
use tether_protocol::pairing::display_pin;

use super::info_lines;
use crate::state::Desk;

/// The customer's command line for a key.
pub fn customer_command(key: &SessionKey, relay: &str, fingerprint: &str) -> String {
    format!(
        "tether-host {} --relay {relay} --relay-fingerprint {fingerprint}",
        key.pin
    )
}

/// Home: the session key card. Returns a notice to show.
pub(super) fn home(ui: &mut Ui, desk: &Desk) -> Option<String> {
    let mut notice = None;
    ui.heading("Remote support");
    let Some(key) = &desk.key else {
        ui.label("Click \"Generate session key\" and give the Session PIN or the Session URL to your customer.");
        ui.label("They wait in your queue below until you accept them.");
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
