//! The agent's client: log in, create keys, receive session events, view screens.
//!
//! This is plain async code with no UI in it; the console's backend drives it, and so do the
//! end-to-end tests and the benchmark's headless agent.

use std::time::{SystemTime, UNIX_EPOCH};

use std::path::Path;
use std::sync::Arc;
use tether_net::{ConnectError, close, read_msg, write_msg};
use tether_protocol::frame::{CONTROL_MAX_FRAME, INPUT_MAX_FRAME, MEDIA_MAX_FRAME};

use tether_files::{Inbox, Progress, hash_file, hash_prefix, send_file};
use tether_protocol::files::{Entry, FileMsg};
use tether_protocol::frame::FILES_MAX_FRAME;
use tether_protocol::input::{AgentMsg, HostMsg};
use tether_protocol::msg::{
    ClientMsg, HELLO_MAGIC, Hello, OpenStream, Refusal, Role, ScreenMsg, ServerMsg, SessionId,
    ViewerMsg,
};
use tether_protocol::screen::{CodecError, Framebuffer, Quality, Rect, Timing};
use tokio::sync::{Mutex, mpsc};

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused.
    #[error("{0}")]
    Refused(Refusal),
    /// The connection broke.
    #[error("lost the connection to the relay: {0}")]
    Lost(String),
    /// The relay or host broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A screen update could not be decoded.
    #[error("screen update: {0}")]
    Codec(#[from] CodecError),
    /// A file operation failed.
    #[error("{0}")]
    Files(String),
}

async fn read_file_msg(recv: &mut quinn::RecvStream) -> Result<FileMsg, ClientError> {
    match read_msg::<FileMsg>(recv, FILES_MAX_FRAME).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(lost("the file stream ended")),
        Err(e) if e.is_protocol_violation() => Err(ClientError::Protocol(e.to_string())),
        Err(e) => Err(lost(e)),
    }
}

fn lost(e: impl std::fmt::Display) -> ClientError {
    ClientError::Lost(e.to_string())
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn read_server(recv: &mut quinn::RecvStream) -> Result<ServerMsg, ClientError> {
    match read_msg::<ServerMsg>(recv, CONTROL_MAX_FRAME).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(lost("the relay closed the connection")),
        Err(e) if e.is_protocol_violation() => Err(ClientError::Protocol(e.to_string())),
        Err(e) => Err(lost(e)),
    }
}

/// A logged-in agent.
#[derive(Debug)]
pub struct AgentClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: Mutex<quinn::SendStream>,
    events: mpsc::UnboundedReceiver<Result<ServerMsg, ClientError>>,
    agent: String,
    relay: String,
    fingerprint: [u8; 32],
}

