use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use crate::{CryptoError, SecretKey};

/// AES-GCM nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// An AES-256-GCM key ready for sealing and opening. Built once per DEK and reused.
pub struct Aead(LessSafeKey);

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aead(AES-256-GCM, <redacted>)")
    }
}

impl Aead {
    /// Prepares `key` for AES-256-GCM.
    ///
    /// ring keeps its own expanded key schedule inside the `LessSafeKey`, and ring 0.17 does
    /// NOT zeroize it on drop (its AEAD key types have no `Drop` impl); ring exposes no way to
    /// reach those bytes, so we cannot scrub them ourselves. Only `key` (our `SecretKey`) is
    /// zeroized on drop. This is a documented limitation (docs/SECURITY.md, key lifecycle).
    pub fn new(key: &SecretKey) -> Result<Self, CryptoError> {
        let k = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Open)?;
        Ok(Self(LessSafeKey::new(k)))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_detached(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag =
            self.0.seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf).map_err(|_| CryptoError::Open)?;
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag.as_ref());
        Ok(t)
    }

    /// Decrypts `ct ‖ tag` in place, returning the plaintext slice.
    pub fn open<'a>(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &'a mut [u8]) -> Result<&'a mut [u8], CryptoError> {
        self.0.open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf).map_err(|_| CryptoError::Open)
    }
}

/// Appends the tag after sealing `buf` (convenience for bodies: `buf` becomes `ct ‖ tag`).
pub fn seal_in_place(aead: &Aead, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
    let tag = aead.seal_detached(nonce, aad, buf)?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Opens `ct ‖ tag` in `buf`, truncating it to the plaintext.
pub fn open_in_place(aead: &Aead, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
    let n = aead.open(nonce, aad, buf)?.len();
    buf.truncate(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_key_aad_nonce_fail() -> Result<(), CryptoError> {
        let k = SecretKey::generate()?;
        let a = Aead::new(&k)?;
        let nonce = [7u8; NONCE_LEN];
        let mut buf = b"hello audit".to_vec();
        seal_in_place(&a, &nonce, b"hdr", &mut buf)?;
        assert_ne!(&buf[..11], b"hello audit");
        let mut ok = buf.clone();
        open_in_place(&a, &nonce, b"hdr", &mut ok)?;
        assert_eq!(ok, b"hello audit");
        let mut c = buf.clone();
        assert!(open_in_place(&a, &nonce, b"hdr2", &mut c).is_err());
        let mut c = buf.clone();
        assert!(open_in_place(&a, &[8u8; NONCE_LEN], b"hdr", &mut c).is_err());
        let mut c = buf.clone();
        assert!(open_in_place(&Aead::new(&SecretKey::generate()?)?, &nonce, b"hdr", &mut c).is_err());
        let mut c = buf.clone();
        c[0] ^= 0x80;
        assert!(open_in_place(&a, &nonce, b"hdr", &mut c).is_err());
        Ok(())
    }
}
