//! Signature verification of incoming items: RSA-PSS with any salt length, Ethereum
//! personal-message secp256k1, and ed25519 (types 2 and 4).

use super::item::{DataItem, SignatureType, sha256};
use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA256, RsaParameters, RsaPssSaltLength};
use num_bigint::BigUint;

/// Why a signature was refused. Display strings are the reference's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("Signature verification failed")]
    Failed,
    #[error("Invalid owner format for Ethereum signature")]
    EthereumOwner,
    #[error("Invalid recovery ID for Ethereum signature")]
    EthereumRecoveryId,
    #[error("Ethereum signature verification failed")]
    Ethereum,
    /// `s` in the upper half of the curve order: the malleated twin of a valid signature.
    /// k256's verifier (and so the reference) refuses it too, as Ethereum has since EIP-2.
    #[error(
        "Failed to recover public key: the Ethereum signature is not canonical (s must be in the lower half of the curve order)"
    )]
    EthereumHighS,
    #[error("Unsupported signature type {0}")]
    Unsupported(u16),
}

const PSS_SALT_MAX: RsaParameters =
    RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
const RSA_EXPONENT: [u8; 3] = [1, 0, 1];

/// Which RSA-PSS salt length to try first. Every attempt with the wrong length costs a whole
/// RSA operation; a caller checking many signatures of one signer (a standby checking its
/// primary's assignments) keeps a hint per signer, and the hint follows what last verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SaltHint {
    /// The maximum salt (Node clients, the MU, the reference SU): tried first by default.
    #[default]
    Max,
    /// 32 bytes, the digest length (browsers, `su serve`'s default).
    Digest,
}

/// Verifies the item's signature against its signing message.
pub fn verify(item: &DataItem<'_>) -> Result<(), VerifyError> {
    verify_hinted(item, &mut SaltHint::default())
}

/// `verify`, trying the hinted RSA-PSS salt length first and updating the hint to the length
/// that verified. Same verdict as `verify` for every item.
pub fn verify_hinted(item: &DataItem<'_>, hint: &mut SaltHint) -> Result<(), VerifyError> {
    let message = item.signing_message();
    match item.signature_type {
        SignatureType::ARWEAVE => verify_rsa_pss_hinted(item.owner, &message, item.signature, hint),
        SignatureType::ETHEREUM => verify_ethereum(item.owner, &message, item.signature),
        SignatureType::ED25519 | SignatureType::SOLANA => {
            verify_ed25519(item.owner, &message, item.signature)
        }
        other => Err(VerifyError::Unsupported(other.0)),
    }
}

/// RSA-PSS, SHA-256, MGF1-SHA-256, e = 65537, any salt length. The two salt lengths that real
/// traffic uses (the maximum, then 32) take the fast aws-lc path; anything else is decoded
/// here.
pub fn verify_rsa_pss(modulus: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    verify_rsa_pss_hinted(modulus, message, signature, &mut SaltHint::default())
}

fn verify_rsa_pss_hinted(
    modulus: &[u8],
    message: &[u8],
    signature: &[u8],
    hint: &mut SaltHint,
) -> Result<(), VerifyError> {
    let first_nonzero = modulus
        .iter()
        .position(|&b| b != 0)
        .ok_or(VerifyError::Failed)?;
    let modulus = &modulus[first_nonzero..];
    // Node clients (aoconnect, the MU) sign with the maximum salt, browsers with 32.
    let order = match hint {
        SaltHint::Max => [SaltHint::Max, SaltHint::Digest],
        SaltHint::Digest => [SaltHint::Digest, SaltHint::Max],
    };
    for salt in order {
        if parsed_keys::verify(modulus, salt, message, signature) {
            *hint = salt;
            return Ok(());
        }
    }
    verify_pss_any_salt(modulus, message, signature)
}

/// Parsed RSA public keys, per thread. Parsing a key (its Montgomery constants above all)
/// costs about as much as the public-key operation itself, and the signers of a schedule
/// are few (the SU, a process's clients), so each thread keeps the keys it used last.
mod parsed_keys {
    use super::{PSS_SALT_MAX, RSA_EXPONENT, SaltHint};
    use aws_lc_rs::signature::{ParsedPublicKey, RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents};
    use std::cell::RefCell;

    /// Keys kept per thread (about 3 KiB each); the whole cache is dropped when a new key
    /// would pass this, so a thread holds at most about 50 KiB of them.
    const KEYS_PER_THREAD: usize = 16;

    thread_local! {
        /// (modulus, salt length, parsed key); searched in order, since it is this short.
        static KEYS: RefCell<Vec<(Vec<u8>, SaltHint, ParsedPublicKey)>> =
            const { RefCell::new(Vec::new()) };
    }

