//! The remote screen: scaled or 1:1, the agent's mouse and keyboard turned into remote input
//! while control is on, and the stats overlay.

use egui::{Color32, Ui};
use tether_i18n::t;
use tether_protocol::input::{Button, Grant, InputEvent, Key};

use super::RemoteScreen;
use crate::backend::ViewStats;
use crate::keys::{key_of, modifier_keys, types_text, viewer_to_remote};
use crate::state::{Command, Scale, Screen, SessionTab};

/// Draws the remote screen of a session (or why there is none yet).
pub(super) fn screen(
    ui: &mut Ui,
    tab: &mut SessionTab,
    outbox: &mut Vec<Command>,
    remote: Option<&RemoteScreen>,
) {
    match (tab.screen.clone(), remote) {
        (Screen::Live { width, height }, Some(remote)) => {
            let tex = &remote.texture;
            let size = egui::vec2(width as f32, height as f32);
            let sense = if tab.control == Grant::On {
                egui::Sense::click_and_drag()
            } else {
                egui::Sense::hover()
            };
            let resp = match tab.scale {
                Scale::Fit => {
                    let avail = ui.available_size();
                    let k = (avail.x / size.x).min(avail.y / size.y).max(0.01);
                    ui.add(egui::Image::from_texture((tex.id(), size * k)).sense(sense))
                }
                Scale::Actual => {
                    let ppp = ui.ctx().pixels_per_point();
                    egui::ScrollArea::both()
                        .show(ui, |ui| {
                            ui.add(egui::Image::from_texture((tex.id(), size / ppp)).sense(sense))
                        })
                        .inner
                }
            };
            if tab.control == Grant::On {
                remote_input(ui, &resp, tab, (width, height), outbox);
            }
            if tab.overlay {
                overlay(ui, resp.rect, &remote.stats);
            }
        }
        (Screen::Away, _) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("viewer-customer-away"));
            });
        }
        (Screen::Reconnecting, _) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("viewer-reconnecting"));
            });
        }
        (Screen::Failed(why), _) => {
            ui.colored_label(
                Color32::from_rgb(200, 60, 60),
                t!("viewer-unavailable", why = why.as_str()),
            );
        }
        _ => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t!("viewer-waiting"));
            });
        }
    }
}

/// Turns the agent's mouse and keyboard on the viewer into remote input.
fn remote_input(
    ui: &mut Ui,
    resp: &egui::Response,
    tab: &mut SessionTab,
    size: (u32, u32),
    outbox: &mut Vec<Command>,
) {
    if resp.clicked() || resp.drag_started() || resp.secondary_clicked() {
        resp.request_focus();
    }
    let view = View {
        shown: resp.rect,
        size,
        focused: resp.has_focus(),
        hovered: resp.hovered(),
    };
    if view.focused {
        // Tab, arrows and Escape go to the customer, not to egui's focus navigation.
        ui.memory_mut(|m| {
            m.set_focus_lock_filter(
                resp.id,
                egui::EventFilter {
                    tab: true,
                    horizontal_arrows: true,
                    vertical_arrows: true,
                    escape: true,
                },
            )
        });
    }
    let mut out: Vec<InputEvent> = Vec::new();
    if let Some(pos) = ui.input(|i| i.pointer.latest_pos())
        && (resp.hovered() || resp.dragged())
    {
        view.move_to(pos, tab, &mut out);
    }
    for ev in ui.input(|i| i.events.clone()) {
        view.translate(ev, tab, &mut out);
    }
    if !view.focused {
        out.extend(tab.mods.release_all());
    }
    let id = tab.info.id;
    outbox.extend(
        out.into_iter()
            .map(|event| Command::Input { session: id, event }),
    );
}

/// Where the remote screen is shown and whether it has the keyboard, this frame.
struct View {
    shown: egui::Rect,
    /// The remote monitor's size.
    size: (u32, u32),
    focused: bool,
    hovered: bool,
}

impl View {
    /// A pointer move to `pos`, if it is over the screen and somewhere new.
    fn move_to(&self, pos: egui::Pos2, tab: &mut SessionTab, out: &mut Vec<InputEvent>) {
        if let Some(p) = viewer_to_remote(pos, self.shown, self.size)
            && tab.pointer != Some(p)
        {
            tab.pointer = Some(p);
            out.push(InputEvent::MouseMove {
                monitor: tab.monitor,
                x: p.0,
                y: p.1,
            });
        }
    }

