//! The SUs a router knows: each one's health and process count, polled from its
//! `GET /~su/process-count`, and the router's own placements since the last report.

use super::list::Scheduler;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The path an SU reports its process count on (README "Router mode").
pub const PROCESS_COUNT_PATH: &str = "/~su/process-count";

/// What one SU is known to hold, and whether it answers.
#[derive(Debug)]
pub struct SuState {
    /// The base URL, without a trailing `/`.
    pub url: String,
    healthy: AtomicBool,
    /// The process count the SU last reported.
    reported: AtomicU64,
    /// Placements this router made on the SU, ever.
    placed: AtomicU64,
    /// `placed` when the last report was asked for.
    placed_at_report: AtomicU64,
}

#[derive(Deserialize)]
struct ProcessCount {
    processes: u64,
}

impl SuState {
    /// A newly learnt SU: healthy until a check says otherwise.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            healthy: AtomicBool::new(true),
            reported: AtomicU64::new(0),
            placed: AtomicU64::new(0),
            placed_at_report: AtomicU64::new(0),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// The processes it holds as far as this router knows: its last report plus the
    /// placements made since that report was asked for, so a burst of spawns spreads. A
    /// placement the SU refused stops counting at the next report.
    pub fn load(&self) -> u64 {
        let since = self
            .placed
            .load(Ordering::Relaxed)
            .saturating_sub(self.placed_at_report.load(Ordering::Relaxed));
        self.reported.load(Ordering::Relaxed).saturating_add(since)
    }

    /// Notes a placement on this SU.
    pub fn placed(&self) {
        self.placed.fetch_add(1, Ordering::Relaxed);
    }

    /// One health check: the SU's process count. Any failure (no answer, a status other
    /// than 200, a body that is not the count) makes the SU unhealthy until a check passes.
    pub async fn check(&self, client: &reqwest::Client) {
        let placed_before = self.placed.load(Ordering::Relaxed);
        let url = format!("{}{PROCESS_COUNT_PATH}", self.url);
        let answer = async {
            let response = client.get(&url).send().await?.error_for_status()?;
            response.json::<ProcessCount>().await
        }
        .await;
        let was_healthy = self.is_healthy();
        match answer {
            Ok(count) => {
                self.reported.store(count.processes, Ordering::Relaxed);
                self.placed_at_report
                    .store(placed_before, Ordering::Relaxed);
                self.healthy.store(true, Ordering::Relaxed);
                if !was_healthy {
                    tracing::info!(su = %self.url, processes = count.processes, "SU is healthy again");
                }
            }
            Err(error) => {
                self.healthy.store(false, Ordering::Relaxed);
                if was_healthy {
                    tracing::warn!(su = %self.url, %error, "SU failed its health check: no new processes go to it");
                }
            }
        }
        metrics::gauge!("su_router_su_healthy", "su" => self.url.clone())
            .set(if self.is_healthy() { 1.0 } else { 0.0 });
        metrics::gauge!("su_router_su_processes", "su" => self.url.clone()).set(self.load() as f64);
    }
}

/// One listed SU: its list entry and its state.
#[derive(Debug, Clone)]
pub struct Listed {
    pub scheduler: Scheduler,
    pub state: Arc<SuState>,
}

/// The SUs at one moment: those the list names now, in list order, and every SU the router
/// was ever told of (removed ones keep their processes, DECISIONS 11).
#[derive(Debug, Default)]
pub struct SuSet {
    pub listed: Vec<Listed>,
    pub known: Vec<Arc<SuState>>,
}

impl SuSet {
    /// The set after a (re)read of the list: states of SUs already known are kept, so their
    /// counts and health carry over; `remembered` are URLs learnt before (the store's).
    pub fn build(previous: &SuSet, remembered: &[String], list: &[Scheduler]) -> Self {
        let mut known: Vec<Arc<SuState>> = previous.known.clone();
        let learn = |url: &str, known: &mut Vec<Arc<SuState>>| -> Arc<SuState> {
            if let Some(state) = known.iter().find(|state| state.url == url) {
                return state.clone();
            }
            let state = Arc::new(SuState::new(url));
            known.push(state.clone());
            state
        };
        for url in remembered {
            learn(url, &mut known);
        }
        let listed = list
            .iter()
            .map(|scheduler| Listed {
                scheduler: scheduler.clone(),
                state: learn(&scheduler.url, &mut known),
            })
            .collect();
        Self { listed, known }
    }

    /// Every known URL, in the order learnt.
    pub fn known_urls(&self) -> Vec<String> {
        self.known.iter().map(|state| state.url.clone()).collect()
    }

    /// The state of a known SU.
    pub fn state(&self, url: &str) -> Option<&Arc<SuState>> {
        self.known.iter().find(|state| state.url == url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(url: &str) -> Scheduler {
        Scheduler {
            url: url.into(),
            no_route: false,
            wallets_to_route: Vec::new(),
            wallets_only: false,
        }
    }

    #[test]
    fn a_reread_keeps_states_and_remembers_removed_sus() {
        let first = SuSet::build(
            &SuSet::default(),
            &[],
            &[scheduler("http://a"), scheduler("http://b")],
        );
        first.listed[0].state.placed();
        let second = SuSet::build(&first, &[], &[scheduler("http://b"), scheduler("http://c")]);
        assert_eq!(second.listed.len(), 2);
        assert_eq!(
            second.known_urls(),
            vec!["http://a", "http://b", "http://c"]
        );
        assert_eq!(second.state("http://a").unwrap().load(), 1);
        let rebuilt = SuSet::build(
            &SuSet::default(),
            &["http://z".into()],
            &[scheduler("http://a")],
        );
        assert_eq!(rebuilt.known_urls(), vec!["http://z", "http://a"]);
    }

    #[test]
    fn load_is_the_report_plus_placements_since() {
        let state = SuState::new("http://a");
        state.placed();
        state.placed();
        assert_eq!(state.load(), 2);
        state.reported.store(10, Ordering::Relaxed);
        state.placed_at_report.store(1, Ordering::Relaxed);
        assert_eq!(state.load(), 11);
    }
}
