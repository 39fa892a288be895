//! Cryptography of custos: the root key file, key-encryption keys (KEKs),
//! per-tenant data keys (DEKs), AES-256-GCM seal/open, salted commitments,
//! SHA-256, canonical JSON, Ed25519 signing and API-token hashing.
//!
//! Every secret lives in a type that zeroizes on drop and has no `Debug` that
//! prints it; bytes leave only through explicit `expose`/`wrap` calls.
//! This crate never touches storage and never decides policy: it does not know
//! what a tenant, a hold or a role is. Start from [`RootKey`] and [`SecretKey`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aead;
pub mod canonical;
mod error;
mod hash;
mod keys;
mod rootfile;
mod signing;
mod token;

pub use aead::{open_in_place, seal_in_place, Aead, NONCE_LEN, TAG_LEN};
pub use error::CryptoError;
pub use hash::{commitment, sha256, Sha256};
pub use keys::{random_bytes, SecretKey, WRAPPED_LEN};
pub use rootfile::RootKey;
pub use signing::{verify_signature, SigningKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
pub use token::{hash_token, new_token, Token};

/// Constant-time equality of two byte strings (for hashes of tokens and chain values).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Differences are OR-ed together without a branch and only the result goes through
    // `subtle` (its per-byte barrier made comparing chain values a visible verify cost).
    a.len() == b.len() && bool::from(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)).ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn ct_eq_compares_every_byte_and_the_length() {
        let a = [7u8; 32];
        assert!(ct_eq(&a, &a));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!ct_eq(&a, &b), "difference at byte {i} missed");
        }
        assert!(!ct_eq(&a, &a[..31]));
        assert!(ct_eq(b"", b""));
    }
}
