//! The response body: a whole answer, or a stream of events fed through a bounded channel
//! (`GET /{process}/stream`). A stream holds its connection's request guard until it ends,
//! so the connection counts as busy, not idle, while events flow.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// What every handler answers with.
pub enum Body {
    Full(Full<Bytes>),
    Events {
        events: mpsc::Receiver<Bytes>,
        /// Kept until the stream ends (the connection's request guard).
        held: Option<Box<dyn Send>>,
    },
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Full::new(bytes.into()))
    }

    /// A body that sends what arrives on `events` and ends when every sender is gone.
    pub fn events(events: mpsc::Receiver<Bytes>) -> Self {
        Self::Events { events, held: None }
    }

    /// Keeps `value` until the body is dropped if it is a stream; drops it now otherwise.
    pub fn hold_while_streaming(&mut self, value: impl Send + 'static) {
        if let Self::Events { held, .. } = self {
            *held = Some(Box::new(value));
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::Full(Full::default())
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(full) => Pin::new(full).poll_frame(cx),
            Self::Events { events, .. } => events
                .poll_recv(cx)
                .map(|event| event.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(full) => full.is_end_stream(),
            Self::Events { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(full) => full.size_hint(),
            Self::Events { .. } => SizeHint::default(),
        }
    }
}
