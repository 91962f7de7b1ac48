//! The location keeper's settings (issue 21): with `SU_URL` set, `su serve` keeps its
//! Scheduler-Location record published. This file only parses them; `location` acts on them.

use super::{ConfigError, Vars, boolean, number, url};
use std::time::Duration;

/// The shortest and longest automatic pause between two checks of the record.
const CHECK_AT_LEAST: Duration = Duration::from_secs(60);
const CHECK_AT_MOST: Duration = Duration::from_secs(3600);

/// `SU_URL` with `SU_LOCATION_KEEPER=true`: what the record must say, and how often to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationConfig {
    /// `SU_URL` (or `URL`), without a trailing `/`: the record's `Url`.
    pub url: String,
    /// `SU_LOCATION_TTL_MS`: the `Time-To-Live` of the records this SU publishes.
    pub ttl_ms: u64,
    /// Pause between checks: `SU_LOCATION_CHECK_SECS`, or an eighth of the TTL within 1 min
    /// and 1 h when it is 0.
    pub check_every: Duration,
}

/// The keeper's settings; `None` when `SU_URL` is unset or `SU_LOCATION_KEEPER=false`.
pub(super) fn location(vars: &Vars) -> Result<Option<LocationConfig>, ConfigError> {
    let Some(url) = url(vars, "SU_URL")? else {
        return Ok(None);
    };
    if !boolean(vars, "SU_LOCATION_KEEPER")? {
        return Ok(None);
    }
    let ttl_ms: u64 = number(vars, "SU_LOCATION_TTL_MS", "expected milliseconds")?;
    if ttl_ms == 0 {
        return Err(ConfigError::Invalid {
            name: "SU_LOCATION_TTL_MS",
            value: "0".into(),
            expected: "expected milliseconds, at least 1",
        });
    }
    let check_secs: u64 = number(vars, "SU_LOCATION_CHECK_SECS", "expected whole seconds")?;
    let check_every = match check_secs {
        0 => (Duration::from_millis(ttl_ms) / 8).clamp(CHECK_AT_LEAST, CHECK_AT_MOST),
        secs => Duration::from_secs(secs),
    };
    Ok(Some(LocationConfig {
        url,
        ttl_ms,
        check_every,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<LocationConfig>, ConfigError> {
        location(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn off_without_su_url_or_when_turned_off() {
        assert_eq!(parse(&[]).unwrap(), None);
        let off = parse(&[
            ("SU_URL", "https://su.example"),
            ("SU_LOCATION_KEEPER", "false"),
        ]);
        assert_eq!(off.unwrap(), None);
    }

    #[test]
    fn defaults_to_a_day_checked_hourly() {
        let config = parse(&[("URL", "https://su.example/")]).unwrap().unwrap();
        assert_eq!(config.url, "https://su.example");
        assert_eq!(config.ttl_ms, 86_400_000);
        assert_eq!(config.check_every, Duration::from_secs(3600));
    }

    #[test]
    fn the_automatic_pause_is_an_eighth_of_the_ttl_within_bounds() {
        let check = |ttl: &str| {
            let pairs = [("SU_URL", "http://su"), ("SU_LOCATION_TTL_MS", ttl)];
            parse(&pairs).unwrap().unwrap().check_every
        };
        assert_eq!(check("8000000"), Duration::from_secs(1000));
        assert_eq!(check("1000"), Duration::from_secs(60));
        assert_eq!(check("800000000"), Duration::from_secs(3600));
        let pairs = [("SU_URL", "http://su"), ("SU_LOCATION_CHECK_SECS", "2")];
        let set = parse(&pairs).unwrap().unwrap();
        assert_eq!(set.check_every, Duration::from_secs(2));
    }

    #[test]
    fn a_zero_or_bad_ttl_is_refused_by_name() {
        for ttl in ["0", "a day"] {
            let error = parse(&[("SU_URL", "http://su"), ("SU_LOCATION_TTL_MS", ttl)]);
            assert!(
                error
                    .unwrap_err()
                    .to_string()
                    .contains("SU_LOCATION_TTL_MS")
            );
        }
    }
}
