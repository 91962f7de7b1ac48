//! Operator controls (PROTOCOL 8, issue 17): the IP and process allow-lists, the whole-SU
//! read-only mode and the write rate limits. Each is off unless its variable is set; this
//! file only parses them, `http::controls` applies them.

use super::{ConfigError, Vars, boolean, is_http_url, number, positive, url};

/// Where an allow-list is fetched from, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowListSource {
    /// Fetched as written (a trailing `/` is kept).
    pub url: String,
    pub refresh_secs: u64,
}

/// `PROCESS_WHITELIST_URL` and this SU's key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessAllowListConfig {
    pub source: AllowListSource,
    /// `SU_URL` (or `URL`), without a trailing `/`.
    pub own_url: String,
}

/// `SU_READ_ONLY=true`: every write is refused, or redirected to `write_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyConfig {
    /// `SU_WRITE_URL`, without a trailing `/`.
    pub write_url: Option<String>,
}

/// One token bucket's shape: a bucket of `burst` tokens refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

/// Every operator control; the default is all off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlsConfig {
    pub ip_allow_list: Option<AllowListSource>,
    pub process_allow_list: Option<ProcessAllowListConfig>,
    /// The largest allow-list response accepted (`WHITELIST_MAX_BYTES`).
    pub list_max_bytes: usize,
    pub read_only: Option<ReadOnlyConfig>,
    /// Per client IP; `None` when `RATE_LIMIT_IP_PER_MINUTE` is 0.
    pub ip_rate: Option<RateLimit>,
    /// Per owner address; `None` when `RATE_LIMIT_OWNER_PER_MINUTE` is 0.
    pub owner_rate: Option<RateLimit>,
    /// Clients each rate limit tracks at most (`RATE_LIMIT_MAX_CLIENTS`).
    pub max_clients: usize,
}

/// An allow-list URL: http(s), kept exactly as written.
fn list_url(vars: &Vars, name: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.value(name) {
        None => Ok(None),
        Some(value) if is_http_url(value) => Ok(Some(value.to_string())),
        Some(value) => Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "expected an http:// or https:// URL",
        }),
    }
}

fn source(
    vars: &Vars,
    name: &'static str,
    refresh: &'static str,
) -> Result<Option<AllowListSource>, ConfigError> {
    let Some(url) = list_url(vars, name)? else {
        return Ok(None);
    };
    Ok(Some(AllowListSource {
        url,
        refresh_secs: positive(vars, refresh)? as u64,
    }))
}

fn rate(
    vars: &Vars,
    per_minute: &'static str,
    burst: &'static str,
) -> Result<Option<RateLimit>, ConfigError> {
    let rate: u32 = number(
        vars,
        per_minute,
        "expected writes per minute (0 = no limit)",
    )?;
    if rate == 0 {
        return Ok(None);
    }
    let burst = u32::try_from(positive(vars, burst)?).map_err(|_| ConfigError::Invalid {
        name: burst,
        value: vars.value(burst).unwrap_or_default().to_string(),
        expected: "expected a whole number of at least 1",
    })?;
    Ok(Some(RateLimit {
        per_minute: rate,
        burst,
    }))
}

