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

/// The record's tags (research/clients.md C29).
pub fn location_tags(url: &str, ttl: u64) -> Vec<(String, String)> {
    vec![
        ("Data-Protocol".into(), "ao".into()),
        ("Variant".into(), "ao.TN.1".into()),
        ("Type".into(), "Scheduler-Location".into()),
        ("Url".into(), url.into()),
        ("Time-To-Live".into(), ttl.to_string()),
    ]
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
    let draft = wallet.draft(location_tags(&args.url, args.ttl), Vec::new());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_has_the_legacy_variant_and_fields() {
        let tags = location_tags("https://su1.example.net", 5);
        let names: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["Data-Protocol", "Variant", "Type", "Url", "Time-To-Live"]
        );
        assert_eq!(tags[1].1, "ao.TN.1");
        assert_eq!(tags[2].1, "Scheduler-Location");
        assert_eq!(tags[4].1, "5");
    }
}
