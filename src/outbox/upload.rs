//! One upload over HTTP: `POST {bundler}/tx/arweave`, where only a 2xx counts as accepted,
//! and the best-effort cache copy (`POST {cache}/id?codec-device=ans104@1.0`) on its own
//! bounded queue and concurrency, so it can never slow or hold a bundler upload.

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Why an upload was not accepted. Every variant is retried; none drops the row.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("bundler request failed: {0}")]
    Http(#[source] reqwest::Error),
    #[error("bundler answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("bundler answered {status} with Location {location:?}; redirects are not followed")]
    Redirect {
        status: StatusCode,
        location: String,
    },
    #[error("the item's bytes are missing from the store")]
    MissingItem,
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The bundler client: one long-lived connection pool, redirects off.
#[derive(Debug, Clone)]
pub struct Uploader {
    client: reqwest::Client,
    url: Arc<str>,
}

fn client(timeout: Duration, idle_per_host: usize) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(idle_per_host)
        .build()
}

impl Uploader {
    pub fn new(
        bundler_url: &str,
        timeout: Duration,
        concurrency: usize,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: client(timeout, concurrency)?,
            url: format!("{bundler_url}/tx/arweave").into(),
        })
    }

    /// Posts one item; `Ok` only for a 2xx.
    pub async fn post(&self, bytes: Bytes) -> Result<(), UploadError> {
        let response = self
            .client
            .post(&*self.url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(UploadError::Http)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_string();
            return Err(UploadError::Redirect { status, location });
        }
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(200);
        Err(UploadError::Status { status, body })
    }
}

/// Items waiting for the cache; a full queue skips the copy (best effort).
const CACHE_QUEUE: usize = 1024;
const CACHE_CONCURRENCY: usize = 16;

/// The sending side of the cache queue.
#[derive(Debug, Clone)]
pub struct CacheQueue {
    sender: mpsc::Sender<Bytes>,
}

impl CacheQueue {
    /// Starts the cache worker; it stops when every `CacheQueue` is dropped.
    pub fn start(cache_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = client(timeout, CACHE_CONCURRENCY)?;
        let url: Arc<str> = format!("{cache_url}/id?codec-device=ans104@1.0").into();
        let (sender, mut receiver) = mpsc::channel::<Bytes>(CACHE_QUEUE);
        let permits = Arc::new(Semaphore::new(CACHE_CONCURRENCY));
        tokio::spawn(async move {
            while let Some(bytes) = receiver.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let sent = client
                        .post(&*url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(bytes)
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => {}
                        Ok(response) => {
                            tracing::debug!(status = %response.status(), "cache upload refused")
                        }
                        Err(error) => tracing::debug!(%error, "cache upload failed"),
                    }
                    drop(permit);
                });
            }
        });
        Ok(Self { sender })
    }

    /// Offers one item to the cache without waiting.
    pub fn offer(&self, bytes: Bytes) {
        if self.sender.try_send(bytes).is_err() {
            metrics::counter!("su_outbox_cache_skipped_total").increment(1);
        }
    }
}
