use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// What an event is about; decides its retention class and its export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Workflow runs.
    Runs,
    /// Costs of runs.
    Costs,
    /// Human approval checkpoints.
    Approvals,
    /// Stored artifacts and their labels.
    Artifacts,
    /// Work queue activity.
    Queue,
    /// Dead-letter queue.
    Dlq,
    /// Governance: holds, deletions, keys, actors, exports, retention.
    Governance,
    /// Anything else.
    Custom,
}

impl Category {
    /// Every category, in a stable order (also the order of report columns).
    pub const ALL: [Category; 8] = [
        Category::Runs,
        Category::Costs,
        Category::Approvals,
        Category::Artifacts,
        Category::Queue,
        Category::Dlq,
        Category::Governance,
        Category::Custom,
    ];

    /// Lowercase name used on disk and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Runs => "runs",
            Category::Costs => "costs",
            Category::Approvals => "approvals",
            Category::Artifacts => "artifacts",
            Category::Queue => "queue",
            Category::Dlq => "dlq",
            Category::Governance => "governance",
            Category::Custom => "custom",
        }
    }

    /// Stable one-byte code used in the binary header encoding (never reorder).
    pub fn code(self) -> u8 {
        match self {
            Category::Runs => 1,
            Category::Costs => 2,
            Category::Approvals => 3,
            Category::Artifacts => 4,
            Category::Queue => 5,
            Category::Dlq => 6,
            Category::Governance => 7,
            Category::Custom => 8,
        }
    }

    /// Inverse of [`Category::code`].
    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == c)
    }
}

impl FromStr for Category {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s).ok_or_else(|| DomainError::BadCategory(s.to_string()))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_roundtrip() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(Category::from_code(c.code()), Some(c));
        }
        assert!("Runs".parse::<Category>().is_err());
        assert_eq!(Category::from_code(0), None);
    }
}
