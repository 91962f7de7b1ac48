//! Configuration: the environment (and an optional `.env` file) parsed once into typed
//! settings. Nothing else reads the environment. Names follow the reference SU.

use std::collections::HashMap;
use std::path::PathBuf;

/// One variable: name, default (empty = unset) and meaning. README and `.env.example` are
/// generated from this table, and a test keeps them current.
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "SU_DATA_DIR",
        default: "./data",
        doc: "directory of the RocksDB store",
    },
    Setting {
        name: "SU_WALLET_PATH",
        default: "",
        doc: "Arweave JWK of the SU; unset: <SU_DATA_DIR>/wallet.json, created on first start",
    },
    Setting {
        name: "SU_PORT",
        default: "9000",
        doc: "HTTP port (the --port flag wins)",
    },
    Setting {
        name: "SU_SIGNING_SALT",
        default: "32",
        doc: "RSA-PSS salt length of SU signatures: 32, or 478 like the reference",
    },
    Setting {
        name: "SU_SHARDS",
        default: "0",
        doc: "sequencer shard threads; 0 = one per core",
    },
    Setting {
        name: "SU_LOG",
        default: "info",
        doc: "log filter (RUST_LOG is read when SU_LOG is unset)",
    },
    Setting {
        name: "SU_LOG_FORMAT",
        default: "text",
        doc: "text or json",
    },
    Setting {
        name: "SU_SHUTDOWN_SECS",
        default: "10",
        doc: "how long a graceful shutdown waits for in-flight requests",
    },
    Setting {
        name: "ARWEAVE_URL",
        default: "",
        doc: "gateway for /info, /tx/{id}/status and /raw/{id}; unset with GATEWAY_URL unset: offline",
    },
    Setting {
        name: "GATEWAY_URL",
        default: "",
        doc: "fallback for ARWEAVE_URL and GRAPHQL_URL",
    },
    Setting {
        name: "GRAPHQL_URL",
        default: "",
        doc: "GraphQL base; /graphql is appended",
    },
    Setting {
        name: "ARWEAVE_URL_LIST",
        default: "",
        doc: "gateways tried in order by the On-Boot check; unset: ARWEAVE_URL",
    },
    Setting {
        name: "UPLOAD_NODE_URL",
        default: "",
        doc: "bundler that receives every item and assignment (POST /tx/arweave); unset: uploads stay queued",
    },
    Setting {
        name: "CACHE_URL",
        default: "",
        doc: "optional second upload target (POST /id?codec-device=ans104@1.0); empty: off",
    },
    Setting {
        name: "UPLOAD_BACKOFF_MAX_SECS",
        default: "32",
        doc: "longest pause between upload retries (they start at 1 s and double)",
    },
    Setting {
        name: "UPLOAD_CONCURRENCY",
        default: "128",
        doc: "bundler uploads in flight at once",
    },
    Setting {
        name: "GATEWAY_TIMEOUT_SECS",
        default: "10",
        doc: "timeout of every outbound request",
    },
    Setting {
        name: "BLOCK_HEIGHT_REFRESH_SECS",
        default: "5",
        doc: "how often the block height is refreshed from the gateway",
    },
    Setting {
        name: "MAX_BLOCK_HEIGHT_AGE_SECS",
        default: "0",
        doc: "refuse writes (503) when the block height is older than this; 0 = never",
    },
    Setting {
        name: "MODE",
        default: "su",
        doc: "su (router mode is not built yet)",
    },
    Setting {
        name: "ENABLE_PROCESS_ASSIGNMENT",
        default: "true",
        doc: "AOP-6: a Process gets its own assignment at nonce 0 (false is not supported for new processes)",
    },
    Setting {
        name: "ENABLE_DEEP_HASH_CHECKS",
        default: "true",
        doc: "reject pushed messages and assignments whose dedupe hash is already recorded",
    },
    Setting {
        name: "ACCEPTED_SIGNATURE_TYPES",
        default: "1,3",
        doc: "signature types POST / accepts (1 Arweave, 2 ed25519, 3 Ethereum, 4 Solana)",
    },
    Setting {
        name: "WARMUP_DELAY",
        default: "0",
        doc: "seconds after start during which POST / answers 503",
    },
    Setting {
        name: "ENABLE_MESSAGE_MAX_SIZE",
        default: "false",
        doc: "apply MAX_MESSAGE_SIZE_BYTES to messages and assignments",
    },
    Setting {
        name: "MAX_MESSAGE_SIZE_BYTES",
        default: "102400",
        doc: "request body limit when ENABLE_MESSAGE_MAX_SIZE=true",
    },
    Setting {
        name: "MAX_SIZE_OWNER_WHITELIST",
        default: "",
        doc: "owner addresses exempt from the size limit",
    },
    Setting {
        name: "MAX_SIZE_FROM_OWNER_WHITELIST",
        default: "",
        doc: "owner addresses exempt when the From-Process is also listed below",
    },
    Setting {
        name: "MAX_SIZE_FROM_WHITELIST",
        default: "",
        doc: "From-Process values exempt together with the list above",
    },
    Setting {
        name: "MAX_READ_MEMORY",
        default: "1073741824",
        doc: "bytes of stored items one page may load before it is cut short",
    },
    Setting {
        name: "MAX_LIMIT",
        default: "5000",
        doc: "largest page size (at least 1000)",
    },
    Setting {
        name: "ENABLE_METRICS",
        default: "true",
        doc: "serve Prometheus metrics at /metrics",
    },
    Setting {
        name: "SCHEDULER_LIST_PATH",
        default: "",
        doc: "router scheduler list; unused in su mode",
    },
];

