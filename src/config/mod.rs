//! Configuration: the environment (and an optional `.env` file) parsed once into typed
//! sub-configs, one per concern. Nothing else reads the environment. Names follow the
//! reference SU; every default lives in `settings::SETTINGS`.

mod controls;
mod effective;
mod location;
mod settings;

pub use controls::{
    AllowListSource, ControlsConfig, ProcessAllowListConfig, RateLimit, ReadOnlyConfig,
};
pub use effective::{EffectiveSettings, redact};
pub use location::LocationConfig;
pub use settings::{SETTINGS, Setting, env_example, readme_table};

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Variables that only configured the reference's Postgres store: accepted, ignored.
const POSTGRES_ONLY: &[&str] = &[
    "DATABASE_READ_URL",
    "DB_WRITE_CONNECTIONS",
    "DB_READ_CONNECTIONS",
    "USE_DISK",
    "MIGRATION_BATCH_SIZE",
    "USE_LOCAL_STORE",
    "SU_FILE_DB_DIR",
    "SU_INDEX_DB_DIR",
    "SU_FILE_SYNC_DB_DIR",
    "SU_INDEX_SYNC_DB_DIR",
    "PROCESS_CACHE_SIZE",
    "MULTI_TENANT_BASE_CONN",
    "MULTI_TENANT_BASE_READ_CONN",
    "MULTI_TENANT_BASE_DATA_DIR",
    "CURRENT_DEEPHASH_VERSION",
    "DEEPHASH_RECALC_LIMIT",
];

/// Variables of reference features this build does not have yet: refusing to start is safer
/// than silently running without the protection an operator asked for.
const NOT_YET_SUPPORTED: &[&str] = &[];

/// A bad configuration value: one clear line, exit code 2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}={value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{name} is set, but this version does not support it yet (unset it to start)")]
    Unsupported { name: &'static str },
    #[error("{name} must be set")]
    Missing { name: &'static str },
    #[error("{name} must be set when {by} is set")]
    Requires {
        name: &'static str,
        by: &'static str,
    },
    #[error("reading .env: {0}")]
    DotEnv(String),
}

/// A setting read under another name when it is unset itself: `(setting, alias)`.
const ALIASES: &[(&str, &str)] = &[("SU_LOG", "RUST_LOG"), ("SU_URL", "URL")];

/// The raw variables: built-in defaults < `.env` < process environment.
#[derive(Debug, Clone, Default)]
pub struct Vars(HashMap<String, String>);

impl Vars {
    /// Reads the process environment over an optional `.env` in the working directory.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut map = HashMap::new();
        match dotenvy::from_path_iter(".env") {
            Ok(iter) => {
                for item in iter {
                    let (key, value) = item.map_err(|err| ConfigError::DotEnv(err.to_string()))?;
                    map.insert(key, value);
                }
            }
            Err(err) if err.not_found() => {}
            Err(err) => return Err(ConfigError::DotEnv(err.to_string())),
        }
        #[allow(clippy::disallowed_methods)] // config is the one reader of the environment
        map.extend(std::env::vars());
        Ok(Self(map))
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value set for `name`, if any; an empty value counts as unset.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value in force: set, else set under its alias, else the table's default.
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| {
                ALIASES
                    .iter()
                    .find(|(setting, _)| *setting == name)
                    .and_then(|(_, alias)| self.get(alias))
            })
            .or_else(|| settings::default_of(name))
    }
}

/// Where the state lives: the RocksDB store (and, by default, the wallet) under one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
}

/// The SU's identity: which JWK signs Assignments, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletConfig {
    /// `None`: `<data dir>/wallet.json`, created on first start.
    pub path: Option<PathBuf>,
    pub signing_salt: u32,
}

/// The reference SU's store that `su import-postgres` reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportConfig {
    /// `DATABASE_URL`: the reference's Postgres database (the `--database-url` flag wins).
    pub database_url: Option<String>,
}

