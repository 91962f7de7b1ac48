//! `TrackedIo`: a TCP stream that tells its connection's tracker when request bytes arrive
//! and response bytes leave, and that refuses a head made of blank lines.
//!
//! HTTP/1.1 lets a server skip empty lines before a request line (RFC 9112, 2.2), and hyper
//! skips any number of them, so a client sending only CRLFs would never get an answer.
//! A head that begins with more than `MAX_BLANK_BYTES` CR or LF bytes ends the connection
//! at once.

use super::registry::{ReadEffect, Tracker};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// CR and LF bytes tolerated before a request line: two empty lines.
const MAX_BLANK_BYTES: usize = 4;

/// The stream of one connection, reporting to its tracker.
pub(crate) struct TrackedIo {
    stream: TcpStream,
    tracker: Arc<Tracker>,
    /// While the current head has been only CR and LF bytes: how many.
    blank_prefix: Option<usize>,
}

impl TrackedIo {
    pub(crate) fn new(stream: TcpStream, tracker: Arc<Tracker>) -> Self {
        Self {
            stream,
            tracker,
            blank_prefix: Some(0),
        }
    }

    /// Follows the bytes a read brought; an error ends the connection.
    fn on_read(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.tracker.bytes_read() {
            ReadEffect::NewHead => self.blank_prefix = Some(0),
            ReadEffect::SameHead => {}
            ReadEffect::WhileBusy => self.blank_prefix = None,
        }
        let Some(blank) = self.blank_prefix else {
            return Ok(());
        };
        match blank_prefix_after(blank, bytes) {
            Some(prefix) => {
                self.blank_prefix = prefix;
                Ok(())
            }
            None => {
                metrics::counter!("su_http_connections_closed_total", "reason" => "malformed")
                    .increment(1);
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "blank lines instead of a request line",
                ))
            }
        }
    }
}

/// Follows a head's blank prefix (`blank` CR or LF bytes so far) over `bytes`: `Some(Some(n))`
/// while the head is still only blank, `Some(None)` once it has really started, and `None`
/// when the blank prefix is longer than `MAX_BLANK_BYTES`.
fn blank_prefix_after(blank: usize, bytes: &[u8]) -> Option<Option<usize>> {
    let run = bytes
        .iter()
        .take_while(|byte| matches!(byte, b'\r' | b'\n'))
        .count();
    let blank = blank + run;
    if blank > MAX_BLANK_BYTES {
        return None;
    }
    Some((run == bytes.len()).then_some(blank))
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.on_read(read)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        if written > 0 {
            this.tracker.bytes_written();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            this.tracker.bytes_written();
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_empty_lines_are_tolerated_before_a_request_line() {
        assert_eq!(blank_prefix_after(0, b"\r\n"), Some(Some(2)));
        assert_eq!(blank_prefix_after(2, b"\r\nGET / HTTP/1.1"), Some(None));
        assert_eq!(blank_prefix_after(0, b"GET /\r\n\r\n\r\n\r\n"), Some(None));
    }

    #[test]
    fn more_blank_lines_end_the_connection() {
        assert_eq!(blank_prefix_after(0, b"\r\n\r\n\r\n"), None);
        assert_eq!(blank_prefix_after(4, b"\n"), None);
        assert_eq!(blank_prefix_after(3, b"\n\nGET"), None);
    }
}
