//! The effective configuration as one log line, with every value that could hold a
//! credential masked. Nothing here decides a setting; it only shows what is in force.

use super::Vars;
use super::settings::SETTINGS;
use std::fmt;

/// What a masked value is replaced with.
const MASK: &str = "<redacted>";

/// A variable whose name contains one of these holds a credential, whatever its value.
const SECRET_NAME_PARTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "KEY",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
    "DATABASE_URL",
    "DATABASE_READ_URL",
];

/// Every setting with the value in force (set, aliased or default), already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EffectiveSettings(Vec<(&'static str, String)>);

impl EffectiveSettings {
    pub(super) fn from_vars(vars: &Vars) -> Self {
        Self(
            SETTINGS
                .iter()
                .map(|setting| {
                    let value = vars.value(setting.name).unwrap_or_default();
                    (setting.name, redact(setting.name, value))
                })
                .collect(),
        )
    }

    /// The redacted value of one setting, as it is logged.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(setting, _)| *setting == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `NAME=value NAME=value …`, values quoted only when they need it.
impl fmt::Display for EffectiveSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (name, value)) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str(" ")?;
            }
            if value.is_empty() || value.contains([' ', '"']) {
                write!(formatter, "{name}={value:?}")?;
            } else {
                write!(formatter, "{name}={value}")?;
            }
        }
        Ok(())
    }
}

/// `value` as it may be logged: masked entirely when `name` says it is a credential, and with
/// the userinfo, query and fragment of every URL in it masked otherwise.
pub fn redact(name: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let upper = name.to_ascii_uppercase();
    if SECRET_NAME_PARTS.iter().any(|part| upper.contains(part)) {
        return MASK.to_string();
    }
    if !value.contains("://") {
        return value.to_string();
    }
    value
        .split(',')
        .map(redact_url)
        .collect::<Vec<_>>()
        .join(",")
}

/// `scheme://[userinfo@]host[/path][?query][#fragment]` with userinfo, query and fragment
/// masked; text that is not a URL is returned as it is.
fn redact_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = format!("{scheme}://");
    match authority.rsplit_once('@') {
        Some((_, host)) => out.push_str(&format!("{MASK}@{host}")),
        None => out.push_str(authority),
    }
    match tail.find(['?', '#']) {
        Some(start) => {
            out.push_str(&tail[..start]);
            out.push_str(&tail[start..=start]);
            out.push_str(MASK);
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str, expected: &str) {
        assert_eq!(redact(name, value), expected, "{name}={value}");
    }

    #[test]
    fn credential_names_are_masked() {
        check("API_TOKEN", "abc", MASK);
        check("CLIENT_SECRET", "abc", MASK);
        check("WALLET_KEY", "abc", MASK);
        check("ADMIN_PASSWORD", "hunter2", MASK);
        check("DATABASE_URL", "postgres://u:p@db/su", MASK);
        check("DATABASE_READ_URL", "postgres://db/su", MASK);
        check("api_token", "abc", MASK);
        check("API_TOKEN", "", "");
    }

    #[test]
    fn urls_lose_userinfo_query_and_fragment() {
        check("ARWEAVE_URL", "https://arweave.net", "https://arweave.net");
        check(
            "ARWEAVE_URL",
            "https://u:p@g.example/x",
            "https://<redacted>@g.example/x",
        );
        check(
            "UPLOAD_NODE_URL",
            "https://up.example/tx?token=abc",
            "https://up.example/tx?<redacted>",
        );
        check(
            "CACHE_URL",
            "http://c.example?k=v#frag",
            "http://c.example?<redacted>",
        );
        check(
            "CACHE_URL",
            "http://c.example/a#frag",
            "http://c.example/a#<redacted>",
        );
        check(
            "CACHE_URL",
            "http://user@c.example:8080",
            "http://<redacted>@c.example:8080",
        );
        check(
            "ARWEAVE_URL_LIST",
            "https://a.example,https://u:p@b.example?t=1",
            "https://a.example,https://<redacted>@b.example?<redacted>",
        );
    }

    #[test]
    fn plain_values_are_kept() {
        check("SU_PORT", "9000", "9000");
        check("SU_DATA_DIR", "/var/lib/ao-su", "/var/lib/ao-su");
        check("MAX_SIZE_OWNER_WHITELIST", "a,b", "a,b");
    }

    #[test]
    fn the_log_line_shows_defaults_and_masks_secrets() {
        let vars = Vars::from_pairs([
            ("SU_PORT", "9100"),
            ("GATEWAY_URL", "https://me:pw@g.example"),
            ("SU_LOG", "debug,hyper=info"),
        ]);
        let effective = EffectiveSettings::from_vars(&vars);
        assert_eq!(effective.get("SU_PORT"), Some("9100"));
        assert_eq!(effective.get("MAX_LIMIT"), Some("5000"));
        assert_eq!(
            effective.get("GATEWAY_URL"),
            Some("https://<redacted>@g.example")
        );
        let line = effective.to_string();
        assert!(line.contains("SU_PORT=9100 "), "{line}");
        assert!(line.contains("SU_WALLET_PATH=\"\""), "{line}");
        assert!(!line.contains("pw"), "{line}");
    }
}
