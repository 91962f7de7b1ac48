//! The Scheduler-Location record that stays true (issue 21): with `SU_URL` set, `su serve`
//! looks up its newest record on the gateway, decides where it stands (`classify`, pure), and
//! publishes a new one through the outbox when it is missing, expired, expiring or points
//! elsewhere. It does not upload anything itself: the outbox does.

pub mod classify;
mod keeper;
pub mod record;

pub use classify::State;
pub use keeper::{Keeper, KeeperError};
