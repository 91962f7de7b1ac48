//! Reading a request body within its limits: at most `max_bytes` (413), no pause longer than
//! the body timeout, and beyond that timeout at least `min_rate` bytes per second on average
//! (408 otherwise; the answer closes the connection). The buffer grows with the bytes that
//! arrive, never with the declared length, so a lying `Content-Length` costs what was sent.

use super::error::ApiError;
use crate::config::ConnectionLimits;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use std::time::Duration;
use tokio::time::Instant;

/// The limits one body is read under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    /// The longest pause between two pieces, and the grace before the rate applies.
    pub pause: Duration,
    /// Bytes per second the body must average beyond `pause`; 0: no rate check.
    pub min_rate: u64,
}

impl BodyLimits {
    pub(crate) fn new(max_bytes: usize, connections: &ConnectionLimits) -> Self {
        Self {
            max_bytes,
            pause: connections.body_timeout,
            min_rate: connections.body_min_rate,
        }
    }

    /// When the body must have delivered its next piece, given when it began, when its last
    /// piece came, and how much it has delivered: the pause limit, and the time the minimum
    /// rate allows (`pause` plus one second per `min_rate` bytes), whichever is earlier.
    fn deadline(&self, started: Instant, last_piece: Instant, received: usize) -> Instant {
        let pause_end = last_piece + self.pause;
        if self.min_rate == 0 {
            return pause_end;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        pause_end.min(started + self.pause + earned)
    }
}

/// A body that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive in time")]
    TimedOut,
    #[error("could not read the request body: {0}")]
    Broken(#[source] hyper::Error),
    /// The body's first bytes were refused by the caller's check.
    #[error("{0}")]
    Refused(Box<ApiError>),
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(limit) => Self::TooLarge(limit),
            BodyError::TimedOut => Self::BodyTimeout,
            BodyError::Broken(_) => Self::BadRequest(error.to_string()),
            BodyError::Refused(refusal) => *refusal,
        }
    }
}

/// A check of a body's first bytes: `Ok(true)` once satisfied, `Ok(false)` to see more.
pub(crate) type HeadCheck<'a> = &'a mut (dyn FnMut(&[u8]) -> Result<bool, ApiError> + Send);

/// Reads the whole body of `request` within `limits`; a declared length beyond the size
/// limit is refused before anything is read. `head_check`, when given, sees the bytes
/// received so far after each piece until it answers `Ok(true)` (checked) or refuses the
/// body, which is then not read further.
pub(crate) async fn read(
    request: Request<Incoming>,
    limits: BodyLimits,
    mut head_check: Option<HeadCheck<'_>>,
) -> Result<Bytes, BodyError> {
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes as u64) {
        return Err(BodyError::TooLarge(limits.max_bytes));
    }
    let mut body = request.into_body();
    let started = Instant::now();
    let mut last_piece = started;
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut received = 0usize;
    loop {
        let deadline = limits.deadline(started, last_piece, received);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_elapsed) => {
                metrics::counter!("su_http_connections_closed_total", "reason" => "body_timeout")
                    .increment(1);
                return Err(BodyError::TimedOut);
            }
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(BodyError::Broken)?,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        received += data.len();
        if received > limits.max_bytes {
            return Err(BodyError::TooLarge(limits.max_bytes));
        }
        pieces.push(data);
        last_piece = Instant::now();
        if let Some(check) = head_check.as_mut() {
            let checked = if pieces.len() == 1 {
                check(&pieces[0])
            } else {
                check(&join(pieces.clone(), received))
            };
            match checked {
                Ok(true) => head_check = None,
                Ok(false) => {}
                Err(refusal) => return Err(BodyError::Refused(Box::new(refusal))),
            }
        }
    }
    Ok(join(pieces, received))
}

/// One buffer of the pieces; a body that came in one piece is not copied.
fn join(mut pieces: Vec<Bytes>, length: usize) -> Bytes {
    if pieces.len() <= 1 {
        return pieces.pop().unwrap_or_default();
    }
    let mut joined = BytesMut::with_capacity(length);
    for piece in pieces {
        joined.extend_from_slice(&piece);
    }
    joined.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(min_rate: u64) -> BodyLimits {
        BodyLimits {
            max_bytes: 1 << 20,
            pause: Duration::from_secs(20),
            min_rate,
        }
    }

    #[test]
    fn a_pause_is_limited_from_the_last_piece() {
        let start = Instant::now();
        let last = start + Duration::from_secs(5);
        assert_eq!(
            limits(0).deadline(start, last, 0),
            last + Duration::from_secs(20)
        );
    }

    #[test]
    fn the_minimum_rate_earns_one_second_per_rate_bytes() {
        let start = Instant::now();
        let rate = limits(1000);
        // 5,000 bytes by second 10: the rate allows until 20 + 5 s, the pause until 30 s.
        let last = start + Duration::from_secs(10);
        assert_eq!(
            rate.deadline(start, last, 5000),
            start + Duration::from_secs(25)
        );
        // 50,000 bytes by second 10: the pause limit comes first.
        assert_eq!(
            rate.deadline(start, last, 50_000),
            start + Duration::from_secs(30)
        );
    }

    #[test]
    fn pieces_are_joined_in_order() {
        let pieces = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
        assert_eq!(join(pieces, 4), Bytes::from_static(b"abcd"));
        assert_eq!(
            join(vec![Bytes::from_static(b"x")], 1),
            Bytes::from_static(b"x")
        );
        assert!(join(Vec::new(), 0).is_empty());
    }
}
