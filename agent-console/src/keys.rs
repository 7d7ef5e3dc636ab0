//! Turning the agent's local input into remote input: key positions, modifiers, pointer mapping.

use std::collections::BTreeSet;

use tether_protocol::input::{InputEvent, Key};

/// The key at this position, if Tether sends it.
pub fn key_of(k: egui::Key) -> Option<Key> {
    use egui::Key as E;
    Some(match k {
        E::A => Key::A,
        E::B => Key::B,
        E::C => Key::C,
        E::D => Key::D,
        E::E => Key::E,
        E::F => Key::F,
        E::G => Key::G,
        E::H => Key::H,
        E::I => Key::I,
        E::J => Key::J,
        E::K => Key::K,
        E::L => Key::L,
        E::M => Key::M,
        E::N => Key::N,
        E::O => Key::O,
        E::P => Key::P,
        E::Q => Key::Q,
        E::R => Key::R,
        E::S => Key::S,
        E::T => Key::T,
        E::U => Key::U,
        E::V => Key::V,
        E::W => Key::W,
        E::X => Key::X,
        E::Y => Key::Y,
        E::Z => Key::Z,
        E::Num0 => Key::Num0,
        E::Num1 => Key::Num1,
        E::Num2 => Key::Num2,
        E::Num3 => Key::Num3,
        E::Num4 => Key::Num4,
        E::Num5 => Key::Num5,
        E::Num6 => Key::Num6,
        E::Num7 => Key::Num7,
        E::Num8 => Key::Num8,
        E::Num9 => Key::Num9,
        E::F1 => Key::F1,
        E::F2 => Key::F2,
        E::F3 => Key::F3,
        E::F4 => Key::F4,
        E::F5 => Key::F5,
        E::F6 => Key::F6,
        E::F7 => Key::F7,
        E::F8 => Key::F8,
        E::F9 => Key::F9,
        E::F10 => Key::F10,
        E::F11 => Key::F11,
        E::F12 => Key::F12,
        E::Escape => Key::Escape,
        E::Tab => Key::Tab,
        E::Backspace => Key::Backspace,
        E::Enter => Key::Enter,
        E::Space => Key::Space,
        E::ArrowUp => Key::ArrowUp,
        E::ArrowDown => Key::ArrowDown,
        E::ArrowLeft => Key::ArrowLeft,
        E::ArrowRight => Key::ArrowRight,
        E::Home => Key::Home,
        E::End => Key::End,
        E::PageUp => Key::PageUp,
        E::PageDown => Key::PageDown,
        E::Insert => Key::Insert,
        E::Delete => Key::Delete,
        E::Minus => Key::Minus,
        E::Equals => Key::Equal,
        E::OpenBracket => Key::BracketLeft,
        E::CloseBracket => Key::BracketRight,
        E::Backslash => Key::Backslash,
        E::Semicolon => Key::Semicolon,
        E::Quote => Key::Quote,
        E::Backtick => Key::Backquote,
        E::Comma => Key::Comma,
        E::Period => Key::Period,
        E::Slash => Key::Slash,
        _ => return None,
    })
}

/// Keys that produce text on their own: without Ctrl, Alt or Super they travel as text (by
/// character), not by position, so the customer's layout does not change what is typed.
pub fn types_text(k: Key) -> bool {
    use Key::*;
    matches!(
        k,
        A | B
            | C
            | D
            | E
            | F
            | G
            | H
            | I
            | J
            | K
            | L
            | M
            | N
            | O
            | P
            | Q
            | R
            | S
            | T
            | U
            | V
            | W
            | X
            | Y
            | Z
            | Num0
            | Num1
            | Num2
            | Num3
            | Num4
            | Num5
            | Num6
            | Num7
            | Num8
            | Num9
            | Minus
            | Equal
            | BracketLeft
            | BracketRight
            | Backslash
            | Semicolon
            | Quote
            | Backquote
            | Comma
            | Period
            | Slash
            | Space
    )
}

/// The modifier keys for egui's modifier state.
pub fn modifier_keys(m: egui::Modifiers) -> BTreeSet<Key> {
    let mut s = BTreeSet::new();
    if m.shift {
        s.insert(Key::ShiftLeft);
    }
    if m.ctrl {
        s.insert(Key::ControlLeft);
    }
    if m.alt {
        s.insert(Key::AltLeft);
    }
    if m.mac_cmd {
        s.insert(Key::SuperLeft);
    }
    s
}

