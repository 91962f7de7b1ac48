//! The SU's Arweave wallet: load or create an RSA-4096 JWK, and sign items with it.
//! Signing uses aws-lc-rs, which signs at the machine's native rate (see BENCHMARKS.md).

mod der;
mod jwk;

use crate::ans104::{ItemDraft, SignatureType, b64, item::sha256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaEncoding, RsaPssSaltLength};
use std::path::Path;

pub use jwk::Jwk;

/// Why a wallet could not be loaded, made or used.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("failed to read wallet file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to write wallet file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to parse the wallet file: {0}")]
    Parse(String),
    #[error("wallet modulus must be 512 bytes (RSA-4096), found {0}")]
    ModulusSize(usize),
    #[error("wallet key rejected: {0}")]
    Rejected(String),
    #[error("signing failed")]
    Sign,
}

/// The RSA-PSS salt length the SU signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningSalt {
    /// 32 bytes, the digest length: what browser wallets and the Arweave node use.
    Digest,
    /// 478 bytes, the maximum for RSA-4096: what the reference SU uses.
    Max,
}

impl SigningSalt {
    /// Parses `32` or `478`.
    pub fn from_len(len: u32) -> Option<Self> {
        match len {
            32 => Some(Self::Digest),
            478 => Some(Self::Max),
            _ => None,
        }
    }

    fn encoding(self) -> &'static dyn RsaEncoding {
        static SALT_MAX: aws_lc_rs::signature::RsaSignatureEncoding =
            RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
        match self {
            Self::Digest => &RSA_PSS_SHA256,
            Self::Max => &SALT_MAX,
        }
    }
}

/// A loaded wallet: the private key, its 512-byte owner and its address.
pub struct Wallet {
    key: KeyPair,
    owner: Vec<u8>,
    address: [u8; 32],
    salt: SigningSalt,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wallet({})", self.address_b64())
    }
}

impl Wallet {
    /// Loads a JWK file.
    pub fn load(path: &Path, salt: SigningSalt) -> Result<Self, WalletError> {
        let text = std::fs::read_to_string(path).map_err(|source| WalletError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_jwk(&Jwk::parse(&text)?, salt)
    }

    /// Builds the signing key from JWK members.
    pub fn from_jwk(jwk: &Jwk, salt: SigningSalt) -> Result<Self, WalletError> {
        let strip = |bytes: &[u8]| -> Vec<u8> {
            let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            bytes[start..].to_vec()
        };
        let n = strip(&jwk.n);
        if n.len() != 512 {
            return Err(WalletError::ModulusSize(n.len()));
        }
        let components = KeyPairComponents {
            public_key: PublicKeyComponents {
                n: n.clone(),
                e: strip(&jwk.e),
            },
            d: strip(&jwk.d),
            p: strip(&jwk.p),
            q: strip(&jwk.q),
            dP: strip(&jwk.dp),
            dQ: strip(&jwk.dq),
            qInv: strip(&jwk.qi),
        };
        let key = KeyPair::from_components(&components)
            .map_err(|err| WalletError::Rejected(err.to_string()))?;
        let address = sha256(&n);
        Ok(Self {
            key,
            owner: n,
            address,
            salt,
        })
    }

    /// Generates a fresh RSA-4096 key with e = 65537.
    pub fn generate() -> Result<Jwk, WalletError> {
        let key = KeyPair::generate(KeySize::Rsa4096)
            .map_err(|_| WalletError::Rejected("key generation failed".into()))?;
        let pkcs8 = key
            .as_der()
            .map_err(|_| WalletError::Rejected("key export failed".into()))?;
        der::jwk_from_pkcs8(pkcs8.as_ref())
            .ok_or_else(|| WalletError::Rejected("unexpected PKCS#8 layout".into()))
    }

    /// Writes a JWK with mode 0600, refusing to overwrite an existing file.
    pub fn write_new(path: &Path, jwk: &Jwk) -> Result<(), WalletError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let error = |source| WalletError::Write {
            path: path.display().to_string(),
            source,
        };
        // Crash-safe: the key is complete and synced under a temporary name before it gets
        // its real name, and `hard_link` (unlike `rename`) never replaces an existing file.
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let temporary = path.with_file_name(format!(
            ".{}.{}.{nanos}.tmp",
            file_name.as_deref().unwrap_or("wallet"),
            std::process::id()
        ));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(jwk.to_json().as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&temporary, path)
        })();
        let _ = std::fs::remove_file(&temporary);
        written.map_err(error)?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        std::fs::File::open(directory)
            .and_then(|dir| dir.sync_all())
            .map_err(error)
    }

    /// The owner field of items this wallet signs: the 512-byte modulus.
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// SHA256(owner), raw.
    pub fn address(&self) -> [u8; 32] {
        self.address
    }

    /// The address as base64url: the SU's identity.
    pub fn address_b64(&self) -> String {
        b64::encode(&self.address)
    }

    /// Signs a 48-byte signing message with RSA-PSS-SHA256.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, WalletError> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(self.salt.encoding(), &rng, message, &mut signature)
            .map_err(|_| WalletError::Sign)?;
        Ok(signature)
    }

    /// A draft for an item owned by this wallet: type 1, no target (set `target` for a client
    /// Message), 32 random anchor bytes.
    pub fn draft(&self, tags: Vec<(String, String)>, data: Vec<u8>) -> ItemDraft {
        let mut anchor = [0u8; 32];
        aws_lc_rs::rand::fill(&mut anchor).expect("the system RNG does not fail");
        ItemDraft {
            signature_type: SignatureType::ARWEAVE,
            owner: self.owner.clone(),
            target: None,
            anchor: Some(anchor),
            tags,
            data,
        }
    }

    /// Signs a draft and returns `(item bytes, raw id)`.
    pub fn sign(&self, draft: &ItemDraft) -> Result<(Vec<u8>, [u8; 32]), WalletError> {
        let signature = self.sign_message(&draft.signing_message())?;
        let id = sha256(&signature);
        Ok((draft.finish(&signature), id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ans104::{DataItem, verify};

    #[test]
    fn generated_wallet_signs_verifiable_items_with_both_salts() {
        let jwk = Wallet::generate().unwrap();
        let reparsed = Jwk::parse(&jwk.to_json()).unwrap();
        for salt in [SigningSalt::Digest, SigningSalt::Max] {
            let wallet = Wallet::from_jwk(&reparsed, salt).unwrap();
            let draft = wallet.draft(vec![("Type".into(), "Assignment".into())], vec![]);
            let (bytes, id) = wallet.sign(&draft).unwrap();
            let item = DataItem::parse(&bytes).unwrap();
            assert_eq!(item.id(), id);
            assert_eq!(item.owner_address(), wallet.address());
            verify::verify(&item).unwrap();
        }
    }

    #[test]
    fn writes_wallet_with_mode_0600_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let jwk = Wallet::generate().unwrap();
        Wallet::write_new(&path, &jwk).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(Wallet::write_new(&path, &jwk).is_err());
        // Nothing is left behind by the refused write, and the first key is intact.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let wallet = Wallet::load(&path, SigningSalt::Digest).unwrap();
        assert_eq!(wallet.owner(), &jwk.n[..]);
    }
}
