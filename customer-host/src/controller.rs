//! The host's life between sessions: takes a key (from the command line or the window), runs a
//! session with it, shows how it ended, and waits for the next key until the customer closes
//! the window. Headless, it makes one attempt and exits with its status.

use tokio::sync::{mpsc, watch};

use crate::config::Target;
use crate::consent::{Decision, Phase, Shared};
use crate::failure::{Failure, ended_words};
use crate::grants::Answerer;
use crate::{HostEvent, HostOptions, Outcome, Services};

/// Whether the window is there to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowLife {
    /// Shown (or about to be).
    Open,
    /// The customer closed it: end everything and exit.
    Closed,
    /// It could not be shown: go on as a headless host would.
    Failed,
}

/// Runs sessions until the customer closes the window (or, headless, after one attempt).
/// Returns the exit status of the last attempt.
pub async fn run(
    target: Result<Target, Failure>,
    first_key: Option<String>,
    name: Option<String>,
    reconnect_for: std::time::Duration,
    services: Services,
    decisions: mpsc::UnboundedReceiver<Decision>,
    life: watch::Receiver<WindowLife>,
) -> u8 {
    let mut ui = Customer { decisions, life };
    let target = match target {
        Ok(t) => t,
        Err(f) => {
            let code = report(&f);
            if !services.answerer.is_nobody() {
                // The window shows it until the customer closes it.
                let _ = ui.next_key().await;
            }
            return code;
        }
    };
    let (end_tx, end) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = end_tx.send(true);
    });
    let (events, printer) = printer();
    let mut attempts = Attempts {
        target,
        name,
        reconnect_for,
        shared: services.shared.clone(),
        answerer: services.answerer.clone(),
        services,
        ui,
        end,
        events,
    };
    let code = attempts.run(first_key).await;
    drop(attempts);
    let _ = printer.await;
    code
}

/// What the customer does in the window between sessions.
struct Customer {
    decisions: mpsc::UnboundedReceiver<Decision>,
    life: watch::Receiver<WindowLife>,
}

/// What the customer asks for between sessions.
enum Next {
    Key(String),
    Quit,
}

impl Customer {
    /// Waits for a key from the window, or for the window to go away.
    async fn next_key(&mut self) -> Next {
        loop {
            if *self.life.borrow() != WindowLife::Open {
                return Next::Quit;
            }
            tokio::select! {
                d = self.decisions.recv() => match d {
                    Some(Decision::Connect(k)) => return Next::Key(k),
                    Some(Decision::EndSession | Decision::CloseWindow) | None => return Next::Quit,
                    Some(_) => {}
                },
                changed = self.life.changed() => if changed.is_err() {
                    return Next::Quit;
                },
            }
        }
    }

    /// After a session ended (the window says so): waits for "New session" (the key field is
    /// shown again), a key, or the window closing.
    async fn after_end(&mut self, shared: &Shared) -> Then {
        loop {
            tokio::select! {
                d = self.decisions.recv() => match d {
                    Some(Decision::NewSession) => {
                        shared.update(|v| v.phase = Phase::EnterKey);
                        return Then::Again(None);
                    }
                    Some(Decision::Connect(k)) => return Then::Again(Some(k)),
                    Some(Decision::EndSession | Decision::CloseWindow) | None => return Then::Stop,
                    Some(_) => {}
                },
                changed = self.life.changed() => {
                    if changed.is_err() || *self.life.borrow() != WindowLife::Open {
                        return Then::Stop;
                    }
                }
            }
        }
    }
}

/// What follows an attempt.
enum Then {
    /// Exit with the attempt's status.
    Stop,
    /// Another attempt, with this key or the next one the customer gives.
    Again(Option<String>),
}

/// Attempts at a session, one after the other.
struct Attempts {
    target: Target,
    /// The customer's name, if they gave one.
    name: Option<String>,
    /// How long to try to come back after the connection drops.
    reconnect_for: std::time::Duration,
    services: Services,
    shared: Shared,
    answerer: Answerer,
    ui: Customer,
    /// Set by Ctrl+C.
    end: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<HostEvent>,
}

impl Attempts {
    fn stopping(&self) -> bool {
        self.answerer.is_nobody() || *self.end.borrow()
    }