/// The listener and the read side of HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub port: u16,
    /// Rendered bytes one page may hold (`MAX_READ_MEMORY`).
    pub max_read_memory: usize,
    /// Bytes all reads in progress may hold together (`MAX_READ_MEMORY_TOTAL`).
    pub max_read_memory_total: usize,
    /// How long a read waits for room in that budget (`READ_QUEUE_MILLIS`).
    pub read_queue_millis: u64,
    pub max_limit: usize,
    pub metrics: bool,
    /// The token the change feed (`/~su/log`) requires, and `su sync` sends.
    pub feed_token: Option<String>,
    pub connections: ConnectionLimits,
    /// Waiting reads and streams open at once (`SU_MAX_LIVE_READS`); 0: none.
    pub max_live_reads: usize,
}

/// What one client connection may hold: time for a head, a body and idleness, and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A head must arrive whole within this of its first byte (or of the connection's start).
    pub header_timeout: Duration,
    /// A body may pause at most this long, and gets this long plus `1 s / body_min_rate` bytes.
    pub body_timeout: Duration,
    /// Bytes per second a body must average beyond `body_timeout`; 0: no rate check.
    pub body_min_rate: u64,
    /// An idle keep-alive connection is closed after this long.
    pub keep_alive: Duration,
    /// TCP keepalive idle time; `None`: off.
    pub tcp_keepalive: Option<Duration>,
    /// Open connections at most; 0: half the file-descriptor limit.
    pub max_connections: usize,
    /// Connections holding a parser while serving nothing (idle, or a head under way).
    pub max_waiting_connections: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

/// What a write must satisfy before it is handed to the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    pub accepted_signature_types: Vec<u16>,
    /// Items verified at once; 0: one per core (`VERIFY_CONCURRENCY`).
    pub verify_concurrency: usize,
    pub warmup_secs: u64,
    /// 0: writes never wait for a fresh block height.
    pub max_block_height_age_secs: u64,
    pub size_limit: Option<SizeLimit>,
}

/// The inputs of `sequencer::SequencerConfig` and `SequencerContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulingConfig {
    /// 0: one shard per core.
    pub shards: usize,
    /// Durable tips each shard caches (`SU_TIP_CACHE_SIZE`, at least 1).
    pub tip_cache: usize,
    pub deep_hash_checks: bool,
}

/// Logging: the `EnvFilter` directive and the output format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub filter: String,
    pub json: bool,
}

/// Start-up and shutdown of the daemon, whatever its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// How long each shutdown wait (HTTP drain, sequencer join) may take.
    pub shutdown_secs: u64,
    /// systemd's `NOTIFY_SOCKET`, for `Type=notify` readiness.
    pub notify_socket: Option<PathBuf>,
}

/// Outbound URLs; all optional: with none set the SU runs offline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamConfig {
    pub arweave_url: Option<String>,
    pub graphql_url: Option<String>,
    pub arweave_url_list: Vec<String>,
    pub upload_node_url: Option<String>,
    pub cache_url: Option<String>,
    pub timeout_secs: u64,
    pub block_height_refresh_secs: u64,
    pub upload_backoff_max_secs: u64,
    pub upload_concurrency: usize,
    /// The largest `/raw` an assignment downloads (`RAW_DOWNLOAD_MAX_BYTES`).
    pub raw_max_bytes: u64,
    /// `/raw` downloads in flight at once (`RAW_DOWNLOAD_CONCURRENCY`).
    pub raw_concurrency: usize,
}

/// The message size limit of PROTOCOL 4.5.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SizeLimit {
    pub max_bytes: usize,
    pub owner_whitelist: Vec<String>,
    pub from_owner_whitelist: Vec<String>,
    pub from_whitelist: Vec<String>,
}

/// The role `su serve` and `su su PORT` play (`MODE`); `su router` is always a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeMode {
    /// A Scheduler Unit.
    Su,
    /// A router in front of SUs (PROTOCOL 7).
    Router,
}

/// Router mode: the scheduler list and how the router talks to its SUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// `SCHEDULER_LIST_PATH`; required in router mode.
    pub list_path: Option<PathBuf>,
    /// Seconds between health checks (process counts) of each SU.
    pub poll_secs: u64,
    /// Timeout of each call to an SU (health checks, lookups).
    pub su_timeout_secs: u64,
}

