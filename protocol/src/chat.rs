//! The session's chat: messages between the customer and the agents, private messages among
//! agents, and status notes the relay writes into the log. Chat is control-plane data: it goes
//! through the relay, which routes each line only to its audience and keeps it in the session's
//! record.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::desk::{ParticipantId, QueueId};

/// Most characters in one chat message.
pub const MAX_CHAT_CHARS: usize = 2000;

/// Most lines a session's chat keeps (older ones stay in the relay's record only).
pub const MAX_CHAT_LINES: usize = 2000;

/// Most lines in one [`crate::msg::ServerMsg::Chat`].
pub const CHAT_CHUNK: usize = 32;

/// Most chat lines (messages and host notes) one connection may add per
/// [`CHAT_WINDOW_SECS`]; more are refused, so a hostile peer cannot fill a session's record.
pub const CHAT_BURST: u32 = 30;

/// The window of [`CHAT_BURST`], in seconds.
pub const CHAT_WINDOW_SECS: u64 = 10;

/// The name the customer sees for a masked representative.
pub const SUPPORT_NAME: &str = "Support";

/// Who a message is for.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// The customer and every representative.
    Everyone,
    /// Every representative in the session, not the customer.
    Representatives,
    /// One representative (by login name), and the sender.
    Agent(String),
}

/// Who wrote a line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Speaker {
    /// The customer.
    Customer(String),
    /// A representative: their membership, login and display name (the customer sees no login,
    /// and [`SUPPORT_NAME`] for a masked one).
    Agent {
        /// The membership.
        id: ParticipantId,
        /// Login name (empty towards the customer).
        login: String,
        /// Display name.
        name: String,
    },
}

impl Speaker {
    /// The name shown.
    pub fn name(&self) -> &str {
        match self {
            Speaker::Customer(n) => n,
            Speaker::Agent { name, .. } => name,
        }
    }
}

/// Something that happened in the session, written into the log by the relay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StatusNote {
    /// The customer joined and waits in a queue.
    Waiting(QueueId),
    /// A representative joined (masked or not).
    Joined {
        /// Display name.
        name: String,
        /// Hidden from the customer.
        masked: bool,
    },
    /// A representative left.
    Left(String),
    /// A representative's connection was lost.
    Lost(String),
    /// A representative transferred the session.
    Transferred {
        /// Who.
        by: String,
        /// Where to.
        to: QueueId,
    },
    /// A representative invited someone.
    Invited {
        /// Who invited.
        by: String,
        /// Where the invitation went.
        to: QueueId,
        /// Masked.
        masked: bool,
    },
    /// Something the customer's host reports (control, files, addresses, clipboard).
    Host(HostNote),
    /// The customer's connection dropped; the relay waits for it to come back.
    CustomerAway,
    /// The customer's connection is back.
    CustomerBack,
    /// A representative's connection dropped; the relay keeps their place while they come back.
    AgentAway(String),
    /// A representative's connection is back.
    AgentBack(String),
}

impl fmt::Display for StatusNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusNote::Waiting(q) => write!(f, "the customer waits in the {q}"),
            StatusNote::Joined { name, masked: true } => write!(f, "{name} joined (masked)"),
            StatusNote::Joined { name, .. } => write!(f, "{name} joined"),
            StatusNote::Left(n) => write!(f, "{n} left"),
            StatusNote::Lost(n) => write!(f, "{n}'s connection was lost"),
            StatusNote::Transferred { by, to } => {
                write!(f, "{by} transferred the session to the {to}")
            }
            StatusNote::Invited { by, to, masked } => {
                let how = if *masked { " (masked)" } else { "" };
                write!(f, "{by} invited the {to}{how}")
            }
            StatusNote::Host(n) => n.fmt(f),
            StatusNote::CustomerAway => {
                f.write_str("the customer's connection was lost; waiting for it to come back")
            }
            StatusNote::CustomerBack => f.write_str("the customer's connection is back"),
            StatusNote::AgentAway(n) => write!(f, "{n}'s connection dropped; waiting for it"),
            StatusNote::AgentBack(n) => write!(f, "{n}'s connection is back"),
        }
    }
}

