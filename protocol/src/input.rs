//! Remote control: the input an agent sends, the consent the customer gives, and the host-side
//! gate that enforces it, as a sans-IO state machine.
//!
//! The gate is the only way input reaches the injector: it drops (and reports for the audit) any
//! event that arrives without a grant, remembers every key and button it let press, and releases
//! all of them when control ends for any reason, so no key is ever left stuck.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A key, by its position on a US keyboard (what the key is, not what it types).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Key {
    A,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    N,
    O,
    P,
    Q,
    R,
    S,
    T,
    U,
    V,
    W,
    X,
    Y,
    Z,
    Num0,
    Num1,
    Num2,
    Num3,
    Num4,
    Num5,
    Num6,
    Num7,
    Num8,
    Num9,
    F1,
    F2,
    F3,
    F4,
    F5,
    F6,
    F7,
    F8,
    F9,
    F10,
    F11,
    F12,
    Escape,
    Tab,
    Backspace,
    Enter,
    Space,
    CapsLock,
    ShiftLeft,
    ShiftRight,
    ControlLeft,
    ControlRight,
    AltLeft,
    AltRight,
    SuperLeft,
    SuperRight,
    Menu,
    ArrowUp,
    ArrowDown,
    ArrowLeft,
    ArrowRight,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    Delete,
    PrintScreen,
    ScrollLock,
    Pause,
    Minus,
    Equal,
    BracketLeft,
    BracketRight,
    Backslash,
    Semicolon,
    Quote,
    Backquote,
    Comma,
    Period,
    Slash,
    Numpad0,
    Numpad1,
    Numpad2,
    Numpad3,
    Numpad4,
    Numpad5,
    Numpad6,
    Numpad7,
    Numpad8,
    Numpad9,
    NumpadAdd,
    NumpadSubtract,
    NumpadMultiply,
    NumpadDivide,
    NumpadDecimal,
    NumpadEnter,
    NumLock,
}

impl Key {
    /// Whether this is a modifier key.
    pub fn is_modifier(self) -> bool {
        matches!(
            self,
            Key::ShiftLeft
                | Key::ShiftRight
                | Key::ControlLeft
                | Key::ControlRight
                | Key::AltLeft
                | Key::AltRight
                | Key::SuperLeft
                | Key::SuperRight
        )
    }
}

/// A mouse button.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Button {
    /// Primary.
    Left,
    /// Middle (wheel press).
    Middle,
    /// Secondary.
    Right,
    /// Back (side button).
    Back,
    /// Forward (side button).
    Forward,
}

/// Combinations a person cannot type through the console (the local OS would take them).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combo {
    /// Ctrl+Alt+Del.
    CtrlAltDel,
    /// Ctrl+Esc.
    CtrlEsc,
    /// Alt+Tab.
    AltTab,
    /// Alt+F4.
    AltF4,
    /// The Super (Windows) key alone.
    Super,
    /// Print Screen.
    PrintScreen,
}

impl Combo {
    /// Every combination, in menu order.
    pub const ALL: [Combo; 6] = [
        Combo::CtrlAltDel,
        Combo::CtrlEsc,
        Combo::AltTab,
        Combo::AltF4,
        Combo::Super,
        Combo::PrintScreen,
    ];

    /// Menu label.
    pub fn label(self) -> &'static str {
        match self {
            Combo::CtrlAltDel => "Ctrl+Alt+Del",
            Combo::CtrlEsc => "Ctrl+Esc",
            Combo::AltTab => "Alt+Tab",
            Combo::AltF4 => "Alt+F4",
            Combo::Super => "Super",
            Combo::PrintScreen => "Print Screen",
        }
    }

    /// The keys, pressed in order and released in reverse.
    pub fn keys(self) -> &'static [Key] {
        match self {
            Combo::CtrlAltDel => &[Key::ControlLeft, Key::AltLeft, Key::Delete],
            Combo::CtrlEsc => &[Key::ControlLeft, Key::Escape],
            Combo::AltTab => &[Key::AltLeft, Key::Tab],
            Combo::AltF4 => &[Key::AltLeft, Key::F4],
            Combo::Super => &[Key::SuperLeft],
            Combo::PrintScreen => &[Key::PrintScreen],
        }
    }
}