/// `ENABLE_ROUTER_CHECK=true` on an SU: before a spawn, ask the router whether the process
/// is placed elsewhere (PROTOCOL 10.5, DECISIONS 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterCheckConfig {
    /// `ROUTER_URL`, without a trailing `/`.
    pub router_url: String,
    /// `SU_URL` (or `URL`): compared with the router's `Location`.
    pub own_url: Option<String>,
    /// `ASSIGNMENT`: this SU's number in `https://suN.` host names, used without `SU_URL`.
    pub assignment: Option<String>,
    pub timeout_secs: u64,
}

/// Everything the subcommands need, typed, validated and grouped by concern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
    pub wallet: WalletConfig,
    pub http: HttpConfig,
    pub admission: AdmissionConfig,
    pub scheduling: SchedulingConfig,
    pub upstream: UpstreamConfig,
    pub log: LogConfig,
    pub lifecycle: LifecycleConfig,
    /// The operator's allow-lists, read-only mode and rate limits; all off by default.
    pub controls: ControlsConfig,
    /// `MODE`: what `su serve` runs.
    pub mode: ServeMode,
    pub router: RouterConfig,
    /// `ENABLE_ROUTER_CHECK`; `None` when off.
    pub router_check: Option<RouterCheckConfig>,
    /// The Scheduler-Location keeper of `su serve`; `None` without `SU_URL` or when off.
    pub location: Option<LocationConfig>,
    /// What `su import-postgres` reads when no flag says otherwise.
    pub import: ImportConfig,
    /// Notices to log once the logger is up (ignored Postgres-era variables).
    pub notices: Vec<String>,
    /// The values in force, redacted, for the one start-up log line.
    pub effective: EffectiveSettings,
}

/// The value in force of a setting the table gives a default; an error names it otherwise.
fn required<'a>(vars: &'a Vars, name: &'static str) -> Result<&'a str, ConfigError> {
    vars.value(name).ok_or(ConfigError::Missing { name })
}

/// A whole number of at least 1.
fn positive(vars: &Vars, name: &'static str) -> Result<usize, ConfigError> {
    let value: usize = number(vars, name, "expected a whole number of at least 1")?;
    if value == 0 {
        return Err(ConfigError::Invalid {
            name,
            value: "0".to_string(),
            expected: "expected a whole number of at least 1",
        });
    }
    Ok(value)
}

fn number<T: std::str::FromStr>(
    vars: &Vars,
    name: &'static str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    let value = required(vars, name)?;
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        value: value.to_string(),
        expected,
    })
}

fn boolean(vars: &Vars, name: &'static str) -> Result<bool, ConfigError> {
    match required(vars, name)? {
        "true" => Ok(true),
        "false" => Ok(false),
        value => Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "expected true or false",
        }),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn list(vars: &Vars, name: &'static str) -> Vec<String> {
    vars.value(name).map(split_list).unwrap_or_default()
}

fn is_http_url(value: &str) -> bool {
    value.starts_with("http://") || value.starts_with("https://")
}

fn url(vars: &Vars, name: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.value(name) {
        None => Ok(None),
        Some(value) if is_http_url(value) => Ok(Some(value.trim_end_matches('/').to_string())),
        Some(value) => Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "expected an http:// or https:// URL",
        }),
    }
}

/// Refuses what this build cannot do, rather than running without it.
fn refuse_unsupported(vars: &Vars) -> Result<(), ConfigError> {
    for &name in NOT_YET_SUPPORTED {
        if vars.get(name).is_some_and(|value| value != "false") {
            return Err(ConfigError::Unsupported { name });
        }
    }
    if !boolean(vars, "ENABLE_PROCESS_ASSIGNMENT")? {
        return Err(ConfigError::Unsupported {
            name: "ENABLE_PROCESS_ASSIGNMENT",
        });
    }
    Ok(())
}

