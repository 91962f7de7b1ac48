//! The Scheduler-Location record (research/clients.md C29): the tags this SU signs, the tags
//! it looks records up by, and a record as the gateway shows it.

use super::classify::SeenRecord;
use crate::upstream::OwnedTransaction;

/// The tags every Scheduler-Location record carries and is looked up by (clients ask for
/// the owner's newest record with these, sorted by height).
pub const LOOKUP_TAGS: [(&str, &str); 2] =
    [("Data-Protocol", "ao"), ("Type", "Scheduler-Location")];

/// The record's tags, in the order ao's own deploy script writes them; `Variant: ao.TN.1`
/// makes HyperBEAM use the legacy API.
pub fn tags(url: &str, ttl_ms: u64) -> Vec<(String, String)> {
    vec![
        ("Data-Protocol".into(), "ao".into()),
        ("Variant".into(), "ao.TN.1".into()),
        ("Type".into(), "Scheduler-Location".into()),
        ("Url".into(), url.into()),
        ("Time-To-Live".into(), ttl_ms.to_string()),
    ]
}

/// What a record found on the gateway says: its `Url`, its `Time-To-Live` (absent when the
/// tag is missing or not a whole number) and its block's time in Unix milliseconds.
pub fn seen(transaction: &OwnedTransaction) -> SeenRecord {
    let tag = |name: &str| {
        transaction
            .tags
            .iter()
            .find(|tag| tag.name == name)
            .map(|tag| tag.value.as_str())
    };
    SeenRecord {
        id: transaction.id.clone(),
        url: tag("Url").map(str::to_owned),
        ttl_ms: tag("Time-To-Live").and_then(|ttl| ttl.trim().parse().ok()),
        block_ms: transaction
            .block
            .map(|block| block.timestamp.saturating_mul(1000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::gateway::{GraphqlBlock, GraphqlTag};

    #[test]
    fn record_has_the_legacy_variant_and_fields() {
        let tags = tags("https://su1.example.net", 5);
        let names: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["Data-Protocol", "Variant", "Type", "Url", "Time-To-Live"]
        );
        assert_eq!(tags[1].1, "ao.TN.1");
        assert_eq!(tags[2].1, "Scheduler-Location");
        assert_eq!(tags[4].1, "5");
        for (name, value) in LOOKUP_TAGS {
            assert!(tags.iter().any(|(n, v)| n == name && v == value));
        }
    }

    #[test]
    fn a_gateway_record_reads_its_url_ttl_and_block_time() {
        let tag = |name: &str, value: &str| GraphqlTag {
            name: name.into(),
            value: value.into(),
        };
        let mut transaction = OwnedTransaction {
            id: "abc".into(),
            tags: vec![
                tag("Url", "https://su.example"),
                tag("Time-To-Live", "3600000"),
            ],
            block: Some(GraphqlBlock {
                timestamp: 1_700_000_000,
                height: Some(5),
            }),
        };
        let record = seen(&transaction);
        assert_eq!(record.url.as_deref(), Some("https://su.example"));
        assert_eq!(record.ttl_ms, Some(3_600_000));
        assert_eq!(record.block_ms, Some(1_700_000_000_000));
        transaction.tags = vec![tag("Time-To-Live", "a day")];
        transaction.block = None;
        let record = seen(&transaction);
        assert_eq!(
            (record.url, record.ttl_ms, record.block_ms),
            (None, None, None)
        );
    }
}