/// Parses the controls; a process allow-list needs this SU's own URL to find itself in it.
pub(super) fn controls(vars: &Vars) -> Result<ControlsConfig, ConfigError> {
    let process_allow_list = match source(
        vars,
        "PROCESS_WHITELIST_URL",
        "PROCESS_WHITELIST_REFRESH_SECS",
    )? {
        None => None,
        Some(source) => Some(ProcessAllowListConfig {
            source,
            own_url: url(vars, "SU_URL")?.ok_or(ConfigError::Requires {
                name: "SU_URL",
                by: "PROCESS_WHITELIST_URL",
            })?,
        }),
    };
    let read_only = if boolean(vars, "SU_READ_ONLY")? {
        Some(ReadOnlyConfig {
            write_url: url(vars, "SU_WRITE_URL")?,
        })
    } else {
        None
    };
    Ok(ControlsConfig {
        ip_allow_list: source(vars, "IP_WHITELIST_URL", "IP_WHITELIST_REFRESH_SECS")?,
        process_allow_list,
        list_max_bytes: positive(vars, "WHITELIST_MAX_BYTES")?,
        read_only,
        ip_rate: rate(vars, "RATE_LIMIT_IP_PER_MINUTE", "RATE_LIMIT_IP_BURST")?,
        owner_rate: rate(
            vars,
            "RATE_LIMIT_OWNER_PER_MINUTE",
            "RATE_LIMIT_OWNER_BURST",
        )?,
        max_clients: positive(vars, "RATE_LIMIT_MAX_CLIENTS")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ControlsConfig, ConfigError> {
        controls(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn every_control_is_off_by_default() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.ip_allow_list, None);
        assert_eq!(config.process_allow_list, None);
        assert_eq!(config.read_only, None);
        assert_eq!(config.ip_rate, None);
        assert_eq!(config.owner_rate, None);
        assert_eq!(config.max_clients, 100_000);
        assert_eq!(config.list_max_bytes, 32 * 1024 * 1024);
    }

    #[test]
    fn allow_lists_keep_their_url_and_refresh() {
        let config = parse(&[
            ("IP_WHITELIST_URL", "https://lists.example/ips/"),
            ("PROCESS_WHITELIST_URL", "https://lists.example/processes"),
            ("URL", "https://su201.example/"),
        ])
        .unwrap();
        assert_eq!(
            config.ip_allow_list,
            Some(AllowListSource {
                url: "https://lists.example/ips/".into(),
                refresh_secs: 30,
            })
        );
        let process = config.process_allow_list.unwrap();
        assert_eq!(process.source.refresh_secs, 10);
        assert_eq!(process.own_url, "https://su201.example");
        let config = parse(&[
            ("PROCESS_WHITELIST_URL", "https://lists.example/processes"),
            ("SU_URL", "https://su202.example"),
            ("URL", "https://su201.example"),
            ("PROCESS_WHITELIST_REFRESH_SECS", "2"),
        ])
        .unwrap();
        let process = config.process_allow_list.unwrap();
        assert_eq!(process.own_url, "https://su202.example");
        assert_eq!(process.source.refresh_secs, 2);
    }

    #[test]
    fn a_process_allow_list_needs_the_own_url() {
        assert_eq!(
            parse(&[("PROCESS_WHITELIST_URL", "https://lists.example/p")]).unwrap_err(),
            ConfigError::Requires {
                name: "SU_URL",
                by: "PROCESS_WHITELIST_URL"
            }
        );
    }

    #[test]
    fn read_only_and_its_redirect() {
        let config = parse(&[("SU_READ_ONLY", "true")]).unwrap();
        assert_eq!(config.read_only, Some(ReadOnlyConfig { write_url: None }));
        let config = parse(&[
            ("SU_READ_ONLY", "true"),
            ("SU_WRITE_URL", "https://su202.example/"),
        ])
        .unwrap();
        assert_eq!(
            config.read_only.unwrap().write_url.as_deref(),
            Some("https://su202.example")
        );
        assert_eq!(
            parse(&[("SU_WRITE_URL", "https://su202.example")])
                .unwrap()
                .read_only,
            None
        );
    }

    #[test]
    fn rate_limits_are_on_with_a_rate() {
        let config = parse(&[
            ("RATE_LIMIT_IP_PER_MINUTE", "120"),
            ("RATE_LIMIT_OWNER_PER_MINUTE", "6"),
            ("RATE_LIMIT_OWNER_BURST", "2"),
        ])
        .unwrap();
        assert_eq!(
            config.ip_rate,
            Some(RateLimit {
                per_minute: 120,
                burst: 60
            })
        );
        assert_eq!(
            config.owner_rate,
            Some(RateLimit {
                per_minute: 6,
                burst: 2
            })
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[&[(&str, &str)]] = &[
            &[("IP_WHITELIST_URL", "lists.example")],
            &[
                ("IP_WHITELIST_URL", "http://x"),
                ("IP_WHITELIST_REFRESH_SECS", "0"),
            ],
            &[
                ("PROCESS_WHITELIST_URL", "http://x"),
                ("SU_URL", "su201.example"),
            ],
            &[("SU_READ_ONLY", "yes")],
            &[("SU_READ_ONLY", "true"), ("SU_WRITE_URL", "nowhere")],
            &[("RATE_LIMIT_IP_PER_MINUTE", "-1")],
            &[
                ("RATE_LIMIT_OWNER_PER_MINUTE", "5"),
                ("RATE_LIMIT_OWNER_BURST", "0"),
            ],
            &[("RATE_LIMIT_MAX_CLIENTS", "0")],
            &[("WHITELIST_MAX_BYTES", "big")],
        ];
        for pairs in cases {
            let (name, _) = pairs.last().unwrap();
            let error = parse(pairs).unwrap_err();
            assert!(
                error.to_string().starts_with(&format!("{name}=")),
                "{name}: {error}"
            );
        }
    }
}
