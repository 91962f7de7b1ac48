//! Outbound HTTP: the Arweave gateway, GraphQL, and the bundler the outbox uploads to.
//! Every call has a timeout; nothing here runs inside a shard.

pub mod block_height;
pub mod gateway;

pub use block_height::BlockHeight;
pub use gateway::{Gateway, GatewayError, GraphqlTransaction};
