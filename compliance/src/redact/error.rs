//! Errors of the redaction engine.

/// Why a [`Redactor`](super::Redactor) could not be built or a strategy name
/// could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The custom rules file is not valid JSON or does not have the expected
    /// shape (`rules` must be a list of objects with `name` and `pattern`).
    #[error("invalid redaction rules file: {0}")]
    RulesFile(#[source] serde_json::Error),

    /// A custom rule's `pattern` is not a valid regular expression.
    #[error("redaction rule `{rule}` has an invalid pattern: {source}")]
    InvalidPattern {
        /// The `name` of the offending rule.
        rule: String,
        /// What the regex compiler reported.
        #[source]
        source: regex::Error,
    },

    /// A custom rule has an empty (or blank) required field.
    #[error("redaction rule `{rule}`: `{field}` must not be empty")]
    EmptyField {
        /// The `name` of the offending rule (may itself be empty).
        rule: String,
        /// The empty field: `name`, `pattern` or `type`.
        field: &'static str,
    },

    /// A strategy name is not one of `label`, `mask` or `partial`.
    #[error("unknown redaction strategy `{0}` (expected one of: label, mask, partial)")]
    UnknownStrategy(String),

    /// A built-in detector failed to compile. This is a programming error in
    /// custos itself, never a problem with the caller's input.
    #[error("built-in redaction detector `{rule}` failed to compile: {source}")]
    Builtin {
        /// The built-in detector's type (e.g. `email`).
        rule: String,
        /// What the regex compiler reported.
        #[source]
        source: regex::Error,
    },
}