/// One input event from the agent. Coordinates are pixels of the monitor being viewed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// Move the pointer.
    MouseMove {
        /// Monitor index.
        monitor: u8,
        /// X within the monitor.
        x: u32,
        /// Y within the monitor.
        y: u32,
    },
    /// Press or release a button.
    Button {
        /// Which.
        button: Button,
        /// Pressed (true) or released.
        down: bool,
    },
    /// Scroll, in notches; positive is down and right.
    Wheel {
        /// Horizontal notches.
        dx: i32,
        /// Vertical notches.
        dy: i32,
    },
    /// Press or release a key by position (shortcuts, navigation, modifiers).
    Key {
        /// Which.
        key: Key,
        /// Pressed (true) or released.
        down: bool,
    },
    /// Type text by character, whatever the customer's layout.
    Text {
        /// The characters.
        text: String,
    },
    /// Send a combination.
    Combo(Combo),
}

/// Agent to host, on the input stream. Opaque to the relay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum AgentMsg {
    /// Ask the customer for control.
    RequestControl,
    /// Give control back.
    ReleaseControl,
    /// Input, applied only under a grant.
    Input(InputEvent),
    /// Ask the customer to sync the clipboard.
    RequestClipboard,
    /// Stop syncing the clipboard.
    StopClipboard,
    /// The agent's clipboard text changed (only under a clipboard grant).
    Clipboard {
        /// The text.
        text: String,
    },
    /// Open this web page on the customer's computer (asked each time).
    PushUrl {
        /// An http or https address.
        url: String,
    },
}

/// The state of one permission, as both sides see it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grant {
    /// Not asked, or given back.
    #[default]
    Off,
    /// Asked; the customer has not answered.
    Asked,
    /// Allowed.
    On,
    /// The customer said no.
    Denied,
}

/// Host to agent, on the input stream. Opaque to the relay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum HostMsg {
    /// Control is now in this state.
    Control(Grant),
    /// Clipboard sync is now in this state.
    ClipboardSync(Grant),
    /// The customer's clipboard text changed.
    Clipboard {
        /// The text.
        text: String,
    },
    /// Something was refused, with a reason for the agent.
    Refused(String),
    /// The customer's browser opened this address.
    UrlOpened(String),
}

/// Largest clipboard text synced, in bytes.
pub const MAX_CLIPBOARD: usize = 1 << 20;
/// Largest wheel step of one event, in notches either way.
pub const MAX_WHEEL: i32 = 50;
/// Text is injected in pieces of at most this many characters, so that a revoke stops it between
/// pieces.
pub const TEXT_PIECE: usize = 32;
use crate::consent::{Answer, Ask, ConsentGate};
pub use crate::consent::{DENY_COOLDOWN, Permission};

/// What the gate tells the host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Drop every input queued for injection and not injected yet (control just ended).
    CancelQueued,
    /// Inject this event.
    Inject(InputEvent),
    /// Ask the customer (the host's window shows a prompt, or the host's policy answers).
    Prompt(Permission),
    /// Tell the agent.
    Notify(HostMsg),
    /// Put this text on the customer's clipboard.
    SetClipboard(String),
    /// Record for the audit (and the customer's activity log): input dropped, or a grant
    /// changed. Typed, so that the host words it in the customer's language.
    Audit(Audit),
    /// Open this (checked) web address in the customer's browser.
    OpenUrl(String),
}

/// Why remote control ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlEnd {
    /// The agent gave control back.
    Released,
    /// The customer stopped it.
    Revoked,
    /// The agent's input stream went away.
    AgentGone,
}

