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
        name: "SU_HEADER_TIMEOUT_SECS",
        default: "10",
        doc: "a request head (request line and headers) must arrive whole within this time of its first byte, or of the connection's start; else the connection is closed",
    },
    Setting {
        name: "SU_BODY_TIMEOUT_SECS",
        default: "20",
        doc: "a request body may pause at most this long, and must arrive within this time plus one second per SU_BODY_MIN_RATE bytes received; else 408 and the connection is closed",
    },
    Setting {
        name: "SU_BODY_MIN_RATE",
        default: "4096",
        doc: "bytes per second a request body must average beyond SU_BODY_TIMEOUT_SECS; 0 = only the pause limit applies",
    },
    Setting {
        name: "SU_KEEP_ALIVE_SECS",
        default: "30",
        doc: "an idle keep-alive connection is closed after this long without a request",
    },
    Setting {
        name: "SU_TCP_KEEPALIVE_SECS",
        default: "60",
        doc: "TCP keepalive probes start after this much silence (every quarter of it, 4 probes: a dead peer is dropped after about twice this); 0 = off",
    },
    Setting {
        name: "SU_MAX_CONNECTIONS",
        default: "0",
        doc: "open connections at most; 0 = half the file-descriptor limit (whose soft value is raised to the hard one at start); a new connection beyond it closes the longest-idle one",
    },
    Setting {
        name: "SU_MAX_WAITING_CONNECTIONS",
        default: "1024",
        doc: "connections that hold a request parser (about 16 KiB) while serving nothing, idle keep-alives and unfinished heads, at most; beyond it the longest-waiting one is closed (a connection that has sent nothing holds no parser)",
    },
    Setting {
        name: "SU_MAX_HEADER_BYTES",
        default: "32768",
        doc: "largest request head (request line and headers), at least 1024; beyond it 431 and the connection is closed",
    },
    Setting {
        name: "SU_MAX_HEADERS",
        default: "100",
        doc: "most header lines in one request; beyond it 431 and the connection is closed",
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
        doc: "what `su serve` and `su su PORT` run: su, or router (as `su router` does)",
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
        name: "IP_WHITELIST_URL",
        default: "",
        doc: "JSON list of client IPs (the X-Real-IP header) allowed to POST; unset: no IP check",
    },
    Setting {
        name: "IP_WHITELIST_REFRESH_SECS",
        default: "30",
        doc: "how often the IP allow-list is fetched again (a failed fetch keeps the last list)",
    },
    Setting {
        name: "PROCESS_WHITELIST_URL",
        default: "",
        doc: "JSON process allow-list (PROTOCOL 8.2); set: only listed processes are served, no spawning; fetched at start (failure stops start-up)",
    },
    Setting {
        name: "PROCESS_WHITELIST_REFRESH_SECS",
        default: "10",
        doc: "how often the process allow-list is fetched again (a failed fetch keeps the last list)",
    },
    Setting {
        name: "SU_URL",
        default: "",
        doc: "this SU's own URL: its key in the process allow-list, what the router check compares the router's Location with, and the Url of the Scheduler-Location record su serve keeps published (URL is read when SU_URL is unset)",
    },
    Setting {
        name: "SU_LOCATION_KEEPER",
        default: "true",
        doc: "with SU_URL set, su serve keeps its Scheduler-Location record published through the outbox: at start when it is missing, expired or points elsewhere, and again when less than a quarter of its TTL remains (needs UPLOAD_NODE_URL and GRAPHQL_URL or GATEWAY_URL); false = off",
    },
    Setting {
        name: "SU_LOCATION_TTL_MS",
        default: "86400000",
        doc: "Time-To-Live of the Scheduler-Location records su serve publishes, in milliseconds",
    },
    Setting {
        name: "SU_LOCATION_CHECK_SECS",
        default: "0",
        doc: "how often the Scheduler-Location record is looked up on the gateway; 0 = an eighth of SU_LOCATION_TTL_MS, within 1 minute and 1 hour",
    },
    Setting {
        name: "WHITELIST_MAX_BYTES",
        default: "33554432",
        doc: "largest allow-list response accepted; a larger one counts as a failed fetch",
    },
    Setting {
        name: "SU_READ_ONLY",
        default: "false",
        doc: "true: serve reads only; every POST / answers 307 to SU_WRITE_URL, or 503 without one",
    },
    Setting {
        name: "SU_WRITE_URL",
        default: "",
        doc: "where a read-only SU redirects writes (the request's path and query are appended)",
    },
    Setting {
        name: "RATE_LIMIT_IP_PER_MINUTE",
        default: "0",
        doc: "writes per minute one client IP (X-Real-IP, else the peer address) may sustain; 0 = no limit",
    },
    Setting {
        name: "RATE_LIMIT_IP_BURST",
        default: "60",
        doc: "writes one client IP may send at once before its per-minute rate applies",
    },
    Setting {
        name: "RATE_LIMIT_OWNER_PER_MINUTE",
        default: "0",
        doc: "writes per minute one signer (owner address) may sustain; 0 = no limit",
    },
    Setting {
        name: "RATE_LIMIT_OWNER_BURST",
        default: "60",
        doc: "writes one signer may send at once before its per-minute rate applies",
    },
    Setting {
        name: "RATE_LIMIT_MAX_CLIENTS",
        default: "100000",
        doc: "client IPs and signers each rate limit tracks; beyond it the least recently seen is forgotten",
    },
    Setting {
        name: "MAX_READ_MEMORY",
        default: "67108864",
        doc: "bytes of rendered JSON one page may hold before it is cut short (has_next_page: true; a page always has one edge)",
    },
    Setting {
        name: "SU_MAX_LIVE_READS",
        default: "1024",
        doc: "waiting reads (GET /{process}?wait=) and schedule streams (GET /{process}/stream) open at once; beyond it 503 with Retry-After; 0 = no live reads",
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
        name: "SU_FEED_TOKEN",
        default: "",
        doc: "token the change feed (GET /~su/log, for su sync) requires as `Authorization: Bearer`; su sync sends it; empty: the feed is open (it holds only what is public on Arweave)",
    },
    Setting {
        name: "ENABLE_METRICS",
        default: "true",
        doc: "serve Prometheus metrics at /metrics",
    },
    Setting {
        name: "SCHEDULER_LIST_PATH",
        default: "",
        doc: "router mode: the scheduler list, a JSON array of {url, no_route?, wallets_to_route?, wallets_only?}, read at start and on SIGHUP (required there; unused in su mode)",
    },
    Setting {
        name: "ROUTER_POLL_SECS",
        default: "5",
        doc: "router mode: how often each SU's health and process count (GET /~su/process-count) are checked",
    },
    Setting {
        name: "ROUTER_SU_TIMEOUT_SECS",
        default: "2",
        doc: "timeout of each call between router and SU (health checks, lookups, the router check)",
    },
    Setting {
        name: "ENABLE_ROUTER_CHECK",
        default: "false",
        doc: "before accepting a spawn, ask ROUTER_URL whether the process is placed on another SU (needs SU_URL, or the reference's ASSIGNMENT)",
    },
    Setting {
        name: "ROUTER_URL",
        default: "https://su-router.ao-testnet.xyz",
        doc: "the router the router check asks",
    },
    Setting {
        name: "ASSIGNMENT",
        default: "",
        doc: "the reference's SU number (the N of https://suN.…): the router check's identity when SU_URL is unset",
    },
    Setting {
        name: "DATABASE_URL",
        default: "",
        doc: "the reference SU's Postgres database, read only by `su import-postgres` (its --database-url flag wins)",
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
