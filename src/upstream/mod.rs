//! Outbound HTTP: the Arweave gateway, GraphQL, the bundler the outbox uploads to, the
//! operator's allow-lists and the router check. Every call has a timeout; nothing here runs
//! inside a shard.

pub mod allowlist;
pub mod assigned;
pub mod block_height;
pub mod gateway;
pub mod router_check;

pub use allowlist::AllowLists;
pub use block_height::BlockHeight;
pub use gateway::{Gateway, GatewayError, GraphqlTransaction, OwnedTransaction};
pub use router_check::RouterCheck;