    /// Whether `signature` verifies under the key `modulus` with the salt length `salt`.
    pub(super) fn verify(modulus: &[u8], salt: SaltHint, message: &[u8], signature: &[u8]) -> bool {
        KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            let found = keys
                .iter()
                .position(|(kept, kept_salt, _)| *kept_salt == salt && kept[..] == *modulus);
            let index = match found {
                Some(index) => index,
                None => {
                    let parameters = match salt {
                        SaltHint::Max => &PSS_SALT_MAX,
                        SaltHint::Digest => &RSA_PSS_2048_8192_SHA256,
                    };
                    let components = RsaPublicKeyComponents {
                        n: modulus,
                        e: &RSA_EXPONENT[..],
                    };
                    let Ok(parsed) = components.to_parsed_public_key(parameters) else {
                        return false;
                    };
                    if keys.len() >= KEYS_PER_THREAD {
                        keys.clear();
                    }
                    keys.push((modulus.to_vec(), salt, parsed));
                    keys.len() - 1
                }
            };
            keys[index].2.verify_sig(message, signature).is_ok()
        })
    }
}

fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = Vec::with_capacity(seed.len() + 4);
        input.extend_from_slice(seed);
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&sha256(&input));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with the salt length recovered from the encoding.
fn verify_pss_any_salt(
    modulus: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    const H_LEN: usize = 32;
    let n = BigUint::from_bytes_be(modulus);
    let s = BigUint::from_bytes_be(signature);
    if signature.len() != modulus.len() || s >= n {
        return Err(VerifyError::Failed);
    }
    let mod_bits = n.bits() as usize;
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let m = s.modpow(&BigUint::from(65537u32), &n).to_bytes_be();
    if m.len() > em_len || em_len < H_LEN + 2 {
        return Err(VerifyError::Failed);
    }
    let mut em = vec![0u8; em_len - m.len()];
    em.extend_from_slice(&m);
    if em[em_len - 1] != 0xbc {
        return Err(VerifyError::Failed);
    }
    let db_len = em_len - H_LEN - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let h = &rest[..H_LEN];
    let unused_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8.checked_shr(unused_bits as u32).unwrap_or(0);
    if masked_db[0] & !top_mask != 0 {
        return Err(VerifyError::Failed);
    }
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mgf1_sha256(h, db_len))
        .map(|(a, b)| a ^ b)
        .collect();
    db[0] &= top_mask;
    let separator = db.iter().position(|&b| b != 0).ok_or(VerifyError::Failed)?;
    if db[separator] != 0x01 {
        return Err(VerifyError::Failed);
    }
    let salt = &db[separator + 1..];
    let mut m_prime = Vec::with_capacity(8 + H_LEN + salt.len());
    m_prime.extend_from_slice(&[0u8; 8]);
    m_prime.extend_from_slice(&sha256(message));
    m_prime.extend_from_slice(salt);
    if sha256(&m_prime) == h {
        Ok(())
    } else {
        Err(VerifyError::Failed)
    }
}

fn keccak256(parts: &[&[u8]]) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    let mut hasher = Keccak256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// What an Ethereum (type 3) signature signs: Keccak-256 of EIP-191's `personal_sign`
/// prefix and the item's signing message.
fn ethereum_digest(message: &[u8]) -> [u8; 32] {
    let prefix = format!("\x19Ethereum Signed Message:\n{}", message.len());
    keccak256(&[prefix.as_bytes(), message])
}

/// Signs `message` as an Ethereum wallet does: `r ‖ s ‖ v` with `v` 27 or 28 (low-S, since
/// k256 signs that form only).
pub(crate) fn sign_ethereum(key: &k256::ecdsa::SigningKey, message: &[u8]) -> Vec<u8> {
    let (signature, recovery) = key
        .sign_prehash_recoverable(&ethereum_digest(message))
        .expect("a 32-byte prehash always signs");
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    bytes
}

/// Ethereum `personal_sign` over the 48-byte signing message, as the reference checks it.
fn verify_ethereum(owner: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    if owner.len() != 65 || owner[0] != 0x04 {
        return Err(VerifyError::EthereumOwner);
    }
    let (rs, v) = signature.split_at(64);
    let v = v[0];
    if v != 27 && v != 28 {
        return Err(VerifyError::EthereumRecoveryId);
    }
    let digest = ethereum_digest(message);
    let sig = Signature::from_slice(rs).map_err(|_| VerifyError::Ethereum)?;
    // Only the low-S form is accepted: otherwise (r, n - s) with v flipped verifies too,
    // under another id, and anyone could schedule a user's message a second time.
    if sig.normalize_s().is_some() {
        return Err(VerifyError::EthereumHighS);
    }
    let recovery = RecoveryId::from_byte(v - 27).ok_or(VerifyError::EthereumRecoveryId)?;
    let key = VerifyingKey::recover_from_prehash(&digest, &sig, recovery)
        .map_err(|_| VerifyError::Ethereum)?;
    let point = key.to_encoded_point(false);
    let recovered = keccak256(&[&point.as_bytes()[1..]]);
    let expected = keccak256(&[&owner[1..]]);
    if recovered[12..] == expected[12..] {
        Ok(())
    } else {
        Err(VerifyError::Ethereum)
    }
}

