//! The role this server plays, and the parts only that role holds. Every mode reads the
//! store; only a primary has a sequencer, and a router has neither sequencer nor wallet.

use crate::sequencer::Sequencer;
use crate::upstream::RouterCheck;
use crate::wallet::Wallet;
use std::sync::Arc;

pub use crate::router::Router;

/// Which writer this server is: `su serve` builds `Primary`, `su sync` `Standby`, and
/// `su router` (or `MODE=router`) `Router`.
pub enum Mode {
    /// Schedules writes: the single writer of its processes.
    Primary(Primary),
    /// Serves reads from a copy of a primary's store and refuses writes.
    Standby(Standby),
    /// Schedules nothing: sends each request to the SU that holds its process.
    Router(Arc<Router>),
}

/// The parts a scheduling SU needs beyond the store.
pub struct Primary {
    pub sequencer: Sequencer,
    pub wallet: Arc<Wallet>,
    /// `ENABLE_ROUTER_CHECK`: asked before a spawn is admitted.
    pub router_check: Option<RouterCheck>,
}

/// A hot standby (`su sync`): the primary's identity, for `GET /`, where writes go, and no
/// sequencer and no wallet.
pub struct Standby {
    /// The primary's wallet address, base64url.
    pub address: String,
    /// The primary's base URL (no trailing slash): writes are redirected there.
    pub primary: String,
}

impl Mode {
    /// The mode's name, as logged.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Primary(_) => "primary",
            Self::Standby(_) => "standby",
            Self::Router(_) => "router",
        }
    }

    /// The address `GET /` reports: the wallet's, or a standby's primary's; a router has
    /// none.
    pub fn address(&self) -> Option<String> {
        match self {
            Self::Primary(primary) => Some(primary.wallet.address_b64()),
            Self::Standby(standby) => Some(standby.address.clone()),
            Self::Router(_) => None,
        }
    }

    /// The sequencer, on the one mode that has one.
    pub fn sequencer(&self) -> Option<&Sequencer> {
        match self {
            Self::Primary(primary) => Some(&primary.sequencer),
            Self::Standby(_) | Self::Router(_) => None,
        }
    }
}