/// Keeps the customer's modifier keys in step with what the agent holds, and remembers the other
/// keys pressed by position, so that everything can be released when the viewer loses focus.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModSync {
    held: BTreeSet<Key>,
    keys: BTreeSet<Key>,
}

impl ModSync {
    /// Events that bring the remote modifiers to `want`.
    pub fn to(&mut self, want: &BTreeSet<Key>) -> Vec<InputEvent> {
        let mut out: Vec<InputEvent> = self
            .held
            .difference(want)
            .map(|k| InputEvent::Key {
                key: *k,
                down: false,
            })
            .collect();
        out.extend(want.difference(&self.held).map(|k| InputEvent::Key {
            key: *k,
            down: true,
        }));
        self.held = want.clone();
        out
    }

    /// Events that release every modifier.
    pub fn release(&mut self) -> Vec<InputEvent> {
        self.to(&BTreeSet::new())
    }

    /// Records a key pressed or released by position; returns the event to send.
    pub fn key(&mut self, key: Key, down: bool) -> InputEvent {
        if down {
            self.keys.insert(key);
        } else {
            self.keys.remove(&key);
        }
        InputEvent::Key { key, down }
    }

    /// Events that release every key and modifier still held (focus lost, control ended).
    pub fn release_all(&mut self) -> Vec<InputEvent> {
        let mut out: Vec<InputEvent> = std::mem::take(&mut self.keys)
            .into_iter()
            .map(|key| InputEvent::Key { key, down: false })
            .collect();
        out.extend(self.release());
        out
    }
}

/// The remote pixel under `pos`, for a remote screen of `size` drawn in `shown` (any scale).
pub fn viewer_to_remote(
    pos: egui::Pos2,
    shown: egui::Rect,
    size: (u32, u32),
) -> Option<(u32, u32)> {
    if !shown.contains(pos) || shown.width() <= 0.0 || shown.height() <= 0.0 {
        return None;
    }
    let fx = (pos.x - shown.min.x) / shown.width();
    let fy = (pos.y - shown.min.y) / shown.height();
    let x = ((fx * size.0 as f32) as u32).min(size.0.saturating_sub(1));
    let y = ((fy * size.1 as f32) as u32).min(size.1.saturating_sub(1));
    Some((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_maps_at_any_scale() {
        let shown = egui::Rect::from_min_size(egui::pos2(100.0, 50.0), egui::vec2(640.0, 512.0));
        assert_eq!(
            viewer_to_remote(egui::pos2(100.0, 50.0), shown, (1280, 1024)),
            Some((0, 0))
        );
        assert_eq!(
            viewer_to_remote(egui::pos2(420.0, 306.0), shown, (1280, 1024)),
            Some((640, 512))
        );
        assert_eq!(
            viewer_to_remote(egui::pos2(739.9, 561.9), shown, (1280, 1024)),
            Some((1279, 1023))
        );
        assert_eq!(
            viewer_to_remote(egui::pos2(99.0, 50.0), shown, (1280, 1024)),
            None
        );
    }

    #[test]
    fn keys_held_when_focus_goes_are_released() {
        let mut m = ModSync::default();
        m.to(&modifier_keys(egui::Modifiers::SHIFT));
        m.key(Key::ArrowDown, true);
        m.key(Key::F5, true);
        m.key(Key::F5, false);
        assert_eq!(
            m.release_all(),
            vec![
                InputEvent::Key {
                    key: Key::ArrowDown,
                    down: false
                },
                InputEvent::Key {
                    key: Key::ShiftLeft,
                    down: false
                }
            ]
        );
        assert!(m.release_all().is_empty());
    }

    #[test]
    fn modifiers_follow_the_agent_and_are_released() {
        let mut m = ModSync::default();
        let ctrl = modifier_keys(egui::Modifiers::CTRL);
        assert_eq!(
            m.to(&ctrl),
            vec![InputEvent::Key {
                key: Key::ControlLeft,
                down: true
            }]
        );
        assert!(m.to(&ctrl).is_empty());
        assert_eq!(
            m.release(),
            vec![InputEvent::Key {
                key: Key::ControlLeft,
                down: false
            }]
        );
    }
}
