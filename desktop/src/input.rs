//! Input injection behind the [`Injector`] trait: enigo on the real desktop, a recorder in tests.
//!
//! Keys travel by position ([`Key`]) for shortcuts and navigation, and by character
//! ([`InputEvent::Text`]) for text, so an agent with another keyboard layout still types the
//! right characters. Positions map to X11 keycodes (Linux evdev codes + 8).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tether_protocol::input::{Button, InputEvent, Key};
use tether_protocol::msg::MonitorInfo;

/// Why input could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// No input backend.
    #[error("cannot open the input backend: {0}")]
    Open(String),
    /// An event failed.
    #[error("input injection failed: {0}")]
    Failed(String),
}

/// Puts input events on the customer's desktop.
pub trait Injector: Send {
    /// Injects one event. `monitors` turns monitor coordinates into desktop coordinates.
    fn inject(&mut self, ev: &InputEvent, monitors: &[MonitorInfo]) -> Result<(), InjectError>;
}

/// Makes an injector.
pub type InjectorFactory = Arc<dyn Fn() -> Result<Box<dyn Injector>, InjectError> + Send + Sync>;

/// The X11 keycode of a key position (evdev code + 8).
pub fn x11_keycode(key: Key) -> u16 {
    use Key::*;
    let evdev: u16 = match key {
        Escape => 1,
        Num1 => 2,
        Num2 => 3,
        Num3 => 4,
        Num4 => 5,
        Num5 => 6,
        Num6 => 7,
        Num7 => 8,
        Num8 => 9,
        Num9 => 10,
        Num0 => 11,
        Minus => 12,
        Equal => 13,
        Backspace => 14,
        Tab => 15,
        Q => 16,
        W => 17,
        E => 18,
        R => 19,
        T => 20,
        Y => 21,
        U => 22,
        I => 23,
        O => 24,
        P => 25,
        BracketLeft => 26,
        BracketRight => 27,
        Enter => 28,
        ControlLeft => 29,
        A => 30,
        S => 31,
        D => 32,
        F => 33,
        G => 34,
        H => 35,
        J => 36,
        K => 37,
        L => 38,
        Semicolon => 39,
        Quote => 40,
        Backquote => 41,
        ShiftLeft => 42,
        Backslash => 43,
        Z => 44,
        X => 45,
        C => 46,
        V => 47,
        B => 48,
        N => 49,
        M => 50,
        Comma => 51,
        Period => 52,
        Slash => 53,
        ShiftRight => 54,
        NumpadMultiply => 55,
        AltLeft => 56,
        Space => 57,
        CapsLock => 58,
        F1 => 59,
        F2 => 60,
        F3 => 61,
        F4 => 62,
        F5 => 63,
        F6 => 64,
        F7 => 65,
        F8 => 66,
        F9 => 67,
        F10 => 68,
        NumLock => 69,
        ScrollLock => 70,
        Numpad7 => 71,
        Numpad8 => 72,
        Numpad9 => 73,
        NumpadSubtract => 74,
        Numpad4 => 75,
        Numpad5 => 76,
        Numpad6 => 77,
        NumpadAdd => 78,
        Numpad1 => 79,
        Numpad2 => 80,
        Numpad3 => 81,
        Numpad0 => 82,
        NumpadDecimal => 83,
        F11 => 87,
        F12 => 88,
        NumpadEnter => 96,
        ControlRight => 97,
        NumpadDivide => 98,
        PrintScreen => 99,
        AltRight => 100,
        Home => 102,
        ArrowUp => 103,
        PageUp => 104,
        ArrowLeft => 105,
        ArrowRight => 106,
        End => 107,
        ArrowDown => 108,
        PageDown => 109,
        Insert => 110,
        Delete => 111,
        Pause => 119,
        SuperLeft => 125,
        SuperRight => 126,
        Menu => 127,
    };
    evdev + 8
}

/// Desktop coordinates of a point on a monitor, clamped to it.
pub fn to_desktop(monitors: &[MonitorInfo], monitor: u8, x: u32, y: u32) -> Option<(i32, i32)> {
    let m = monitors.get(usize::from(monitor))?;
    let x = x.min(m.width.saturating_sub(1)) as i32;
    let y = y.min(m.height.saturating_sub(1)) as i32;
    Some((m.x + x, m.y + y))
}

/// Injects through enigo (XTest on X11, SendInput on Windows, CGEvent on macOS).
pub struct EnigoInjector {
    enigo: enigo::Enigo,
}

impl std::fmt::Debug for EnigoInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnigoInjector")
    }
}

impl EnigoInjector {
    /// Opens the backend for this desktop.
    pub fn open() -> Result<Self, InjectError> {
        let settings = enigo::Settings {
            linux_delay: 0,
            release_keys_when_dropped: true,
            ..Default::default()
        };
        let enigo = enigo::Enigo::new(&settings).map_err(|e| InjectError::Open(e.to_string()))?;
        Ok(Self { enigo })
    }

