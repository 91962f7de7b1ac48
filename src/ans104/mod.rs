//! ANS-104 data items and bundles: parsing, encoding, hashing and signature checks.
//! Pure code: no I/O, no async, and no panic on any input; every malformed byte string is an
//! error value. The SU's own signing key lives in `crate::wallet`, not here.

pub mod b64;
pub mod bundle;
pub mod dedupe;
pub mod deep_hash;
pub mod item;
pub mod limits;
pub mod tags;
pub mod verify;

pub use bundle::{Bundle, encode_bundle};
pub use item::{DataItem, ItemDraft, ParseError, SignatureType};
pub use tags::Tag;
