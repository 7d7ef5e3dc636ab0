//! Transfer Files: send files or folders picked in a file dialog or dropped on the session tab,
//! browse the customer's files as a sortable table (folders first) and download a selection into
//! a folder the agent picks, and follow every transfer (progress, rate, time left, Cancel, Show in
//! folder).

use egui::{Color32, RichText, Ui};
use egui_extras::{Column, TableBuilder};
use tether_i18n::t;
use tether_protocol::msg::SessionId;

use crate::state::{
    Command, Desk, FileSort, RemoteDir, SessionTab, Settings, SortKey, TransferStatus,
};

use super::human;

/// What a file dialog picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Files to send to the customer.
    SendFiles,
    /// A folder to send to the customer.
    SendFolder,
    /// The local folder downloads go into.
    DownloadFolder,
}

/// An open file dialog and what it is for.
pub struct FileDialog {
    /// What it picks.
    pub pick: Pick,
    /// For which session.
    pub session: SessionId,
    /// The dialog.
    pub dialog: egui_file::FileDialog,
}

impl FileDialog {
    /// Opens a dialog for `pick` in `start`.
    pub fn open(pick: Pick, session: SessionId, start: &std::path::Path) -> Self {
        let (dialog, title) = match pick {
            Pick::SendFiles => (
                egui_file::FileDialog::open_file().multi_select(true),
                t!("files-send-files-title"),
            ),
            Pick::SendFolder => (
                egui_file::FileDialog::select_folder(),
                t!("files-send-folder-title"),
            ),
            Pick::DownloadFolder => (
                egui_file::FileDialog::select_folder(),
                t!("files-download-title"),
            ),
        };
        let mut dialog = dialog
            .initial_path(start)
            .title(&title)
            .show_new_folder(pick == Pick::DownloadFolder)
            .show_rename(false)
            .default_size([640.0, 420.0])
            .keep_on_top(true);
        dialog.open();
        Self {
            pick,
            session,
            dialog,
        }
    }
}

/// Shows the open file dialog, if any, and acts on what it picked.
pub(super) fn dialog(
    ctx: &egui::Context,
    desk: &mut Desk,
    outbox: &mut Vec<Command>,
    settings: &mut Settings,
    rt: &mut super::Runtime,
) {
    let Some(open) = rt.dialog.as_mut() else {
        return;
    };
    open.dialog.show(ctx);
    match open.dialog.state() {
        egui_file::State::Open => return,
        egui_file::State::Selected => {
            let picked = picked(&open.dialog);
            let session = open.session;
            match open.pick {
                Pick::SendFiles | Pick::SendFolder => {
                    settings.send_dir = open.dialog.directory().to_path_buf();
                    send(desk, outbox, session, picked);
                }
                Pick::DownloadFolder => {
                    if let Some(dir) = picked.into_iter().next() {
                        desk.notice =
                            Some(t!("settings-downloads", dir = dir.display().to_string()));
                        settings.download_dir = dir;
                    }
                }
            }
        }
        egui_file::State::Closed | egui_file::State::Cancelled => {}
    }
    rt.dialog = None;
}

/// What a dialog picked: its selection, or the one path typed or clicked.
fn picked(dialog: &egui_file::FileDialog) -> Vec<std::path::PathBuf> {
    let mut picked: Vec<std::path::PathBuf> = dialog
        .selection()
        .into_iter()
        .map(|p| p.to_path_buf())
        .collect();
    if picked.is_empty()
        && let Some(p) = dialog.path()
    {
        picked.push(p.to_path_buf());
    }
    picked
}

/// Sends files and folders to the customer of `session`, and shows the files panel.
fn send(
    desk: &mut Desk,
    outbox: &mut Vec<Command>,
    session: SessionId,
    picked: Vec<std::path::PathBuf>,
) {
    let n = picked.len();
    outbox.extend(
        picked
            .into_iter()
            .map(|local| Command::Upload { session, local }),
    );
    if let Some(t) = desk.tab_mut(session) {
        t.files_open = true;
        desk.notice = Some(t!("files-sending", n = n, who = t.title()));
    }
}

