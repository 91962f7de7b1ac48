//! The durable upload outbox: every scheduled item and assignment is queued in the same
//! batch as its entry, and this loop delivers them to the bundler (and the optional cache)
//! with capped exponential backoff, across restarts, until the bundler acknowledges.

use crate::store::{OutboxRow, Store};
use std::sync::Arc;
use std::time::Duration;

/// Where and how uploads go.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub bundler_url: String,
    pub cache_url: Option<String>,
    pub timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Pause between scans when the outbox is empty.
    pub idle: Duration,
}

const BATCH: usize = 64;

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::error!(%error, "outbox store access failed");
            None
        }
        Err(error) => {
            tracing::error!(%error, "outbox task failed");
            None
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs until `shutdown` fires.
pub async fn run(
    store: Arc<Store>,
    config: OutboxConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the upload client; uploads stay queued");
            return;
        }
    };
    let mut backoff = config.first_backoff;
    // Rows are appended in sequence order, so scanning from just past the last delivered
    // row never misses one and skips the tombstones of delivered rows.
    let mut cursor: Vec<u8> = Vec::new();
    loop {
        let rows = {
            let (store, from) = (store.clone(), cursor.clone());
            blocking(move || store.outbox_rows(&from, BATCH))
                .await
                .unwrap_or_default()
        };
        let depth = if rows.len() < BATCH {
            rows.len()
        } else {
            let store = store.clone();
            blocking(move || store.outbox_len())
                .await
                .unwrap_or(rows.len())
        };
        metrics::gauge!("su_outbox_queue_depth").set(depth as f64);
        if let Some(oldest) = rows.first() {
            metrics::gauge!("su_outbox_oldest_age_seconds")
                .set(now_ms().saturating_sub(oldest.enqueued_ms) as f64 / 1000.0);
        } else {
            metrics::gauge!("su_outbox_oldest_age_seconds").set(0.0);
        }
        let mut failed = false;
        for row in &rows {
            match deliver(&client, &store, &config, row).await {
                Ok(()) => {
                    backoff = config.first_backoff;
                    cursor = row.key.clone();
                    cursor.push(0);
                }
                Err(reason) => {
                    metrics::counter!("su_outbox_failures_total").increment(1);
                    tracing::warn!(
                        reason,
                        retry_in_ms = backoff.as_millis() as u64,
                        "upload failed"
                    );
                    failed = true;
                    break;
                }
            }
        }
        let pause = if failed {
            let pause = backoff;
            backoff = (backoff * 2).min(config.max_backoff);
            pause
        } else if rows.len() < BATCH {
            config.idle
        } else {
            Duration::ZERO
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    store: &Arc<Store>,
    config: &OutboxConfig,
    row: &OutboxRow,
) -> Result<(), String> {
    let id = row.id;
    let bytes = {
        let store = store.clone();
        blocking(move || store.item(&id)).await.flatten()
    };
    let Some(bytes) = bytes else {
        return Err(format!(
            "item {} of an outbox row is missing",
            crate::ans104::b64::encode(&id)
        ));
    };
    let response = client
        .post(format!("{}/tx/arweave", config.bundler_url))
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    if status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        // A definitive refusal: retrying cannot change it, and it must not block the queue.
        metrics::counter!("su_outbox_rejected_total").increment(1);
        tracing::error!(id = %crate::ans104::b64::encode(&id), %status, "the bundler refused an item; it is dropped from the outbox");
    } else if !status.is_success() {
        return Err(format!("bundler answered {status}"));
    }
    if let Some(cache) = &config.cache_url {
        // One attempt, as the reference does; the bundler is the durable target.
        let request = client
            .post(format!("{cache}/id?codec-device=ans104@1.0"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        if let Err(error) = request.send().await {
            tracing::debug!(%error, "cache upload failed");
        }
    }
    let key = row.key.clone();
    let store = store.clone();
    blocking(move || store.delete_outbox_row(&key))
        .await
        .ok_or("outbox row delete failed")?;
    metrics::counter!("su_outbox_delivered_total").increment(1);
    Ok(())
}
