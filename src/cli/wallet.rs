//! `su wallet new PATH`: write a fresh RSA-4096 JWK (mode 0600) and print its address.

use crate::wallet::{SigningSalt, Wallet};
use anyhow::Context;
use argh::FromArgs;
use std::path::PathBuf;

/// Manage the SU's Arweave wallet.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "wallet")]
pub struct Args {
    #[argh(subcommand)]
    pub action: Action,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Action {
    New(NewArgs),
    Address(AddressArgs),
}

/// Create a new wallet file (never overwrites) and print its address.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "new")]
pub struct NewArgs {
    /// where to write the JWK
    #[argh(positional)]
    pub path: PathBuf,
}

/// Print the address of a wallet file.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "address")]
pub struct AddressArgs {
    /// the JWK to read
    #[argh(positional)]
    pub path: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::New(NewArgs { path }) => {
            let jwk = Wallet::generate()?;
            Wallet::write_new(&path, &jwk)?;
            let wallet = Wallet::from_jwk(&jwk, SigningSalt::Digest)?;
            println!("{}", wallet.address_b64());
        }
        Action::Address(AddressArgs { path }) => {
            let wallet = Wallet::load(&path, SigningSalt::Digest)
                .with_context(|| format!("loading {}", path.display()))?;
            println!("{}", wallet.address_b64());
        }
    }
    Ok(())
}

/// Why a wallet cannot sign for a store.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "the wallet {wallet} is not this store's signer {store}: start with the wallet that signed its assignments (SU_WALLET_PATH)"
    )]
    Mismatch { wallet: String, store: String },
    #[error(
        "no wallet at {path}, but this store's assignments are signed by {store}: restore that wallet (SU_WALLET_PATH); a new one is generated only for an empty store"
    )]
    Missing { path: String, store: String },
    #[error(
        "no wallet at {path}, and this store already holds entries but records no signer: set SU_WALLET_PATH to the wallet that signed them; a new one is generated only for an empty store"
    )]
    Unbound { path: String },
}

/// Loads the configured wallet, or creates `<data dir>/wallet.json` for an empty store;
/// `signer` is the address the store records.
pub fn load_or_create(
    config: &crate::config::Config,
    signer: Option<[u8; 32]>,
    store_is_empty: bool,
) -> anyhow::Result<Wallet> {
    let salt = SigningSalt::from_len(config.wallet.signing_salt)
        .context("signing salt must be 32 or 478")?;
    let path = config.wallet_file();
    match &config.wallet.path {
        Some(_) => {}
        None => {
            if !path.exists() {
                let path_text = path.display().to_string();
                match signer {
                    Some(store) => {
                        return Err(IdentityError::Missing {
                            path: path_text,
                            store: crate::ans104::b64::encode(&store),
                        }
                        .into());
                    }
                    None if !store_is_empty => {
                        return Err(IdentityError::Unbound { path: path_text }.into());
                    }
                    None => {}
                }
                let jwk = Wallet::generate()?;
                Wallet::write_new(&path, &jwk)?;
                tracing::warn!(path = %path.display(), "SU_WALLET_PATH is unset: generated a new wallet");
            }
        }
    }
    warn_if_shared(&path);
    let wallet =
        Wallet::load(&path, salt).with_context(|| format!("loading wallet {}", path.display()))?;
    tracing::info!(address = %wallet.address_b64(), "wallet loaded");
    Ok(wallet)
}

/// Warns when the key file can be read by its group or by others.
fn warn_if_shared(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", metadata.permissions().mode() & 0o777),
            "the wallet file is readable by its group or others; chmod 600 it"
        );
    }
}

/// Checks that `wallet` signs for a store whose recorded signer is `signer`.
pub fn check_identity(wallet: &Wallet, signer: Option<[u8; 32]>) -> Result<(), IdentityError> {
    match signer {
        Some(store) if store != wallet.address() => Err(IdentityError::Mismatch {
            wallet: wallet.address_b64(),
            store: crate::ans104::b64::encode(&store),
        }),
        _ => Ok(()),
    }
}

/// Binds the wallet to the store: an unbound store records the wallet's address; a bound one
/// must name this wallet.
pub fn bind_to_store(wallet: &Wallet, store: &crate::store::Store) -> anyhow::Result<()> {
    let signer = store.signer_address()?;
    check_identity(wallet, signer)?;
    if signer.is_none() {
        store.put_signer_address(&wallet.address())?;
        tracing::info!(address = %wallet.address_b64(), "recorded this wallet as the store's signer");
    }
    Ok(())
}
