//! The file-descriptor limit: its soft value raised to the hard one when the server starts
//! (the common soft default, 1024, is far below what a public endpoint needs), and the share
//! of it connections may take when `SU_MAX_CONNECTIONS` is 0. The other half stays for the
//! store's files, the admin socket and outbound requests.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Connections when the limit is unbounded and `SU_MAX_CONNECTIONS` is 0.
const UNBOUNDED_DEFAULT: usize = 65_536;

/// The fewest connections an automatic cap allows, however low the limit.
const AUTOMATIC_FLOOR: usize = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force
/// (`None`: unbounded).
pub(crate) fn raise_nofile_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let raised = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) if soft < hard => Some(hard),
        _ => None,
    };
    let Some(hard) = raised else {
        return limit.current;
    };
    let wanted = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => {
            tracing::info!(
                from = limit.current,
                to = hard,
                "raised the file-descriptor limit"
            );
            Some(hard)
        }
        Err(error) => {
            tracing::warn!(%error, soft = limit.current, hard, "could not raise the file-descriptor limit");
            limit.current
        }
    }
}

/// The connection cap: `configured`, or half of `fd_limit` when it is 0.
pub(crate) fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    if configured > 0 {
        return configured;
    }
    match fd_limit {
        Some(limit) => usize::try_from(limit / 2)
            .unwrap_or(usize::MAX)
            .max(AUTOMATIC_FLOOR),
        None => UNBOUNDED_DEFAULT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_is_half_the_limit() {
        assert_eq!(connection_cap(0, Some(20_000)), 10_000);
        assert_eq!(connection_cap(0, Some(100)), AUTOMATIC_FLOOR);
        assert_eq!(connection_cap(0, None), UNBOUNDED_DEFAULT);
        assert_eq!(connection_cap(300, Some(20_000)), 300);
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let soft = raise_nofile_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(soft, limit.current);
        if limit.maximum.is_some() {
            assert_eq!(limit.current, limit.maximum);
        }
    }
}
