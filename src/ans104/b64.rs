//! base64url without padding, the encoding of every id, key and signature on the wire.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the base64url encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes base64url without padding; `None` when the text is not canonical base64url.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes a 43-character id into its 32 raw bytes.
pub fn decode_id(text: &str) -> Option<[u8; 32]> {
    if text.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(32) => Some(out),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trip() {
        let id = "4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo";
        let raw = decode_id(id).unwrap();
        assert_eq!(encode(&raw), id);
    }

    #[test]
    fn rejects_wrong_lengths_and_alphabet() {
        assert!(decode_id("abc").is_none());
        assert!(decode_id("4QTyVpvWlwjfsYAvkTSIWjp5XVGf+Rg/Co8K1lPNbvo").is_none());
        assert!(decode_id("4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbv=").is_none());
    }
}
