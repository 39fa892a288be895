use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong in custos cryptography. Messages never contain key material.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// AEAD open failed: wrong key, wrong AAD, wrong nonce or altered ciphertext.
    #[error("decryption failed: the ciphertext, its header binding or the key is wrong")]
    Open,
    /// A wrapped key did not unwrap under the key meant to wrap it.
    #[error("key {0} cannot be unwrapped: wrong root key, or the wrapped key was altered")]
    Unwrap(String),
    /// A wrapped key blob has the wrong size.
    #[error("wrapped key {0} is malformed (wrong length)")]
    MalformedWrapped(String),
    /// The OS random generator failed.
    #[error("the operating system's random generator failed")]
    Random,
    /// The root key file is missing or unreadable.
    #[error("cannot read root key file {path}: {source}")]
    RootKeyIo {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The root key file exists already (init/rotate-root refuse to overwrite).
    #[error("root key file {0} already exists; refusing to overwrite a key (move it away first if you really mean to)")]
    RootKeyExists(PathBuf),
    /// The root key file is readable by others.
    #[error("root key file {path} has mode {mode:o}, readable by others; run `chmod 600 {path}` and retry")]
    RootKeyMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The root key file does not hold 32 bytes of hex.
    #[error("root key file {0} is malformed: expected 64 hex characters")]
    RootKeyMalformed(PathBuf),
    /// A signing key blob did not parse.
    #[error("signing key is malformed")]
    SigningKey,
    /// Signature check failed.
    #[error("signature does not verify under the given public key")]
    BadSignature,
}
