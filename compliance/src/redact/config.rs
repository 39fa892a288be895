//! The custom rules file (same JSON format as the legacy system).
//!
//! ```json
//! {
//!   "rules": [
//!     {"name": "custom_pattern", "pattern": "CUSTOM-[0-9]{6}", "type": "custom_id",
//!      "description": "Custom ID format"}
//!   ],
//!   "strategies": {"label": {"replacement": "[REDACTED:{type}]"}},
//!   "default_strategy": "label"
//! }
//! ```
//!
//! `strategies` and `default_strategy` are optional; unknown fields are ignored.

use serde::Deserialize;

/// The whole rules file.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RulesFile {
    /// Custom rules, added after the built-in detectors.
    #[serde(default)]
    pub(crate) rules: Vec<RuleSpec>,
    /// Per-strategy settings.
    #[serde(default)]
    pub(crate) strategies: Strategies,
    /// `label`, `mask` or `partial`.
    #[serde(default)]
    pub(crate) default_strategy: Option<String>,
}

/// One custom rule.
#[derive(Debug, Deserialize)]
pub(crate) struct RuleSpec {
    /// Rule name, used in error messages.
    pub(crate) name: String,
    /// Regular expression (Rust `regex` syntax).
    pub(crate) pattern: String,
    /// Detection type; defaults to the rule name.
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
}

/// The `strategies` object.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Strategies {
    /// Settings of the `label` strategy.
    #[serde(default)]
    pub(crate) label: LabelSettings,
}

/// The `strategies.label` object.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LabelSettings {
    /// Label template; `{type}` is replaced by the upper-case type.
    #[serde(default)]
    pub(crate) replacement: Option<String>,
}
