use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Money as integer micro-USD. custos never uses floating point for money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UsdMicros(pub i64);

impl UsdMicros {
    /// Parses a decimal dollar amount (`0.0021`, `25`, `$1.50`) exactly, without floats.
    pub fn parse_usd(s: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::BadMoney(s.to_string());
        let t = s.trim().trim_start_matches('$');
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if (whole.is_empty() && frac.is_empty())
            || frac.len() > 6
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let w: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let mut f: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
        for _ in frac.len()..6 {
            f *= 10;
        }
        w.checked_mul(1_000_000).and_then(|w| w.checked_add(f)).map(UsdMicros).ok_or_else(bad)
    }

    /// Saturating sum, so a hostile payload cannot make a report panic.
    pub fn saturating_add(self, o: UsdMicros) -> UsdMicros {
        UsdMicros(self.0.saturating_add(o.0))
    }
}

impl fmt::Display for UsdMicros {
    /// `$0.002100`: six decimals, exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:06}", a / 1_000_000, a % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_parse() {
        assert_eq!(UsdMicros::parse_usd("0.0021"), Ok(UsdMicros(2100)));
        assert_eq!(UsdMicros::parse_usd("25"), Ok(UsdMicros(25_000_000)));
        assert_eq!(UsdMicros::parse_usd("$1.5"), Ok(UsdMicros(1_500_000)));
        assert_eq!(UsdMicros::parse_usd(".5"), Ok(UsdMicros(500_000)));
        for bad in ["", ".", "1.0000001", "-1", "1e3", "abc", "1.2.3"] {
            assert!(UsdMicros::parse_usd(bad).is_err(), "{bad}");
        }
        assert_eq!(UsdMicros(15_000).to_string(), "$0.015000");
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(v in 0i64..1_000_000_000_000) {
            let s = UsdMicros(v).to_string();
            prop_assert_eq!(UsdMicros::parse_usd(&s), Ok(UsdMicros(v)));
        }
    }
}
