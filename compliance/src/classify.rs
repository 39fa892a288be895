//! Classification and clearance policy: what an exporter (or reader) may see.
//!
//! Labels and clearances share one scale, `Public < Internal < Confidential < Restricted`.
//! An item without a label takes its tenant's default label (`Internal` unless set),
//! except under `--require-labels`, where an unlabeled item is denied outright.

use std::fmt;
use std::str::FromStr;

use custos_domain::Clearance;

/// Name of the per-tenant setting holding the default label.
pub const DEFAULT_LABEL_SETTING: &str = "default_label";
/// Default label when a tenant has not set one.
pub const DEFAULT_LABEL: Clearance = Clearance::Internal;

/// What an export does with an item the exporter is not cleared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Omit it (its header stays in `chain.jsonl`), count it, record `export_denied`.
    #[default]
    Deny,
    /// Keep its header line in the category file, without salt, actor or data, marked redacted.
    Redact,
}

impl Policy {
    /// Name as written in flags and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Deny => "deny",
            Policy::Redact => "redact",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "deny" => Ok(Policy::Deny),
            "redact" => Ok(Policy::Redact),
            _ => Err(format!("unknown policy {s:?}: use deny or redact")),
        }
    }
}

/// Why an item is withheld, when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Its (effective) label is above the clearance.
    AboveClearance(Clearance),
    /// It has no label and labels are required.
    Unlabeled,
}

impl Denial {
    /// Short reason for `export_denied` events.
    pub fn reason(self) -> String {
        match self {
            Denial::AboveClearance(l) => format!("label {l} above clearance"),
            Denial::Unlabeled => "unlabeled (labels required)".into(),
        }
    }
}

/// May `clearance` see an item labelled `label`? `default` applies to unlabeled items
/// unless `require_labels`.
pub fn decide(clearance: Clearance, label: Option<Clearance>, default: Clearance, require_labels: bool) -> Result<(), Denial> {
    match label {
        None if require_labels => Err(Denial::Unlabeled),
        l => {
            let eff = l.unwrap_or(default);
            if clearance >= eff {
                Ok(())
            } else {
                Err(Denial::AboveClearance(eff))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        for c in Clearance::ALL {
            for l in Clearance::ALL {
                assert_eq!(decide(c, Some(l), DEFAULT_LABEL, false).is_ok(), c >= l);
                assert_eq!(decide(c, Some(l), DEFAULT_LABEL, true).is_ok(), c >= l);
            }
            assert_eq!(decide(c, None, DEFAULT_LABEL, false).is_ok(), c >= Clearance::Internal);
            assert_eq!(decide(c, None, Clearance::Public, false), Ok(()));
            assert_eq!(decide(c, None, Clearance::Public, true), Err(Denial::Unlabeled));
        }
        assert_eq!("REDACT".parse::<Policy>(), Ok(Policy::Redact));
        assert!("omit".parse::<Policy>().is_err());
    }
}
