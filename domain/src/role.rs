use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// What an actor may do. Ordered: `Viewer < Operator < Auditor < Compliance < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Reads projections.
    Viewer,
    /// Ingests events, decides ordinary checkpoints.
    Operator,
    /// Exports and verifies, lists holds.
    Auditor,
    /// Holds, deletion, retention, labels.
    Compliance,
    /// Keys and actors.
    Admin,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 5] = [Role::Viewer, Role::Operator, Role::Auditor, Role::Compliance, Role::Admin];

    /// Name as written in flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Operator => "Operator",
            Role::Auditor => "Auditor",
            Role::Compliance => "Compliance",
            Role::Admin => "Admin",
        }
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|r| r.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| DomainError::BadRole(s.to_string()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Data sensitivity, used both as an actor's clearance and as an artifact's label.
/// Ordered: `Public < Internal < Confidential < Restricted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Clearance {
    /// Anyone.
    Public,
    /// Staff.
    Internal,
    /// Need to know.
    Confidential,
    /// Named people only.
    Restricted,
}

impl Clearance {
    /// All clearances, lowest first.
    pub const ALL: [Clearance; 4] = [Clearance::Public, Clearance::Internal, Clearance::Confidential, Clearance::Restricted];

    /// Name as written in flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Clearance::Public => "Public",
            Clearance::Internal => "Internal",
            Clearance::Confidential => "Confidential",
            Clearance::Restricted => "Restricted",
        }
    }
}

impl FromStr for Clearance {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|r| r.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| DomainError::BadClearance(s.to_string()))
    }
}

impl fmt::Display for Clearance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_names() {
        assert!(Role::Viewer < Role::Operator && Role::Auditor < Role::Compliance && Role::Compliance < Role::Admin);
        assert!(Clearance::Public < Clearance::Restricted);
        assert_eq!("compliance".parse::<Role>(), Ok(Role::Compliance));
        assert!("root".parse::<Role>().is_err());
        assert_eq!("Confidential".parse::<Clearance>(), Ok(Clearance::Confidential));
    }
}
