//! `su`: parse the command line, load the configuration, dispatch, map errors to exit codes.

use ao_su::cli::{Cli, Command, router, serve};
use ao_su::config::{Config, ServeMode, Vars};
use std::process::ExitCode;

#[allow(clippy::print_stderr, clippy::print_stdout)] // configuration errors happen before logging
fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    let config = match Vars::from_env().and_then(|vars| Config::from_vars(&vars)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("su: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    ao_su::telemetry::init_logging(&config.log.filter, config.log.json);
    let result = match cli.command {
        // `MODE=router` turns `su serve` and `su su PORT` into a router.
        Command::Serve(args) if config.mode == ServeMode::Router => router::run(
            config,
            router::Args {
                port_positional: None,
                port: args.port,
                bind: args.bind,
            },
        ),
        Command::Su(args) if config.mode == ServeMode::Router => router::run(
            config,
            router::Args {
                port_positional: Some(args.port),
                port: None,
                bind: serve::DEFAULT_BIND.into(),
            },
        ),
        Command::Serve(args) => serve::run(config, args),
        Command::Su(args) => serve::run(
            config,
            serve::Args {
                port: Some(args.port),
                bind: serve::DEFAULT_BIND.into(),
            },
        ),
        Command::Router(args) => router::run(config, args),
        Command::Wallet(args) => ao_su::cli::wallet::run(args),
        Command::Verify(args) => ao_su::cli::verify::run(&config, args),
        Command::Announce(args) => ao_su::cli::announce::run(&config, args),
        Command::Outbox(args) => ao_su::cli::outbox::run(&config, args),
        Command::Reupload(args) => ao_su::cli::reupload::run(&config, args),
        Command::Backup(args) => ao_su::cli::backup::run(&config, args),
        Command::Sync(args) => ao_su::cli::sync::run(config, args),
        Command::ImportPostgres(args) => ao_su::cli::import::run_postgres(&config, args),
        Command::ImportRocksdb(args) => ao_su::cli::import::run_rocksdb(&config, args),
        Command::ImportSu(args) => ao_su::cli::import_su::run(&config, args),
        Command::ConfigExample(_) => {
            print!("{}", ao_su::config::env_example());
            Ok(())
        }
        Command::ConfigTable(_) => {
            print!("{}", ao_su::config::readme_table());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("su: {error:#}");
            ExitCode::FAILURE
        }
    }
}
