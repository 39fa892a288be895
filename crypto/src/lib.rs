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
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