/// Files and folders dropped on the window while this tab is shown go to the customer; while
/// they hover, the tab says so.
pub(super) fn take_dropped(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>) {
    let (hovered, dropped) = ui.ctx().input(|i| {
        (
            !i.raw.hovered_files.is_empty(),
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect::<Vec<_>>(),
        )
    });
    if hovered {
        let rect = ui.max_rect();
        let painter = ui.ctx().layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("tether-drop-hint"),
        ));
        painter.rect_filled(rect, 6.0, Color32::from_black_alpha(160));
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            t!("files-drop", who = tab.title()),
            egui::FontId::proportional(22.0),
            Color32::WHITE,
        );
    }
    if dropped.is_empty() {
        return;
    }
    let id = tab.info.id;
    if !tab.files_open {
        tab.files_open = true;
        if tab.remote.is_none() {
            outbox.push(Command::ListRemote {
                session: id,
                path: String::new(),
            });
        }
    }
    outbox.extend(
        dropped
            .into_iter()
            .map(|local| Command::Upload { session: id, local }),
    );
}

/// The Transfer Files panel of a session.
pub(super) fn panel(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    settings: &Settings,
    dialog: &mut Option<FileDialog>,
) {
    let id = tab.info.id;
    ui.group(|ui| {
        ui.horizontal(|ui| {
            if ui.button(t!("files-send-files")).clicked() {
                *dialog = Some(FileDialog::open(Pick::SendFiles, id, &settings.send_dir));
            }
            if ui.button(t!("files-send-folder")).clicked() {
                *dialog = Some(FileDialog::open(Pick::SendFolder, id, &settings.send_dir));
            }
            ui.label(RichText::new(t!("files-or-drop")).weak());
        });
        ui.horizontal(|ui| {
            ui.label(t!(
                "files-download-to",
                dir = settings.download_dir.display().to_string()
            ));
            if ui.button(t!("files-change")).clicked() {
                *dialog = Some(FileDialog::open(
                    Pick::DownloadFolder,
                    id,
                    &settings.download_dir,
                ));
            }
        });
        ui.separator();
        remote_files(ui, tab, outbox, settings);
        transfers(ui, tab, outbox);
    });
}

/// A date and time for people, in the agent's time zone.
pub(super) fn local_time(secs: u64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(secs.min(i64::MAX as u64) as i64) else {
        return String::new();
    };
    ts.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// The customer's folder as a table: Up, Refresh, Download selected, and the entries.
fn remote_files(ui: &mut Ui, tab: &mut SessionTab, outbox: &mut Vec<Command>, settings: &Settings) {
    let id = tab.info.id;
    let Some(r) = tab.remote.as_mut() else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(t!("files-loading"));
        });
        return;
    };
    let mut go = remote_toolbar(ui, r, id, outbox, settings);
    let (open, toggle) = remote_table(ui, r, &mut tab.sort, id);
    go = go.or(open);
    if let Some(name) = toggle
        && !r.selected.remove(&name)
    {
        r.selected.insert(name);
    }
    if let Some(path) = go {
        outbox.push(Command::ListRemote { session: id, path });
    }
}

/// Where the customer's folder is, Up, Refresh and Download selected. Returns the folder to
/// list, if one was asked for.
fn remote_toolbar(
    ui: &mut Ui,
    r: &mut RemoteDir,
    id: SessionId,
    outbox: &mut Vec<Command>,
    settings: &Settings,
) -> Option<String> {
    let mut go = None;
    ui.horizontal(|ui| {
        ui.label(RichText::new(t!("files-customers", path = r.path.as_str())).strong());
        if let Some(p) = &r.parent
            && ui.button(t!("files-up")).clicked()
        {
            go = Some(p.clone());
        }
        if ui.button(t!("files-refresh")).clicked() {
            go = Some(r.path.clone());
        }
        let n = r.selected.len();
        if ui
            .add_enabled(
                n > 0,
                egui::Button::new(t!("files-download-selected", n = n)),
            )
            .clicked()
        {
            for name in &r.selected {
                let dir = r.entries.iter().any(|e| &e.name == name && e.dir);
                outbox.push(Command::Download {
                    session: id,
                    remote: r.full_path(name),
                    dir,
                    into: settings.download_dir.clone(),
                });
            }
            r.selected.clear();
        }
    });
    go
}

