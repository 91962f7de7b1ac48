//! `su announce --url URL [--ttl MS]`: sign and upload the Scheduler-Location record.

use crate::ans104::b64;
use anyhow::{Context, bail};
use argh::FromArgs;

/// Sign and upload the Scheduler-Location record that lets clients find this SU.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "announce")]
pub struct Args {
    /// the public URL of this SU
    #[argh(option)]
    pub url: String,
    /// time-to-live of the record in milliseconds
    #[argh(option, default = "3_600_000")]
    pub ttl: u64,
}

pub fn run(config: &crate::config::Config, args: Args) -> anyhow::Result<()> {
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        bail!("--url must be an http(s) URL");
    }
    let bundler = config
        .upstream
        .upload_node_url
        .clone()
        .context("UPLOAD_NODE_URL must be set to announce")?;
    // Announce only an existing identity: never create a wallet here.
    let path = config.wallet_file();
    let salt =
        crate::wallet::SigningSalt::from_len(config.wallet.signing_salt).context("signing salt")?;
    let wallet = crate::wallet::Wallet::load(&path, salt)
        .with_context(|| format!("loading wallet {}", path.display()))?;
    let draft = wallet.draft(
        crate::location::record::tags(&args.url, args.ttl),
        Vec::new(),
    );
    let (bytes, id) = wallet.sign(&draft)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(
                config.upstream.timeout_secs.max(1),
            ))
            .build()?;
        let response = client
            .post(format!("{bundler}/tx/arweave"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("bundler answered {}", response.status());
        }
        Ok(())
    })?;
    println!("{}", b64::encode(&id));
    Ok(())
}
