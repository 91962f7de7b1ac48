//! The gateway client: network info, transaction status, raw data, GraphQL metadata, and
//! existence checks, as PROTOCOL 10.1–10.2 describe them.

use crate::ans104::deep_hash::{BlobHasher, Digest48};
use crate::config::UpstreamConfig;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no gateway is configured")]
    NotConfigured,
    #[error("gateway request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Failed to get status. Status code: {0}")]
    Status(reqwest::StatusCode),
    #[error("gateway answered unexpected JSON: {0}")]
    Json(String),
    #[error("Transaction not found")]
    NotFound,
    /// `/raw` declared or sent more than `RAW_DOWNLOAD_MAX_BYTES`; the download was stopped.
    #[error("Transaction data is larger than {0} bytes")]
    TooLarge(u64),
    /// A GraphQL answer passed `GRAPHQL_ANSWER_MAX_BYTES`; it was not read further.
    #[error("the gateway's GraphQL answer is larger than {0} bytes")]
    AnswerTooLarge(u64),
    /// Every `/raw` download slot stayed taken for the whole gateway timeout.
    #[error("too many transaction downloads in progress")]
    Busy,
}

/// A transaction as GraphQL describes it (the fields the dedupe hash needs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphqlTransaction {
    pub id: String,
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub anchor: Option<String>,
    #[serde(default)]
    pub tags: Vec<GraphqlTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphqlTag {
    pub name: String,
    pub value: String,
}

/// The newest transaction of an owner with given tags (`Gateway::newest_owned`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OwnedTransaction {
    pub id: String,
    #[serde(default)]
    pub tags: Vec<GraphqlTag>,
    /// The block that holds it; `None` while it is not mined yet.
    #[serde(default)]
    pub block: Option<GraphqlBlock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct GraphqlBlock {
    /// Unix seconds.
    pub timestamp: u64,
    #[serde(default)]
    pub height: Option<u64>,
}

/// The largest GraphQL answer read: a page of 100 transactions with their tags is well under
/// a MiB; a gateway that sends more is answered with an error, not held.
const GRAPHQL_ANSWER_MAX_BYTES: u64 = 16 << 20;

/// The edges of a `transactions` answer.
fn edges(value: &serde_json::Value) -> Result<&Vec<serde_json::Value>, GatewayError> {
    value
        .pointer("/data/transactions/edges")
        .and_then(|edges| edges.as_array())
        .ok_or_else(|| GatewayError::Json("no data.transactions.edges".into()))
}

/// A GraphQL string literal: JSON's quoting, which GraphQL shares for these characters.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// A shared gateway client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    client: reqwest::Client,
    arweave_url: Option<String>,
    graphql_url: Option<String>,
    existence_urls: Vec<String>,
    /// `/raw` downloads in flight at once (`RAW_DOWNLOAD_CONCURRENCY`), shared by clones.
    downloads: Arc<Semaphore>,
    raw_max_bytes: u64,
    timeout: Duration,
}

/// Attempts per gateway GET, and the pause before the second (then twice that).
const ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(200);

#[derive(Deserialize)]
struct Info {
    height: u64,
}

#[derive(Deserialize)]
struct Status {
    number_of_confirmations: u64,
}

