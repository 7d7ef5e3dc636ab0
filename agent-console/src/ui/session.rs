//! One session: the toolbar (Next Screen, scaling, quality, stats, control, Send Keys, Sync
//! clipboard, Leave Session), the tools row (Transfer Files, Push URL), the Users and Screen lines
//! and the remote screen.

use egui::{Color32, Ui};
use tether_i18n::t;
use tether_protocol::chat::Script;
use tether_protocol::input::{Combo, Grant, InputEvent};
use tether_protocol::screen::Quality;

use super::{Runtime, chat, dot, files, info_lines, nav, viewer};
use crate::state::{Command, DeskDialog, Scale, Screen, SessionTab, Settings};

/// One session tab. Returns a notice to show.
/// What a session tab uses of the desk besides its own tab.
pub(super) struct Parts<'a> {
    /// The agent's settings.
    pub settings: &'a mut Settings,
    /// Textures and the file dialog.
    pub rt: &'a mut Runtime,
    /// The desk's dialog (transfer, invite, end).
    pub dialog: &'a mut Option<DeskDialog>,
    /// Scripted messages and addresses.
    pub scripts: &'a [Script],
}

pub(super) fn session(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    parts: Parts<'_>,
) -> Option<String> {
    let Parts {
        settings,
        rt,
        dialog,
        scripts,
    } = parts;
    files::take_dropped(ui, tab, outbox);
    toolbar(ui, tab, outbox, settings);
    let mut nav_open = tab.nav_open;
    desk_controls(ui, tab, &mut nav_open, outbox, dialog);
    tab.nav_open = nav_open;
    let notice = tools(ui, tab, outbox);
    if tab.files_open {
        files::panel(ui, tab, outbox, settings, &mut rt.dialog);
    }
    let c = &tab.info.customer;
    ui.label(t!(
        "session-customer",
        name = c.name.as_str(),
        user = c.user.as_str(),
        host = c.hostname.as_str(),
        os = c.os.as_str()
    ));
    info_lines(ui, &tab.users_line(), &tab.screen_line());
    ui.separator();
    if tab.nav_open {
        egui::Panel::right(("nav", tab.info.id.0))
            .frame(super::side_frame(ui))
            .resizable(true)
            .default_size(260.0)
            .min_size(200.0)
            .show(ui, |ui| {
                nav::nav(ui, tab, outbox, rt.textures.get(&tab.info.id))
            });
    }
    let said = egui::Panel::right(("chat-box", tab.info.id.0))
        .frame(super::side_frame(ui))
        .resizable(true)
        .default_size(330.0)
        .min_size(220.0)
        .show(ui, |ui| chat::chat_box(ui, tab, outbox, settings, scripts))
        .inner;
    let notice = said.or(notice);
    if tab.popped_out {
        popped_out(ui, tab, outbox, rt);
    } else {
        viewer::screen(ui, tab, outbox, rt.textures.get(&tab.info.id));
    }
    notice
}

/// The toolbar. While the relay is being reconnected, what would go to the customer (another
/// monitor, quality, control, keys, clipboard) waits greyed out; scaling and the overlay stay.
fn toolbar(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>, settings: &mut Settings) {
    let live = tab.screen != Screen::Reconnecting;
    ui.horizontal(|ui| {
        screen_controls(ui, tab, outbox, live, settings);
        ui.separator();
        ui.add_enabled_ui(live, |ui| input_controls(ui, tab, outbox))
            .response
            .on_disabled_hover_text(t!("viewer-reconnecting"));
    });
}

/// Transfer, Invite, Leave Session and End Session (the last behind a confirmation).
fn desk_controls(
    ui: &mut Ui,
    tab: &SessionTab,
    nav_open: &mut bool,
    outbox: &mut Vec<Command>,
    dialog: &mut Option<DeskDialog>,
) {
    let session = tab.info.id;
    let owner = tab.owner();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(owner, egui::Button::new(t!("session-transfer")))
            .on_disabled_hover_text(t!("session-transfer-owner"))
            .clicked()
        {
            outbox.push(Command::Directory);
            *dialog = Some(DeskDialog::Transfer { session, to: None });
        }
        if ui
            .add_enabled(!tab.masked(), egui::Button::new(t!("session-invite")))
            .on_disabled_hover_text(t!("session-masked-watch"))
            .clicked()
        {
            outbox.push(Command::Directory);
            *dialog = Some(DeskDialog::Invite {
                session,
                to: None,
                masked: false,
            });
        }
        ui.separator();
        if ui
            .button(t!("session-leave"))
            .on_hover_text(t!("session-leave-hint"))
            .clicked()
        {
            outbox.push(Command::Leave(session));
        }
        if owner && ui.button(t!("session-end")).clicked() {
            *dialog = Some(DeskDialog::ConfirmEnd { session });
        }
        ui.separator();
        let arrow = if *nav_open {
            t!("session-details-hide")
        } else {
            t!("session-details-show")
        };
        if ui
            .button(arrow)
            .on_hover_text(t!("session-details-hint"))
            .clicked()
        {
            *nav_open = !*nav_open;
        }
    });
}

