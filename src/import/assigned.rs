//! Dedupe hashes for imported assignments of existing transactions (issue 19). A stored
//! assignment-only entry names its transaction but holds none of its bytes, so its dedupe
//! hash (PROTOCOL 4.6.2) needs the gateway, as the reference's recalculation pass (4.6.3)
//! does: a base-layer transaction gets no record, any other one its ordered hash. Without a
//! gateway the entry is imported without a hash and counted as not covered.

use crate::ans104::b64;
use crate::ans104::deep_hash::Digest48;
use crate::domain::Id;
use crate::upstream::{Gateway, GatewayError, assigned};

/// Transactions looked up at once.
const CONCURRENCY: usize = 16;

/// What the importer learns about one assigned transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedHash {
    /// Its ordered dedupe hash.
    Hash(Digest48),
    /// A base-layer transaction: never a dedupe record.
    BaseLayer,
    /// The lookup failed; the entry is imported without a hash (not covered).
    Unknown(String),
}

/// Where the importer looks assigned transactions up.
pub trait AssignedHashes: Send + Sync + std::fmt::Debug {
    /// One answer per transaction, in order.
    fn lookup(&self, transactions: &[Id]) -> Vec<AssignedHash>;
}

/// The gateway (`ARWEAVE_URL` / `GRAPHQL_URL`), asked from a runtime of its own, at most
/// `CONCURRENCY` transactions at a time.
#[derive(Debug)]
pub struct GatewayHashes {
    gateway: Gateway,
    runtime: tokio::runtime::Runtime,
}

impl GatewayHashes {
    pub fn new(gateway: Gateway) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self { gateway, runtime })
    }
}

async fn one(gateway: &Gateway, transaction: &Id) -> AssignedHash {
    let id = b64::encode(transaction);
    let answer: Result<AssignedHash, GatewayError> = async {
        if assigned::is_base_layer(gateway, &id).await? {
            return Ok(AssignedHash::BaseLayer);
        }
        let hashes = assigned::transaction_hashes(gateway, &id).await?;
        Ok(AssignedHash::Hash(hashes.ordered))
    }
    .await;
    answer.unwrap_or_else(|error| AssignedHash::Unknown(error.to_string()))
}

impl AssignedHashes for GatewayHashes {
    fn lookup(&self, transactions: &[Id]) -> Vec<AssignedHash> {
        self.runtime.block_on(async {
            let mut answers = Vec::with_capacity(transactions.len());
            for part in transactions.chunks(CONCURRENCY) {
                let mut set = tokio::task::JoinSet::new();
                for (index, transaction) in part.iter().copied().enumerate() {
                    let gateway = self.gateway.clone();
                    set.spawn(async move { (index, one(&gateway, &transaction).await) });
                }
                let mut found = vec![None; part.len()];
                while let Some(joined) = set.join_next().await {
                    if let Ok((index, answer)) = joined {
                        found[index] = Some(answer);
                    }
                }
                answers.extend(found.into_iter().map(|answer| {
                    answer.unwrap_or_else(|| AssignedHash::Unknown("lookup failed".to_string()))
                }));
            }
            answers
        })
    }
}