/// What the gate records: one variant per event, worded by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audit {
    /// A pushed address was not a web address the host opens.
    UrlRefused(String),
    /// An address was opened; `asked` when the customer said yes to it.
    UrlOpened { url: String, asked: bool },
    /// The customer declined to open an address.
    UrlDeclined(String),
    /// A permission was allowed by the host's policy without asking.
    AllowedUpFront(Permission),
    /// A request refused because the customer declined it a moment ago.
    CoolingDown(Permission),
    /// The customer answered a prompt.
    Answered { permission: Permission, allow: bool },
    /// The agent stopped clipboard sync.
    ClipboardStopped,
    /// The customer revoked clipboard sync.
    ClipboardRevoked,
    /// Clipboard text came without a clipboard grant.
    ClipboardDropped,
    /// Input came without a control grant.
    InputDropped(&'static str),
    /// Control ended.
    ControlEnded(ControlEnd),
}

/// The host's gate for one agent's input stream. Everything the agent sends goes through
/// [`InputGate::on_agent`]; the customer's answers through [`InputGate::answer`]; the end of
/// control through [`InputGate::revoke`] or [`InputGate::disconnected`]. What is allowed is the
/// agent's [`ConsentGate`], shared with its file streams; the input gate remembers every key and
/// button it let press, so that all are released when control ends.
#[derive(Debug, Default)]
pub struct InputGate {
    keys: BTreeSet<Key>,
    buttons: BTreeSet<Button>,
}

fn grant_msg(p: Permission, g: Grant) -> HostMsg {
    match p {
        Permission::Clipboard => HostMsg::ClipboardSync(g),
        _ => HostMsg::Control(g),
    }
}

/// An address pushed by the agent: checked, then opened if allowed up front or already
/// granted, or asked about.
fn push_url(consent: &mut ConsentGate, url: &str, now: Duration, out: &mut Vec<Action>) {
    let url = match crate::files::check_url(url) {
        Ok(url) => url,
        Err(e) => {
            out.push(Action::Notify(HostMsg::Refused(e.to_string())));
            out.push(Action::Audit(Audit::UrlRefused(e.to_string())));
            return;
        }
    };
    match consent.request_url(&url, now) {
        Ask::AllowedUpFront | Ask::Granted => {
            out.push(Action::Audit(Audit::UrlOpened {
                url: url.clone(),
                asked: false,
            }));
            out.push(Action::OpenUrl(url.clone()));
            out.push(Action::Notify(HostMsg::UrlOpened(url)));
        }
        Ask::Pending => out.push(Action::Notify(HostMsg::Refused(
            "the customer has not answered the last address yet".into(),
        ))),
        Ask::Prompt => out.push(Action::Prompt(Permission::Url)),
        Ask::CoolingDown(left) => refuse_cooling(Permission::Url, left, out),
    }
}

fn refuse_cooling(p: Permission, left: Duration, out: &mut Vec<Action>) {
    out.push(Action::Notify(HostMsg::Refused(format!(
        "the customer declined a moment ago; ask again in {} s",
        left.as_secs().max(1)
    ))));
    out.push(Action::Audit(Audit::CoolingDown(p)));
}

