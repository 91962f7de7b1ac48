//! The Arweave JWK: `{"kty":"RSA","n","e","d","p","q","dp","dq","qi"}`, base64url members.

use super::WalletError;
use crate::ans104::b64;

/// The decoded members of an RSA JWK, big-endian integers.
#[derive(Clone)]
pub struct Jwk {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qi: Vec<u8>,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct JwkText {
    kty: String,
    n: String,
    e: String,
    d: String,
    p: String,
    q: String,
    dp: String,
    dq: String,
    qi: String,
}

impl Jwk {
    /// Parses the JSON text of a wallet file; unknown members are ignored.
    pub fn parse(text: &str) -> Result<Self, WalletError> {
        let parsed: JwkText =
            serde_json::from_str(text).map_err(|err| WalletError::Parse(err.to_string()))?;
        if parsed.kty != "RSA" {
            return Err(WalletError::Parse(format!(
                "kty must be RSA, found {}",
                parsed.kty
            )));
        }
        let member = |name: &str, value: &str| {
            b64::decode(value.trim_end_matches('='))
                .ok_or_else(|| WalletError::Parse(format!("member {name} is not base64url")))
        };
        Ok(Self {
            n: member("n", &parsed.n)?,
            e: member("e", &parsed.e)?,
            d: member("d", &parsed.d)?,
            p: member("p", &parsed.p)?,
            q: member("q", &parsed.q)?,
            dp: member("dp", &parsed.dp)?,
            dq: member("dq", &parsed.dq)?,
            qi: member("qi", &parsed.qi)?,
        })
    }

    /// The JSON text of the wallet file.
    pub fn to_json(&self) -> String {
        let text = JwkText {
            kty: "RSA".into(),
            n: b64::encode(&self.n),
            e: b64::encode(&self.e),
            d: b64::encode(&self.d),
            p: b64::encode(&self.p),
            q: b64::encode(&self.q),
            dp: b64::encode(&self.dp),
            dq: b64::encode(&self.dq),
            qi: b64::encode(&self.qi),
        };
        serde_json::to_string(&text).expect("a struct of strings serialises")
    }
}