/// What the customer's host reports for the log. Names are the host's view of who asked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum HostNote {
    /// The customer allowed remote control.
    ControlGranted(String),
    /// Remote control ended.
    ControlStopped(String),
    /// The customer allowed clipboard sync.
    ClipboardGranted(String),
    /// A file arrived from a representative.
    FileReceived {
        /// File name.
        name: String,
        /// Bytes.
        size: u64,
    },
    /// A file went to a representative.
    FileSent {
        /// File name.
        name: String,
        /// Bytes.
        size: u64,
    },
    /// The customer opened a pushed address.
    UrlOpened(String),
}

impl fmt::Display for HostNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostNote::ControlGranted(n) => write!(f, "the customer gave {n} control"),
            HostNote::ControlStopped(n) => write!(f, "remote control by {n} ended"),
            HostNote::ClipboardGranted(n) => {
                write!(f, "the customer allowed clipboard sync with {n}")
            }
            HostNote::FileReceived { name, size } => {
                write!(f, "the customer received {name} ({size} bytes)")
            }
            HostNote::FileSent { name, size } => {
                write!(f, "the customer sent {name} ({size} bytes)")
            }
            HostNote::UrlOpened(u) => write!(f, "the customer opened {u}"),
        }
    }
}

/// One line of the log.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ChatLine {
    /// A message.
    Message {
        /// Who wrote it.
        from: Speaker,
        /// For whom.
        to: Audience,
        /// The text.
        text: String,
    },
    /// A status note.
    Note(StatusNote),
}

/// A line with its place and time.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// Its number in the session's log, from 1.
    pub seq: u64,
    /// When, seconds since the Unix epoch.
    pub at: u64,
    /// The line.
    pub line: ChatLine,
}

impl ChatEntry {
    /// The line as a transcript shows it: `[HH:MM:SS] name (to whom): text` or `[..] * note`.
    pub fn transcript(&self) -> String {
        let t = self.at % 86_400;
        let clock = format!("{:02}:{:02}:{:02}", t / 3600, (t % 3600) / 60, t % 60);
        match &self.line {
            ChatLine::Message { from, to, text } => {
                let whom = match to {
                    Audience::Everyone => String::new(),
                    Audience::Representatives => " (to representatives)".into(),
                    Audience::Agent(a) => format!(" (to {a})"),
                };
                format!("[{clock}] {}{whom}: {text}", from.name())
            }
            ChatLine::Note(n) => format!("[{clock}] * {n}"),
        }
    }
}

/// A canned message or address from the team's or the agent's library.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its title in the menu.
    pub title: String,
    /// The message (for an address, what goes with it).
    pub text: String,
    /// An address to send as a link or push.
    pub url: Option<String>,
    /// Whose library: "team NAME" or "yours".
    pub scope: String,
}

/// Most scripts sent to an agent.
pub const MAX_SCRIPTS: usize = 500;

/// Why a message was not taken.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Nothing to send.
    #[error("the message is empty")]
    Empty,
    /// Too long.
    #[error("the message is longer than {MAX_CHAT_CHARS} characters")]
    TooLong,
}

/// Checks a message's text: trimmed of trailing blanks, not empty, not too long, control
/// characters other than newlines and tabs removed.
pub fn check_text(text: &str) -> Result<String, ChatError> {
    let clean: String = text
        .trim_end()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    if clean.trim().is_empty() {
        return Err(ChatError::Empty);
    }
    if clean.chars().count() > MAX_CHAT_CHARS {
        return Err(ChatError::TooLong);
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(check_text("hi\u{7}\n"), Ok("hi".into()));
        assert_eq!(check_text("  \n"), Err(ChatError::Empty));
        assert_eq!(
            check_text(&"x".repeat(MAX_CHAT_CHARS + 1)),
            Err(ChatError::TooLong)
        );
        assert_eq!(check_text("a\nb"), Ok("a\nb".into()));
    }

    #[test]
    fn transcript_lines_name_the_audience() {
        let e = ChatEntry {
            seq: 1,
            at: 3600 + 62,
            line: ChatLine::Message {
                from: Speaker::Customer("Carol".into()),
                to: Audience::Everyone,
                text: "hello".into(),
            },
        };
        assert_eq!(e.transcript(), "[01:01:02] Carol: hello");
        let n = ChatEntry {
            seq: 2,
            at: 3600 + 63,
            line: ChatLine::Note(StatusNote::Left("Alice A.".into())),
        };
        assert_eq!(n.transcript(), "[01:01:03] * Alice A. left");
    }
}
