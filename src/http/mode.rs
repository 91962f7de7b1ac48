//! The role this server plays, and the parts only that role holds. Every mode reads the
//! store; only a primary has a sequencer, and a router has neither sequencer nor wallet.

use crate::sequencer::Sequencer;
use crate::wallet::Wallet;
use std::sync::Arc;

/// Which writer this server is. `su serve` builds `Primary`; `Standby` (`su sync`) and
/// `Router` (`su router`) are the seams those commands will fill.
pub enum Mode {
    /// Schedules writes: the single writer of its processes.
    Primary(Primary),
    /// Serves reads from a copy of a primary's store and refuses writes.
    Standby(Standby),
    /// Schedules nothing: sends each request to the SU that holds its process.
    Router(Router),
}

/// The parts a scheduling SU needs beyond the store.
pub struct Primary {
    pub sequencer: Sequencer,
    pub wallet: Arc<Wallet>,
}

/// A hot standby: the primary's identity, for `GET /`, and no sequencer.
pub struct Standby {
    pub wallet: Arc<Wallet>,
}

/// A router. Its placement table (process → SU) is not built yet, so it places nothing.
#[derive(Debug, Default)]
pub struct Router {}

impl Mode {
    /// The mode's name, as logged.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Primary(_) => "primary",
            Self::Standby(_) => "standby",
            Self::Router(_) => "router",
        }
    }

    /// The wallet whose address `GET /` reports; a router has none.
    pub fn wallet(&self) -> Option<&Wallet> {
        match self {
            Self::Primary(primary) => Some(&primary.wallet),
            Self::Standby(standby) => Some(&standby.wallet),
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