impl InputGate {
    /// Nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys held down now.
    pub fn held_keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.keys.iter().copied()
    }

    /// The agent asks for control or clipboard sync.
    fn requested(consent: &mut ConsentGate, p: Permission, now: Duration, out: &mut Vec<Action>) {
        match consent.request(p, now) {
            Ask::Granted | Ask::Pending => {}
            Ask::AllowedUpFront => {
                out.push(Action::Notify(grant_msg(p, Grant::Asked)));
                out.push(Action::Notify(grant_msg(p, Grant::On)));
                out.push(Action::Audit(Audit::AllowedUpFront(p)));
            }
            Ask::Prompt => {
                out.push(Action::Notify(grant_msg(p, Grant::Asked)));
                out.push(Action::Prompt(p));
            }
            Ask::CoolingDown(left) => refuse_cooling(p, left, out),
        }
    }

    /// Handles one message from the agent; `now` is any monotonic time.
    pub fn on_agent(
        &mut self,
        consent: &mut ConsentGate,
        msg: AgentMsg,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            AgentMsg::RequestControl => {
                Self::requested(consent, Permission::Control, now, &mut out)
            }
            AgentMsg::RequestClipboard => {
                Self::requested(consent, Permission::Clipboard, now, &mut out)
            }
            AgentMsg::ReleaseControl => out.extend(self.end_control(consent, ControlEnd::Released)),
            AgentMsg::StopClipboard => {
                if consent.revoke(Permission::Clipboard) {
                    out.push(Action::Notify(HostMsg::ClipboardSync(Grant::Off)));
                    out.push(Action::Audit(Audit::ClipboardStopped));
                }
            }
            AgentMsg::PushUrl { url } => push_url(consent, &url, now, &mut out),
            AgentMsg::Clipboard { text } => {
                if !consent.allows(Permission::Clipboard) {
                    out.push(Action::Audit(Audit::ClipboardDropped));
                } else if text.len() > MAX_CLIPBOARD {
                    out.push(Action::Notify(HostMsg::Refused(format!(
                        "clipboard text of {} bytes is over the {} byte limit",
                        text.len(),
                        MAX_CLIPBOARD
                    ))));
                } else {
                    out.push(Action::SetClipboard(text));
                }
            }
            AgentMsg::Input(ev) if !consent.allows(Permission::Control) => {
                out.push(Action::Audit(Audit::InputDropped(kind(&ev))));
            }
            AgentMsg::Input(ev) => self.input(ev, &mut out),
        }
        out
    }

    /// Input from an agent in control: keys and buttons are tracked so that what was pressed is
    /// released when control ends, a release of something never pressed is dropped, the wheel
    /// is clamped and text goes in short pieces.
    fn input(&mut self, ev: InputEvent, out: &mut Vec<Action>) {
        let fresh = match &ev {
            InputEvent::Key { key, down: true } => {
                self.keys.insert(*key);
                true
            }
            // A release of a key we never pressed would confuse the OS; drop it.
            InputEvent::Key { key, down: false } => self.keys.remove(key),
            InputEvent::Button { button, down: true } => {
                self.buttons.insert(*button);
                true
            }
            InputEvent::Button {
                button,
                down: false,
            } => self.buttons.remove(button),
            _ => true,
        };
        if !fresh {
            return;
        }
        match ev {
            InputEvent::Wheel { dx, dy } => out.push(Action::Inject(InputEvent::Wheel {
                dx: dx.clamp(-MAX_WHEEL, MAX_WHEEL),
                dy: dy.clamp(-MAX_WHEEL, MAX_WHEEL),
            })),
            InputEvent::Text { text } => {
                out.extend(text_pieces(&text).map(|text| Action::Inject(InputEvent::Text { text })))
            }
            ev => out.push(Action::Inject(ev)),
        }
    }

    /// The customer answered a prompt for control, clipboard sync or an address; `now` is the
    /// same clock as [`InputGate::on_agent`]'s.
    pub fn answer(
        &mut self,
        consent: &mut ConsentGate,
        p: Permission,
        allow: bool,
        now: Duration,
    ) -> Vec<Action> {
        if p == Permission::Files {
            return Vec::new();
        }
        match consent.answer(p, allow, now) {
            Answer::Unasked => Vec::new(),
            Answer::Url { url, open: true } => vec![
                Action::Audit(Audit::UrlOpened {
                    url: url.clone(),
                    asked: true,
                }),
                Action::OpenUrl(url.clone()),
                Action::Notify(HostMsg::UrlOpened(url)),
            ],
            Answer::Url { url, open: false } => vec![
                Action::Audit(Audit::UrlDeclined(url.clone())),
                Action::Notify(HostMsg::Refused(format!(
                    "the customer declined to open {url}"
                ))),
            ],
            Answer::Grant(g) => vec![
                Action::Notify(grant_msg(p, g)),
                Action::Audit(Audit::Answered {
                    permission: p,
                    allow,
                }),
            ],
        }
    }

    /// Releases everything held, in reverse order of importance (buttons, keys, modifiers last).
    fn release_all(&mut self) -> Vec<Action> {
        let mut out: Vec<Action> = std::mem::take(&mut self.buttons)
            .into_iter()
            .map(|button| {
                Action::Inject(InputEvent::Button {
                    button,
                    down: false,
                })
            })
            .collect();
        let keys = std::mem::take(&mut self.keys);
        let (mods, plain): (Vec<Key>, Vec<Key>) = keys.into_iter().partition(|k| k.is_modifier());
        out.extend(
            plain
                .into_iter()
                .chain(mods)
                .map(|key| Action::Inject(InputEvent::Key { key, down: false })),
        );
        out
    }

    fn end_control(&mut self, consent: &mut ConsentGate, why: ControlEnd) -> Vec<Action> {
        // What the agent sent before is not injected any more; only the releases are.
        let mut out = vec![Action::CancelQueued];
        out.extend(self.release_all());
        if consent.revoke(Permission::Control) {
            out.push(Action::Notify(HostMsg::Control(Grant::Off)));
            out.push(Action::Audit(Audit::ControlEnded(why)));
        }
        out
    }

    /// The customer revoked a permission (or ended it from their window).
    pub fn revoke(&mut self, consent: &mut ConsentGate, p: Permission) -> Vec<Action> {
        match p {
            Permission::Control => self.end_control(consent, ControlEnd::Revoked),
            Permission::Files | Permission::Url => Vec::new(),
            Permission::Clipboard => {
                if !consent.revoke(Permission::Clipboard) {
                    return Vec::new();
                }
                vec![
                    Action::Notify(HostMsg::ClipboardSync(Grant::Off)),
                    Action::Audit(Audit::ClipboardRevoked),
                ]
            }
        }
    }

    /// The agent's input stream went away: release everything and end control and clipboard
    /// sync (file access is the file streams' to end).
    pub fn disconnected(&mut self, consent: &mut ConsentGate) -> Vec<Action> {
        let mut out = self.end_control(consent, ControlEnd::AgentGone);
        consent.revoke(Permission::Clipboard);
        consent.revoke(Permission::Url);
        out.retain(|a| !matches!(a, Action::Notify(_)));
        out
    }

    /// Held keys and buttons are released (say, the host lost input focus) but control stays.
    pub fn release_held(&mut self) -> Vec<Action> {
        self.release_all()
    }
}