impl AgentClient {
    /// Connects to the relay (pinned) and logs in.
    pub async fn login(
        relay: &str,
        fingerprint: [u8; 32],
        user: &str,
        password: &str,
    ) -> Result<Self, ClientError> {
        let (endpoint, conn) = tether_net::connect(relay, fingerprint).await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(lost)?;
        let hello = Hello {
            magic: HELLO_MAGIC,
            version: tether_protocol::PROTOCOL_VERSION,
            role: Role::Agent,
            software: format!("tether-console {}", env!("CARGO_PKG_VERSION")),
        };
        write_msg(&mut send, &hello, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)?;
        match read_server(&mut recv).await? {
            ServerMsg::Welcome { .. } => {}
            ServerMsg::Refused(r) => {
                conn.close(close::NORMAL.into(), b"refused");
                return Err(ClientError::Refused(r));
            }
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        }
        let login = ClientMsg::Login {
            user: user.to_string(),
            password: tether_protocol::msg::Password(password.to_string()),
        };
        write_msg(&mut send, &login, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)?;
        let agent = match read_server(&mut recv).await? {
            ServerMsg::LoggedIn { agent } => agent,
            ServerMsg::Refused(r) => {
                conn.close(close::NORMAL.into(), b"refused");
                return Err(ClientError::Refused(r));
            }
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let m = read_server(&mut recv).await;
                let stop = m.is_err();
                if tx.send(m).is_err() || stop {
                    break;
                }
            }
        });
        Ok(Self {
            endpoint,
            conn,
            send: Mutex::new(send),
            events: rx,
            agent,
            relay: relay.to_string(),
            fingerprint,
        })
    }

    /// The agent's account name.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The relay address this client connected to.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The relay's pinned fingerprint.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The next message from the relay; an error when the connection is gone.
    pub async fn next_event(&mut self) -> Result<ServerMsg, ClientError> {
        match self.events.recv().await {
            Some(r) => r,
            None => Err(lost("connection closed")),
        }
    }

    async fn send(&self, msg: &ClientMsg) -> Result<(), ClientError> {
        let mut send = self.send.lock().await;
        write_msg(&mut send, msg, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)
    }

    /// Takes the stream of relay messages, for a caller that waits on it apart from sending.
    /// [`AgentClient::next_event`] reports a lost connection afterwards.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<Result<ServerMsg, ClientError>> {
        let (_tx, rx) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.events, rx)
    }

    /// Asks for a new session key; it arrives as [`ServerMsg::KeyCreated`].
    pub async fn create_key(&self, ttl_secs: Option<u32>) -> Result<(), ClientError> {
        self.send(&ClientMsg::CreateKey { ttl_secs }).await
    }

    /// Leaves a session.
    pub async fn leave(&self, session: SessionId) -> Result<(), ClientError> {
        self.send(&ClientMsg::LeaveSession { session }).await
    }

    /// Opens a screen stream of `session`, starting on `monitor`.
    pub async fn view(&self, session: SessionId, monitor: u8) -> Result<ScreenView, ClientError> {
        let (mut send, recv) = self.conn.open_bi().await.map_err(lost)?;
        write_msg(
            &mut send,
            &OpenStream::Screen { session, monitor },
            CONTROL_MAX_FRAME,
        )
        .await
        .map_err(lost)?;
        Ok(ScreenView {
            send: Arc::new(Mutex::new(send)),
            recv,
            fb: Framebuffer::new(),
            monitor,
        })
    }

    /// Opens the input stream of `session`: consent requests, input and clipboard.
    pub async fn input(&self, session: SessionId) -> Result<InputChannel, ClientError> {
        let (mut send, recv) = self.conn.open_bi().await.map_err(lost)?;
        write_msg(&mut send, &OpenStream::Input { session }, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)?;
        Ok(InputChannel {
            tx: InputSender { send },
            rx: InputReceiver { recv },
        })
    }

    async fn files_stream(
        &self,
        session: SessionId,
        first: &FileMsg,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
        let (mut send, recv) = self.conn.open_bi().await.map_err(lost)?;
        write_msg(&mut send, &OpenStream::Files { session }, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)?;
        write_msg(&mut send, first, FILES_MAX_FRAME)
            .await
            .map_err(lost)?;
        Ok((send, recv))
    }

    /// Lists a folder of the customer's (empty: their home folder). Returns the folder, its
    /// parent and its entries.
    pub async fn list(
        &self,
        session: SessionId,
        path: &str,
        recursive: bool,
    ) -> Result<(String, Option<String>, Vec<Entry>), ClientError> {
        let (_send, mut recv) = self
            .files_stream(
                session,
                &FileMsg::List {
                    path: path.to_string(),
                    recursive,
                },
            )
            .await?;
        match read_file_msg(&mut recv).await? {
            FileMsg::Listing {
                path,
                parent,
                entries,
            } => Ok((path, parent, entries)),
            FileMsg::Error(e) => Err(ClientError::Refused(Refusal::NotAllowed(e))),
            other => Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// Sends the local file `local` to the customer's download folder as `name` (a relative
    /// path). Resumes from what the customer already holds of it. Returns where it was saved.
    pub async fn upload(
        &self,
        session: SessionId,
        local: &Path,
        name: &str,
        progress: &Progress,
    ) -> Result<String, ClientError> {
        let p = local.to_path_buf();
        let (size, hash) =
            tokio::task::spawn_blocking(move || -> std::io::Result<(u64, [u8; 32])> {
                Ok((std::fs::metadata(&p)?.len(), hash_file(&p)?))
            })
            .await
            .map_err(|e| ClientError::Lost(e.to_string()))?
            .map_err(|e| ClientError::Files(e.to_string()))?;
        progress
            .total
            .store(size, std::sync::atomic::Ordering::Relaxed);
        let (mut send, mut recv) = self
            .files_stream(
                session,
                &FileMsg::Put {
                    name: name.to_string(),
                    size,
                    hash,
                },
            )
            .await?;
        let (have, prefix) = match read_file_msg(&mut recv).await? {
            FileMsg::Ready { have, prefix_hash } => (have, prefix_hash),
            FileMsg::Error(e) => return Err(ClientError::Files(e)),
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        };
        let from = if have > 0 && have <= size {
            let p = local.to_path_buf();
            let ok = tokio::task::spawn_blocking(move || {
                hash_prefix(&p, have).map(|h| h == prefix).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if ok { have } else { 0 }
        } else {
            0
        };
        write_msg(&mut send, &FileMsg::Start { from }, FILES_MAX_FRAME)
            .await
            .map_err(lost)?;
        send_file(local, from, &mut send, progress)
            .await
            .map_err(|e| ClientError::Files(e.to_string()))?;
        match read_file_msg(&mut recv).await? {
            FileMsg::Done { saved_as } => Ok(saved_as),
            FileMsg::Error(e) => Err(ClientError::Files(e)),
            other => Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// Fetches the customer's file `remote` into `inbox` as `save_as` (default: its own name).
    /// Resumes from what `inbox` already holds of it. Returns where it was saved.
    pub async fn download(
        &self,
        session: SessionId,
        remote: &str,
        save_as: Option<&str>,
        inbox: &Inbox,
        progress: &Progress,
    ) -> Result<String, ClientError> {
        let (mut send, mut recv) = self
            .files_stream(
                session,
                &FileMsg::Get {
                    path: remote.to_string(),
                },
            )
            .await?;
        let (name, size, hash) = match read_file_msg(&mut recv).await? {
            FileMsg::Meta { name, size, hash } => (name, size, hash),
            FileMsg::Error(e) => return Err(ClientError::Files(e)),
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        };
        progress
            .total
            .store(size, std::sync::atomic::Ordering::Relaxed);
        let ib = inbox.clone();
        let (have, prefix_hash) = tokio::task::spawn_blocking(move || ib.ready(size, &hash))
            .await
            .map_err(|e| ClientError::Lost(e.to_string()))?
            .map_err(|e| ClientError::Files(e.to_string()))?;
        write_msg(
            &mut send,
            &FileMsg::Ready { have, prefix_hash },
            FILES_MAX_FRAME,
        )
        .await
        .map_err(lost)?;
        let from = match read_file_msg(&mut recv).await? {
            FileMsg::Start { from } => from,
            FileMsg::Error(e) => return Err(ClientError::Files(e)),
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        };
        let name = save_as.unwrap_or(&name).to_string();
        let res = inbox
            .receive(&name, size, &hash, from, &mut recv, progress)
            .await;
        if matches!(res, Err(tether_files::TransferError::Cancelled)) {
            let _ = recv.stop(tether_protocol::files::CANCEL_CODE.into());
        }
        let _ = send.finish();
        res.map_err(|e| ClientError::Files(e.to_string()))
    }

    /// Asks the customer to open a web address (http or https only).
    pub async fn push_url_check(url: &str) -> Result<String, ClientError> {
        tether_protocol::files::check_url(url).map_err(|e| ClientError::Files(e.to_string()))
    }

    /// The QUIC connection (for tests that misbehave on purpose).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        self.conn.close(close::NORMAL.into(), b"bye");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle())
            .await;
    }
}

/// Most changed rectangles remembered for one frame; past that, their bounding box.
pub const MAX_FRAME_RECTS: usize = 1024;

/// What one presented frame brought.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Sequence number.
    pub seq: u64,
    /// Changed rectangles (lossless and lossy).
    pub rects: Vec<Rect>,
    /// Whether any of it came lossy.
    pub lossy: bool,
    /// Whether the screen size changed (everything is new).
    pub resized: bool,
    /// Bytes received for it (encoded pixel data plus headers).
    pub bytes: usize,
    /// Host timestamps.
    pub timing: Timing,
    /// When its first part arrived here (µs since the epoch).
    pub received_us: u64,
    /// When it was fully decoded.
    pub decoded_us: u64,
}

impl FrameInfo {
    /// Bounding box of the change.
    pub fn dirty(&self) -> Option<Rect> {
        self.rects.iter().copied().reduce(|a, b| a.union(&b))
    }
}

/// One screen subscription: decodes updates into a framebuffer and acknowledges them.
#[derive(Debug)]
pub struct ScreenView {
    send: Arc<Mutex<quinn::SendStream>>,
    recv: quinn::RecvStream,
    fb: Framebuffer,
    monitor: u8,
}

impl ScreenView {
    /// Waits for the next whole frame, applies it, and acknowledges it.
    pub async fn next_frame(&mut self) -> Result<FrameInfo, ClientError> {
        let mut info: Option<FrameInfo> = None;
        loop {
            let body = match tether_net::read_body(&mut self.recv, MEDIA_MAX_FRAME).await {
                Ok(Some(b)) => b,
                Ok(None) => return Err(lost("the screen stream ended")),
                Err(e) if e.is_protocol_violation() => {
                    return Err(ClientError::Protocol(e.to_string()));
                }
                Err(e) => return Err(lost(e)),
            };
            let received = now_us();
            let bytes = body.len() + tether_protocol::frame::HEADER_LEN;
            let ScreenMsg::Update(upd) = tether_protocol::frame::decode_body(&body)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let resized = self.fb.apply(&upd)?;
            let i = info.get_or_insert_with(|| FrameInfo {
                seq: upd.seq,
                rects: Vec::new(),
                lossy: false,
                resized: false,
                bytes: 0,
                timing: upd.timing,
                received_us: received,
                decoded_us: 0,
            });
            i.rects.extend_from_slice(&upd.rects);
            i.rects.extend(upd.lossy.iter().map(|j| j.rect));
            // A frame of many parts is remembered as its bounding box past a point.
            if i.rects.len() > MAX_FRAME_RECTS {
                let bbox = i.rects.iter().copied().reduce(|a, b| a.union(&b));
                i.rects = bbox.into_iter().collect();
            }
            i.lossy |= !upd.lossy.is_empty();
            i.resized |= resized;
            i.bytes += bytes;
            if upd.last {
                let mut done = info
                    .take()
                    .ok_or_else(|| ClientError::Protocol("empty frame".into()))?;
                done.decoded_us = now_us();
                let mut send = self.send.lock().await;
                write_msg(
                    &mut send,
                    &ViewerMsg::Ack { seq: done.seq },
                    CONTROL_MAX_FRAME,
                )
                .await
                .map_err(lost)?;
                return Ok(done);
            }
        }
    }

    /// The decoded screen.
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// The monitor being viewed.
    pub fn monitor(&self) -> u8 {
        self.monitor
    }

    /// Switches to another monitor; the next frame is that monitor's whole picture.
    pub async fn select_monitor(&mut self, monitor: u8) -> Result<(), ClientError> {
        self.monitor = monitor;
        self.control().select_monitor(monitor).await
    }

    /// Changes the quality mode.
    pub async fn set_quality(&self, quality: Quality) -> Result<(), ClientError> {
        self.control().set_quality(quality).await
    }

    /// A handle that switches monitors while another task waits for frames.
    pub fn control(&self) -> ScreenControl {
        ScreenControl {
            send: self.send.clone(),
        }
    }

    /// Stops viewing.
    pub async fn stop(mut self) {
        let _ = self.send.lock().await.finish();
        let _ = self.recv.stop(close::NORMAL.into());
    }
}

/// Switches a [`ScreenView`]'s monitor from another task.
#[derive(Debug, Clone)]
pub struct ScreenControl {
    send: Arc<Mutex<quinn::SendStream>>,
}

impl ScreenControl {
    /// Switches to another monitor.
    pub async fn select_monitor(&self, monitor: u8) -> Result<(), ClientError> {
        self.send(&ViewerMsg::SelectMonitor { monitor }).await
    }

    /// Changes the quality mode.
    pub async fn set_quality(&self, quality: Quality) -> Result<(), ClientError> {
        self.send(&ViewerMsg::SetQuality { quality }).await
    }

    async fn send(&self, msg: &ViewerMsg) -> Result<(), ClientError> {
        let mut send = self.send.lock().await;
        write_msg(&mut send, msg, CONTROL_MAX_FRAME)
            .await
            .map_err(lost)
    }
}

/// One session's input stream: the agent sends [`AgentMsg`], the host answers with [`HostMsg`].
#[derive(Debug)]
pub struct InputChannel {
    tx: InputSender,
    rx: InputReceiver,
}

impl InputChannel {
    /// Sends a message; keys and clicks keep their order.
    pub async fn send(&mut self, msg: &AgentMsg) -> Result<(), ClientError> {
        self.tx.send(msg).await
    }

    /// The next message from the host.
    pub async fn next(&mut self) -> Result<HostMsg, ClientError> {
        self.rx.next().await
    }

    /// Splits into a sending and a receiving half.
    pub fn split(self) -> (InputSender, InputReceiver) {
        (self.tx, self.rx)
    }
}

/// The sending half of an [`InputChannel`].
#[derive(Debug)]
pub struct InputSender {
    send: quinn::SendStream,
}

impl InputSender {
    /// Sends a message.
    pub async fn send(&mut self, msg: &AgentMsg) -> Result<(), ClientError> {
        write_msg(&mut self.send, msg, INPUT_MAX_FRAME)
            .await
            .map_err(lost)
    }
}

/// The receiving half of an [`InputChannel`].
#[derive(Debug)]
pub struct InputReceiver {
    recv: quinn::RecvStream,
}

impl InputReceiver {
    /// The next message from the host.
    pub async fn next(&mut self) -> Result<HostMsg, ClientError> {
        match read_msg::<HostMsg>(&mut self.recv, INPUT_MAX_FRAME).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(lost("the input stream ended")),
            Err(e) if e.is_protocol_violation() => Err(ClientError::Protocol(e.to_string())),
            Err(e) => Err(lost(e)),
        }
    }
}