fn verify_ed25519(owner: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let key_bytes: &[u8; 32] = owner.try_into().map_err(|_| VerifyError::Failed)?;
    let key = VerifyingKey::from_bytes(key_bytes).map_err(|_| VerifyError::Failed)?;
    let signature = Signature::from_slice(signature).map_err(|_| VerifyError::Failed)?;
    key.verify(message, &signature)
        .map_err(|_| VerifyError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ans104::item::ItemDraft;

    fn ethereum_item(tamper: bool) -> Vec<u8> {
        let draft = ItemDraft {
            signature_type: SignatureType::ETHEREUM,
            owner: Vec::new(),
            target: None,
            anchor: None,
            tags: vec![("Type".into(), "Message".into())],
            data: b"eth".to_vec(),
        };
        let mut item = draft.finish_ethereum(&[7; 32]);
        if tamper {
            let last = item.len() - 1;
            item[last] ^= 1;
        }
        item
    }

    #[test]
    fn ethereum_signatures_verify_and_tampering_fails() {
        let good = ethereum_item(false);
        assert_eq!(verify(&DataItem::parse(&good).unwrap()), Ok(()));
        let bad = ethereum_item(true);
        assert_eq!(
            verify(&DataItem::parse(&bad).unwrap()),
            Err(VerifyError::Ethereum)
        );
    }

    /// The same signature with s replaced by n - s and v flipped: valid ECDSA, other bytes.
    fn malleate(item: &[u8]) -> Vec<u8> {
        use k256::ecdsa::Signature;
        let parsed = DataItem::parse(item).unwrap();
        let sig = Signature::from_slice(&parsed.signature[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let mut out = item.to_vec();
        out[2..66].copy_from_slice(&high.to_bytes());
        out[66] ^= 27 ^ 28;
        out
    }

    #[test]
    fn malleated_ethereum_signatures_are_refused() {
        let good = ethereum_item(false);
        let twin = malleate(&good);
        let (good_item, twin_item) = (
            DataItem::parse(&good).unwrap(),
            DataItem::parse(&twin).unwrap(),
        );
        assert_ne!(good_item.id(), twin_item.id());
        assert_eq!(verify(&good_item), Ok(()));
        assert_eq!(verify(&twin_item), Err(VerifyError::EthereumHighS));
        // Malleating the twin gives back the original bytes, which verify.
        assert_eq!(malleate(&twin), good);
    }

    #[test]
    fn rsa_pss_verifies_any_salt_length() {
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256, RsaSignatureEncoding};
        static SALT_0: RsaSignatureEncoding =
            RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Custom(0));
        static SALT_100: RsaSignatureEncoding =
            RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Custom(100));
        static SALT_MAX: RsaSignatureEncoding =
            RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
        let key = KeyPair::generate(KeySize::Rsa4096).unwrap();
        let components: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = key.public_key().into();
        let message = [42u8; 48];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let encodings: [&'static RsaSignatureEncoding; 4] =
            [&RSA_PSS_SHA256, &SALT_0, &SALT_100, &SALT_MAX];
        for encoding in encodings {
            let mut signature = vec![0u8; 512];
            key.sign(encoding, &rng, &message, &mut signature).unwrap();
            assert_eq!(verify_rsa_pss(&components.n, &message, &signature), Ok(()));
            assert_eq!(
                verify_pss_any_salt(&components.n, &message, &signature),
                Ok(())
            );
            let mut tampered = signature.clone();
            tampered[100] ^= 1;
            assert_eq!(
                verify_rsa_pss(&components.n, &message, &tampered),
                Err(VerifyError::Failed)
            );
            assert_eq!(
                verify_rsa_pss(&components.n, &[0u8; 48], &signature),
                Err(VerifyError::Failed)
            );
            // A hint changes the order of attempts, never the verdict, and follows the salt
            // length that verified.
            for start in [SaltHint::Max, SaltHint::Digest] {
                let mut hint = start;
                assert_eq!(
                    verify_rsa_pss_hinted(&components.n, &message, &signature, &mut hint),
                    Ok(())
                );
                let expected = if std::ptr::eq(encoding, &RSA_PSS_SHA256) {
                    SaltHint::Digest
                } else if std::ptr::eq(encoding, &SALT_MAX) {
                    SaltHint::Max
                } else {
                    start
                };
                assert_eq!(hint, expected);
                assert_eq!(
                    verify_rsa_pss_hinted(&components.n, &message, &tampered, &mut hint),
                    Err(VerifyError::Failed)
                );
            }
        }
    }

    #[test]
    fn ed25519_signatures_verify() {
        use ed25519_dalek::{Signer, SigningKey};
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let draft = ItemDraft {
            signature_type: SignatureType::ED25519,
            owner: key.verifying_key().to_bytes().to_vec(),
            target: None,
            anchor: Some([5; 32]),
            tags: vec![],
            data: vec![1, 2, 3],
        };
        let signature = key.sign(&draft.signing_message());
        let item = draft.finish(&signature.to_bytes());
        assert_eq!(verify(&DataItem::parse(&item).unwrap()), Ok(()));
        let mut tampered = item.clone();
        tampered.push(0);
        assert_eq!(
            verify(&DataItem::parse(&tampered).unwrap()),
            Err(VerifyError::Failed)
        );
    }
}
