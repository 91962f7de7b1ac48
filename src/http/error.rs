//! `ApiError`: every failure the HTTP layer answers, and the only status-code table.

use super::query::QueryError;
use crate::reads::ReadError;
use crate::sequencer::{AppendError, Rejection};
use hyper::StatusCode;

/// A failed request. Display strings are the JSON `error` values; many are wire contract.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed item or bad signature, wrapped the way the reference reports it.
    #[error("error in builder: BuilderError(\"Byte error in builder: ByteError(\\\"{0}\\\")\")")]
    Item(String),
    /// A builder failure, wrapped the way the reference reports it.
    #[error("error in builder: BuilderError(\"{0}\")")]
    Builder(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("MessageExists(\"Message already exists\")")]
    MessageExists,
    #[error("{0}")]
    Rejected(Rejection),
    #[error("{0}")]
    Read(ReadError),
    #[error("Request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The body paused too long or came too slowly (`SU_BODY_TIMEOUT_SECS`, `SU_BODY_MIN_RATE`).
    #[error("Request body did not arrive in time")]
    BodyTimeout,
    #[error("Not found")]
    NoRoute,
    #[error("Metrics not enabled")]
    MetricsDisabled,
    #[error("Server is warming up. Please try again later.")]
    WarmingUp,
    #[error("{0}")]
    Unavailable(&'static str),
    /// Writes are unavailable: a full disk, an I/O error, a store being reopened (DECISIONS
    /// 16). Not the reference's 400 `DatabaseError`, which tells a client to stop retrying.
    #[error("writes are unavailable: {0}")]
    StorageUnavailable(String),
    /// A standby serves reads only.
    #[error("this SU is a standby and accepts no writes")]
    ReadOnly,
    #[error("{0}")]
    Forbidden(&'static str),
    /// `SU_READ_ONLY` without a `SU_WRITE_URL` to send writes to.
    #[error("this SU is read-only and accepts no writes")]
    WritesDisabled,
    /// The IP allow-list is on and the write has no `X-Real-IP` (PROTOCOL 8.1).
    #[error("Access denied")]
    NoClientIp,
    /// The write's `X-Real-IP` is not in the IP allow-list.
    #[error("Access denied")]
    IpNotAllowed,
    /// A read of a process the process allow-list does not give this SU (PROTOCOL 8.2).
    #[error("Process {0} is not allowed on this SU")]
    ProcessNotAllowed(String),
    /// A write rate limit; `who` is what the bucket counts.
    #[error("too many writes from this {who}; retry in {retry_after_secs} s")]
    RateLimited {
        who: &'static str,
        retry_after_secs: u64,
    },
    /// `SU_MAX_LIVE_READS` waiting reads and streams are open.
    #[error("too many waiting reads and streams are open; retry shortly")]
    LiveReadsFull,
    #[error("internal error")]
    Internal(String),
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Store(error) => Self::Internal(error.to_string()),
            ReadError::BrokenItem(id) => Self::Internal(format!("stored item {id} is unreadable")),
            ReadError::NeedsMemory(_) => {
                Self::Unavailable("the SU is busy with other reads; retry shortly")
            }
            other => Self::Read(other),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        Self::BadRequest(error.to_string())
    }
}

impl From<AppendError> for ApiError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Busy => Self::Unavailable("the scheduler is busy, retry shortly"),
            AppendError::Stopped => Self::Unavailable("the scheduler is stopping"),
            AppendError::Rejected(rejection) => Self::Rejected(rejection),
            AppendError::Unavailable(cause) => Self::StorageUnavailable(cause),
            AppendError::Internal(message) => Self::Internal(message),
        }
    }
}

impl ApiError {
    /// The one status table.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Item(_)
            | Self::Builder(_)
            | Self::BadRequest(_)
            | Self::MessageExists
            | Self::Rejected(_)
            | Self::Read(_)
            | Self::NoClientIp
            | Self::MetricsDisabled => StatusCode::BAD_REQUEST,
            Self::IpNotAllowed | Self::ProcessNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::WarmingUp
            | Self::Unavailable(_)
            | Self::StorageUnavailable(_)
            | Self::ReadOnly
            | Self::LiveReadsFull
            | Self::WritesDisabled => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` seconds of an answer: what a rate limit computed, 5 for a storage
    /// fault (the store is retried every 2 s), 1 for any other 503.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::StorageUnavailable(_) => Some(5),
            other if other.status() == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        }
    }

    /// `{"error":"…"}`.
    pub fn body(&self) -> Vec<u8> {
        let mut out = b"{\"error\":".to_vec();
        crate::render::string(&mut out, &self.to_string());
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_errors_keep_the_reference_wrapping() {
        let error = ApiError::Item("Signature verification failed".into());
        assert_eq!(
            String::from_utf8(error.body()).unwrap(),
            r#"{"error":"error in builder: BuilderError(\"Byte error in builder: ByteError(\\\"Signature verification failed\\\")\")"}"#
        );
        assert_eq!(
            String::from_utf8(ApiError::MessageExists.body()).unwrap(),
            r#"{"error":"MessageExists(\"Message already exists\")"}"#
        );
    }
}
