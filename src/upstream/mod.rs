//! Outbound HTTP: the Arweave gateway, GraphQL, the bundler the outbox uploads to, and the
//! operator's allow-lists. Every call has a timeout; nothing here runs inside a shard.

pub mod allowlist;
pub mod block_height;
pub mod gateway;

pub use allowlist::AllowLists;
pub use block_height::BlockHeight;
pub use gateway::{Gateway, GatewayError, GraphqlTransaction};
