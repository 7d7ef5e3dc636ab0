//! The login form.

use egui::{Color32, Ui};
use tether_i18n::t;

use crate::state::LoginForm;

/// The login form. Returns true when the agent submits it.
pub fn login(ui: &mut Ui, form: &mut LoginForm) -> bool {
    ui.heading(t!("login-title"));
    ui.label(t!("login-intro"));
    ui.add_space(8.0);
    let mut submit = false;
    egui::Grid::new("login")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let r = &mut form.request;
            let l = ui.label(t!("login-relay"));
            ui.text_edit_singleline(&mut r.relay).labelled_by(l.id);
            ui.end_row();
            let l = ui.label(t!("login-fingerprint"));
            ui.add(egui::TextEdit::singleline(&mut r.fingerprint).desired_width(480.0))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label(t!("login-user"));
            ui.text_edit_singleline(&mut r.user).labelled_by(l.id);
            ui.end_row();
            let l = ui.label(t!("login-password"));
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
    if ui.button(t!("login-button")).clicked() {
        submit = true;
    }
    submit
}
