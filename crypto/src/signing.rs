use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use zeroize::Zeroizing;

use crate::CryptoError;

/// Ed25519 public key length.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Ed25519 signature length.
pub const SIGNATURE_LEN: usize = 64;

/// The log's Ed25519 signing key. Its PKCS#8 document is stored wrapped by the root key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public={})", hex::encode(self.public_key()))
    }
}

impl SigningKey {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, CryptoError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CryptoError::Random)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads from a PKCS#8 v2 document.
    pub fn from_pkcs8(doc: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_pkcs8(doc).map_err(|_| CryptoError::SigningKey)?;
        Ok(Self { pair, pkcs8: Zeroizing::new(doc.to_vec()) })
    }

    /// The secret PKCS#8 document, for wrapping under the root key only.
    pub fn expose_pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 32-byte public key auditors verify against.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }
}

/// Verifies an Ed25519 signature with only the public key (what an offline auditor has).
pub fn verify_signature(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    UnparsedPublicKey::new(&ED25519, public_key).verify(msg, sig).map_err(|_| CryptoError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip() -> Result<(), CryptoError> {
        let k = SigningKey::generate()?;
        let sig = k.sign(b"size=3");
        verify_signature(&k.public_key(), b"size=3", &sig)?;
        assert!(verify_signature(&k.public_key(), b"size=4", &sig).is_err());
        let other = SigningKey::generate()?;
        assert!(verify_signature(&other.public_key(), b"size=3", &sig).is_err());
        let again = SigningKey::from_pkcs8(k.expose_pkcs8())?;
        assert_eq!(again.public_key(), k.public_key());
        Ok(())
    }
}
