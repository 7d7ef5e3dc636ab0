//! A session's Chat box: the log (messages and status notes), To: (everyone, representatives,
//! one representative), the message field with Send or Enter, the font size, and an export of
//! the transcript.

use egui::{Color32, RichText, Ui};
use tether_i18n::t;
use tether_protocol::chat::{
    Audience, ChatLine, HostNote, Script, Speaker, StatusNote, check_text,
};
use tether_protocol::desk::MemberRole;

use crate::state::{Command, SessionTab, Settings};

/// Whom `to` names, for the To: menu.
fn audience_label(tab: &SessionTab, to: &Audience) -> String {
    match to {
        Audience::Everyone => t!("chat-everyone"),
        Audience::Representatives => t!("chat-representatives"),
        Audience::Agent(login) => tab
            .members
            .iter()
            .find(|m| &m.login == login)
            .map(|m| m.display.clone())
            .unwrap_or_else(|| login.clone()),
    }
}

/// The Chat box of a session tab.
pub(super) fn chat_box(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    settings: &mut Settings,
    scripts: &[Script],
) -> Option<String> {
    let mut notice = None;
    let size = settings.chat_font.clamp(10.0, 28.0);
    ui.horizontal(|ui| {
        ui.strong(t!("chat-title"));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .button(t!("chat-export"))
                .on_hover_text(t!("chat-export-hint"))
                .clicked()
            {
                let path = settings
                    .download_dir
                    .join(format!("tether-chat-{}.txt", tab.info.id));
                notice = Some(t!("chat-saving", path = path.display().to_string()));
                outbox.push(Command::SaveText {
                    path,
                    text: tab.transcript(),
                });
            }
            if ui.button("A+").on_hover_text(t!("chat-larger")).clicked() {
                settings.chat_font = (size + 1.0).min(28.0);
            }
            if ui.button("A-").on_hover_text(t!("chat-smaller")).clicked() {
                settings.chat_font = (size - 1.0).max(10.0);
            }
        });
    });
    let me = tab.info.me;
    let me_login = tab.my_login().to_string();
    egui::ScrollArea::vertical()
        .id_salt(("chat-log", tab.info.id.0))
        // Room below for To:, the script menus and the message row.
        .max_height(
            (ui.available_height() - if scripts.is_empty() { 70.0 } else { 100.0 }).max(80.0),
        )
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .show(ui, |ui| {
            // The session's details head the log.
            let c = &tab.info.customer;
            ui.label(
                RichText::new(t!(
                    "chat-head",
                    id = tab.info.id.to_string(),
                    queue = super::desk::queue_title(&tab.info.origin, &me_login),
                    name = c.name.as_str(),
                    user = c.user.as_str(),
                    host = c.hostname.as_str(),
                    os = c.os.as_str()
                ))
                .weak()
                .size(size - 1.0),
            );
            if let Some(r) = &c.request {
                ui.label(RichText::new(super::request_words(r)).size(size - 1.0));
            }
            ui.separator();
            for e in &tab.chat {
                match &e.line {
                    ChatLine::Note(n) => {
                        ui.label(
                            RichText::new(format!("* {}", note_text(n, &me_login)))
                                .italics()
                                .weak()
                                .size(size),
                        );
                    }
                    ChatLine::Message { from, to, text } => {
                        let mine = matches!(from, Speaker::Agent { id, .. } if *id == me);
                        let whom = match to {
                            Audience::Everyone => String::new(),
                            other => format!(
                                " {}",
                                t!("chat-to-whom", whom = audience_label(tab, other))
                            ),
                        };
                        let colour = match from {
                            Speaker::Customer(_) => Color32::from_rgb(60, 140, 220),
                            _ if mine => Color32::from_rgb(120, 120, 120),
                            _ => Color32::from_rgb(40, 160, 90),
                        };
                        ui.horizontal_wrapped(|ui| {
                            ui.label(
                                RichText::new(format!("{}{whom}:", from.name()))
                                    .strong()
                                    .color(colour)
                                    .size(size),
                            );
                            ui.label(RichText::new(text).size(size));
                        });
                    }
                }
            }
        });
    ui.horizontal(|ui| {
        let shown = audience_label(tab, &tab.to);
        let mut to = tab.to.clone();
        egui::ComboBox::from_label(t!("chat-to"))
            .selected_text(shown)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut to, Audience::Everyone, t!("chat-everyone"));
                ui.selectable_value(
                    &mut to,
                    Audience::Representatives,
                    t!("chat-representatives"),
                );
                for m in tab
                    .members
                    .iter()
                    .filter(|m| m.id != me && m.role != MemberRole::Host)
                {
                    ui.selectable_value(&mut to, Audience::Agent(m.login.clone()), &m.display);
                }
            });
        tab.to = to;
    });
    script_menus(ui, tab, outbox, scripts);
    let mut send = false;
    ui.horizontal(|ui| {
        let l = ui.label(t!("chat-message"));
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut tab.message)
                    .hint_text(t!("chat-message-hint"))
                    .desired_width(ui.available_width() - 60.0),
            )
            .labelled_by(l.id);
        if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            send = true;
            field.request_focus();
        }
        if ui.button(t!("chat-send")).clicked() {
            send = true;
        }
    });
    if send {
        match check_text(&tab.message) {
            Ok(text) => {
                outbox.push(Command::Say {
                    session: tab.info.id,
                    to: tab.to.clone(),
                    text,
                });
                tab.message.clear();
            }
            Err(e) => notice = Some(t!("chat-not-sent", why = e.to_string())),
        }
    }
    notice
}