fn serve_mode(vars: &Vars) -> Result<ServeMode, ConfigError> {
    match required(vars, "MODE")? {
        "su" => Ok(ServeMode::Su),
        "router" => Ok(ServeMode::Router),
        value => Err(ConfigError::Invalid {
            name: "MODE",
            value: value.to_string(),
            expected: "expected su or router",
        }),
    }
}

fn router(vars: &Vars) -> Result<RouterConfig, ConfigError> {
    Ok(RouterConfig {
        list_path: vars.value("SCHEDULER_LIST_PATH").map(PathBuf::from),
        poll_secs: positive(vars, "ROUTER_POLL_SECS")? as u64,
        su_timeout_secs: positive(vars, "ROUTER_SU_TIMEOUT_SECS")? as u64,
    })
}

fn router_check(vars: &Vars) -> Result<Option<RouterCheckConfig>, ConfigError> {
    if !boolean(vars, "ENABLE_ROUTER_CHECK")? {
        return Ok(None);
    }
    let router_url = url(vars, "ROUTER_URL")?.ok_or(ConfigError::Requires {
        name: "ROUTER_URL",
        by: "ENABLE_ROUTER_CHECK",
    })?;
    let own_url = url(vars, "SU_URL")?;
    let assignment = vars.value("ASSIGNMENT").map(str::to_string);
    if own_url.is_none() && assignment.is_none() {
        return Err(ConfigError::Requires {
            name: "SU_URL",
            by: "ENABLE_ROUTER_CHECK",
        });
    }
    Ok(Some(RouterCheckConfig {
        router_url,
        own_url,
        assignment,
        timeout_secs: positive(vars, "ROUTER_SU_TIMEOUT_SECS")? as u64,
    }))
}

fn upstream(vars: &Vars) -> Result<UpstreamConfig, ConfigError> {
    let gateway = url(vars, "GATEWAY_URL")?;
    let arweave_url = url(vars, "ARWEAVE_URL")?.or_else(|| gateway.clone());
    let graphql_url = url(vars, "GRAPHQL_URL")?.or(gateway);
    let mut arweave_url_list = Vec::new();
    for value in list(vars, "ARWEAVE_URL_LIST") {
        if !is_http_url(&value) {
            return Err(ConfigError::Invalid {
                name: "ARWEAVE_URL_LIST",
                value,
                expected: "expected comma-separated http(s) URLs",
            });
        }
        arweave_url_list.push(value.trim_end_matches('/').to_string());
    }
    if arweave_url_list.is_empty() {
        arweave_url_list.extend(arweave_url.clone());
    }
    let seconds = "expected whole seconds";
    Ok(UpstreamConfig {
        arweave_url,
        graphql_url,
        arweave_url_list,
        upload_node_url: url(vars, "UPLOAD_NODE_URL")?,
        cache_url: url(vars, "CACHE_URL")?,
        timeout_secs: number(vars, "GATEWAY_TIMEOUT_SECS", seconds)?,
        block_height_refresh_secs: number::<u64>(vars, "BLOCK_HEIGHT_REFRESH_SECS", seconds)?
            .max(1),
        upload_backoff_max_secs: number::<u64>(vars, "UPLOAD_BACKOFF_MAX_SECS", seconds)?.max(1),
        upload_concurrency: positive(vars, "UPLOAD_CONCURRENCY")?,
        raw_max_bytes: number(vars, "RAW_DOWNLOAD_MAX_BYTES", "expected bytes")?,
        raw_concurrency: positive(vars, "RAW_DOWNLOAD_CONCURRENCY")?,
    })
}

fn signature_types(text: &str) -> Result<Vec<u16>, ConfigError> {
    let mut accepted = Vec::new();
    for value in split_list(text) {
        match value.parse::<u16>() {
            Ok(kind @ 1..=4) => accepted.push(kind),
            _ => {
                return Err(ConfigError::Invalid {
                    name: "ACCEPTED_SIGNATURE_TYPES",
                    value,
                    expected: "expected a list of 1, 2, 3, 4",
                });
            }
        }
    }
    Ok(accepted)
}

