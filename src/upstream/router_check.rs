//! The router check (`ENABLE_ROUTER_CHECK`, PROTOCOL 10.5, DECISIONS 17): before a spawn, an
//! SU asks the router where the process is placed. `GET <ROUTER_URL>/<pid>?process-id=<pid>`,
//! redirects not followed; a 3xx whose `Location` is another SU refuses the spawn.

use crate::config::RouterCheckConfig;
use std::time::Duration;

/// What the router said about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Placed here, or nowhere yet: the spawn may go on.
    Here,
    /// Placed on another SU.
    Elsewhere,
}

/// The router could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("router check: {0}")]
pub struct CheckError(#[from] reqwest::Error);

/// The router and this SU's identity.
#[derive(Debug, Clone)]
pub struct RouterCheck {
    client: reqwest::Client,
    config: RouterCheckConfig,
}

impl RouterCheck {
    pub fn new(config: &RouterCheckConfig) -> Result<Self, CheckError> {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            config: config.clone(),
        })
    }

    /// Asks the router about `process` (a 43-character base64url id).
    pub async fn check(&self, process: &str) -> Result<Verdict, CheckError> {
        let url = format!(
            "{}/{process}?process-id={process}",
            origin(&self.config.router_url)
        );
        let response = self.client.get(url).send().await?;
        if !response.status().is_redirection() {
            return Ok(Verdict::Here);
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        Ok(verdict(&self.config, location))
    }
}

/// `scheme://host[:port]` of a URL: the router check's path replaces any path of `ROUTER_URL`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// Whether a redirect to `location` is this SU: by `SU_URL` (the location starts with it,
/// followed by a path), else by the reference's rule (`https://suN.` compared with
/// `ASSIGNMENT`, anything else counting as "not placed").
pub fn verdict(config: &RouterCheckConfig, location: &str) -> Verdict {
    if let Some(own) = &config.own_url {
        let own = own.trim_end_matches('/');
        let ours = location
            .strip_prefix(own)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
        return if ours {
            Verdict::Here
        } else {
            Verdict::Elsewhere
        };
    }
    let number = location
        .strip_prefix("https://su")
        .and_then(|rest| rest.split_once('.'))
        .map(|(digits, _)| digits)
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    match (number, &config.assignment) {
        (Some(number), Some(assignment)) if number != assignment => Verdict::Elsewhere,
        _ => Verdict::Here,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(own_url: Option<&str>, assignment: Option<&str>) -> RouterCheckConfig {
        RouterCheckConfig {
            router_url: "http://router.example/base".into(),
            own_url: own_url.map(str::to_string),
            assignment: assignment.map(str::to_string),
            timeout_secs: 1,
        }
    }

    #[test]
    fn su_url_is_compared_with_the_location() {
        let mine = config(Some("http://127.0.0.1:9001"), None);
        assert_eq!(
            verdict(&mine, "http://127.0.0.1:9001/P?process-id=P"),
            Verdict::Here
        );
        assert_eq!(
            verdict(&mine, "http://127.0.0.1:9002/P?process-id=P"),
            Verdict::Elsewhere
        );
        assert_eq!(
            verdict(&mine, "http://127.0.0.1:90010/P"),
            Verdict::Elsewhere
        );
    }

    #[test]
    fn without_su_url_the_assignment_rule_applies() {
        let su12 = config(None, Some("12"));
        assert_eq!(
            verdict(&su12, "https://su12.ao-testnet.xyz/P"),
            Verdict::Here
        );
        assert_eq!(
            verdict(&su12, "https://su13.ao-testnet.xyz/P"),
            Verdict::Elsewhere
        );
        assert_eq!(verdict(&su12, "https://other.example/P"), Verdict::Here);
        assert_eq!(verdict(&su12, "https://sux.example/P"), Verdict::Here);
    }

    #[test]
    fn the_path_of_router_url_is_replaced() {
        assert_eq!(
            origin("http://router.example/base"),
            "http://router.example"
        );
        assert_eq!(origin("https://r.example:8443"), "https://r.example:8443");
    }
}
