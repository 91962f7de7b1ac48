//! `ApiError`: every failure the HTTP layer answers, and the only status-code table.

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
    #[error("Not found")]
    NoRoute,
    #[error("Metrics not enabled")]
    MetricsDisabled,
    #[error("Server is warming up. Please try again later.")]
    WarmingUp,
    #[error("{0}")]
    Unavailable(&'static str),
    /// A standby serves reads only.
    #[error("this SU is a standby and accepts no writes")]
    ReadOnly,
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

impl From<AppendError> for ApiError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Busy => Self::Unavailable("the scheduler is busy, retry shortly"),
            AppendError::Stopped => Self::Unavailable("the scheduler is stopping"),
            AppendError::Rejected(rejection) => Self::Rejected(rejection),
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
            | Self::MetricsDisabled => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::WarmingUp | Self::Unavailable(_) | Self::ReadOnly => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
