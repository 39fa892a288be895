//! Artifact storage tiers (issue 8). A tier is recorded state: the embedded store keeps
//! every artifact on one medium, so the tier is what an operator's mover or object store
//! acts on and what `lifecycle summary` reports. Tiers only ever get colder by age;
//! `artifacts restore` is the one way back.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// `hot` < `warm` < `cold` (in that order of age).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// New and restored artifacts.
    Hot,
    /// Past the hot window.
    Warm,
    /// Past the warm window; purged after the cold window.
    Cold,
}

impl Tier {
    /// Every tier, hottest first.
    pub const ALL: [Tier; 3] = [Tier::Hot, Tier::Warm, Tier::Cold];

    /// Lower-case name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hot" => Ok(Tier::Hot),
            "warm" => Ok(Tier::Warm),
            "cold" => Ok(Tier::Cold),
            _ => Err(DomainError::BadTier(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_by_age() {
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>().ok(), Some(t));
        }
        assert!(Tier::Hot < Tier::Warm && Tier::Warm < Tier::Cold);
        assert!("lukewarm".parse::<Tier>().is_err());
    }
}
