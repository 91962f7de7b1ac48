//! Just enough DER to read the RSA private key that aws-lc-rs exports as PKCS#8.

use super::Jwk;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads one TLV with the expected tag and returns its contents.
    fn element(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&found, rest) = self.bytes.split_first()?;
        if found != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n_bytes = usize::from(first & 0x7f);
            if n_bytes == 0 || n_bytes > 4 || rest.len() < n_bytes {
                return None;
            }
            let len = rest[..n_bytes]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            rest = &rest[n_bytes..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        self.bytes = rest;
        Some(contents)
    }

    fn integer(&mut self) -> Option<Vec<u8>> {
        let contents = self.element(0x02)?;
        let start = contents
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(contents.len());
        Some(contents[start..].to_vec())
    }
}

/// PKCS#8 `PrivateKeyInfo` wrapping a PKCS#1 `RSAPrivateKey` → JWK members.
pub(super) fn jwk_from_pkcs8(pkcs8: &[u8]) -> Option<Jwk> {
    let mut outer = Reader { bytes: pkcs8 };
    let mut info = Reader {
        bytes: outer.element(0x30)?,
    };
    info.integer()?;
    info.element(0x30)?;
    let mut octets = Reader {
        bytes: info.element(0x04)?,
    };
    let mut key = Reader {
        bytes: octets.element(0x30)?,
    };
    key.integer()?;
    Some(Jwk {
        n: key.integer()?,
        e: key.integer()?,
        d: key.integer()?,
        p: key.integer()?,
        q: key.integer()?,
        dp: key.integer()?,
        dq: key.integer()?,
        qi: key.integer()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(jwk_from_pkcs8(&[]).is_none());
        assert!(jwk_from_pkcs8(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(jwk_from_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }
}