/// Variables that only configured the reference's Postgres store: accepted, ignored.
const POSTGRES_ONLY: &[&str] = &[
    "DATABASE_URL",
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
const NOT_YET_SUPPORTED: &[&str] = &[
    "IP_WHITELIST_URL",
    "PROCESS_WHITELIST_URL",
    "ENABLE_ROUTER_CHECK",
];

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
    #[error("reading .env: {0}")]
    DotEnv(String),
}

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
        #[allow(clippy::disallowed_methods)] // config.rs is the one reader of the environment
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

    fn get(&self, name: &'static str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
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
}

/// The message size limit of PROTOCOL 4.5.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SizeLimit {
    pub max_bytes: usize,
    pub owner_whitelist: Vec<String>,
    pub from_owner_whitelist: Vec<String>,
    pub from_whitelist: Vec<String>,
}

/// Everything `su serve` needs, typed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub wallet_path: Option<PathBuf>,
    pub port: u16,
    pub signing_salt: u32,
    pub shards: usize,
    pub log_filter: String,
    pub log_json: bool,
    pub shutdown_secs: u64,
    pub upstream: UpstreamConfig,
    pub max_block_height_age_secs: u64,
    pub deep_hash_checks: bool,
    pub accepted_signature_types: Vec<u16>,
    pub warmup_secs: u64,
    pub size_limit: Option<SizeLimit>,
    pub max_read_memory: usize,
    pub max_limit: usize,
    pub metrics: bool,
    /// Notices to log once the logger is up (ignored Postgres-era variables).
    pub notices: Vec<String>,
    /// systemd's `NOTIFY_SOCKET`, for `Type=notify` readiness.
    pub notify_socket: Option<PathBuf>,
}

fn number<T: std::str::FromStr>(
    vars: &Vars,
    name: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match vars.get(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected,
        }),
    }
}

fn boolean(vars: &Vars, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match vars.get(name) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(value) => Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "expected true or false",
        }),
    }
}

fn list(vars: &Vars, name: &'static str) -> Vec<String> {
    vars.get(name)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn url(vars: &Vars, name: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.get(name) {
        None => Ok(None),
        Some(value) if value.starts_with("http://") || value.starts_with("https://") => {
            Ok(Some(value.trim_end_matches('/').to_string()))
        }
        Some(value) => Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "expected an http:// or https:// URL",
        }),
    }
}

