use zeroize::Zeroizing;

use crate::{aead, CryptoError, NONCE_LEN, TAG_LEN};

/// Size of a wrapped 32-byte key: nonce ‖ ciphertext ‖ tag.
pub const WRAPPED_LEN: usize = NONCE_LEN + 32 + TAG_LEN;

/// A 32-byte symmetric key (root key, KEK or DEK). Zeroized on drop; `Debug` prints nothing secret.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fresh random key from the OS CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        random_bytes(k.as_mut())?;
        Ok(Self(k))
    }

    /// Wraps raw bytes (the caller's buffer should itself be zeroizing).
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(Zeroizing::new(b))
    }

    /// The raw bytes. Call sites are few and reviewed: wrapping and AEAD setup.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals `key` under `self` with `aad` naming what the key is (so a wrapped
    /// DEK cannot be passed off as another tenant's). Output: nonce ‖ ct ‖ tag.
    pub fn wrap(&self, key: &SecretKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_blob(key.expose(), aad)
    }

    /// Seals arbitrary secret bytes (e.g. the signing key's PKCS#8) as nonce ‖ ct ‖ tag.
    pub fn seal_blob(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(data);
        let a = aead::Aead::new(self)?;
        let tag = a.seal_detached(&nonce, aad, &mut out[NONCE_LEN..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a blob made by [`SecretKey::seal_blob`]. `name` only labels errors.
    pub fn open_blob(&self, blob: &[u8], aad: &[u8], name: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::MalformedWrapped(name.to_string()));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[..NONCE_LEN]);
        let mut buf = Zeroizing::new(blob[NONCE_LEN..].to_vec());
        let a = aead::Aead::new(self)?;
        let n = a.open(&nonce, aad, &mut buf).map_err(|_| CryptoError::Unwrap(name.to_string()))?.len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Opens a blob made by [`SecretKey::wrap`]. `name` only labels errors.
    pub fn unwrap_key(&self, wrapped: &[u8], aad: &[u8], name: &str) -> Result<SecretKey, CryptoError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(CryptoError::MalformedWrapped(name.to_string()));
        }
        let mut buf = Zeroizing::new(wrapped[NONCE_LEN..].to_vec());
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&wrapped[..NONCE_LEN]);
        let a = aead::Aead::new(self)?;
        let plain = a.open(&nonce, aad, &mut buf).map_err(|_| CryptoError::Unwrap(name.to_string()))?;
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(plain);
        Ok(Self(k))
    }
}

/// Fills `buf` from the OS CSPRNG. One call can fill a whole batch's nonces and salts.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(buf).map_err(|_| CryptoError::Random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_roundtrip_and_binding() -> Result<(), CryptoError> {
        let kek = SecretKey::generate()?;
        let dek = SecretKey::generate()?;
        let w = kek.wrap(&dek, b"dek/acme/1")?;
        assert_eq!(w.len(), WRAPPED_LEN);
        assert_eq!(kek.unwrap_key(&w, b"dek/acme/1", "x")?.expose(), dek.expose());
        assert!(kek.unwrap_key(&w, b"dek/other/1", "x").is_err());
        assert!(SecretKey::generate()?.unwrap_key(&w, b"dek/acme/1", "x").is_err());
        let mut bad = w.clone();
        bad[20] ^= 1;
        assert!(kek.unwrap_key(&bad, b"dek/acme/1", "x").is_err());
        assert!(kek.unwrap_key(&w[1..], b"dek/acme/1", "x").is_err());
        assert_eq!(format!("{dek:?}"), "SecretKey(<redacted>)");
        Ok(())
    }
}