    /// One egui event as remote input: buttons pressed over the screen (and every release),
    /// the wheel while hovered, keys and text while focused, copy/cut/paste as their shortcuts.
    fn translate(&self, ev: egui::Event, tab: &mut SessionTab, out: &mut Vec<InputEvent>) {
        match ev {
            egui::Event::PointerButton {
                pos,
                button,
                pressed,
                ..
            } => {
                if pressed && !self.shown.contains(pos) {
                    return;
                }
                self.move_to(pos, tab, out);
                out.push(InputEvent::Button {
                    button: button_of(button),
                    down: pressed,
                });
            }
            egui::Event::MouseWheel { unit, delta, .. } if self.hovered => {
                out.extend(wheel(unit, delta));
            }
            egui::Event::Key {
                key,
                physical_key,
                pressed,
                modifiers,
                ..
            } if self.focused => {
                // In the full-screen viewer, Esc leaves it rather than reaching the customer.
                if tab.popped_out && key == egui::Key::Escape {
                    return;
                }
                let Some(k) = key_of(physical_key.unwrap_or(key)) else {
                    return;
                };
                let shortcut = modifiers.ctrl || modifiers.alt || modifiers.mac_cmd;
                if types_text(k) && !shortcut {
                    return; // it arrives as text
                }
                out.extend(tab.mods.to(&modifier_keys(modifiers)));
                out.push(tab.mods.key(k, pressed));
            }
            egui::Event::Text(text) if self.focused => {
                out.extend(tab.mods.release());
                out.push(InputEvent::Text { text });
            }
            egui::Event::Copy | egui::Event::Cut | egui::Event::Paste(_) if self.focused => {
                let k = match ev {
                    egui::Event::Copy => Key::C,
                    egui::Event::Cut => Key::X,
                    _ => Key::V,
                };
                out.extend(tab.mods.to(&[Key::ControlLeft].into_iter().collect()));
                out.push(InputEvent::Key { key: k, down: true });
                out.push(InputEvent::Key {
                    key: k,
                    down: false,
                });
                out.extend(tab.mods.release());
            }
            _ => {}
        }
    }
}

fn button_of(b: egui::PointerButton) -> Button {
    match b {
        egui::PointerButton::Primary => Button::Left,
        egui::PointerButton::Secondary => Button::Right,
        egui::PointerButton::Middle => Button::Middle,
        egui::PointerButton::Extra1 => Button::Back,
        egui::PointerButton::Extra2 => Button::Forward,
    }
}

/// A wheel event in lines (a page counts three; 40 points make a line).
fn wheel(unit: egui::MouseWheelUnit, delta: egui::Vec2) -> Option<InputEvent> {
    let scale = match unit {
        egui::MouseWheelUnit::Line => 1.0,
        egui::MouseWheelUnit::Page => 3.0,
        egui::MouseWheelUnit::Point => 1.0 / 40.0,
    };
    let (dx, dy) = (
        (-delta.x * scale).round() as i32,
        (-delta.y * scale).round() as i32,
    );
    (dx != 0 || dy != 0).then_some(InputEvent::Wheel { dx, dy })
}

/// The stats overlay, top left of the remote screen (as Parsec and Moonlight show).
fn overlay(ui: &Ui, over: egui::Rect, st: &ViewStats) {
    let text = overlay_text(st);
    let painter = ui.painter_at(over);
    let galley = painter.layout_no_wrap(text, egui::FontId::monospace(13.0), Color32::WHITE);
    let bg = egui::Rect::from_min_size(
        over.min + egui::vec2(6.0, 6.0),
        galley.size() + egui::vec2(12.0, 8.0),
    );
    painter.rect_filled(bg, 4.0, Color32::from_black_alpha(170));
    painter.galley(bg.min + egui::vec2(6.0, 4.0), galley, Color32::WHITE);
}

/// The overlay's text: what arrives on the first line, where the time goes on the second (two
/// short lines fit a small viewer).
pub fn overlay_text(st: &ViewStats) -> String {
    format!(
        "{:.0} fps | {:.2} Mbit/s | {}\n{:.1} ms capture→decode | {:.1} ms capture→screen | {:.1} ms to draw",
        st.fps,
        st.bits_per_sec / 1e6,
        if st.codec.is_empty() { "-" } else { st.codec },
        st.latency_ms,
        st.present_ms,
        st.draw_ms,
    )
}