    fn key(&mut self, key: Key, down: bool) -> Result<(), InjectError> {
        use enigo::Keyboard as _;
        let dir = if down {
            enigo::Direction::Press
        } else {
            enigo::Direction::Release
        };
        self.enigo
            .raw(x11_keycode(key), dir)
            .map_err(|e| InjectError::Failed(e.to_string()))
    }
}

impl Injector for EnigoInjector {
    fn inject(&mut self, ev: &InputEvent, monitors: &[MonitorInfo]) -> Result<(), InjectError> {
        use enigo::{Keyboard as _, Mouse as _};
        let fail = |e: enigo::InputError| InjectError::Failed(e.to_string());
        match ev {
            InputEvent::MouseMove { monitor, x, y } => {
                let (dx, dy) = to_desktop(monitors, *monitor, *x, *y)
                    .ok_or_else(|| InjectError::Failed(format!("no monitor {monitor}")))?;
                self.enigo
                    .move_mouse(dx, dy, enigo::Coordinate::Abs)
                    .map_err(fail)
            }
            InputEvent::Button { button, down } => {
                let b = match button {
                    Button::Left => enigo::Button::Left,
                    Button::Middle => enigo::Button::Middle,
                    Button::Right => enigo::Button::Right,
                    Button::Back => enigo::Button::Back,
                    Button::Forward => enigo::Button::Forward,
                };
                let dir = if *down {
                    enigo::Direction::Press
                } else {
                    enigo::Direction::Release
                };
                self.enigo.button(b, dir).map_err(fail)
            }
            InputEvent::Wheel { dx, dy } => {
                if *dy != 0 {
                    self.enigo
                        .scroll(*dy, enigo::Axis::Vertical)
                        .map_err(fail)?;
                }
                if *dx != 0 {
                    self.enigo
                        .scroll(*dx, enigo::Axis::Horizontal)
                        .map_err(fail)?;
                }
                Ok(())
            }
            InputEvent::Key { key, down } => self.key(*key, *down),
            InputEvent::Text { text } => self.enigo.text(text).map_err(fail),
            InputEvent::Combo(c) => {
                for k in c.keys() {
                    self.key(*k, true)?;
                }
                for k in c.keys().iter().rev() {
                    self.key(*k, false)?;
                }
                Ok(())
            }
        }
    }
}

/// The injector for this desktop.
pub fn system_injector() -> InjectorFactory {
    Arc::new(|| Ok(Box::new(EnigoInjector::open()?) as Box<dyn Injector>))
}

/// Records events instead of injecting them, for tests; each injection can be made to take a
/// while, like a busy desktop.
#[derive(Debug, Clone, Default)]
pub struct RecordingInjector {
    /// What was injected, and when it finished.
    pub events: Arc<Mutex<Vec<InputEvent>>>,
    /// When each event finished injecting.
    pub times: Arc<Mutex<Vec<std::time::Instant>>>,
    /// How long each injection takes.
    pub delay: std::time::Duration,
}

impl Injector for RecordingInjector {
    fn inject(&mut self, ev: &InputEvent, _monitors: &[MonitorInfo]) -> Result<(), InjectError> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let poisoned = |_| InjectError::Failed("poisoned".into());
        self.events.lock().map_err(poisoned)?.push(ev.clone());
        self.times
            .lock()
            .map_err(|_| InjectError::Failed("poisoned".into()))?
            .push(std::time::Instant::now());
        Ok(())
    }
}

/// Most events waiting for injection; more input than that is dropped (key and button releases
/// are always taken).
pub const MAX_QUEUED: usize = 1024;

#[derive(Debug, Default)]
struct Waiting {
    events: VecDeque<InputEvent>,
    closed: bool,
}

/// Input waiting for injection, injected in order on a thread of its own (consecutive pointer
/// moves are coalesced). [`InjectQueue::cancel`] drops everything not injected yet at once, so
/// input queued before a revoke never reaches the desktop after it.
#[derive(Debug)]
pub struct InjectQueue {
    inner: Arc<(Mutex<Waiting>, Condvar)>,
}

fn is_release(ev: &InputEvent) -> bool {
    matches!(
        ev,
        InputEvent::Key { down: false, .. } | InputEvent::Button { down: false, .. }
    )
}