impl Gateway {
    pub fn new(config: &UpstreamConfig) -> Result<Self, GatewayError> {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 5)))
            .build()?;
        Ok(Self {
            client,
            arweave_url: config.arweave_url.clone(),
            graphql_url: config.graphql_url.clone(),
            existence_urls: config.arweave_url_list.clone(),
            downloads: Arc::new(Semaphore::new(config.raw_concurrency.max(1))),
            raw_max_bytes: config.raw_max_bytes,
            timeout,
        })
    }

    /// Whether any gateway is configured at all (offline otherwise).
    pub fn is_online(&self) -> bool {
        self.arweave_url.is_some()
    }

    fn arweave(&self) -> Result<&str, GatewayError> {
        self.arweave_url
            .as_deref()
            .ok_or(GatewayError::NotConfigured)
    }

    /// Sends with bounded retries: network errors and 5xx are tried again, at most
    /// `ATTEMPTS` times in all; any other status is final, and non-2xx is an error.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        let mut attempt = 1;
        loop {
            let result = build().send().await;
            let retry = match &result {
                Ok(response) => response.status().is_server_error(),
                Err(error) => !error.is_builder(),
            };
            if retry && attempt < ATTEMPTS {
                tokio::time::sleep(RETRY_PAUSE * attempt).await;
                attempt += 1;
                continue;
            }
            let response = result?;
            if !response.status().is_success() {
                return Err(GatewayError::Status(response.status()));
            }
            return Ok(response);
        }
    }

    async fn get_ok(&self, url: String) -> Result<reqwest::Response, GatewayError> {
        self.send(|| self.client.get(&url)).await
    }

    /// `GET /info` → the current block height.
    pub async fn height(&self) -> Result<u64, GatewayError> {
        let response = self.get_ok(format!("{}/info", self.arweave()?)).await?;
        let info: Info = response
            .json()
            .await
            .map_err(|err| GatewayError::Json(err.to_string()))?;
        Ok(info.height)
    }

    /// `GET /tx/{id}/status` → confirmations.
    pub async fn confirmations(&self, id: &str) -> Result<u64, GatewayError> {
        let response = self
            .get_ok(format!("{}/tx/{id}/status", self.arweave()?))
            .await?;
        let status: Status = response
            .json()
            .await
            .map_err(|err| GatewayError::Json(err.to_string()))?;
        Ok(status.number_of_confirmations)
    }

    /// `GET /raw/{id}` → the deep hash of the data as one blob, hashed chunk by chunk as it
    /// arrives, so a download never holds more than a chunk. At most
    /// `RAW_DOWNLOAD_CONCURRENCY` run at once (a caller waits at most the gateway timeout
    /// for a slot), and data over `RAW_DOWNLOAD_MAX_BYTES` stops the download.
    pub async fn raw_blob_hash(&self, id: &str) -> Result<Digest48, GatewayError> {
        let mut hasher = BlobHasher::new();
        self.download(id, |chunk| hasher.update(chunk)).await?;
        Ok(hasher.finish())
    }

    /// `GET /raw/{id}` → the data itself, under the same bounds as `raw_blob_hash` (the
    /// importer's rebuild of an item whose JSON lost its data).
    pub async fn raw(&self, id: &str) -> Result<Vec<u8>, GatewayError> {
        let mut data = Vec::new();
        self.download(id, |chunk| data.extend_from_slice(chunk))
            .await?;
        Ok(data)
    }

    /// Streams `/raw/{id}` into `sink`, chunk by chunk, within the download bounds.
    async fn download(&self, id: &str, mut sink: impl FnMut(&[u8])) -> Result<(), GatewayError> {
        let url = format!("{}/raw/{id}", self.arweave()?);
        let _slot = tokio::time::timeout(self.timeout, self.downloads.clone().acquire_owned())
            .await
            .map_err(|_| GatewayError::Busy)?
            .map_err(|_| GatewayError::Busy)?;
        let mut response = self.get_ok(url).await?;
        let limit = self.raw_max_bytes;
        if response
            .content_length()
            .is_some_and(|declared| declared > limit)
        {
            return Err(GatewayError::TooLarge(limit));
        }
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await? {
            received += chunk.len() as u64;
            if received > limit {
                return Err(GatewayError::TooLarge(limit));
            }
            sink(&chunk);
        }
        Ok(())
    }

    /// `HEAD {url}/{id}` on each existence gateway in order; true at the first 2xx.
    pub async fn exists(&self, id: &str) -> Result<bool, GatewayError> {
        if self.existence_urls.is_empty() {
            return Err(GatewayError::NotConfigured);
        }
        for base in &self.existence_urls {
            match self.client.head(format!("{base}/{id}")).send().await {
                Ok(response) if response.status().is_success() => return Ok(true),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, base, "existence check failed"),
            }
        }
        Ok(false)
    }

    /// Posts one GraphQL query to `GRAPHQL_URL/graphql` and returns the answer's JSON.
    async fn graphql(&self, query: String) -> Result<serde_json::Value, GatewayError> {
        let base = self
            .graphql_url
            .as_deref()
            .ok_or(GatewayError::NotConfigured)?;
        let body = serde_json::json!({ "query": query, "variables": {} });
        let url = format!("{base}/graphql");
        let mut response = self.send(|| self.client.post(&url).json(&body)).await?;
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if (answer.len() + chunk.len()) as u64 > GRAPHQL_ANSWER_MAX_BYTES {
                return Err(GatewayError::AnswerTooLarge(GRAPHQL_ANSWER_MAX_BYTES));
            }
            answer.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&answer).map_err(|err| GatewayError::Json(err.to_string()))
    }

    /// GraphQL `transactions(ids: [id])`: the first edge's node, or `NotFound`.
    pub async fn transaction(&self, id: &str) -> Result<GraphqlTransaction, GatewayError> {
        let value = self
            .graphql(format!(
                "query {{ transactions(ids: [\"{id}\"]) {{ edges {{ node {{ id signature anchor \
                 owner {{ address key }} tags {{ name value }} recipient }} }} }} }}"
            ))
            .await?;
        let node = value
            .pointer("/data/transactions/edges/0/node")
            .cloned()
            .ok_or(GatewayError::NotFound)?;
        serde_json::from_value(node).map_err(|err| GatewayError::Json(err.to_string()))
    }

    /// GraphQL `transactions(owners: [owner], tags: [...], sort: HEIGHT_DESC, first: 1)`: the
    /// owner's newest transaction with every one of `tags` (name, value), or `None`.
    pub async fn newest_owned(
        &self,
        owner: &str,
        tags: &[(&str, &str)],
    ) -> Result<Option<OwnedTransaction>, GatewayError> {
        let filters = tags
            .iter()
            .map(|(name, value)| format!("{{name: {}, values: [{}]}}", quoted(name), quoted(value)))
            .collect::<Vec<_>>()
            .join(", ");
        let value = self
            .graphql(format!(
                "query {{ transactions(owners: [{}], tags: [{filters}], sort: HEIGHT_DESC, \
                 first: 1) {{ edges {{ node {{ id tags {{ name value }} block {{ timestamp \
                 height }} }} }} }} }}",
                quoted(owner)
            ))
            .await?;
        match edges(&value)?.first().and_then(|edge| edge.get("node")) {
            Some(node) => serde_json::from_value(node.clone())
                .map(Some)
                .map_err(|err| GatewayError::Json(err.to_string())),
            None => Ok(None),
        }
    }

    /// Which of `ids` GraphQL knows: `transactions(ids: [...], first: N)`, asked in batches
    /// of at most 100 ids (the gateways' page limit).
    pub async fn known_ids(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, GatewayError> {
        let mut known = std::collections::HashSet::new();
        for batch in ids.chunks(100) {
            let list = batch
                .iter()
                .map(|id| format!("\"{id}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let value = self
                .graphql(format!(
                    "query {{ transactions(ids: [{list}], first: {}) {{ edges {{ node {{ id }} }} \
                     }} }}",
                    batch.len()
                ))
                .await?;
            known.extend(
                edges(&value)?
                    .iter()
                    .filter_map(|edge| edge.pointer("/node/id")?.as_str())
                    .map(String::from),
            );
        }
        Ok(known)
    }
}
