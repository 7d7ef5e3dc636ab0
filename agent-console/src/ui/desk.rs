//! The support desk's panels: the queue view (own queue, team queues with favourite stars, the
//! general queue), the arrival alerts in the lower-left corner, the transfer, invite and end
//! dialogs, and the console's settings.

use egui::{Color32, RichText, Ui};
use tether_i18n::t;
use tether_protocol::desk::{EntryKind, QueueEntry, QueueId, Target, Via};

use crate::queue::{Queues, wait_time};
use crate::state::{Command, Desk, DeskDialog, Settings, now_unix};

/// How many alerts are shown at once (the newest); the rest wait in the queues.
const ALERTS_SHOWN: usize = 3;

/// A queue's heading.
pub fn queue_title(q: &QueueId, me: &str) -> String {
    match q {
        QueueId::Personal(a) if a == me => t!("desk-my-queue"),
        QueueId::Personal(a) => t!("queue-of", agent = a.as_str()),
        QueueId::Team(team) => t!("desk-team", team = team.as_str()),
        QueueId::General => t!("queue-general"),
    }
}

/// The queue view: every queue the agent sees, favourites first.
pub(super) fn queues(
    ui: &mut Ui,
    desk: &mut Desk,
    outbox: &mut Vec<Command>,
    settings: &mut Settings,
) {
    ui.heading(t!("queue-title"));
    let key = desk.settings_key();
    let favourites = settings.favourites_of(&key);
    let now = now_unix();
    for q in Queues::listed(&desk.agent, &desk.teams, &favourites) {
        let entries = desk.queues.of(&q);
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            if let QueueId::Team(team) = &q {
                let fav = favourites.contains(team);
                if ui
                    .button(if fav { "★" } else { "☆" })
                    .on_hover_text(if fav {
                        t!("queue-fav-on")
                    } else {
                        t!("queue-fav-off")
                    })
                    .clicked()
                {
                    settings.toggle_favourite(&key, team);
                }
            }
            ui.strong(queue_title(&q, &desk.agent));
            ui.label(t!("queue-count", n = entries.len()));
        });
        if entries.is_empty() {
            continue;
        }
        egui::Grid::new(("queue", q.to_string()))
            .num_columns(5)
            .striped(true)
            .spacing([14.0, 4.0])
            .show(ui, |ui| {
                for h in [
                    t!("queue-customer"),
                    t!("queue-computer"),
                    t!("queue-waiting"),
                    t!("queue-request"),
                    String::new(),
                ] {
                    ui.label(RichText::new(h).small().strong());
                }
                ui.end_row();
                for e in entries {
                    entry_row(ui, e, desk.queues.focus == Some(e.session), now, outbox);
                    ui.end_row();
                }
            });
    }
}

fn entry_row(ui: &mut Ui, e: &QueueEntry, focused: bool, now: u64, outbox: &mut Vec<Command>) {
    let name = RichText::new(&e.customer.name);
    ui.label(if focused {
        name.strong().color(Color32::from_rgb(40, 120, 220))
    } else {
        name
    });
    ui.label(format!("{} ({})", e.customer.os, e.customer.hostname));
    ui.label(wait_time(now.saturating_sub(e.waiting_since)));
    // What the customer wrote on the portal, shortened (the whole text on hover); otherwise
    // how the entry came.
    match &e.customer.request {
        Some(r) => {
            let words = super::request_words(r);
            let short: String = words.chars().take(80).collect();
            let more = if short.len() < words.len() { "…" } else { "" };
            ui.label(format!("{short}{more}"))
                .on_hover_text(format!("{words}\n{}", describe(&e.kind)));
        }
        None => {
            ui.label(describe(&e.kind));
        }
    }
    let label = match e.kind {
        EntryKind::Invitation { .. } => t!("queue-join"),
        _ => t!("queue-accept"),
    };
    if ui.button(label).clicked() {
        outbox.push(Command::Accept(e.session));
    }
}

