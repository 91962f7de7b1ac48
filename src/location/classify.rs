//! Where the SU's Scheduler-Location record stands, decided from what the gateway shows, what
//! this SU queued last, and the time. Pure: no I/O and no clock, so every state and every
//! boundary is a unit test.

/// A Scheduler-Location record as the gateway shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRecord {
    pub id: String,
    /// Its `Url` tag.
    pub url: Option<String>,
    /// Its `Time-To-Live` tag, in milliseconds; `None` when missing or not a number.
    pub ttl_ms: Option<u64>,
    /// Its block's timestamp, Unix milliseconds; `None` while it is not mined.
    pub block_ms: Option<u64>,
}

/// What the gateway answered when asked for the owner's newest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(SeenRecord),
    Nothing,
    /// The gateway could not be asked, or answered an error.
    Failed,
}

/// The last record this SU queued (`meta/location_publication`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRecord {
    pub id: String,
    pub url: String,
    pub ttl_ms: u64,
    /// When it was signed and queued, Unix milliseconds.
    pub queued_ms: u64,
    /// Whether its outbox row is gone (the bundler took it).
    pub delivered: bool,
}

/// Everything the decision rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub now_ms: u64,
    /// `SU_URL`: what the record's `Url` must say.
    pub own_url: &'a str,
    pub lookup: Lookup,
    pub own: Option<OwnRecord>,
}

/// Where the record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The gateway could not be asked and this SU knows of no record of its own.
    Unknown,
    /// A record of ours is queued in the outbox and the bundler has not taken it yet.
    Pending,
    /// The owner has no record.
    Missing,
    /// The newest record's `Time-To-Live`, counted from its block, has passed.
    Expired,
    /// The newest record names another URL.
    Elsewhere,
    /// Less than a quarter of the newest record's `Time-To-Live` remains.
    Expiring,
    /// The newest record names this SU and has at least a quarter of its TTL left.
    Current,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Unknown,
        State::Pending,
        State::Missing,
        State::Expired,
        State::Elsewhere,
        State::Expiring,
        State::Current,
    ];

    /// The name in logs and in the `state` label of `su_location_state`.
    pub fn name(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Pending => "pending",
            State::Missing => "missing",
            State::Expired => "expired",
            State::Elsewhere => "elsewhere",
            State::Expiring => "expiring",
            State::Current => "current",
        }
    }

    /// Whether this state calls for a new record.
    pub fn needs_publication(self) -> bool {
        matches!(
            self,
            State::Missing | State::Expired | State::Elsewhere | State::Expiring
        )
    }
}

/// The record the decision was about: the one clients find now, or ours when the gateway
/// does not show it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub id: String,
    pub url: Option<String>,
    /// When its `Time-To-Live` runs out, Unix milliseconds.
    pub expires_ms: u64,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: State,
    pub record: Option<Effective>,
}

/// A record with the time its TTL counts from.
struct Candidate {
    id: String,
    url: Option<String>,
    ttl_ms: u64,
    start_ms: u64,
}

