//! `su backup --to DIR`: a consistent point-in-time copy of the store, taken by the running
//! server through its admin socket (a second process cannot open a store RocksDB holds), or
//! by this process when the store is stopped. Restoring is starting `su serve` on the copy
//! with the same wallet; the copy holds no private key.

use crate::admin::client::{Admin, Delivery};
use crate::admin::{Request, Response};
use crate::config::Config;
use anyhow::{Context, bail};
use argh::FromArgs;
use std::path::PathBuf;

/// Write a consistent copy of the store (a RocksDB checkpoint) to a new directory.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "backup")]
pub struct Args {
    /// directory to create for the copy; it must not exist (same filesystem: SST files are
    /// hard-linked, so the copy is fast and small until the store compacts)
    #[argh(option)]
    pub to: PathBuf,
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    // The server resolves the path, so it must not depend on this process's directory.
    let to = std::path::absolute(&args.to)
        .with_context(|| format!("resolving {}", args.to.display()))?;
    if to.exists() {
        bail!(
            "{} already exists: a backup goes to a new directory",
            to.display()
        );
    }
    let to_text = to
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", to.display()))?
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut admin = Admin::open(config, Delivery::Off).await?;
        let through = if admin.is_remote() {
            "by the running server"
        } else {
            "by this process (store opened directly)"
        };
        let response = admin
            .call(Request::Backup { to: to_text })
            .await
            .context("admin request")?;
        admin.close().await;
        match response {
            Response::BackedUp {
                to,
                files,
                bytes,
                sequence,
            } => {
                println!(
                    "backup of {} written to {to} {through}: {files} files, {bytes} bytes, every entry up to log sequence {sequence}",
                    config.store.data_dir.display()
                );
                Ok(())
            }
            Response::Error { message } => bail!("{message}"),
            other => bail!("unexpected answer: {other:?}"),
        }
    })
}
