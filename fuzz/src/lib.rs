//! The pure modules of `ao-su` that parse network input, compiled on their own (by path, so
//! the fuzzed code is the main crate's own source), and the checks every fuzz target runs.
//! Nothing here links the store: `ans104` is pure, and `http::query` and `http::route`
//! depend only on `reads::PageMode` and `hyper::Method`.

#[path = "../../src/ans104/mod.rs"]
pub mod ans104;

// Included under their own names, then placed where their `crate::` paths expect them.
#[path = "../../src/reads/page_mode.rs"]
pub mod page_mode;
#[path = "../../src/http/query.rs"]
pub mod query;
#[path = "../../src/http/route.rs"]
pub mod route;

/// The main crate's `reads`, as far as the query parser needs it.
pub mod reads {
    pub use super::page_mode::PageMode;
}

/// The main crate's `http`, as far as the request line goes.
pub mod http {
    pub use super::{query, route};
}

pub mod checks;
