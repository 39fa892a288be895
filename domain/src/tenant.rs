use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The reserved stream for governance events that must outlive any tenant.
pub const SYSTEM_TENANT: &str = "_system";

/// A validated tenant id: `[a-z0-9][a-z0-9._-]{0,62}`, or the reserved `_system`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Parses a tenant id that a user may write to (never `_system`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s == SYSTEM_TENANT {
            return Err(DomainError::ReservedTenant(s.to_string()));
        }
        Self::parse_any(s)
    }

    /// Parses any tenant id including the reserved `_system` (for reads and the log itself).
    pub fn parse_any(s: &str) -> Result<Self, DomainError> {
        if s == SYSTEM_TENANT {
            return Ok(Self(s.to_string()));
        }
        let b = s.as_bytes();
        let ok_first = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok_rest = |c: u8| ok_first(c) || c == b'.' || c == b'_' || c == b'-';
        if b.is_empty() || b.len() > 63 || !ok_first(b[0]) || !b[1..].iter().all(|&c| ok_rest(c)) {
            return Err(DomainError::BadTenant(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    /// The `_system` stream.
    pub fn system() -> Self {
        Self(SYSTEM_TENANT.to_string())
    }

    /// True for the `_system` stream.
    pub fn is_system(&self) -> bool {
        self.0 == SYSTEM_TENANT
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::parse_any(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["acme-corp", "a", "t1.prod_eu", "0"] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "-a", ".a", "a b", "a/b", &"a".repeat(64), "_system", "é"] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
        assert!(TenantId::parse_any("_system").is_ok_and(|t| t.is_system()));
    }

    proptest! {
        #[test]
        fn valid_ids_roundtrip(s in "[a-z0-9][a-z0-9._-]{0,62}") {
            let t = TenantId::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(t.as_str(), s.as_str());
        }
    }
}
