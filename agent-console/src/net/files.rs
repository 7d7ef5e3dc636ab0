//! File operations of a session, one stream each: listings, uploads and downloads, resumed after
//! a verified prefix.

use std::path::Path;

use tether_files::{Inbox, Progress, hash_file, hash_prefix, send_file};
use tether_net::{read_msg, write_msg};
use tether_protocol::files::{Entry, FileMsg};
use tether_protocol::frame::{CONTROL_MAX_FRAME, FILES_MAX_FRAME};
use tether_protocol::msg::{OpenStream, SessionId};

use super::{AgentClient, ClientError, lost};

async fn read_file_msg(recv: &mut quinn::RecvStream) -> Result<FileMsg, ClientError> {
    match read_msg::<FileMsg>(recv, FILES_MAX_FRAME).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(lost("the file stream ended")),
        Err(e) if e.is_protocol_violation() => Err(ClientError::Protocol(e.to_string())),
        Err(e) => Err(lost(e)),
    }
}

impl AgentClient {
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
            FileMsg::Error(e) => Err(super::files_error(e)),
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
            .map_err(super::files_error)?;
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
            FileMsg::Error(e) => return Err(super::files_error(e)),
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
            .map_err(super::files_error)?;
        match read_file_msg(&mut recv).await? {
            FileMsg::Done { saved_as } => Ok(saved_as),
            FileMsg::Error(e) => Err(super::files_error(e)),
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
            FileMsg::Error(e) => return Err(super::files_error(e)),
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        };
        progress
            .total
            .store(size, std::sync::atomic::Ordering::Relaxed);
        let ib = inbox.clone();
        let (have, prefix_hash) = tokio::task::spawn_blocking(move || ib.ready(size, &hash))
            .await
            .map_err(|e| ClientError::Lost(e.to_string()))?
            .map_err(super::files_error)?;
        write_msg(
            &mut send,
            &FileMsg::Ready { have, prefix_hash },
            FILES_MAX_FRAME,
        )
        .await
        .map_err(lost)?;
        let from = match read_file_msg(&mut recv).await? {
            FileMsg::Start { from } => from,
            FileMsg::Error(e) => return Err(super::files_error(e)),
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
        res.map_err(super::files_error)
    }
}
