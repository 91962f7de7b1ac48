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

/// Loads the configured wallet, or creates `<data dir>/wallet.json` on first start.
pub fn load_or_create(config: &crate::config::Config) -> anyhow::Result<Wallet> {
    let salt = SigningSalt::from_len(config.wallet.signing_salt)
        .context("signing salt must be 32 or 478")?;
    let path = config.wallet_file();
    if config.wallet.path.is_none() && !path.exists() {
        let jwk = Wallet::generate()?;
        Wallet::write_new(&path, &jwk)?;
        tracing::warn!(path = %path.display(), "SU_WALLET_PATH is unset: generated a new wallet");
    }
    let wallet =
        Wallet::load(&path, salt).with_context(|| format!("loading wallet {}", path.display()))?;
    tracing::info!(address = %wallet.address_b64(), "wallet loaded");
    Ok(wallet)
}