/// A column header that sorts by `key` when clicked, with an arrow on the sorted column.
fn sort_header(ui: &mut Ui, sort: &mut FileSort, key: SortKey, label: &str) {
    let arrow = match (sort.key == key, sort.descending) {
        (true, false) => " ⬆",
        (true, true) => " ⬇",
        (false, _) => "",
    };
    if ui
        .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
        .on_hover_text(t!("files-sort"))
        .clicked()
    {
        sort.click(key);
    }
}

/// The entries, sorted as the agent chose. Returns a folder double-clicked (to open) and an
/// entry clicked (to select or unselect).
fn remote_table(
    ui: &mut Ui,
    r: &RemoteDir,
    sort: &mut FileSort,
    id: SessionId,
) -> (Option<String>, Option<String>) {
    let (mut go, mut toggle) = (None, None);
    let rows = sort.sorted(&r.entries);
    TableBuilder::new(ui)
        .id_salt(("remote-files", id.0))
        .striped(true)
        .max_scroll_height(220.0)
        .column(Column::remainder().at_least(200.0).clip(true))
        .column(Column::auto().at_least(80.0))
        .column(Column::auto().at_least(130.0))
        .header(20.0, |mut h| {
            h.col(|ui| sort_header(ui, sort, SortKey::Name, &t!("files-name")));
            h.col(|ui| sort_header(ui, sort, SortKey::Size, &t!("files-size")));
            h.col(|ui| sort_header(ui, sort, SortKey::Modified, &t!("files-modified")));
        })
        .body(|mut body| {
            for e in rows {
                body.row(20.0, |mut row| {
                    row.col(|ui| {
                        let resp = entry_label(ui, e, r.selected.contains(&e.name));
                        if resp.double_clicked() && e.dir {
                            go = Some(r.full_path(&e.name));
                        } else if resp.clicked() {
                            toggle = Some(e.name.clone());
                        }
                    });
                    row.col(|ui| {
                        ui.label(if e.dir {
                            String::new()
                        } else {
                            human(e.size as f64)
                        });
                    });
                    row.col(|ui| {
                        ui.label(e.modified.map(local_time).unwrap_or_default());
                    });
                });
            }
        });
    (go, toggle)
}

fn entry_label(ui: &mut Ui, e: &tether_protocol::files::Entry, selected: bool) -> egui::Response {
    let label = if e.dir {
        format!("🗀 {}/", e.name)
    } else {
        e.name.clone()
    };
    ui.selectable_label(selected, label)
        .on_hover_text(if e.dir {
            t!("files-click-open")
        } else {
            t!("files-click")
        })
}

/// Transfers of this session, newest first.
fn transfers(ui: &mut Ui, tab: &SessionTab, outbox: &mut Vec<Command>) {
    if tab.transfers.is_empty() {
        return;
    }
    ui.separator();
    for t in tab.transfers.iter().rev().take(10) {
        ui.horizontal(|ui| transfer_row(ui, t, outbox));
    }
}

/// One transfer: its progress, rate and time left with Cancel; or where it was saved; or why
/// it failed.
fn transfer_row(ui: &mut Ui, t: &crate::state::TransferInfo, outbox: &mut Vec<Command>) {
    ui.label(format!("{} {}", if t.upload { "⬆" } else { "⬇" }, t.name));
    match &t.state {
        TransferStatus::Running => {
            let f = tether_files::fraction(t.done, t.total);
            ui.add(egui::ProgressBar::new(f).desired_width(160.0).text(format!(
                "{} / {}",
                human(t.done as f64),
                human(t.total as f64)
            )));
            ui.label(format!("{}/s", human(t.rate)));
            if t.rate > 0.0 && t.total > t.done {
                ui.label(t!(
                    "files-left",
                    secs = ((t.total - t.done) as f64 / t.rate).round()
                ));
            }
            if ui.small_button(t!("dialog-cancel")).clicked() {
                outbox.push(Command::CancelTransfer(t.id));
            }
        }
        TransferStatus::Done { saved, folder } => {
            ui.label(t!("files-done", saved = saved.as_str()));
            if let Some(folder) = folder
                && ui.small_button(t!("files-show")).clicked()
            {
                outbox.push(Command::ShowInFolder(folder.clone()));
            }
        }
        TransferStatus::Failed(why) => {
            ui.colored_label(Color32::from_rgb(200, 60, 60), why);
        }
    }
}
