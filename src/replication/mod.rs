//! Replication: the change feed a primary serves (`feed`), and the standby side of `su sync`:
//! what it checks before applying a change (`verify`) and the loop that follows a primary
//! (`follow`).

pub mod feed;
pub mod follow;
pub mod verify;