/// The alerts of new arrivals, in the lower-left corner: who, from where, how long, and View
/// and Accept.
pub(super) fn alerts(ctx: &egui::Context, desk: &mut Desk, outbox: &mut Vec<Command>) {
    if desk.queues.alerts.is_empty() {
        return;
    }
    let now = now_unix();
    let shown: Vec<QueueEntry> = desk
        .queues
        .alerts
        .iter()
        .rev()
        .take(ALERTS_SHOWN)
        .cloned()
        .collect();
    let more = desk.queues.alerts.len().saturating_sub(ALERTS_SHOWN);
    egui::Area::new(egui::Id::unique("queue-alerts"))
        .anchor(egui::Align2::LEFT_BOTTOM, [10.0, -36.0])
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            for e in shown {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.set_width(320.0);
                    let what = match e.kind {
                        EntryKind::Invitation { .. } => t!("alert-invitation"),
                        EntryKind::Transferred { .. } => t!("alert-transferred"),
                        _ => t!("alert-new"),
                    };
                    ui.strong(format!("{what} — {}", queue_title(&e.queue, &desk.agent)));
                    ui.label(RichText::new(&e.customer.name).size(16.0));
                    ui.label(t!(
                        "alert-os-waiting",
                        os = e.customer.os.as_str(),
                        wait = wait_time(now.saturating_sub(e.waiting_since))
                    ));
                    ui.label(RichText::new(describe(&e.kind)).small());
                    ui.horizontal(|ui| {
                        if ui.button(t!("alert-view")).clicked() {
                            desk.selected = None;
                            desk.queues.focus = Some(e.session);
                            desk.queues.dismiss(e.session);
                        }
                        if ui.button(t!("queue-accept")).clicked() {
                            outbox.push(Command::Accept(e.session));
                            desk.queues.dismiss(e.session);
                        }
                        if ui.button(t!("alert-dismiss")).clicked() {
                            desk.queues.dismiss(e.session);
                        }
                    });
                });
                ui.add_space(4.0);
            }
            if more > 0 {
                ui.label(t!("alert-more", n = more));
            }
        });
}

/// A dialog's buttons, as clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Nothing yet.
    Open,
    /// The confirm button.
    Confirm,
    /// Cancel.
    Cancel,
}

/// The dialog open over the desk, if any.
pub(super) fn dialog(ctx: &egui::Context, desk: &mut Desk, outbox: &mut Vec<Command>) {
    let Some(mut dialog) = desk.dialog.take() else {
        return;
    };
    let mut open = true;
    let mut answer = Answer::Open;
    let title = match &dialog {
        DeskDialog::Transfer { .. } => t!("dialog-transfer-title"),
        DeskDialog::Invite { .. } => t!("dialog-invite-title"),
        DeskDialog::ConfirmEnd { .. } => t!("dialog-end-title"),
    };
    egui::Window::new(title)
        .collapsible(false)
        .resizable(false)
        .open(&mut open)
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            answer = dialog_body(ui, desk, &mut dialog, outbox);
        });
    if open && answer == Answer::Open {
        desk.dialog = Some(dialog);
    }
}

fn dialog_body(
    ui: &mut Ui,
    desk: &Desk,
    dialog: &mut DeskDialog,
    outbox: &mut Vec<Command>,
) -> Answer {
    match dialog {
        DeskDialog::Transfer { session, to } => {
            ui.label(t!("dialog-transfer-intro"));
            targets(ui, desk, to);
            let a = buttons(ui, &t!("dialog-transfer"), to.is_some());
            if let (Answer::Confirm, Some(to)) = (a, to.clone()) {
                outbox.push(Command::Transfer {
                    session: *session,
                    to,
                });
            }
            a
        }
        DeskDialog::Invite {
            session,
            to,
            masked,
        } => {
            ui.label(t!("dialog-invite-intro"));
            targets(ui, desk, to);
            ui.checkbox(masked, t!("dialog-masked"));
            let a = buttons(ui, &t!("dialog-invite"), to.is_some());
            if let (Answer::Confirm, Some(to)) = (a, to.clone()) {
                outbox.push(Command::Invite {
                    session: *session,
                    to,
                    masked: *masked,
                });
            }
            a
        }
        DeskDialog::ConfirmEnd { session } => {
            let who = desk
                .sessions
                .iter()
                .find(|t| t.info.id == *session)
                .map(|t| t.title())
                .unwrap_or_default();
            ui.label(t!("dialog-end-question", who = who));
            let a = buttons(ui, &t!("session-end"), true);
            if a == Answer::Confirm {
                outbox.push(Command::EndForAll(*session));
            }
            a
        }
    }
}