impl Config {
    /// Pure parse of the variables; every bad value is an error naming the variable.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        for &name in NOT_YET_SUPPORTED {
            if vars.get(name).is_some_and(|value| value != "false") {
                return Err(ConfigError::Unsupported { name });
            }
        }
        match vars.get("MODE") {
            None | Some("su") => {}
            Some(value) => {
                return Err(ConfigError::Invalid {
                    name: "MODE",
                    value: value.to_string(),
                    expected: "expected su (router mode is not built yet)",
                });
            }
        }
        if !boolean(vars, "ENABLE_PROCESS_ASSIGNMENT", true)? {
            return Err(ConfigError::Unsupported {
                name: "ENABLE_PROCESS_ASSIGNMENT",
            });
        }
        let notices = POSTGRES_ONLY
            .iter()
            .filter(|name| vars.get(name).is_some())
            .map(|name| format!("{name} only configured the reference's Postgres store; ignored"))
            .collect();

        let gateway = url(vars, "GATEWAY_URL")?;
        let arweave_url = url(vars, "ARWEAVE_URL")?.or_else(|| gateway.clone());
        let graphql_url = url(vars, "GRAPHQL_URL")?.or(gateway);
        let mut arweave_url_list = Vec::new();
        for value in list(vars, "ARWEAVE_URL_LIST") {
            if !(value.starts_with("http://") || value.starts_with("https://")) {
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
        let upstream = UpstreamConfig {
            arweave_url,
            graphql_url,
            arweave_url_list,
            upload_node_url: url(vars, "UPLOAD_NODE_URL")?,
            cache_url: url(vars, "CACHE_URL")?,
            timeout_secs: number(vars, "GATEWAY_TIMEOUT_SECS", 10, "expected whole seconds")?,
            block_height_refresh_secs: number(
                vars,
                "BLOCK_HEIGHT_REFRESH_SECS",
                5,
                "expected whole seconds",
            )?
            .max(1),
            upload_backoff_max_secs: number(
                vars,
                "UPLOAD_BACKOFF_MAX_SECS",
                32,
                "expected whole seconds",
            )?
            .max(1),
            upload_concurrency: number(vars, "UPLOAD_CONCURRENCY", 128, "expected a whole number")?
                .max(1),
        };

        let signing_salt = number(vars, "SU_SIGNING_SALT", 32u32, "expected 32 or 478")?;
        if signing_salt != 32 && signing_salt != 478 {
            return Err(ConfigError::Invalid {
                name: "SU_SIGNING_SALT",
                value: signing_salt.to_string(),
                expected: "expected 32 or 478",
            });
        }
        let mut accepted_signature_types = Vec::new();
        for value in list(vars, "ACCEPTED_SIGNATURE_TYPES") {
            match value.parse::<u16>() {
                Ok(kind @ 1..=4) => accepted_signature_types.push(kind),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "ACCEPTED_SIGNATURE_TYPES",
                        value,
                        expected: "expected a list of 1, 2, 3, 4",
                    });
                }
            }
        }
        if accepted_signature_types.is_empty() {
            accepted_signature_types = vec![1, 3];
        }
        let max_limit = number(vars, "MAX_LIMIT", 5000usize, "expected a whole number")?;
        if max_limit < 1000 {
            return Err(ConfigError::Invalid {
                name: "MAX_LIMIT",
                value: max_limit.to_string(),
                expected: "expected at least 1000",
            });
        }
        let size_limit = if boolean(vars, "ENABLE_MESSAGE_MAX_SIZE", false)? {
            Some(SizeLimit {
                max_bytes: number(vars, "MAX_MESSAGE_SIZE_BYTES", 102_400, "expected bytes")?,
                owner_whitelist: list(vars, "MAX_SIZE_OWNER_WHITELIST"),
                from_owner_whitelist: list(vars, "MAX_SIZE_FROM_OWNER_WHITELIST"),
                from_whitelist: list(vars, "MAX_SIZE_FROM_WHITELIST"),
            })
        } else {
            None
        };
        let log_json = match vars.get("SU_LOG_FORMAT") {
            None | Some("text") => false,
            Some("json") => true,
            Some(value) => {
                return Err(ConfigError::Invalid {
                    name: "SU_LOG_FORMAT",
                    value: value.to_string(),
                    expected: "expected text or json",
                });
            }
        };
        Ok(Self {
            data_dir: PathBuf::from(vars.get("SU_DATA_DIR").unwrap_or("./data")),
            wallet_path: vars.get("SU_WALLET_PATH").map(PathBuf::from),
            port: number(vars, "SU_PORT", 9000, "expected a port number")?,
            signing_salt,
            shards: number(vars, "SU_SHARDS", 0, "expected a whole number")?,
            log_filter: vars
                .get("SU_LOG")
                .or(vars.get("RUST_LOG"))
                .unwrap_or("info")
                .to_string(),
            log_json,
            shutdown_secs: number(vars, "SU_SHUTDOWN_SECS", 10, "expected whole seconds")?,
            upstream,
            max_block_height_age_secs: number(
                vars,
                "MAX_BLOCK_HEIGHT_AGE_SECS",
                0,
                "expected whole seconds",
            )?,
            deep_hash_checks: boolean(vars, "ENABLE_DEEP_HASH_CHECKS", true)?,
            accepted_signature_types,
            warmup_secs: number(vars, "WARMUP_DELAY", 0, "expected whole seconds")?,
            size_limit,
            max_read_memory: number(vars, "MAX_READ_MEMORY", 1 << 30, "expected bytes")?,
            max_limit,
            metrics: boolean(vars, "ENABLE_METRICS", true)?,
            notices,
            notify_socket: vars.get("NOTIFY_SOCKET").map(PathBuf::from),
        })
    }
}

