//! The admin socket of `su serve`: a Unix socket in the data dir, mode 0600, one JSON
//! request per line and one JSON response per line; removed at shutdown.

use super::service::Service;
use super::{Request, Response};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// Binds the socket. The store is open read-write in this process, so no other server
/// owns this data dir and a leftover socket file is stale.
pub fn bind(path: &std::path::Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Binds `<data_dir>/admin.sock` and serves it in a task; a socket that cannot be bound is
/// logged, and the server runs without it.
pub fn start(
    data_dir: &std::path::Path,
    service: Service,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = super::socket_path(data_dir);
    match bind(&path) {
        Ok(listener) => Some(tokio::spawn(serve(
            listener,
            path,
            Arc::new(service),
            shutdown,
        ))),
        Err(error) => {
            tracing::warn!(%error, socket = %path.display(), "cannot bind the admin socket; `su outbox` and `su reupload` need a stopped server");
            None
        }
    }
}

/// Serves admin connections until `shutdown` fires, then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(socket = %path.display(), "admin socket listening");
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, service.clone()));
                }
                Err(error) => tracing::warn!(%error, "admin accept failed"),
            }
        }
    }
    if let Err(error) = std::fs::remove_file(&path) {
        tracing::warn!(%error, "removing the admin socket failed");
    }
}

async fn connection(stream: UnixStream, service: Arc<Service>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "admin connection failed");
                return;
            }
        };
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                tracing::debug!(?request, "admin request");
                service.handle(request).await
            }
            Err(error) => Response::Error {
                message: format!("bad request: {error}"),
            },
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|error| {
            format!("{{\"response\":\"error\",\"message\":\"{error}\"}}").into_bytes()
        });
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}
