use zeroize::Zeroizing;

use crate::{random_bytes, sha256, CryptoError};

/// An API token as shown once to its owner. Zeroized on drop; `Debug` hides it.
pub struct Token(Zeroizing<String>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token text, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// SHA-256 of the token: the only form custos stores.
    pub fn hash(&self) -> [u8; 32] {
        hash_token(&self.0)
    }
}

/// A new random token: `cus_` + 64 hex characters (256 bits).
pub fn new_token() -> Result<Token, CryptoError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    random_bytes(raw.as_mut())?;
    Ok(Token(Zeroizing::new(format!("cus_{}", hex::encode(raw.as_ref())))))
}

/// The stored form of a token. Tokens are 256-bit random, so an unsalted fast hash is enough.
pub fn hash_token(token: &str) -> [u8; 32] {
    sha256(token.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() -> Result<(), CryptoError> {
        let a = new_token()?;
        let b = new_token()?;
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("cus_") && a.expose().len() == 68);
        assert_eq!(a.hash(), hash_token(&format!("{}\n", a.expose())));
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
        Ok(())
    }
}