fn admission(vars: &Vars) -> Result<AdmissionConfig, ConfigError> {
    let name = "ACCEPTED_SIGNATURE_TYPES";
    let mut accepted_signature_types = signature_types(required(vars, name)?)?;
    if accepted_signature_types.is_empty() {
        // A list of only commas means the default, as an unset variable does.
        accepted_signature_types = signature_types(settings::default_of(name).unwrap_or(""))?;
    }
    let size_limit = if boolean(vars, "ENABLE_MESSAGE_MAX_SIZE")? {
        Some(SizeLimit {
            max_bytes: number(vars, "MAX_MESSAGE_SIZE_BYTES", "expected bytes")?,
            owner_whitelist: list(vars, "MAX_SIZE_OWNER_WHITELIST"),
            from_owner_whitelist: list(vars, "MAX_SIZE_FROM_OWNER_WHITELIST"),
            from_whitelist: list(vars, "MAX_SIZE_FROM_WHITELIST"),
        })
    } else {
        None
    };
    Ok(AdmissionConfig {
        accepted_signature_types,
        verify_concurrency: number(vars, "VERIFY_CONCURRENCY", "expected a whole number")?,
        warmup_secs: number(vars, "WARMUP_DELAY", "expected whole seconds")?,
        max_block_height_age_secs: number(
            vars,
            "MAX_BLOCK_HEIGHT_AGE_SECS",
            "expected whole seconds",
        )?,
        size_limit,
    })
}

fn http(vars: &Vars) -> Result<HttpConfig, ConfigError> {
    let max_limit: usize = number(vars, "MAX_LIMIT", "expected a whole number")?;
    if max_limit < 1000 {
        return Err(ConfigError::Invalid {
            name: "MAX_LIMIT",
            value: max_limit.to_string(),
            expected: "expected at least 1000",
        });
    }
    Ok(HttpConfig {
        port: number(vars, "SU_PORT", "expected a port number")?,
        max_read_memory: number(vars, "MAX_READ_MEMORY", "expected bytes")?,
        max_read_memory_total: positive(vars, "MAX_READ_MEMORY_TOTAL")?,
        read_queue_millis: number(vars, "READ_QUEUE_MILLIS", "expected milliseconds")?,
        max_limit,
        metrics: boolean(vars, "ENABLE_METRICS")?,
        feed_token: vars
            .get("SU_FEED_TOKEN")
            .filter(|token| !token.is_empty())
            .map(str::to_owned),
        connections: connection_limits(vars)?,
        max_live_reads: number(vars, "SU_MAX_LIVE_READS", "expected a whole number")?,
    })
}

fn connection_limits(vars: &Vars) -> Result<ConnectionLimits, ConfigError> {
    let seconds = |name| positive(vars, name).map(|secs| Duration::from_secs(secs as u64));
    let tcp_keepalive: u64 = number(vars, "SU_TCP_KEEPALIVE_SECS", "expected whole seconds")?;
    let max_header_bytes: usize = number(vars, "SU_MAX_HEADER_BYTES", "expected bytes")?;
    if max_header_bytes < 1024 {
        return Err(ConfigError::Invalid {
            name: "SU_MAX_HEADER_BYTES",
            value: max_header_bytes.to_string(),
            expected: "expected at least 1024",
        });
    }
    Ok(ConnectionLimits {
        header_timeout: seconds("SU_HEADER_TIMEOUT_SECS")?,
        body_timeout: seconds("SU_BODY_TIMEOUT_SECS")?,
        body_min_rate: number(vars, "SU_BODY_MIN_RATE", "expected bytes per second")?,
        keep_alive: seconds("SU_KEEP_ALIVE_SECS")?,
        tcp_keepalive: (tcp_keepalive > 0).then(|| Duration::from_secs(tcp_keepalive)),
        max_connections: number(vars, "SU_MAX_CONNECTIONS", "expected a whole number")?,
        max_waiting_connections: positive(vars, "SU_MAX_WAITING_CONNECTIONS")?,
        max_header_bytes,
        max_headers: positive(vars, "SU_MAX_HEADERS")?,
    })
}