impl Candidate {
    fn effective(&self) -> Effective {
        Effective {
            id: self.id.clone(),
            url: self.url.clone(),
            expires_ms: self.start_ms.saturating_add(self.ttl_ms),
        }
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Decides where the record stands.
///
/// A record of ours still in the outbox makes the state `Pending`, whatever the gateway
/// shows, so nothing is published twice. A record the bundler took but the gateway does not
/// show yet counts from when it was queued, and stands against the gateway's newest record:
/// the later of the two is the one decided on. A record without a block (not mined yet)
/// counts from now, and one without a readable `Time-To-Live` has expired.
pub fn classify(facts: &Facts<'_>) -> Verdict {
    let seen = match &facts.lookup {
        Lookup::Found(record) => Some(Candidate {
            id: record.id.clone(),
            url: record.url.clone(),
            ttl_ms: record.ttl_ms.unwrap_or(0),
            start_ms: record.block_ms.unwrap_or(facts.now_ms),
        }),
        Lookup::Nothing | Lookup::Failed => None,
    };
    let own = facts.own.as_ref();
    // The gateway showing our record proves the bundler took it, even if the row remains.
    let shown = |own: &OwnRecord| seen.as_ref().is_some_and(|seen| seen.id == own.id);
    if own.is_some_and(|own| !own.delivered && !shown(own)) {
        return Verdict {
            state: State::Pending,
            record: seen.as_ref().map(Candidate::effective),
        };
    }
    let ours = own.map(|own| Candidate {
        id: own.id.clone(),
        url: Some(own.url.clone()),
        ttl_ms: own.ttl_ms,
        start_ms: own.queued_ms,
    });
    let candidate = match (seen, ours) {
        (Some(seen), Some(ours)) if seen.id != ours.id && ours.start_ms > seen.start_ms => ours,
        (Some(seen), _) => seen,
        (None, Some(ours)) => ours,
        (None, None) if facts.lookup == Lookup::Failed => {
            return Verdict {
                state: State::Unknown,
                record: None,
            };
        }
        (None, None) => {
            return Verdict {
                state: State::Missing,
                record: None,
            };
        }
    };
    let expires_ms = candidate.start_ms.saturating_add(candidate.ttl_ms);
    let points_here = candidate
        .url
        .as_deref()
        .is_some_and(|url| same_url(url, facts.own_url));
    let state = if facts.now_ms >= expires_ms {
        State::Expired
    } else if !points_here {
        State::Elsewhere
    } else if u128::from(expires_ms - facts.now_ms) * 4 < u128::from(candidate.ttl_ms) {
        State::Expiring
    } else {
        State::Current
    };
    Verdict {
        state,
        record: Some(candidate.effective()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: &str = "https://su.example";
    const DAY: u64 = 86_400_000;
    const MINED: u64 = 1_700_000_000_000;

    fn seen(url: &str, ttl_ms: u64, block_ms: Option<u64>) -> Lookup {
        Lookup::Found(SeenRecord {
            id: "seen".into(),
            url: Some(url.into()),
            ttl_ms: Some(ttl_ms),
            block_ms,
        })
    }

    fn own(id: &str, queued_ms: u64, delivered: bool) -> Option<OwnRecord> {
        Some(OwnRecord {
            id: id.into(),
            url: HERE.into(),
            ttl_ms: DAY,
            queued_ms,
            delivered,
        })
    }

    fn check(now_ms: u64, lookup: Lookup, own: Option<OwnRecord>) -> Verdict {
        classify(&Facts {
            now_ms,
            own_url: HERE,
            lookup,
            own,
        })
    }

    fn state(now_ms: u64, lookup: Lookup) -> State {
        check(now_ms, lookup, None).state
    }

    #[test]
    fn no_record_is_missing_and_an_unanswered_lookup_is_unknown() {
        assert_eq!(
            check(MINED, Lookup::Nothing, None),
            Verdict {
                state: State::Missing,
                record: None
            }
        );
        assert_eq!(state(MINED, Lookup::Failed), State::Unknown);
        for state in [
            State::Missing,
            State::Expired,
            State::Elsewhere,
            State::Expiring,
        ] {
            assert!(state.needs_publication(), "{state:?}");
        }
        for state in [State::Unknown, State::Pending, State::Current] {
            assert!(!state.needs_publication(), "{state:?}");
        }
    }

    #[test]
    fn the_ttl_counts_from_the_block_and_ends_exactly_at_its_end() {
        let lookup = || seen(HERE, DAY, Some(MINED));
        let verdict = check(MINED + 1, lookup(), None);
        assert_eq!(verdict.state, State::Current);
        assert_eq!(verdict.record.unwrap().expires_ms, MINED + DAY);
        assert_eq!(state(MINED + DAY - 1, lookup()), State::Expiring);
        assert_eq!(state(MINED + DAY, lookup()), State::Expired);
        assert_eq!(state(MINED + 10 * DAY, lookup()), State::Expired);
    }

    #[test]
    fn a_quarter_left_is_current_and_less_is_expiring() {
        let lookup = || seen(HERE, DAY, Some(MINED));
        assert_eq!(state(MINED + DAY * 3 / 4, lookup()), State::Current);
        assert_eq!(state(MINED + DAY * 3 / 4 + 1, lookup()), State::Expiring);
        // A TTL that is not a multiple of 4: 1/4 of 10 ms is 2.5 ms.
        let odd = || seen(HERE, 10, Some(MINED));
        assert_eq!(state(MINED + 7, odd()), State::Current); // 3 ms left
        assert_eq!(state(MINED + 8, odd()), State::Expiring); // 2 ms left
    }

    #[test]
    fn an_unmined_record_counts_from_now() {
        assert_eq!(state(MINED, seen(HERE, DAY, None)), State::Current);
        let verdict = check(MINED, seen(HERE, 4, None), None);
        assert_eq!(verdict.state, State::Current);
        assert_eq!(verdict.record.unwrap().expires_ms, MINED + 4);
    }

    #[test]
    fn a_record_naming_another_url_is_elsewhere_unless_expired() {
        let other = || seen("https://other.example", DAY, Some(MINED));
        assert_eq!(state(MINED + 1, other()), State::Elsewhere);
        assert_eq!(state(MINED + DAY - 1, other()), State::Elsewhere);
        assert_eq!(state(MINED + DAY, other()), State::Expired);
        // A trailing slash is the same URL.
        assert_eq!(
            state(MINED + 1, seen("https://su.example/", DAY, Some(MINED))),
            State::Current
        );
        let no_url = Lookup::Found(SeenRecord {
            id: "x".into(),
            url: None,
            ttl_ms: Some(DAY),
            block_ms: Some(MINED),
        });
        assert_eq!(state(MINED + 1, no_url), State::Elsewhere);
    }

    #[test]
    fn a_record_without_a_readable_ttl_has_expired() {
        let lookup = Lookup::Found(SeenRecord {
            id: "x".into(),
            url: Some(HERE.into()),
            ttl_ms: None,
            block_ms: None,
        });
        assert_eq!(state(MINED, lookup), State::Expired);
    }

    #[test]
    fn a_queued_record_is_pending_whatever_the_gateway_shows() {
        for lookup in [
            Lookup::Nothing,
            Lookup::Failed,
            seen("https://other.example", DAY, Some(MINED)),
            seen(HERE, DAY, Some(MINED - DAY)),
        ] {
            let verdict = check(MINED, lookup, own("ours", MINED - 5, false));
            assert_eq!(verdict.state, State::Pending);
        }
        // The record clients find meanwhile is reported.
        let verdict = check(
            MINED,
            seen(HERE, DAY, Some(MINED)),
            own("ours", MINED, false),
        );
        assert_eq!(verdict.record.unwrap().id, "seen");
    }

    #[test]
    fn a_queued_record_the_gateway_shows_is_no_longer_pending() {
        let lookup = Lookup::Found(SeenRecord {
            id: "ours".into(),
            url: Some(HERE.into()),
            ttl_ms: Some(DAY),
            block_ms: None,
        });
        assert_eq!(
            check(MINED, lookup, own("ours", MINED - 5, false)).state,
            State::Current
        );
    }

    #[test]
    fn a_delivered_record_not_shown_yet_counts_from_when_it_was_queued() {
        // Nothing, or only an older record, on the gateway: ours decides.
        let stale = || seen(HERE, DAY, Some(MINED - DAY));
        for lookup in [Lookup::Nothing, Lookup::Failed, stale()] {
            let verdict = check(MINED + 1, lookup, own("ours", MINED, true));
            assert_eq!(verdict.state, State::Current);
            assert_eq!(verdict.record.unwrap().id, "ours");
        }
        assert_eq!(
            check(MINED + DAY - 1, stale(), own("ours", MINED, true)).state,
            State::Expiring
        );
        assert_eq!(
            check(MINED + DAY, Lookup::Nothing, own("ours", MINED, true)).state,
            State::Expired
        );
        // A newer record elsewhere on the gateway wins over ours.
        let newer = seen("https://other.example", DAY, Some(MINED + 10));
        assert_eq!(
            check(MINED + 11, newer, own("ours", MINED, true)).state,
            State::Elsewhere
        );
    }

    #[test]
    fn once_the_gateway_shows_our_record_its_block_time_counts() {
        let lookup = Lookup::Found(SeenRecord {
            id: "ours".into(),
            url: Some(HERE.into()),
            ttl_ms: Some(DAY),
            block_ms: Some(MINED + 60_000),
        });
        let verdict = check(MINED + 61_000, lookup, own("ours", MINED, true));
        assert_eq!(verdict.state, State::Current);
        assert_eq!(verdict.record.unwrap().expires_ms, MINED + 60_000 + DAY);
    }
}