/// Next Screen, scale (remembered for the next sessions), quality and the stats overlay; Next
/// Screen and quality only when `live`.
fn screen_controls(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    live: bool,
    settings: &mut Settings,
) {
    let id = tab.info.id;
    let n = tab.monitor_count().max(1);
    if ui
        .add_enabled(live, egui::Button::new(t!("session-next-screen", n = n)))
        .clicked()
        && n > 1
    {
        tab.monitor = ((usize::from(tab.monitor) + 1) % n) as u8;
        tab.screen = Screen::Connecting;
        outbox.push(Command::SelectMonitor {
            session: id,
            monitor: tab.monitor,
        });
    }
    ui.separator();
    let fit = ui.selectable_value(&mut tab.scale, Scale::Fit, t!("session-fit"));
    let actual = ui.selectable_value(&mut tab.scale, Scale::Actual, t!("session-actual"));
    if fit.clicked() || actual.clicked() {
        settings.scale = tab.scale;
    }
    ui.separator();
    let before = tab.quality;
    ui.add_enabled_ui(live, |ui| {
        egui::ComboBox::from_label(t!("session-quality"))
            .selected_text(quality_label(tab.quality))
            .show_ui(ui, |ui| {
                for q in [Quality::Auto, Quality::Sharp, Quality::Smooth] {
                    ui.selectable_value(&mut tab.quality, q, quality_label(q));
                }
            });
    });
    if tab.quality != before {
        outbox.push(Command::SetQuality {
            session: id,
            quality: tab.quality,
        });
    }
    ui.checkbox(&mut tab.overlay, t!("session-stats"));
    if ui
        .button(t!("session-full-screen"))
        .on_hover_text(t!("session-full-screen-hint"))
        .clicked()
    {
        tab.popped_out = true;
    }
}

/// Remote control, Send Keys (while in control) and clipboard sync.
fn input_controls(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>) {
    let id = tab.info.id;
    control_button(ui, tab, outbox);
    ui.add_enabled_ui(tab.control == Grant::On, |ui| {
        ui.menu_button(t!("session-send-keys"), |ui| {
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
    if ui
        .checkbox(&mut sync, t!("session-sync-clipboard"))
        .changed()
    {
        outbox.push(Command::ClipboardSync {
            session: id,
            on: sync,
        });
        tab.clipboard = if sync { Grant::Asked } else { Grant::Off };
    }
}

/// The tools row: Transfer Files and Push URL. Returns a notice to show.
fn tools(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>) -> Option<String> {
    let id = tab.info.id;
    let mut notice = None;
    ui.horizontal(|ui| {
        if ui
            .selectable_label(tab.files_open, t!("session-files"))
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
        let l = ui.label(t!("session-url"));
        ui.add(
            egui::TextEdit::singleline(&mut tab.url)
                .hint_text("https://…")
                .desired_width(280.0),
        )
        .labelled_by(l.id);
        if ui.button(t!("chat-push-url")).clicked() {
            match tether_protocol::files::check_url(&tab.url) {
                Ok(url) => {
                    notice = Some(t!("session-pushing", url = url.as_str()));
                    outbox.push(Command::PushUrl { session: id, url });
                }
                Err(e) => notice = Some(t!("session-not-pushed", why = e.to_string())),
            }
        }
    });
    notice
}

/// The remote control button, with a green dot while control is on.
fn control_button(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>) {
    let id = tab.info.id;
    match tab.control {
        Grant::On => {
            dot(ui, Color32::from_rgb(40, 200, 60));
            if ui.button(t!("session-stop-control")).clicked() {
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
            ui.add_enabled(false, egui::Button::new(t!("session-waiting-customer")));
        }
        Grant::Off | Grant::Denied => {
            if ui.button(t!("session-request-control")).clicked() {
                outbox.push(Command::Control {
                    session: id,
                    on: true,
                });
                tab.control = Grant::Asked;
            }
        }
    }
}

/// The screen in a full-screen window of its own; Esc (or closing it) brings it back to the tab.
fn popped_out(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>, rt: &mut Runtime) {
    ui.horizontal(|ui| {
        ui.label(t!("session-popped-out"));
        if ui.button(t!("session-back")).clicked() {
            tab.popped_out = false;
        }
    });
    let id = egui::ViewportId::from_hash_of(("viewer", tab.info.id.0));
    let builder = egui::ViewportBuilder::default()
        .with_title(format!("{} — Tether", tab.title()))
        .with_fullscreen(true);
    let remote = rt.textures.get(&tab.info.id);
    let back = ui.ctx().show_viewport_immediate(id, builder, |ui, _| {
        egui::CentralPanel::default().show(ui, |ui| {
            viewer::screen(ui, tab, outbox, remote);
        });
        ui.input(|i| i.key_pressed(egui::Key::Escape) || i.viewport().close_requested())
    });
    if back {
        tab.popped_out = false;
    }
}

/// A quality mode in the console's language.
fn quality_label(q: Quality) -> String {
    t!(match q {
        Quality::Auto => "quality-auto",
        Quality::Sharp => "quality-sharp",
        Quality::Smooth => "quality-smooth",
    })
}