fn wallet(vars: &Vars) -> Result<WalletConfig, ConfigError> {
    let signing_salt: u32 = number(vars, "SU_SIGNING_SALT", "expected 32 or 478")?;
    if signing_salt != 32 && signing_salt != 478 {
        return Err(ConfigError::Invalid {
            name: "SU_SIGNING_SALT",
            value: signing_salt.to_string(),
            expected: "expected 32 or 478",
        });
    }
    Ok(WalletConfig {
        path: vars.value("SU_WALLET_PATH").map(PathBuf::from),
        signing_salt,
    })
}

fn log(vars: &Vars) -> Result<LogConfig, ConfigError> {
    let json = match required(vars, "SU_LOG_FORMAT")? {
        "text" => false,
        "json" => true,
        value => {
            return Err(ConfigError::Invalid {
                name: "SU_LOG_FORMAT",
                value: value.to_string(),
                expected: "expected text or json",
            });
        }
    };
    Ok(LogConfig {
        filter: required(vars, "SU_LOG")?.to_string(),
        json,
    })
}

/// The wallet file used when `SU_WALLET_PATH` is unset, inside the data directory.
const DEFAULT_WALLET_FILE: &str = "wallet.json";

impl Config {
    /// The JWK this SU signs with: `SU_WALLET_PATH`, or `<data dir>/wallet.json`.
    pub fn wallet_file(&self) -> PathBuf {
        self.wallet
            .path
            .clone()
            .unwrap_or_else(|| self.store.data_dir.join(DEFAULT_WALLET_FILE))
    }

