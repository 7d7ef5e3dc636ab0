//! A session's right navigation, hidden or shown with its arrow: the Details of the session and
//! the customer, the Attendees with their marks, and the Notes saved on the relay.

use egui::{RichText, Ui};
use tether_i18n::t;
use tether_protocol::desk::MemberRole;

use super::RemoteScreen;
use crate::state::{Command, Screen, SessionTab};

/// When, for people (UTC).
fn when(unix: u64) -> String {
    jiff::Timestamp::from_second(unix as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The right navigation's contents.
pub(super) fn nav(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    remote: Option<&RemoteScreen>,
) {
    egui::ScrollArea::vertical()
        .id_salt(("nav", tab.info.id.0))
        .show(ui, |ui| {
            egui::CollapsingHeader::new(t!("nav-screen"))
                .default_open(true)
                .show(ui, |ui| thumbnail(ui, tab, remote));
            egui::CollapsingHeader::new(t!("nav-details"))
                .default_open(true)
                .show(ui, |ui| details(ui, tab));
            egui::CollapsingHeader::new(t!("nav-attendees"))
                .default_open(true)
                .show(ui, |ui| attendees(ui, tab));
            egui::CollapsingHeader::new(t!("nav-notes"))
                .default_open(true)
                .show(ui, |ui| notes(ui, tab, outbox));
        });
}

/// The customer's screen, small and live; a double-click opens the full-screen viewer.
fn thumbnail(ui: &mut Ui, tab: &mut SessionTab, remote: Option<&RemoteScreen>) {
    let (Screen::Live { width, height }, Some(remote)) = (&tab.screen, remote) else {
        ui.label(RichText::new(t!("nav-no-picture")).weak());
        return;
    };
    let w = ui.available_width().clamp(80.0, 320.0);
    let h = w * *height as f32 / (*width).max(1) as f32;
    let resp = ui
        .add(
            egui::Image::from_texture((remote.texture.id(), egui::vec2(w, h)))
                .sense(egui::Sense::click()),
        )
        .on_hover_text(t!("nav-double-click"));
    if resp.double_clicked() {
        tab.popped_out = true;
    }
}

fn details(ui: &mut Ui, tab: &SessionTab) {
    let c = &tab.info.customer;
    egui::Grid::new(("details", tab.info.id.0))
        .num_columns(2)
        .spacing([8.0, 2.0])
        .show(ui, |ui| {
            let monitors = c.monitors.len().to_string();
            for (k, v) in [
                (t!("nav-session"), tab.info.id.to_string()),
                (
                    t!("nav-came-through"),
                    super::desk::queue_title(&tab.info.origin, tab.my_login()),
                ),
                (t!("nav-started"), when(tab.info.started_at)),
                (t!("nav-customer"), c.name.clone()),
                (t!("nav-computer"), c.hostname.clone()),
                (t!("nav-user"), c.user.clone()),
                (t!("nav-system"), c.os.clone()),
                (t!("nav-monitors"), monitors),
            ] {
                ui.label(RichText::new(k).weak());
                ui.label(v);
                ui.end_row();
            }
            if let Some(r) = &c.request {
                if let Some(p) = &r.problem {
                    ui.label(RichText::new(t!("nav-problem")).weak());
                    ui.label(p);
                    ui.end_row();
                }
                ui.label(RichText::new(t!("nav-request")).weak());
                ui.label(&r.description);
                ui.end_row();
            }
        });
}

fn attendees(ui: &mut Ui, tab: &SessionTab) {
    ui.label(t!(
        "nav-customer-mark",
        name = tab.info.customer.name.as_str()
    ));
    for m in tab.members.iter().filter(|m| m.role != MemberRole::Host) {
        let role = match m.role {
            MemberRole::Owner => t!("nav-in-charge"),
            _ => t!("nav-invited"),
        };
        let mask = t!(if m.masked {
            "nav-masked"
        } else {
            "nav-unmasked"
        });
        let you = if m.id == tab.info.me {
            format!(", {}", t!("nav-you"))
        } else {
            String::new()
        };
        ui.label(format!("{} ({role}, {mask}{you})", m.display))
            .on_hover_text(if m.masked {
                t!("nav-hidden")
            } else {
                t!("nav-visible")
            });
    }
}

fn notes(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>) {
    let l = ui.label(t!("nav-session-notes"));
    ui.add(
        egui::TextEdit::multiline(&mut tab.notes)
            .desired_rows(5)
            .desired_width(f32::INFINITY)
            .hint_text(t!("nav-notes-hint")),
    )
    .labelled_by(l.id);
    ui.horizontal(|ui| {
        let changed = tab.notes != tab.notes_saved.0;
        if ui
            .add_enabled(changed, egui::Button::new(t!("nav-save-notes")))
            .clicked()
        {
            outbox.push(Command::SaveNotes {
                session: tab.info.id,
                text: tab.notes.clone(),
            });
        }
        match (&tab.notes_saved.1, changed) {
            (_, true) => ui.label(RichText::new(t!("nav-not-saved")).weak()),
            (Some(by), false) => {
                ui.label(RichText::new(t!("nav-saved-by", who = by.as_str())).weak())
            }
            (None, false) => ui.label(""),
        };
    });
}
