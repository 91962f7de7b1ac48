//! `PageMode`: which cursor a schedule page uses. Pure (no store, no I/O), so the HTTP query
//! parser that produces it can be built alone, as the fuzz crate does (`fuzz/`).

/// Which cursor a page uses and its bounds (`from` exclusive, `to` inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMode {
    Timestamp { from: Option<u64>, to: Option<u64> },
    Nonce { from: Option<u64>, to: Option<u64> },
}
