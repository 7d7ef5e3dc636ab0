//! One session's input stream: consent requests, input and clipboard out; answers in.

use tether_net::{read_msg, write_msg};
use tether_protocol::frame::{CONTROL_MAX_FRAME, INPUT_MAX_FRAME};
use tether_protocol::input::{AgentMsg, HostMsg};
use tether_protocol::msg::{OpenStream, SessionId};

use super::{AgentClient, ClientError, lost};

impl AgentClient {
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