impl InjectQueue {
    /// Starts the injection thread; `report` hears why injection is unavailable or failed.
    pub fn start(
        factory: InjectorFactory,
        monitors: Vec<MonitorInfo>,
        report: impl Fn(String) + Send + 'static,
    ) -> Self {
        let q = Self {
            inner: Arc::default(),
        };
        let inner = q.inner.clone();
        std::thread::spawn(move || {
            let mut inj = match factory() {
                Ok(i) => i,
                Err(e) => {
                    report(format!("remote control unavailable: {e}"));
                    return;
                }
            };
            let (lock, ready) = &*inner;
            loop {
                let ev = {
                    let mut w = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while w.events.is_empty() && !w.closed {
                        w = ready.wait(w).unwrap_or_else(|e| e.into_inner());
                    }
                    let Some(mut ev) = w.events.pop_front() else {
                        return;
                    };
                    // Skip to the last of a run of pointer moves.
                    while matches!(ev, InputEvent::MouseMove { .. })
                        && matches!(w.events.front(), Some(InputEvent::MouseMove { .. }))
                    {
                        if let Some(next) = w.events.pop_front() {
                            ev = next;
                        }
                    }
                    ev
                };
                if let Err(e) = inj.inject(&ev, &monitors) {
                    report(format!("input injection failed: {e}"));
                }
            }
        });
        q
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event; false if too much is waiting already (the event is dropped).
    pub fn push(&self, ev: InputEvent) -> bool {
        let mut w = self.waiting();
        if w.events.len() >= MAX_QUEUED && !is_release(&ev) {
            return false;
        }
        w.events.push_back(ev);
        self.inner.1.notify_one();
        true
    }

    /// Drops every event not injected yet.
    pub fn cancel(&self) -> usize {
        let mut w = self.waiting();
        let n = w.events.len();
        w.events.clear();
        n
    }
}

impl Drop for InjectQueue {
    fn drop(&mut self) {
        // The thread stops once what is queued (releases, at the end of control) is done.
        self.waiting().closed = true;
        self.inner.1.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycodes_follow_evdev() {
        assert_eq!(x11_keycode(Key::A), 38);
        assert_eq!(x11_keycode(Key::ControlLeft), 37);
        assert_eq!(x11_keycode(Key::AltLeft), 64);
        assert_eq!(x11_keycode(Key::Delete), 119);
        assert_eq!(x11_keycode(Key::Escape), 9);
        assert_eq!(x11_keycode(Key::SuperLeft), 133);
        assert_eq!(x11_keycode(Key::PrintScreen), 107);
    }

    #[test]
    fn a_cancel_stops_queued_input_at_once_but_keeps_releases() {
        use std::time::{Duration, Instant};
        let rec = RecordingInjector {
            delay: Duration::from_millis(20),
            ..Default::default()
        };
        let r = rec.clone();
        let q = InjectQueue::start(
            Arc::new(move || Ok(Box::new(r.clone()) as Box<dyn Injector>)),
            Vec::new(),
            |_| {},
        );
        for _ in 0..200 {
            assert!(q.push(InputEvent::Text { text: "x".into() }));
        }
        let started = Instant::now() + Duration::from_secs(5);
        while rec.events.lock().expect("lock").is_empty() {
            assert!(Instant::now() < started, "nothing injected");
            std::thread::yield_now();
        }
        let revoked = Instant::now();
        assert!(q.cancel() > 100);
        assert!(q.push(InputEvent::Key {
            key: Key::A,
            down: false
        }));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let done = rec
                .events
                .lock()
                .expect("lock")
                .last()
                .is_some_and(|e| matches!(e, InputEvent::Key { down: false, .. }));
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "the release never came");
            std::thread::yield_now();
        }
        let times = rec.times.lock().expect("lock").clone();
        let last = times.last().copied().expect("times");
        assert!(
            last.duration_since(revoked) < Duration::from_millis(100),
            "injected {:?} after the revoke",
            last.duration_since(revoked)
        );
        let events = rec.events.lock().expect("lock").clone();
        assert!(events.len() < 10, "{} events got through", events.len());
    }

    #[test]
    fn the_queue_is_bounded_but_releases_always_get_in() {
        let q = InjectQueue {
            inner: Arc::default(),
        };
        for _ in 0..MAX_QUEUED {
            assert!(q.push(InputEvent::Text { text: "x".into() }));
        }
        assert!(!q.push(InputEvent::Text { text: "y".into() }));
        assert!(q.push(InputEvent::Button {
            button: Button::Left,
            down: false
        }));
    }

    #[test]
    fn monitor_points_map_to_the_desktop() {
        let m = |x, w| MonitorInfo {
            name: String::new(),
            x,
            y: 0,
            width: w,
            height: 1024,
            primary: false,
        };
        let mons = [m(0, 1280), m(1280, 1280)];
        assert_eq!(to_desktop(&mons, 1, 10, 20), Some((1290, 20)));
        assert_eq!(
            to_desktop(&mons, 1, 5000, 5000),
            Some((2559, 1023)),
            "clamped to the monitor"
        );
        assert_eq!(to_desktop(&mons, 2, 0, 0), None);
    }
}