/// The scripted messages (picked into the field) and addresses (sent as a link, or pushed).
fn script_menus(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>, scripts: &[Script]) {
    if scripts.is_empty() {
        return;
    }
    let session = tab.info.id;
    ui.horizontal(|ui| {
        ui.menu_button(t!("chat-scripted-messages"), |ui| {
            for s in scripts.iter().filter(|s| s.url.is_none()) {
                if ui
                    .button(format!("{} ({})", s.title, s.scope))
                    .on_hover_text(&s.text)
                    .clicked()
                {
                    tab.message = s.text.clone();
                    ui.close();
                }
            }
        });
        ui.menu_button(t!("chat-scripted-urls"), |ui| {
            for s in scripts.iter() {
                let Some(url) = &s.url else { continue };
                ui.menu_button(format!("{} ({})", s.title, s.scope), |ui| {
                    ui.label(RichText::new(url).small());
                    if ui.button(t!("chat-send-link")).clicked() {
                        outbox.push(Command::Say {
                            session,
                            to: tab.to.clone(),
                            text: format!("{} {url}", s.text),
                        });
                        ui.close();
                    }
                    if ui.button(t!("chat-push-url")).clicked() {
                        outbox.push(Command::PushUrl {
                            session,
                            url: url.clone(),
                        });
                        ui.close();
                    }
                });
            }
        });
    });
}

/// A status note in the console's language.
pub(super) fn note_text(n: &StatusNote, me: &str) -> String {
    let q = |q| super::desk::queue_title(q, me);
    match n {
        StatusNote::Waiting(queue) => t!("note-waiting", queue = q(queue)),
        StatusNote::Joined { name, masked: true } => t!("note-joined-masked", name = name.as_str()),
        StatusNote::Joined { name, .. } => t!("note-joined", name = name.as_str()),
        StatusNote::Left(name) => t!("note-left", name = name.as_str()),
        StatusNote::Lost(name) => t!("note-lost", name = name.as_str()),
        StatusNote::CustomerAway => t!("note-customer-away"),
        StatusNote::CustomerBack => t!("note-customer-back"),
        StatusNote::AgentAway(name) => t!("note-agent-away", name = name.as_str()),
        StatusNote::AgentBack(name) => t!("note-agent-back", name = name.as_str()),
        StatusNote::Transferred { by, to } => {
            t!("note-transferred", by = by.as_str(), queue = q(to))
        }
        StatusNote::Invited { by, to, masked } => t!(
            if *masked {
                "note-invited-masked"
            } else {
                "note-invited"
            },
            by = by.as_str(),
            queue = q(to)
        ),
        StatusNote::Host(h) => match h {
            HostNote::ControlGranted(n) => t!("note-control-granted", name = n.as_str()),
            HostNote::ControlStopped(n) => t!("note-control-stopped", name = n.as_str()),
            HostNote::ClipboardGranted(n) => t!("note-clipboard", name = n.as_str()),
            HostNote::FileReceived { name, size } => {
                t!(
                    "note-file-received",
                    name = name.as_str(),
                    size = super::human(*size as f64)
                )
            }
            HostNote::FileSent { name, size } => {
                t!(
                    "note-file-sent",
                    name = name.as_str(),
                    size = super::human(*size as f64)
                )
            }
            HostNote::UrlOpened(u) => t!("note-url", url = u.as_str()),
        },
    }
}
