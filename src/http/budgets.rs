//! Work every request shares, bounded: items verified at once (`VERIFY_CONCURRENCY`) and the
//! memory reads hold together (`MAX_READ_MEMORY_TOTAL`, with `READ_QUEUE_MILLIS` of waiting).

use crate::config::{AdmissionConfig, HttpConfig};
use crate::reads::ReadBudget;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The shared bounds; built once per server.
#[derive(Debug)]
pub struct Budgets {
    /// One permit per item being parsed and verified.
    pub verify: Arc<Semaphore>,
    /// Bytes of rendered JSON and loaded items all reads may hold.
    pub read: ReadBudget,
    /// How long a read waits for room before it answers 503.
    pub read_wait: Duration,
}

impl Budgets {
    /// `cores` stands in for a `VERIFY_CONCURRENCY` of 0.
    pub fn new(http: &HttpConfig, admission: &AdmissionConfig, cores: usize) -> Self {
        let verifications = match admission.verify_concurrency {
            0 => cores.max(1),
            n => n,
        };
        Self {
            verify: Arc::new(Semaphore::new(verifications)),
            read: ReadBudget::new(http.max_read_memory_total),
            read_wait: Duration::from_millis(http.read_queue_millis),
        }
    }
}