    /// Pure parse of the variables; every bad value is an error naming the variable.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        refuse_unsupported(vars)?;
        let notices = POSTGRES_ONLY
            .iter()
            .filter(|name| vars.get(name).is_some())
            .map(|name| format!("{name} only configured the reference's Postgres store; ignored"))
            .collect();
        let config = Self {
            store: StoreConfig {
                data_dir: PathBuf::from(required(vars, "SU_DATA_DIR")?),
            },
            wallet: wallet(vars)?,
            http: http(vars)?,
            admission: admission(vars)?,
            scheduling: SchedulingConfig {
                shards: number(vars, "SU_SHARDS", "expected a whole number")?,
                tip_cache: positive(vars, "SU_TIP_CACHE_SIZE")?,
                deep_hash_checks: boolean(vars, "ENABLE_DEEP_HASH_CHECKS")?,
            },
            upstream: upstream(vars)?,
            log: log(vars)?,
            lifecycle: LifecycleConfig {
                shutdown_secs: number(vars, "SU_SHUTDOWN_SECS", "expected whole seconds")?,
                notify_socket: vars.get("NOTIFY_SOCKET").map(PathBuf::from),
            },
            controls: controls::controls(vars)?,
            mode: serve_mode(vars)?,
            router: router(vars)?,
            router_check: router_check(vars)?,
            location: location::location(vars)?,
            import: ImportConfig {
                database_url: vars.get("DATABASE_URL").map(str::to_owned),
            },
            notices,
            effective: EffectiveSettings::from_vars(vars),
        };
        // The change feed lists every process: with a process allow-list it must be private.
        if config.controls.process_allow_list.is_some() && config.http.feed_token.is_none() {
            return Err(ConfigError::Requires {
                name: "SU_FEED_TOKEN",
                by: "PROCESS_WHITELIST_URL",
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_run_offline() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.http.port, 9000);
        assert_eq!(config.store.data_dir, PathBuf::from("./data"));
        assert_eq!(
            config.upstream,
            UpstreamConfig {
                timeout_secs: 10,
                block_height_refresh_secs: 5,
                upload_backoff_max_secs: 32,
                upload_concurrency: 128,
                raw_max_bytes: 256 << 20,
                raw_concurrency: 8,
                ..Default::default()
            }
        );
        assert!(config.scheduling.deep_hash_checks);
        assert_eq!(config.admission.accepted_signature_types, vec![1, 3]);
        assert_eq!(config.log.filter, "info");
    }

    #[test]
    fn every_default_comes_from_the_table() {
        let config = parse(&[]).unwrap();
        let default = |name| settings::default_of(name).unwrap_or("");
        assert_eq!(config.http.port.to_string(), default("SU_PORT"));
        assert_eq!(config.http.max_limit.to_string(), default("MAX_LIMIT"));
        assert_eq!(
            config.http.max_read_memory.to_string(),
            default("MAX_READ_MEMORY")
        );
        assert_eq!(
            config.http.max_read_memory_total.to_string(),
            default("MAX_READ_MEMORY_TOTAL")
        );
        assert_eq!(
            config.http.read_queue_millis.to_string(),
            default("READ_QUEUE_MILLIS")
        );
        assert_eq!(
            config.admission.verify_concurrency.to_string(),
            default("VERIFY_CONCURRENCY")
        );
        assert_eq!(
            config.lifecycle.shutdown_secs.to_string(),
            default("SU_SHUTDOWN_SECS")
        );
        assert_eq!(
            config.admission.warmup_secs.to_string(),
            default("WARMUP_DELAY")
        );
        assert_eq!(
            config.wallet.signing_salt.to_string(),
            default("SU_SIGNING_SALT")
        );
        let limits = &config.http.connections;
        let secs = |value: Duration| value.as_secs().to_string();
        assert_eq!(
            secs(limits.header_timeout),
            default("SU_HEADER_TIMEOUT_SECS")
        );
        assert_eq!(secs(limits.body_timeout), default("SU_BODY_TIMEOUT_SECS"));
        assert_eq!(
            limits.body_min_rate.to_string(),
            default("SU_BODY_MIN_RATE")
        );
        assert_eq!(secs(limits.keep_alive), default("SU_KEEP_ALIVE_SECS"));
        assert_eq!(
            limits
                .tcp_keepalive
                .map_or(0, |value| value.as_secs())
                .to_string(),
            default("SU_TCP_KEEPALIVE_SECS")
        );
        assert_eq!(
            limits.max_connections.to_string(),
            default("SU_MAX_CONNECTIONS")
        );
        assert_eq!(
            limits.max_waiting_connections.to_string(),
            default("SU_MAX_WAITING_CONNECTIONS")
        );
        assert_eq!(
            limits.max_header_bytes.to_string(),
            default("SU_MAX_HEADER_BYTES")
        );
        assert_eq!(limits.max_headers.to_string(), default("SU_MAX_HEADERS"));
        let enabled = parse(&[("ENABLE_MESSAGE_MAX_SIZE", "true")]).unwrap();
        assert_eq!(
            enabled.admission.size_limit.unwrap().max_bytes.to_string(),
            default("MAX_MESSAGE_SIZE_BYTES")
        );
    }

    #[test]
    fn su_log_falls_back_to_rust_log() {
        assert_eq!(parse(&[("RUST_LOG", "debug")]).unwrap().log.filter, "debug");
        let both = parse(&[("RUST_LOG", "debug"), ("SU_LOG", "warn")]).unwrap();
        assert_eq!(both.log.filter, "warn");
    }

    #[test]
    fn gateway_url_is_the_fallback() {
        let config = parse(&[("GATEWAY_URL", "https://g.example/")]).unwrap();
        assert_eq!(
            config.upstream.arweave_url.as_deref(),
            Some("https://g.example")
        );
        assert_eq!(
            config.upstream.graphql_url.as_deref(),
            Some("https://g.example")
        );
        assert_eq!(
            config.upstream.arweave_url_list,
            vec!["https://g.example".to_string()]
        );
        let config = parse(&[
            ("GATEWAY_URL", "https://g.example"),
            ("ARWEAVE_URL", "http://a"),
        ])
        .unwrap();
        assert_eq!(config.upstream.arweave_url.as_deref(), Some("http://a"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&str, &str)] = &[
            ("SU_PORT", "abc"),
            ("SU_PORT", "70000"),
            ("SU_SIGNING_SALT", "64"),
            ("ENABLE_METRICS", "yes"),
            ("ENABLE_DEEP_HASH_CHECKS", "1"),
            ("MAX_LIMIT", "10"),
            ("MAX_READ_MEMORY", "-1"),
            ("MAX_READ_MEMORY_TOTAL", "0"),
            ("RAW_DOWNLOAD_CONCURRENCY", "0"),
            ("VERIFY_CONCURRENCY", "x"),
            ("ARWEAVE_URL", "ftp://x"),
            ("UPLOAD_NODE_URL", "localhost:1984"),
            ("ACCEPTED_SIGNATURE_TYPES", "1,9"),
            ("SU_LOG_FORMAT", "xml"),
            ("MODE", "relay"),
            ("ROUTER_POLL_SECS", "0"),
            ("WARMUP_DELAY", "soon"),
            ("SU_HEADER_TIMEOUT_SECS", "0"),
            ("SU_BODY_TIMEOUT_SECS", "1.5"),
            ("SU_KEEP_ALIVE_SECS", "-1"),
            ("SU_MAX_HEADER_BYTES", "100"),
            ("SU_MAX_HEADERS", "0"),
            ("SU_BODY_MIN_RATE", "fast"),
        ];
        for (name, value) in cases {
            let error = parse(&[(name, value)]).unwrap_err();
            assert!(
                error.to_string().starts_with(&format!("{name}=")),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn unsupported_features_refuse_to_start() {
        assert!(parse(&[("IP_WHITELIST_URL", "https://x")]).is_ok());
        assert!(parse(&[("ENABLE_PROCESS_ASSIGNMENT", "false")]).is_err());
    }

    #[test]
    fn router_mode_and_the_router_check() {
        assert_eq!(parse(&[]).unwrap().mode, ServeMode::Su);
        let router =
            parse(&[("MODE", "router"), ("SCHEDULER_LIST_PATH", "/etc/sus.json")]).unwrap();
        assert_eq!(router.mode, ServeMode::Router);
        assert_eq!(
            router.router.list_path,
            Some(PathBuf::from("/etc/sus.json"))
        );
        assert_eq!(
            parse(&[("ENABLE_ROUTER_CHECK", "false")])
                .unwrap()
                .router_check,
            None
        );
        // The check needs this SU's identity: SU_URL (or URL), or the reference's ASSIGNMENT.
        assert_eq!(
            parse(&[("ENABLE_ROUTER_CHECK", "true")]).unwrap_err(),
            ConfigError::Requires {
                name: "SU_URL",
                by: "ENABLE_ROUTER_CHECK"
            }
        );
        let check = parse(&[
            ("ENABLE_ROUTER_CHECK", "true"),
            ("URL", "http://su1.example/"),
        ])
        .unwrap()
        .router_check
        .unwrap();
        assert_eq!(check.own_url.as_deref(), Some("http://su1.example"));
        assert_eq!(check.router_url, "https://su-router.ao-testnet.xyz");
        let check = parse(&[("ENABLE_ROUTER_CHECK", "true"), ("ASSIGNMENT", "12")])
            .unwrap()
            .router_check
            .unwrap();
        assert_eq!(
            (check.own_url, check.assignment.as_deref()),
            (None, Some("12"))
        );
    }

    #[test]
    fn postgres_variables_are_ignored_with_a_notice() {
        let config = parse(&[("DATABASE_READ_URL", "postgres://x"), ("USE_DISK", "true")]).unwrap();
        assert_eq!(config.notices.len(), 2);
    }

    #[test]
    fn size_limit_lists_are_trimmed() {
        let config = parse(&[
            ("ENABLE_MESSAGE_MAX_SIZE", "true"),
            ("MAX_MESSAGE_SIZE_BYTES", "10"),
            ("MAX_SIZE_OWNER_WHITELIST", " a , b "),
        ])
        .unwrap();
        let limit = config.admission.size_limit.unwrap();
        assert_eq!(limit.max_bytes, 10);
        assert_eq!(
            limit.owner_whitelist,
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
