//! `SETTINGS`, the one table of variables: each name, its default and its meaning.
//! Defaults live only here; `.env.example` and the README table are generated from it.

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
        name: "SU_TIP_CACHE_SIZE",
        default: "16384",
        doc: "durable process tips each shard keeps in memory; any value >= 1 is safe (tips not yet durable are held apart)",
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
        name: "RAW_DOWNLOAD_MAX_BYTES",
        default: "268435456",
        doc: "largest /raw/{id} an assignment downloads (streamed into its dedupe hash); larger: 400",
    },
    Setting {
        name: "RAW_DOWNLOAD_CONCURRENCY",
        default: "8",
        doc: "/raw/{id} downloads in flight at once; a request waits at most GATEWAY_TIMEOUT_SECS for a slot, then 503",
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
        name: "VERIFY_CONCURRENCY",
        default: "0",
        doc: "items parsed and signature-checked at once (the others wait); 0 = one per core",
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
        default: "67108864",
        doc: "bytes of rendered JSON one page may hold before it is cut short (has_next_page: true; a page always has one edge)",
    },
    Setting {
        name: "MAX_READ_MEMORY_TOTAL",
        default: "268435456",
        doc: "bytes all reads in progress may hold at once (rendered JSON and the items being rendered); pages past it are cut short",
    },
    Setting {
        name: "READ_QUEUE_MILLIS",
        default: "2000",
        doc: "how long a read waits for MAX_READ_MEMORY_TOTAL to free room for its first node before it answers 503",
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

/// The built-in default of `name`, or `None` when the table gives none (empty means unset).
pub(super) fn default_of(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .find(|setting| setting.name == name)
        .map(|setting| setting.default)
        .filter(|default| !default.is_empty())
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

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|setting| setting.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
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
