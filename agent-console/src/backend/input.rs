//! One session's input stream: the agent's consent requests, input and clipboard in order, and
//! the customer's answers, taken only when they answer this console's own requests.

use tether_desktop::clipboard::{ClipboardFactory, ClipboardWorker};
use tether_i18n::t;
use tether_protocol::input::{AgentMsg, Grant, HostMsg, MAX_CLIPBOARD};
use tether_protocol::msg::SessionId;
use tokio::sync::mpsc;
use tracing::warn;

use super::{Connection, InputTask, Sink};
use crate::asked::Verdict;
use crate::net::InputChannel;
use crate::state::Event;

impl Connection {
    /// Sends a message on a session's input stream, opening the stream first if needed.
    pub(super) async fn send_input(
        &mut self,
        session: SessionId,
        msg: AgentMsg,
        sink: &Sink,
        clipboard: &ClipboardFactory,
    ) {
        if self
            .inputs
            .get(&session)
            .is_none_or(|i| i.task.is_finished())
        {
            match self.client.input(session).await {
                Ok(chan) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let task = tokio::spawn(run_input(
                        chan,
                        session,
                        rx,
                        sink.clone(),
                        clipboard.clone(),
                    ));
                    self.inputs.insert(session, InputTask { tx, task });
                }
                Err(e) => {
                    sink.send(Event::Notice(t!(
                        "input-unreachable",
                        why = crate::words::error(&e)
                    )));
                    return;
                }
            }
        }
        if let Some(i) = self.inputs.get(&session) {
            let _ = i.tx.send(msg);
        }
    }
}

/// One session's input stream: sends the agent's messages in order, reports the customer's
/// answers, and syncs the clipboard while that is allowed.
async fn run_input(
    chan: InputChannel,
    session: SessionId,
    mut rx: mpsc::UnboundedReceiver<AgentMsg>,
    sink: Sink,
    clipboard: ClipboardFactory,
) {
    let (mut send, mut recv) = chan.split();
    let (host_tx, mut host_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let m = recv.next().await;
            let stop = m.is_err();
            if host_tx.send(m).is_err() || stop {
                break;
            }
        }
    });
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<String>();
    let notice = sink.clone();
    let clip = ClipboardWorker::start(
        clipboard,
        move |t| local_tx.send(t).is_ok(),
        move |e| notice.send(Event::Notice(e)),
    );
    let mut asked = crate::asked::Asked::new();
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    asked.sent(&m);
                    if send.send(&m).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            h = host_rx.recv() => match h {
                Some(Ok(m)) => from_host(asked.received(m), session, &sink, &clip),
                Some(Err(_)) | None => break,
            },
            t = local_rx.recv() => match t {
                Some(text) if asked.clipboard() == Grant::On => {
                    if text.len() > MAX_CLIPBOARD {
                        sink.send(Event::Notice(t!(
                            "clipboard-too-big",
                            size = text.len(),
                            max = MAX_CLIPBOARD
                        )));
                    } else if send.send(&AgentMsg::Clipboard { text }).await.is_err() {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    clip.watch(false);
    reader.abort();
    sink.send(Event::Control {
        session,
        grant: Grant::Off,
    });
    sink.send(Event::ClipboardSync {
        session,
        grant: Grant::Off,
    });
}

/// Acts on what the customer's host said, if it answers this console's own requests.
fn from_host(verdict: Verdict, session: SessionId, sink: &Sink, clip: &ClipboardWorker) {
    match verdict {
        Verdict::Accept(HostMsg::Control(grant)) => sink.send(Event::Control { session, grant }),
        Verdict::Accept(HostMsg::ClipboardSync(grant)) => {
            clip.watch(grant == Grant::On);
            sink.send(Event::ClipboardSync { session, grant });
        }
        Verdict::Accept(HostMsg::Clipboard { text }) => {
            clip.set(text);
            sink.send(Event::Notice(t!("clipboard-received")));
        }
        Verdict::Accept(HostMsg::Refused(why)) => sink.send(Event::Notice(why)),
        Verdict::Accept(HostMsg::UrlOpened(url)) => {
            sink.send(Event::Notice(t!("url-opened", url = url.as_str())))
        }
        Verdict::Ignore(what) => {
            warn!(%session, what, "ignored a message from the customer's host")
        }
    }
}
