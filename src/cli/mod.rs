//! The command line: `su serve`, `su su PORT`, `su wallet new`, `su verify`, `su announce`,
//! `su outbox`, `su reupload`, `su backup`, `su sync`, `su router`, `su import-postgres`,
//! `su import-rocksdb`, `su import-su`.
#![allow(clippy::print_stdout)] // the CLI prints its results

pub mod announce;
pub mod backup;
pub mod daemon;
pub mod import;
pub mod import_su;
pub mod outbox;
pub mod reupload;
pub mod router;
pub mod serve;
pub mod sync;
pub mod verify;
pub mod wallet;

use argh::FromArgs;

/// ao Scheduler Unit on an embedded RocksDB store.
#[derive(FromArgs, Debug)]
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(serve::Args),
    Su(serve::ReferenceArgs),
    Wallet(wallet::Args),
    Verify(verify::Args),
    Announce(announce::Args),
    Outbox(outbox::Args),
    Reupload(reupload::Args),
    Backup(backup::Args),
    Sync(sync::Args),
    Router(router::Args),
    ImportPostgres(import::PostgresArgs),
    ImportRocksdb(import::RocksDbArgs),
    ImportSu(import_su::Args),
    ConfigExample(ConfigExampleArgs),
    ConfigTable(ConfigTableArgs),
}

/// Print the .env.example generated from the settings table.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config-example")]
pub struct ConfigExampleArgs {}

/// Print the README configuration table generated from the settings table.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config-table")]
pub struct ConfigTableArgs {}
