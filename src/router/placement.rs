//! The placement rules for a new process (PROTOCOL 7.2), pure: wallet routing first, then
//! the SU with the fewest processes. Only SUs that may take new processes are candidates:
//! listed, not `no_route`, and passing their health checks.

/// One SU as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub no_route: bool,
    pub healthy: bool,
    pub wallets_to_route: &'a [String],
    pub wallets_only: bool,
    /// Processes it holds: its last report plus this router's placements since.
    pub load: u64,
}

impl Candidate<'_> {
    fn eligible(&self) -> bool {
        !self.no_route && self.healthy
    }
}

/// The index of the SU a new process of `owner` goes to, or `None` when no SU may take it.
/// 1. the first eligible SU whose `wallets_to_route` lists the owner;
/// 2. else, among eligible SUs without `wallets_only`, the least loaded (ties: list order).
pub fn pick(candidates: &[Candidate<'_>], owner: &str) -> Option<usize> {
    if let Some(index) = candidates.iter().position(|candidate| {
        candidate.eligible() && candidate.wallets_to_route.iter().any(|w| w == owner)
    }) {
        return Some(index);
    }
    candidates
        .iter()
        .enumerate()
        .filter(|(_, candidate)| candidate.eligible() && !candidate.wallets_only)
        .min_by_key(|(index, candidate)| (candidate.load, *index))
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn su(load: u64) -> Candidate<'static> {
        Candidate {
            no_route: false,
            healthy: true,
            wallets_to_route: &[],
            wallets_only: false,
            load,
        }
    }

    #[test]
    fn the_least_loaded_wins_and_ties_go_to_list_order() {
        assert_eq!(pick(&[su(3), su(1), su(1)], "o"), Some(1));
        assert_eq!(pick(&[su(0), su(0)], "o"), Some(0));
        assert_eq!(pick(&[], "o"), None);
    }

    #[test]
    fn no_route_and_unhealthy_sus_take_nothing() {
        let retired = Candidate {
            no_route: true,
            ..su(0)
        };
        let down = Candidate {
            healthy: false,
            ..su(0)
        };
        assert_eq!(pick(&[retired, down, su(9)], "o"), Some(2));
        assert_eq!(pick(&[retired, down], "o"), None);
    }

    #[test]
    fn wallet_routing_comes_first_and_wallets_only_is_kept_for_its_owners() {
        let wallets = ["owner".to_string()];
        let dedicated = Candidate {
            wallets_to_route: &wallets,
            wallets_only: true,
            ..su(100)
        };
        assert_eq!(pick(&[su(5), dedicated], "owner"), Some(1));
        assert_eq!(pick(&[su(5), dedicated], "other"), Some(0));
        assert_eq!(pick(&[dedicated], "other"), None);
        let down = Candidate {
            healthy: false,
            ..dedicated
        };
        assert_eq!(pick(&[su(5), down], "owner"), Some(0));
        let shared = Candidate {
            wallets_to_route: &wallets,
            ..su(0)
        };
        assert_eq!(pick(&[su(5), shared], "other"), Some(1));
    }
}