/// The confirm and Cancel buttons.
fn buttons(ui: &mut Ui, confirm: &str, enabled: bool) -> Answer {
    let mut answer = Answer::Open;
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(enabled, egui::Button::new(confirm))
            .clicked()
        {
            answer = Answer::Confirm;
        }
        if ui.button(t!("dialog-cancel")).clicked() {
            answer = Answer::Cancel;
        }
    });
    answer
}

/// The teams, the online agents and the general queue to choose from.
fn targets(ui: &mut Ui, desk: &Desk, to: &mut Option<Target>) {
    let Some(dir) = &desk.directory else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(t!("dialog-asking"));
        });
        return;
    };
    ui.add_space(4.0);
    ui.strong(t!("dialog-teams"));
    for t in &dir.teams {
        let label = t!("dialog-team-online", team = t.name.as_str(), n = t.online);
        ui.radio_value(to, Some(Target::Team(t.name.clone())), label);
    }
    ui.radio_value(to, Some(Target::General), t!("queue-general"));
    ui.add_space(4.0);
    ui.strong(t!("dialog-agents-online"));
    let mut any = false;
    for a in dir
        .agents
        .iter()
        .filter(|a| a.online && a.login != desk.agent)
    {
        any = true;
        let label = format!("{} ({})", a.display, a.login);
        ui.radio_value(to, Some(Target::Agent(a.login.clone())), label);
    }
    if !any {
        ui.label(RichText::new(t!("dialog-no-agent")).weak());
    }
}

/// The console's settings: the download folder and the tab markers' thresholds.
pub(super) fn settings_window(ctx: &egui::Context, open: &mut bool, settings: &mut Settings) {
    egui::Window::new(t!("desk-settings"))
        .collapsible(false)
        .resizable(false)
        .open(open)
        .show(ctx, |ui| {
            ui.label(t!(
                "settings-downloads",
                dir = settings.download_dir.display().to_string()
            ));
            ui.add_space(6.0);
            language(ui, settings);
            ui.add_space(6.0);
            ui.strong(t!("settings-markers"));
            let a = &mut settings.activity;
            ui.horizontal(|ui| {
                ui.label(t!("settings-amber"));
                ui.add(egui::DragValue::new(&mut a.amber_after_mins).range(1..=120));
                ui.label(t!("settings-minutes"));
            });
            ui.horizontal(|ui| {
                ui.label(t!("settings-red"));
                ui.add(egui::DragValue::new(&mut a.red_after_mins).range(1..=240));
                ui.label(t!("settings-minutes"));
            });
            if a.red_after_mins < a.amber_after_mins {
                a.red_after_mins = a.amber_after_mins;
            }
        });
}

/// The console's language: the system's, English or French; applied at once.
fn language(ui: &mut Ui, settings: &mut Settings) {
    let before = settings.lang.clone();
    let shown = match settings.lang.as_deref() {
        Some("fr") => "Français".to_string(),
        Some("en") => "English".to_string(),
        _ => t!("settings-lang-system"),
    };
    egui::ComboBox::from_label(t!("settings-lang"))
        .selected_text(shown)
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut settings.lang, None, t!("settings-lang-system"));
            ui.selectable_value(&mut settings.lang, Some("en".into()), "English");
            ui.selectable_value(&mut settings.lang, Some("fr".into()), "Français");
        });
    if settings.lang != before {
        tether_i18n::set_lang(
            settings
                .lang
                .as_deref()
                .and_then(tether_i18n::Lang::parse)
                .unwrap_or_else(tether_i18n::Lang::from_env),
        );
    }
}

/// Why an entry is in a queue, in the console's language.
pub fn describe(kind: &EntryKind) -> String {
    match kind {
        EntryKind::Waiting {
            via: Via::AgentKey(a),
        } => t!("entry-agent-key", agent = a.as_str()),
        EntryKind::Waiting {
            via: Via::TeamKey(team),
        } => t!("entry-team-key", team = team.as_str()),
        EntryKind::Waiting {
            via: Via::Portal(queue),
        } => t!("entry-portal", queue = queue.as_str()),
        EntryKind::Transferred { from } => t!("entry-transferred", from = from.as_str()),
        EntryKind::Invitation { from, masked: true } => {
            t!("entry-invitation-masked", from = from.as_str())
        }
        EntryKind::Invitation { from, .. } => t!("entry-invitation", from = from.as_str()),
        EntryKind::Returned { from, lost: true } => t!("entry-returned-lost", from = from.as_str()),
        EntryKind::Returned { from, .. } => t!("entry-returned", from = from.as_str()),
    }
}
