//! Pure scheduling types: process tips, the hash chain and the Assignment's tags.

use crate::ans104::{b64, item::sha256};

/// A raw 32-byte id: process, message, assignment or transaction.
pub type Id = [u8; 32];

/// The scheduling state after a process's latest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub nonce: u64,
    pub timestamp: u64,
    pub hash_chain: [u8; 32],
    pub assignment_id: Id,
}

/// The Hash-Chain of a process's first entry: SHA256(raw process id).
pub fn seed_hash_chain(process_id: &Id) -> [u8; 32] {
    sha256(process_id)
}

/// The next link: SHA256(raw previous assignment id ‖ raw previous hash chain).
pub fn next_hash_chain(previous_assignment: &Id, previous_chain: &[u8; 32]) -> [u8; 32] {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(previous_assignment);
    input[32..].copy_from_slice(previous_chain);
    sha256(&input)
}

/// A strictly increasing timestamp: `max(now, previous + 1)`.
pub fn next_timestamp(now_ms: u64, previous: Option<u64>) -> u64 {
    match previous {
        Some(previous) => now_ms.max(previous + 1),
        None => now_ms,
    }
}

/// Block heights are rendered as 12 zero-padded digits everywhere.
pub fn format_block_height(height: u64) -> String {
    format!("{height:012}")
}

/// Everything an Assignment says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentFields {
    pub process: Id,
    pub nonce: u64,
    pub hash_chain: [u8; 32],
    pub block_height: u64,
    pub timestamp: u64,
    /// Absent for the process's own nonce-0 assignment.
    pub message: Option<Id>,
    pub exclude: Vec<String>,
}

/// The Assignment's tags in the reference's exact order (PROTOCOL 1.6.1).
pub fn assignment_tags(fields: &AssignmentFields) -> Vec<(String, String)> {
    let mut tags = vec![
        ("Process".to_string(), b64::encode(&fields.process)),
        ("Epoch".to_string(), "0".to_string()),
        ("Nonce".to_string(), fields.nonce.to_string()),
        ("Hash-Chain".to_string(), b64::encode(&fields.hash_chain)),
        (
            "Block-Height".to_string(),
            format_block_height(fields.block_height),
        ),
        ("Timestamp".to_string(), fields.timestamp.to_string()),
        ("Data-Protocol".to_string(), "ao".to_string()),
        ("Type".to_string(), "Assignment".to_string()),
        ("Variant".to_string(), "ao.TN.1".to_string()),
    ];
    if let Some(message) = &fields.message {
        tags.push(("Message".to_string(), b64::encode(message)));
    }
    for value in &fields.exclude {
        tags.push(("Exclude".to_string(), value.clone()));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_the_spec() {
        let process = b64::decode_id("4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo").unwrap();
        let seed = seed_hash_chain(&process);
        assert_eq!(
            b64::encode(&seed),
            "R5cBwpmN4XJ-LeesR4WXRKmYDrakzxxaBnLip1uzOlQ"
        );
        let first = b64::decode_id("BZj7OScRU_CPeEk0uGI8_3ZyMPX8aPcCMbbuTUpCj7Q").unwrap();
        let next = next_hash_chain(&first, &seed);
        assert_eq!(
            b64::encode(&next),
            "MsivzTy3Lfnl5f5roOnFc3d48cEDiAtGjktyH2Q1hfM"
        );
    }

    #[test]
    fn timestamps_strictly_increase() {
        assert_eq!(next_timestamp(100, None), 100);
        assert_eq!(next_timestamp(100, Some(100)), 101);
        assert_eq!(next_timestamp(50, Some(100)), 101);
        assert_eq!(next_timestamp(200, Some(100)), 200);
    }

    #[test]
    fn tag_order_and_padding() {
        let fields = AssignmentFields {
            process: [1; 32],
            nonce: 7,
            hash_chain: [2; 32],
            block_height: 1_736_676,
            timestamp: 1_755_708_950_818,
            message: Some([3; 32]),
            exclude: vec!["a".into(), "".into()],
        };
        let names: Vec<_> = assignment_tags(&fields)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Process",
                "Epoch",
                "Nonce",
                "Hash-Chain",
                "Block-Height",
                "Timestamp",
                "Data-Protocol",
                "Type",
                "Variant",
                "Message",
                "Exclude",
                "Exclude"
            ]
        );
        assert_eq!(assignment_tags(&fields)[4].1, "000001736676");
    }
}
