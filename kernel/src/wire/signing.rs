//! HMAC-SHA256 message signatures. Spec: "The Wire Protocol": the signature is the hex HMAC of
//! the header, parent header, metadata and content frames, exactly as they travel.

use super::WireError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs outgoing and verifies incoming messages with the connection file's key.
#[derive(Clone)]
pub struct Signer {
    // `None` when the key is empty: the spec's way to switch authentication off. The keyed MAC
    // is built once and cloned per message (cheaper than re-keying).
    mac: Option<HmacSha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Signer")
            .field("signed", &self.mac.is_some())
            .finish()
    }
}

impl Signer {
    /// A signer for `scheme` (only `hmac-sha256`) and `key` (empty = unsigned).
    pub fn new(scheme: &str, key: &str) -> Result<Signer, WireError> {
        if key.is_empty() {
            return Ok(Signer { mac: None });
        }
        if scheme != "hmac-sha256" {
            return Err(WireError::UnsupportedScheme(scheme.to_string()));
        }
        let mac =
            HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
        Ok(Signer { mac: Some(mac) })
    }

    /// A signer that neither signs nor checks (empty key).
    pub fn unsigned() -> Signer {
        Signer { mac: None }
    }

    /// The hex signature of the four JSON frames; empty when unsigned.
    pub fn sign(&self, parts: [&[u8]; 4]) -> String {
        match &self.mac {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for part in parts {
                    mac.update(part);
                }
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    /// Checks `signature` (hex text, as on the wire) in constant time. Unsigned: accepts all.
    pub fn verify(&self, signature: &[u8], parts: [&[u8]; 4]) -> Result<(), WireError> {
        let Some(mac) = &self.mac else {
            return Ok(());
        };
        let expected = hex::decode(signature).map_err(|_| WireError::BadSignature)?;
        let mut mac = mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(&expected)
            .map_err(|_| WireError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = br#"{"msg_id":"m1","msg_type":"kernel_info_request"}"#;

    // Computed independently with Python's hmac module:
    //   d = hmac.new(key, digestmod=hashlib.sha256); for p in parts: d.update(p); d.hexdigest()
    const EXPECTED: &str = "af879f65bfee16049d5760f3b66a9f884cfccc44068b3a1260fffcac18da3fa9";
    const KEY: &str = "a0436f6c-1916-498b-8eb9-e81ab9368e84";

    #[test]
    fn signature_matches_python_hmac() {
        let signer = Signer::new("hmac-sha256", KEY).unwrap();
        assert_eq!(signer.sign([HEADER, b"{}", b"{}", b"{}"]), EXPECTED);
    }

    #[test]
    fn rfc_style_vector() {
        // hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", sha256).hexdigest(),
        // split across the four parts to show the frames are simply concatenated.
        let signer = Signer::new("hmac-sha256", "key").unwrap();
        let sig = signer.sign([
            b"The quick ",
            b"brown fox ",
            b"jumps over ",
            b"the lazy dog",
        ]);
        assert_eq!(
            sig,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn verify_accepts_good_and_rejects_bad() {
        let signer = Signer::new("hmac-sha256", KEY).unwrap();
        let parts: [&[u8]; 4] = [HEADER, b"{}", b"{}", b"{}"];
        assert!(signer.verify(EXPECTED.as_bytes(), parts).is_ok());
        let mut bad = EXPECTED.to_string();
        bad.replace_range(0..1, "b");
        assert!(matches!(
            signer.verify(bad.as_bytes(), parts),
            Err(WireError::BadSignature)
        ));
        assert!(signer.verify(b"not hex", parts).is_err());
        assert!(signer.verify(b"", parts).is_err());
        // A changed content frame invalidates the signature.
        let tampered: [&[u8]; 4] = [HEADER, b"{}", b"{}", b"{\"a\":1}"];
        assert!(signer.verify(EXPECTED.as_bytes(), tampered).is_err());
    }

    #[test]
    fn empty_key_is_unsigned() {
        let signer = Signer::new("hmac-sha256", "").unwrap();
        assert_eq!(signer.sign([HEADER, b"{}", b"{}", b"{}"]), "");
        assert!(signer.verify(b"", [HEADER, b"{}", b"{}", b"{}"]).is_ok());
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(
            Signer::new("hmac-md5", "k"),
            Err(WireError::UnsupportedScheme(_))
        ));
    }
}