/// The `.env.example` text generated from `SETTINGS`.
pub fn env_example() -> String {
    let mut out =
        String::from("# su configuration. Every variable is optional; shown with its default.\n");
    for setting in SETTINGS {
        out.push_str(&format!(
            "\n# {}\n{}={}\n",
            setting.doc, setting.name, setting.default
        ));
    }
    out
}

/// The README configuration table generated from `SETTINGS`.
pub fn readme_table() -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for setting in SETTINGS {
        let default = if setting.default.is_empty() {
            "(unset)"
        } else {
            setting.default
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            setting.name, default, setting.doc
        ));
    }
    out
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
        assert_eq!(config.port, 9000);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(
            config.upstream,
            UpstreamConfig {
                timeout_secs: 10,
                block_height_refresh_secs: 5,
                upload_backoff_max_secs: 32,
                upload_concurrency: 128,
                ..Default::default()
            }
        );
        assert!(config.deep_hash_checks);
        assert_eq!(config.accepted_signature_types, vec![1, 3]);
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
            ("ARWEAVE_URL", "ftp://x"),
            ("UPLOAD_NODE_URL", "localhost:1984"),
            ("ACCEPTED_SIGNATURE_TYPES", "1,9"),
            ("SU_LOG_FORMAT", "xml"),
            ("MODE", "router"),
            ("WARMUP_DELAY", "soon"),
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
        for name in ["IP_WHITELIST_URL", "PROCESS_WHITELIST_URL"] {
            assert_eq!(
                parse(&[(name, "https://x")]).unwrap_err(),
                ConfigError::Unsupported { name }
            );
        }
        assert!(parse(&[("ENABLE_ROUTER_CHECK", "false")]).is_ok());
        assert!(parse(&[("ENABLE_PROCESS_ASSIGNMENT", "false")]).is_err());
    }

    #[test]
    fn postgres_variables_are_ignored_with_a_notice() {
        let config = parse(&[("DATABASE_URL", "postgres://x"), ("USE_DISK", "true")]).unwrap();
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
        let limit = config.size_limit.unwrap();
        assert_eq!(limit.max_bytes, 10);
        assert_eq!(
            limit.owner_whitelist,
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn every_setting_is_documented_in_env_example_and_readme() {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
        assert_eq!(
            example,
            env_example(),
            ".env.example is stale: run `su config-example > .env.example`"
        );
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(
            readme.contains(&readme_table()),
            "README configuration table is stale: `su config-table`"
        );
    }
}