    async fn run(&mut self, mut pending: Option<String>) -> u8 {
        let mut code = 0u8;
        loop {
            let key = match pending.take() {
                Some(k) => k,
                None if self.answerer.is_nobody() => {
                    if code == 0 {
                        eprintln!(
                            "tether-host: no session key: give the key your support agent sent as the first argument"
                        );
                        code = 2;
                    }
                    return code;
                }
                None => match self.ui.next_key().await {
                    Next::Key(k) => k,
                    Next::Quit => return code,
                },
            };
            let then;
            (code, then) = self.attempt(key).await;
            match then {
                Then::Stop => return code,
                Then::Again(next) => pending = next,
            }
        }
    }

    /// One attempt with `key`: its exit status and what follows.
    async fn attempt(&mut self, key: String) -> (u8, Then) {
        // A malformed key is told at once, without a connection.
        if let Err(r) = tether_protocol::pairing::parse_ref(&key) {
            let f = Failure::Refused(r);
            let code = report(&f);
            self.shared.update(|v| {
                v.phase = Phase::EnterKey;
                v.failure = Some(f);
            });
            return (code, Then::Again(None));
        }
        self.shared.update(|v| v.start_attempt());
        println!("connecting to {}", self.target.relay);
        let opts = HostOptions {
            key,
            relay: self.target.relay.clone(),
            trust: self.target.trust.clone(),
            name: self.name.clone(),
            reconnect_for: self.reconnect_for,
        };
        let res = crate::run_with(
            opts,
            self.services.clone(),
            &mut self.ui.decisions,
            self.events.clone(),
            self.end.clone(),
        )
        .await;
        match res {
            Ok(outcome) => {
                let reason = match outcome {
                    Outcome::Ended(r) => r,
                    Outcome::EndedHere => tether_protocol::msg::EndReason::CustomerEnded,
                };
                println!("session ended: {reason}");
                self.shared.update(|v| {
                    v.end_session();
                    v.phase = Phase::Ended(ended_words(reason).into());
                });
                if self.stopping() {
                    return (0, Then::Stop);
                }
                // The window keeps saying so until the customer closes it or starts over.
                (0, self.ui.after_end(&self.shared).await)
            }
            Err(e) => {
                let f = Failure::from(&e);
                let code = report(&f);
                self.shared.update(|v| {
                    v.end_session();
                    v.phase = Phase::EnterKey;
                    v.failure = Some(f);
                });
                let then = if self.stopping() {
                    Then::Stop
                } else {
                    Then::Again(None)
                };
                (code, then)
            }
        }
    }
}

/// Prints a failure where a customer without a window would look, and returns its exit status.
fn report(f: &Failure) -> u8 {
    eprintln!("tether-host: {}", f.message());
    f.exit_code()
}

/// Tells, on standard output, what happens during a session.
fn printer() -> (
    mpsc::UnboundedSender<HostEvent>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut had_agent = false;
        while let Some(ev) = rx.recv().await {
            match ev {
                HostEvent::Agents(a) if a.is_empty() && had_agent => {
                    had_agent = false;
                    println!(
                        "your representative is no longer connected; waiting for the next one (Ctrl+C ends the session)"
                    );
                }
                HostEvent::Reconnecting(n) => {
                    println!("connection lost; reconnecting (attempt {n})");
                }
                HostEvent::Resumed => println!("reconnected: the session goes on"),
                HostEvent::Joined { session, queue } => {
                    println!("joined session {session}: waiting for a representative ({queue})");
                }
                HostEvent::InLine(place) => println!("you are number {place} in line"),
                HostEvent::Agents(a) if a.is_empty() => println!("waiting for a representative"),
                HostEvent::Agents(a) => {
                    had_agent = true;
                    println!("connected: {}", a.join(", "));
                }
                HostEvent::ViewerStarted { agent, monitor } => {
                    println!(
                        "{agent} is viewing your screen (monitor {})",
                        u32::from(monitor) + 1
                    )
                }
                HostEvent::ViewerStopped { agent } => {
                    println!("{agent} stopped viewing your screen")
                }
            }
        }
    });
    (tx, task)
}
