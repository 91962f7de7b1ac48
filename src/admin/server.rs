//! The admin socket of `su serve`: a Unix socket in the data dir, mode 0600, one JSON
//! request per line and one JSON response per line; removed at shutdown.

use super::service::Service;
use super::{Request, Response};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// The longest request line read; every request is a few hundred bytes at most.
const MAX_REQUEST_LINE: usize = 64 * 1024;

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
    let mut reader = BufReader::new(read);
    loop {
        // At most one line of MAX_REQUEST_LINE bytes is ever buffered; a longer one gets an
        // error answer and the connection is closed.
        let mut line = Vec::new();
        // `Take` over the connection's `BufReader` reads through its buffer, so bytes after
        // the newline stay there for the next request.
        let mut limited = (&mut reader).take(MAX_REQUEST_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut line).await;
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "admin connection failed");
                return;
            }
        }
        let too_long = line.len() > MAX_REQUEST_LINE;
        let response = if too_long {
            Response::Error {
                message: format!("request line longer than {MAX_REQUEST_LINE} bytes"),
            }
        } else {
            match serde_json::from_slice::<Request>(&line) {
                Ok(request) => {
                    tracing::debug!(?request, "admin request");
                    service.handle(request).await
                }
                Err(error) => Response::Error {
                    message: format!("bad request: {error}"),
                },
            }
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|error| {
            format!("{{\"response\":\"error\",\"message\":\"{error}\"}}").into_bytes()
        });
        out.push(b'\n');
        if write.write_all(&out).await.is_err() || too_long {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OpenMode, Store};
    use crate::upstream::Gateway;

    #[tokio::test]
    async fn an_overlong_request_line_is_refused_and_the_connection_closed() {
        let dir = tempfile::tempdir().unwrap();
        let service = Arc::new(Service {
            store: Arc::new(Store::open(dir.path(), OpenMode::ReadWrite).unwrap()),
            outbox: None,
            gateway: Gateway::new(&Default::default()).unwrap(),
        });
        let (client, server) = UnixStream::pair().unwrap();
        let served = tokio::spawn(connection(server, service));
        let (read, mut write) = client.into_split();
        // 1 MiB without a newline, sent while the server reads: it never buffers it all.
        let flood = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..16 {
                if write.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await.unwrap();
        assert!(answer.contains("longer than 65536 bytes"), "{answer}");
        tokio::time::timeout(std::time::Duration::from_secs(5), served)
            .await
            .expect("the connection is closed")
            .unwrap();
        flood.abort();
    }

    #[tokio::test]
    async fn pipelined_requests_are_each_answered() {
        let dir = tempfile::tempdir().unwrap();
        let service = Arc::new(Service {
            store: Arc::new(Store::open(dir.path(), OpenMode::ReadWrite).unwrap()),
            outbox: None,
            gateway: Gateway::new(&Default::default()).unwrap(),
        });
        let (client, server) = UnixStream::pair().unwrap();
        tokio::spawn(connection(server, service));
        let (read, mut write) = client.into_split();
        let request = "{\"request\":\"outbox_list\",\"limit\":1}\n";
        write.write_all(request.repeat(3).as_bytes()).await.unwrap();
        let mut lines = BufReader::new(read).lines();
        for _ in 0..3 {
            let answer = lines
                .next_line()
                .await
                .unwrap()
                .expect("an answer per request");
            assert!(!answer.contains("bad request"), "{answer}");
        }
    }
}
