//! The operator's side: talk to a running `su serve` through its admin socket, or, when none
//! answers, open the stopped store directly and answer requests in this process.

use super::service::Service;
use super::{AdminError, Request, Response, socket_path};
use crate::config::Config;
use crate::outbox::{Outbox, OutboxConfig};
use crate::store::{OpenMode, Store};
use crate::upstream::Gateway;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

/// Whether a local (stopped-store) session should run its own upload engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Only inspect or edit the queue.
    Off,
    /// Deliver uploads while the command waits (needs `UPLOAD_NODE_URL`).
    On,
}

/// A session with the outbox of one data dir.
#[derive(Debug)]
pub enum Admin {
    /// Through the admin socket of a running server.
    Remote {
        lines: Lines<BufReader<OwnedReadHalf>>,
        write: OwnedWriteHalf,
    },
    /// On the store opened by this process.
    Local {
        service: Service,
        shutdown: watch::Sender<bool>,
        engine: Option<tokio::task::JoinHandle<()>>,
    },
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "no server answers on {socket} and the store cannot be opened ({source}); is another command using it?"
    )]
    Store {
        socket: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl Admin {
    /// Connects to the server of `config.data_dir`, or opens its store when none answers.
    pub async fn open(config: &Config, delivery: Delivery) -> Result<Self, OpenError> {
        let socket = socket_path(&config.store.data_dir);
        if let Ok(stream) = UnixStream::connect(&socket).await {
            let (read, write) = stream.into_split();
            return Ok(Self::Remote {
                lines: BufReader::new(read).lines(),
                write,
            });
        }
        let store = Store::open(&config.store.data_dir, OpenMode::ReadWrite).map_err(|source| {
            OpenError::Store {
                socket: socket.display().to_string(),
                source,
            }
        })?;
        let store = Arc::new(store);
        let gateway = Gateway::new(&config.upstream).map_err(AdminError::from)?;
        let (shutdown, receiver) = watch::channel(false);
        let (outbox, engine) = match (delivery, OutboxConfig::from_upstream(&config.upstream)) {
            (Delivery::On, Some(outbox_config)) => {
                let (outbox, task) = Outbox::start(store.clone(), outbox_config, receiver)
                    .await
                    .map_err(AdminError::from)?;
                (Some(outbox), Some(task))
            }
            _ => (None, None),
        };
        Ok(Self::Local {
            service: Service {
                store,
                outbox,
                gateway,
            },
            shutdown,
            engine,
        })
    }

    /// Whether requests reach a running server.
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Remote { .. })
    }

    /// Sends one request and waits for its answer.
    pub async fn call(&mut self, request: Request) -> Result<Response, AdminError> {
        match self {
            Self::Remote { lines, write } => {
                let mut line = serde_json::to_vec(&request)?;
                line.push(b'\n');
                write.write_all(&line).await?;
                let answer = lines.next_line().await?.ok_or(AdminError::Closed)?;
                Ok(serde_json::from_str(&answer)?)
            }
            Self::Local { service, .. } => Ok(service.handle(request).await),
        }
    }

    /// Ends the session: a local engine stops and the store is flushed and closed.
    pub async fn close(self) {
        if let Self::Local {
            service,
            shutdown,
            engine,
        } = self
        {
            let _ = shutdown.send(true);
            if let Some(engine) = engine {
                let _ = engine.await;
            }
            let store = service.store;
            let _ = tokio::task::spawn_blocking(move || store.flush()).await;
        }
    }
}
