//! Query strings: `application/x-www-form-urlencoded`, parsed into named, typed parameters.
//! Pure: it depends on nothing but `reads::PageMode`, so the fuzz crate (`fuzz/`) builds it
//! without the store.

use crate::reads::PageMode;

/// A parameter that does not parse; the display strings are what the client is told (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("invalid query parameter {name}: {value:?} is not an integer")]
    NotInteger { name: &'static str, value: String },
    #[error("invalid query parameter limit: {0} must be at least 1")]
    LimitTooSmall(i64),
    #[error("invalid query parameter {0}: must not be negative")]
    Negative(&'static str),
}

/// The longest `wait` honoured; more is treated as this.
pub const MAX_WAIT_SECS: i64 = 60;

/// The raw parameters; the first occurrence of a name wins, a bare name has the empty value.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `process-id`, or its HyperBEAM alias `proc-id`.
    pub fn process_id(&self) -> Option<&str> {
        self.get("process-id")
            .or_else(|| self.get("proc-id"))
            .filter(|v| !v.is_empty())
    }

    fn integer(&self, name: &'static str) -> Result<Option<i64>, QueryError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(value) => value
                .parse::<i64>()
                .map(Some)
                .map_err(|_| QueryError::NotInteger {
                    name,
                    value: value.to_string(),
                }),
        }
    }

    /// `wait` (seconds, at most 60): how long a schedule read may wait for a first entry.
    /// Absent, empty or 0: it answers at once, as without it.
    pub fn wait(&self) -> Result<Option<std::time::Duration>, QueryError> {
        match self.integer("wait")? {
            None | Some(0) => Ok(None),
            Some(secs) if secs < 0 => Err(QueryError::Negative("wait")),
            Some(secs) => Ok(Some(std::time::Duration::from_secs(
                secs.min(MAX_WAIT_SECS) as u64,
            ))),
        }
    }

    /// `from-nonce` of a stream: entries after it; absent or negative: from nonce 0.
    pub fn from_nonce(&self) -> Result<Option<u64>, QueryError> {
        Ok(self
            .integer("from-nonce")?
            .and_then(|v| u64::try_from(v).ok()))
    }

    /// The paging parameters: mode and bounds, and the requested limit.
    pub fn page(
        &self,
        default_limit: usize,
        max_limit: usize,
    ) -> Result<(PageMode, usize), QueryError> {
        let limit = match self.integer("limit")? {
            None => default_limit,
            Some(limit) if limit <= 0 => return Err(QueryError::LimitTooSmall(limit)),
            Some(limit) => usize::try_from(limit).unwrap_or(usize::MAX).min(max_limit),
        };
        // Negative bounds are below every timestamp and nonce: `from` means "from the start",
        // `to` means "nothing" (kept as 0 with an exclusive check done by the caller's data).
        let lower = |value: Option<i64>| value.and_then(|v| u64::try_from(v).ok());
        let upper = |value: Option<i64>| value.map(|v| u64::try_from(v).unwrap_or(0));
        let nonce_mode = self.has("from-nonce") || self.has("to-nonce");
        let mode = if nonce_mode {
            let from = self.integer("from-nonce")?;
            let to = self.integer("to-nonce")?;
            if to.is_some_and(|to| to < 0) {
                return Err(QueryError::Negative("to-nonce"));
            }
            PageMode::Nonce {
                from: lower(from),
                to: upper(to),
            }
        } else {
            let from = self.integer("from")?;
            let to = self.integer("to")?;
            if to.is_some_and(|to| to < 0) {
                return Err(QueryError::Negative("to"));
            }
            PageMode::Timestamp {
                from: lower(from),
                to: upper(to),
            }
        };
        Ok((mode, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Result<(PageMode, usize), QueryError> {
        Query::parse(Some(query)).page(100, 5000)
    }

    #[test]
    fn modes_and_defaults() {
        assert_eq!(
            page("").unwrap(),
            (
                PageMode::Timestamp {
                    from: None,
                    to: None
                },
                100
            )
        );
        assert_eq!(
            page("from=5&to=9&limit=7").unwrap(),
            (
                PageMode::Timestamp {
                    from: Some(5),
                    to: Some(9)
                },
                7
            )
        );
        assert_eq!(
            page("from-nonce=-1&limit=1000").unwrap(),
            (
                PageMode::Nonce {
                    from: None,
                    to: None
                },
                1000
            )
        );
        assert_eq!(
            page("to-nonce=3&from=9").unwrap(),
            (
                PageMode::Nonce {
                    from: None,
                    to: Some(3)
                },
                100
            )
        );
        assert_eq!(
            page("from-nonce").unwrap().0,
            PageMode::Nonce {
                from: None,
                to: None
            }
        );
        assert_eq!(page("limit=999999").unwrap().1, 5000);
    }

    #[test]
    fn bad_values_are_errors_naming_the_parameter() {
        for (query, name) in [
            ("limit=0", "limit"),
            ("limit=-3", "limit"),
            ("limit=x", "limit"),
            ("from=abc", "from"),
            ("to=1.5", "to"),
            ("from-nonce=z", "from-nonce"),
            ("to-nonce=-2", "to-nonce"),
        ] {
            let error = page(query).unwrap_err().to_string();
            assert!(error.contains(name), "{query}: {error}");
        }
    }

    #[test]
    fn wait_is_capped_and_absent_by_default() {
        let wait = |query: &str| Query::parse(Some(query)).wait();
        assert_eq!(wait("").unwrap(), None);
        assert_eq!(wait("wait=0").unwrap(), None);
        assert_eq!(
            wait("wait=5").unwrap(),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(
            wait("wait=600").unwrap(),
            Some(std::time::Duration::from_secs(60))
        );
        assert!(wait("wait=-1").unwrap_err().to_string().contains("wait"));
        assert!(wait("wait=x").unwrap_err().to_string().contains("wait"));
    }

    #[test]
    fn aliases_and_bare_flags() {
        let query = Query::parse(Some("proc-id=abc&show-anchor&x=%20y"));
        assert_eq!(query.process_id(), Some("abc"));
        assert!(query.has("show-anchor"));
        assert_eq!(query.get("x"), Some(" y"));
    }
}
