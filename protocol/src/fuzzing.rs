//! Entry points shared by the fuzz targets (`fuzz/`) and the test that replays their regression
//! inputs. Each must return without panicking for any input.

use crate::frame::{self, FrameDecoder};
use crate::msg::{ClientMsg, Hello, HostStream, OpenStream, ScreenMsg, ServerMsg, ViewerMsg};
use crate::screen::Framebuffer;

/// Feeds arbitrary bytes to a frame decoder and every message decoder.
pub fn frame_and_messages(data: &[u8]) {
    let mut d = FrameDecoder::new(frame::CONTROL_MAX_FRAME);
    // Split the input at a data-chosen point to exercise reassembly.
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    d.push(&data[..cut]);
    let _ = d.next_body();
    d.push(&data[cut..]);
    while let Ok(Some(body)) = d.next_body() {
        decode_all(&body);
    }
    decode_all(data);
}

fn decode_all(body: &[u8]) {
    let _ = frame::decode_body::<Hello>(body);
    let _ = frame::decode_body::<ClientMsg>(body);
    let _ = frame::decode_body::<ServerMsg>(body);
    let _ = frame::decode_body::<OpenStream>(body);
    let _ = frame::decode_body::<HostStream>(body);
    let _ = frame::decode_body::<ViewerMsg>(body);
    let _ = frame::decode_body::<ScreenMsg>(body);
    let _ = frame::decode_body::<crate::input::AgentMsg>(body);
    let _ = frame::decode_body::<crate::input::HostMsg>(body);
}

/// Decodes arbitrary bytes as file-stream messages, and checks every name and address in them
/// against the path and address rules.
pub fn file_messages(data: &[u8]) {
    use crate::files::{FileMsg, check_url, safe_relative};
    let mut d = FrameDecoder::new(frame::FILES_MAX_FRAME);
    d.push(data);
    while let Ok(Some(body)) = d.next_body() {
        match frame::decode_body::<FileMsg>(&body) {
            Ok(FileMsg::Put { name, .. }) => {
                let _ = safe_relative(&name);
            }
            Ok(FileMsg::Listing { entries, .. }) => {
                for e in entries {
                    let _ = safe_relative(&e.name);
                }
            }
            Ok(FileMsg::Get { path }) | Ok(FileMsg::List { path, .. }) => {
                let _ = check_url(&path);
            }
            _ => {}
        }
    }
}

/// Checks arbitrary text against the path and address rules, and what they accept.
pub fn paths(data: &[u8]) {
    use crate::files::{check_url, is_format_char, safe_relative};
    let text = String::from_utf8_lossy(data);
    if let Ok(parts) = safe_relative(&text) {
        for p in &parts {
            assert!(!p.is_empty() && p != "." && p != "..", "{text:?} accepted");
            assert!(
                !p.chars()
                    .any(|c| c.is_control() || is_format_char(c) || c == '/' || c == '\\'),
                "{text:?} accepted"
            );
        }
    }
    if let Ok(url) = check_url(&text) {
        let lower = url.to_ascii_lowercase();
        assert!(
            lower.starts_with("http://") || lower.starts_with("https://"),
            "{url:?} accepted"
        );
    }
}

/// Drives one agent's input gate with a sequence of agent messages and customer decisions, and
/// checks what must always hold: no input without control, and nothing held once it ends.
pub fn input_gate(data: &[u8]) {
    use crate::consent::{ConsentGate, Permission};
    use crate::input::{Action, AgentMsg, InputEvent, InputGate};
    use std::time::Duration;
    let mut consent = ConsentGate::new(&[]);
    let mut gate = InputGate::new();
    let mut rest = data;
    let mut now = Duration::ZERO;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        now += Duration::from_millis(u64::from(op) * 97);
        let p = Permission::ALL[usize::from(op >> 4) % Permission::ALL.len()];
        let allowed_before = consent.allows(Permission::Control);
        let actions = match op % 4 {
            0 => match postcard::take_from_bytes::<AgentMsg>(rest) {
                Ok((m, tail)) => {
                    rest = tail;
                    gate.on_agent(&mut consent, m, now)
                }
                Err(_) => return,
            },
            1 => gate.answer(&mut consent, p, op & 8 != 0, now),
            2 => gate.revoke(&mut consent, p),
            _ => gate.disconnected(&mut consent),
        };
        for a in &actions {
            if let Action::Inject(ev) = a {
                let release = matches!(
                    ev,
                    InputEvent::Key { down: false, .. } | InputEvent::Button { down: false, .. }
                );
                assert!(allowed_before || release, "injected {ev:?} without control");
            }
        }
        if !consent.allows(Permission::Control) {
            assert!(
                gate.held_keys().next().is_none(),
                "keys held without control"
            );
        }
    }
}

/// Decodes arbitrary bytes as screen updates and passes them through one stream reader and one
/// framebuffer, as the viewer does.
pub fn screen_updates(data: &[u8]) {
    let mut fb = Framebuffer::new();
    let mut stream = crate::screen::StreamReader::new();
    let mut rest = data;
    while !rest.is_empty() {
        match postcard::take_from_bytes::<ScreenMsg>(rest) {
            Ok((ScreenMsg::Update(mut u), tail)) => {
                // As the viewer does: a part the stream refuses ends it.
                if stream.expand(&mut u).is_err() {
                    break;
                }
                let _ = fb.apply(&u);
                rest = tail;
            }
            Err(_) => break,
        }
    }
}

/// The regression inputs in `fuzz/regressions/`, replayed on every `cargo test`.
#[cfg(test)]
mod regressions {
    use std::path::Path;

    #[test]
    fn fuzz_regressions_do_not_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut n = 0;
        for (target, run) in [
            ("frame", super::frame_and_messages as fn(&[u8])),
            ("screen_update", super::screen_updates),
            ("file_msg", super::file_messages),
            ("paths", super::paths),
            ("input_gate", super::input_gate),
        ] {
            let dir = root.join(target);
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.expect("entry").path();
                let data = std::fs::read(&path).expect("read");
                run(&data);
                n += 1;
            }
        }
        assert!(n >= 20, "only {n} regression inputs");
    }
}
