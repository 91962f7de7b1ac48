//! The scheduler list file (`SCHEDULER_LIST_PATH`, PROTOCOL 7.1): a JSON array of
//! `{"url", "no_route"?, "wallets_to_route"?, "wallets_only"?}`, read at start and on SIGHUP.

use serde::Deserialize;
use std::path::Path;

/// One SU of the list, as the placement rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    /// The SU's base URL, without a trailing `/`.
    pub url: String,
    /// Never picked for a new process; its processes are still routed to it.
    pub no_route: bool,
    /// Owner addresses whose new processes go to this SU first.
    pub wallets_to_route: Vec<String>,
    /// Picked only for the owners in `wallets_to_route`.
    pub wallets_only: bool,
}

/// Why the list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the scheduler list is not a JSON array of {{\"url\", ...}} objects: {0}")]
    Json(#[from] serde_json::Error),
    #[error("scheduler url {0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error("scheduler url {0:?} is listed twice")]
    Duplicate(String),
}

#[derive(Deserialize)]
struct Entry {
    url: String,
    #[serde(default)]
    no_route: Option<bool>,
    #[serde(default)]
    wallets_to_route: Option<String>,
    #[serde(default)]
    wallets_only: Option<bool>,
}

/// Parses the file's bytes; a bad entry refuses the whole list (the last good one stays).
pub fn parse(bytes: &[u8]) -> Result<Vec<Scheduler>, ListError> {
    let entries: Vec<Entry> = serde_json::from_slice(bytes)?;
    let mut out: Vec<Scheduler> = Vec::with_capacity(entries.len());
    for entry in entries {
        let url = entry.url.trim().trim_end_matches('/').to_string();
        let valid = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(['?', '#', ' ']));
        if !valid {
            return Err(ListError::Url(entry.url));
        }
        if out.iter().any(|known| known.url == url) {
            return Err(ListError::Duplicate(url));
        }
        out.push(Scheduler {
            url,
            no_route: entry.no_route.unwrap_or(false),
            wallets_to_route: entry
                .wallets_to_route
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|wallet| !wallet.is_empty())
                .map(str::to_string)
                .collect(),
            wallets_only: entry.wallets_only.unwrap_or(false),
        });
    }
    Ok(out)
}

/// Reads and parses the file at `path`.
pub fn read(path: &Path) -> Result<Vec<Scheduler>, ListError> {
    let bytes = std::fs::read(path).map_err(|source| ListError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_format() {
        let list = parse(
            br#"[
              {"url": "https://su101.example.net/"},
              {"url": "https://su102.example.net", "no_route": true},
              {"url": "https://su103.example.net", "wallets_to_route": " addrA, addrB ,", "wallets_only": true}
            ]"#,
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].url, "https://su101.example.net");
        assert!(!list[0].no_route && list[0].wallets_to_route.is_empty());
        assert!(list[1].no_route);
        assert_eq!(list[2].wallets_to_route, vec!["addrA", "addrB"]);
        assert!(list[2].wallets_only);
    }

    #[test]
    fn refuses_bad_lists() {
        assert!(matches!(parse(b"{}"), Err(ListError::Json(_))));
        assert!(matches!(
            parse(br#"[{"no_route": true}]"#),
            Err(ListError::Json(_))
        ));
        assert!(matches!(
            parse(br#"[{"url": "su1.example"}]"#),
            Err(ListError::Url(_))
        ));
        assert!(matches!(
            parse(br#"[{"url": "http://a"}, {"url": "http://a/"}]"#),
            Err(ListError::Duplicate(_))
        ));
        assert_eq!(parse(b"[]").unwrap(), vec![]);
    }
}