/// Splits text into pieces of at most [`TEXT_PIECE`] characters.
fn text_pieces(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = rest
            .char_indices()
            .nth(TEXT_PIECE)
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece.to_string())
    })
}

fn kind(ev: &InputEvent) -> &'static str {
    match ev {
        InputEvent::MouseMove { .. } => "mouse move",
        InputEvent::Button { .. } => "button",
        InputEvent::Wheel { .. } => "wheel",
        InputEvent::Key { .. } => "key",
        InputEvent::Text { .. } => "text",
        InputEvent::Combo(_) => "key combination",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);

    /// An input gate with its agent's consent gate.
    #[derive(Default)]
    struct G {
        input: InputGate,
        consent: ConsentGate,
    }

    impl G {
        fn new() -> Self {
            Self::default()
        }
        fn preallowed(p: &[Permission]) -> Self {
            Self {
                input: InputGate::new(),
                consent: ConsentGate::new(p),
            }
        }
        fn on_agent(&mut self, m: AgentMsg, now: Duration) -> Vec<Action> {
            self.input.on_agent(&mut self.consent, m, now)
        }
        fn answer(&mut self, p: Permission, allow: bool, now: Duration) -> Vec<Action> {
            self.input.answer(&mut self.consent, p, allow, now)
        }
        fn revoke(&mut self, p: Permission) -> Vec<Action> {
            self.input.revoke(&mut self.consent, p)
        }
        fn disconnected(&mut self) -> Vec<Action> {
            self.input.disconnected(&mut self.consent)
        }
        fn control(&self) -> Grant {
            self.consent.grant(Permission::Control)
        }
        fn clipboard(&self) -> Grant {
            self.consent.grant(Permission::Clipboard)
        }
        fn pending_url(&self) -> Option<&str> {
            self.consent.pending_url()
        }
    }

    fn injected(a: &[Action]) -> Vec<InputEvent> {
        a.iter()
            .filter_map(|a| {
                if let Action::Inject(e) = a {
                    Some(e.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn nothing_passes_before_consent_or_after_a_revoke() {
        let mut g = G::new();
        let key = AgentMsg::Input(InputEvent::Key {
            key: Key::A,
            down: true,
        });
        let out = g.on_agent(key.clone(), T0);
        assert!(injected(&out).is_empty());
        assert!(matches!(&out[..], [Action::Audit(Audit::InputDropped(_))]));
        let out = g.on_agent(AgentMsg::RequestControl, T0);
        assert!(out.contains(&Action::Prompt(Permission::Control)));
        assert!(
            injected(&g.on_agent(key.clone(), T0)).is_empty(),
            "asked is not granted"
        );
        g.answer(Permission::Control, true, T0);
        assert_eq!(injected(&g.on_agent(key.clone(), T0)).len(), 1);
        let out = g.revoke(Permission::Control);
        assert_eq!(
            injected(&out),
            vec![InputEvent::Key {
                key: Key::A,
                down: false
            }],
            "held key released on revoke"
        );
        assert!(injected(&g.on_agent(key, T0)).is_empty());
    }

    #[test]
    fn a_denied_request_grants_nothing() {
        let mut g = G::new();
        g.on_agent(AgentMsg::RequestControl, T0);
        let out = g.answer(Permission::Control, false, T0);
        assert!(out.contains(&Action::Notify(HostMsg::Control(Grant::Denied))));
        assert!(
            injected(&g.on_agent(AgentMsg::Input(InputEvent::Text { text: "x".into() }), T0))
                .is_empty()
        );
    }

    #[test]
    fn everything_held_is_released_on_disconnect_modifiers_last() {
        let mut g = G::preallowed(&[Permission::Control]);
        g.on_agent(AgentMsg::RequestControl, T0);
        assert_eq!(g.control(), Grant::On);
        for ev in [
            InputEvent::Key {
                key: Key::ShiftLeft,
                down: true,
            },
            InputEvent::Key {
                key: Key::X,
                down: true,
            },
            InputEvent::Button {
                button: Button::Left,
                down: true,
            },
        ] {
            g.on_agent(AgentMsg::Input(ev), T0);
        }
        let out = injected(&g.disconnected());
        assert_eq!(
            out,
            vec![
                InputEvent::Button {
                    button: Button::Left,
                    down: false
                },
                InputEvent::Key {
                    key: Key::X,
                    down: false
                },
                InputEvent::Key {
                    key: Key::ShiftLeft,
                    down: false
                },
            ]
        );
        assert_eq!(g.control(), Grant::Off);
        // A stray release afterwards is not injected.
        g.on_agent(AgentMsg::RequestControl, T0);
        assert!(
            injected(&g.on_agent(
                AgentMsg::Input(InputEvent::Key {
                    key: Key::X,
                    down: false
                }),
                T0
            ))
            .is_empty()
        );
    }

    #[test]
    fn pushed_addresses_need_consent_each_time_and_a_web_scheme() {
        let mut g = G::new();
        let out = g.on_agent(
            AgentMsg::PushUrl {
                url: "file:///etc/passwd".into(),
            },
            T0,
        );
        assert!(
            matches!(&out[0], Action::Notify(HostMsg::Refused(m)) if m.contains("only http and https"))
        );
        let out = g.on_agent(
            AgentMsg::PushUrl {
                url: "https://example.com".into(),
            },
            T0,
        );
        assert_eq!(out, vec![Action::Prompt(Permission::Url)]);
        assert_eq!(g.pending_url(), Some("https://example.com"));
        let out = g.answer(Permission::Url, false, T0);
        assert!(!out.iter().any(|a| matches!(a, Action::OpenUrl(_))));
        // Asking again at once is refused without a prompt; after the cooldown it asks.
        let out = g.on_agent(
            AgentMsg::PushUrl {
                url: "https://example.com/2".into(),
            },
            T0 + Duration::from_secs(1),
        );
        assert!(
            matches!(&out[0], Action::Notify(HostMsg::Refused(m)) if m.contains("declined a moment ago"))
        );
        let later = T0 + DENY_COOLDOWN;
        g.on_agent(
            AgentMsg::PushUrl {
                url: "https://example.com/2".into(),
            },
            later,
        );
        let out = g.answer(Permission::Url, true, later);
        assert!(out.contains(&Action::OpenUrl("https://example.com/2".into())));
        let mut pre = G::preallowed(&[Permission::Url]);
        assert!(
            pre.on_agent(
                AgentMsg::PushUrl {
                    url: "http://x.test".into()
                },
                T0
            )
            .contains(&Action::OpenUrl("http://x.test".into()))
        );
    }

    #[test]
    fn a_denied_request_cannot_be_repeated_at_once() {
        let mut g = G::new();
        g.on_agent(AgentMsg::RequestControl, T0);
        g.answer(Permission::Control, false, T0);
        let out = g.on_agent(AgentMsg::RequestControl, T0 + Duration::from_secs(3));
        assert!(!out.contains(&Action::Prompt(Permission::Control)));
        assert!(
            matches!(&out[0], Action::Notify(HostMsg::Refused(m)) if m.contains("ask again in 7 s"))
        );
        let out = g.on_agent(AgentMsg::RequestControl, T0 + DENY_COOLDOWN);
        assert!(out.contains(&Action::Prompt(Permission::Control)));
    }

    #[test]
    fn wheel_steps_are_clamped_and_long_text_comes_in_pieces() {
        let mut g = G::preallowed(&[Permission::Control]);
        g.on_agent(AgentMsg::RequestControl, T0);
        let out = g.on_agent(
            AgentMsg::Input(InputEvent::Wheel {
                dx: i32::MIN,
                dy: i32::MAX,
            }),
            T0,
        );
        assert_eq!(
            injected(&out),
            vec![InputEvent::Wheel {
                dx: -MAX_WHEEL,
                dy: MAX_WHEEL
            }]
        );
        let text: String = "é".repeat(TEXT_PIECE * 3 + 5);
        let out =
            injected(&g.on_agent(AgentMsg::Input(InputEvent::Text { text: text.clone() }), T0));
        assert_eq!(out.len(), 4);
        let joined: String = out
            .iter()
            .map(|e| match e {
                InputEvent::Text { text } => text.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(joined, text);
        // Ending control first cancels whatever is still queued.
        let out = g.revoke(Permission::Control);
        assert_eq!(out.first(), Some(&Action::CancelQueued));
    }

    #[test]
    fn clipboard_needs_its_own_grant_and_has_a_limit() {
        let mut g = G::preallowed(&[Permission::Control]);
        g.on_agent(AgentMsg::RequestControl, T0);
        let out = g.on_agent(AgentMsg::Clipboard { text: "hi".into() }, T0);
        assert!(
            !out.iter().any(|a| matches!(a, Action::SetClipboard(_))),
            "control does not grant clipboard"
        );
        g.on_agent(AgentMsg::RequestClipboard, T0);
        g.answer(Permission::Clipboard, true, T0);
        assert_eq!(
            g.on_agent(AgentMsg::Clipboard { text: "hi".into() }, T0),
            vec![Action::SetClipboard("hi".into())]
        );
        let big = "x".repeat(MAX_CLIPBOARD + 1);
        assert!(
            matches!(&g.on_agent(AgentMsg::Clipboard { text: big }, T0)[..], [Action::Notify(HostMsg::Refused(m))] if m.contains("limit"))
        );
        g.on_agent(AgentMsg::StopClipboard, T0);
        assert_eq!(g.clipboard(), Grant::Off);
    }
}
