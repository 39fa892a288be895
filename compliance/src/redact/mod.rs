//! PII and secret redaction.
//!
//! A [`Redactor`] finds e-mail addresses, US phone numbers, US SSNs, credit
//! card numbers (Luhn-checked), `sk-` API keys, AWS access key ids, JWTs,
//! IPv4 addresses, http(s) URLs and PEM private keys — plus any custom rules
//! loaded from a rules file — and replaces them according to a [`Strategy`].
//!
//! ```
//! use custos_compliance::redact::{Redactor, Strategy};
//!
//! let redactor = Redactor::builtin(Strategy::Label);
//! let out = redactor.redact_str("mail admin@company.com or call (555) 123-4567");
//! assert_eq!(out.text, "mail [REDACTED:EMAIL] or call [REDACTED:PHONE]");
//! assert_eq!(out.counts.get("email"), Some(&1));
//!
//! // Redaction is idempotent: already-redacted text is left as it is.
//! let again = redactor.redact_str(&out.text);
//! assert_eq!(again.text, out.text);
//! assert!(again.counts.is_empty());
//! ```
//!
//! # How matches are chosen
//!
//! Every detector runs on the original text. Overlapping matches are resolved
//! by priority — built-in detectors in the order of [`BUILTIN_TYPES`] (most
//! specific first: `private_key`, `jwt`, `api_key`, `aws_access_key`, `url`,
//! `email`, `credit_card`, `ssn`, `phone`, `ipv4`), then custom rules in file
//! order — and within one detector the earlier, then longer, match wins. The
//! output is built once from the surviving matches.
//!
//! # Idempotence
//!
//! Redaction output is never re-matched: labels (`[REDACTED:EMAIL]`, or
//! whatever the label template renders), runs of three or more `*` (masks and
//! the middle of partial output) are protected spans, and detectors only run on
//! the text between them. The pass is then repeated on its own output until it
//! finds nothing more (in practice one or two extra passes, bounded), so
//! `redact(redact(x)) == redact(x)` and the second call counts nothing.

mod config;
mod detectors;
mod error;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;

use self::config::RulesFile;
pub use self::detectors::BUILTIN_TYPES;
use self::detectors::{Check, BUILTINS};
pub use self::error::RedactError;

/// The label template used unless a rules file overrides it.
pub const DEFAULT_LABEL_TEMPLATE: &str = "[REDACTED:{type}]";

/// What the [`Strategy::Mask`] strategy writes in place of a value: always
/// eight asterisks, so the value's length is not leaked.
pub const MASK: &str = "********";

/// The most passes [`Redactor::redact_str`] makes over one string. Each pass
/// strictly shrinks the unprotected part of the text, so this bound is only
/// reached with pathological custom label templates.
const MAX_PASSES: usize = 16;

/// How a detected value is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Replace with a label naming the type, `[REDACTED:EMAIL]` by default
    /// (the template can be changed by a rules file).
    #[default]
    Label,
    /// Replace with [`MASK`] (`********`), whatever the value's length.
    Mask,
    /// Keep the first two and last two characters around `***` (`ad***om`)
    /// for values of six characters or more; e-mail addresses keep two
    /// characters of each part (`ad***@co***`); shorter values become `***`.
    Partial,
}

impl Strategy {
    /// The strategy's name as used in rules files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Label => "label",
            Strategy::Mask => "mask",
            Strategy::Partial => "partial",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = RedactError;

    /// Parses `label`, `mask` or `partial` (ASCII case-insensitive, surrounding
    /// whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        [Strategy::Label, Strategy::Mask, Strategy::Partial]
            .into_iter()
            .find(|strategy| strategy.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| RedactError::UnknownStrategy(s.to_owned()))
    }
}

/// The result of redacting one string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    /// The redacted text.
    pub text: String,
    /// How many values of each type were redacted, keyed by lower-case type
    /// (`email`, `credit_card`, custom types, ...). Types with no match are
    /// absent.
    pub counts: BTreeMap<String, u64>,
}

impl Redacted {
    /// The total number of redacted values.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// One compiled detector, built-in or custom.
#[derive(Debug, Clone)]
struct Rule {
    /// Lower-case type, the key in the counts.
    kind: String,
    /// The rendered label for [`Strategy::Label`].
    label: String,
    regex: Regex,
    check: Check,
}

/// The redaction engine: an ordered set of detectors and a [`Strategy`].
///
/// Build it once and reuse it; it is cheap to clone and safe to share between
/// threads.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: Vec<Rule>,
    strategy: Strategy,
    /// Exact strings that are redaction output and must never be re-matched.
    protected: Vec<String>,
}

impl Default for Redactor {
    /// The built-in detectors with the [`Strategy::Label`] strategy.
    fn default() -> Self {
        Redactor::builtin(Strategy::Label)
    }
}

impl Redactor {
    /// A redactor with only the built-in detectors and the default label
    /// template.
    pub fn builtin(strategy: Strategy) -> Redactor {
        // The built-in patterns are literals covered by the unit tests; should
        // one ever fail to compile, `from_rules_json` reports it and this
        // constructor degrades to no built-in detectors instead of panicking.
        let builtins = BUILTINS.as_ref().map(Vec::as_slice).unwrap_or_default();
        let rules = builtins
            .iter()
            .map(|b| Rule {
                kind: b.kind.to_owned(),
                label: render_label(DEFAULT_LABEL_TEMPLATE, b.kind),
                regex: b.regex.clone(),
                check: b.check,
            })
            .collect();
        Redactor::assemble(rules, strategy)
    }

    /// A redactor with the built-in detectors plus the custom rules of a rules
    /// file, in the legacy system's format:
    ///
    /// ```json
    /// {
    ///   "rules": [
    ///     {"name": "custom_pattern", "pattern": "CUSTOM-[0-9]{6}", "type": "custom_id",
    ///      "description": "Custom ID format"}
    ///   ],
    ///   "strategies": {"label": {"replacement": "[REDACTED:{type}]"}},
    ///   "default_strategy": "label"
    /// }
    /// ```
    ///
    /// `strategies` and `default_strategy` are optional, a rule's `type`
    /// defaults to its `name` (types are lower-cased), and unknown fields are
    /// ignored. Custom rules rank below every built-in detector when matches
    /// overlap, so they can never split a private key or token.
    ///
    /// The strategy is `default_strategy_override` if given, else the file's
    /// `default_strategy`, else [`Strategy::Label`]. The file's
    /// `strategies.label.replacement`, if present, replaces the label template
    /// for built-in and custom types alike; `{type}` in it becomes the
    /// upper-case type.
    ///
    /// # Errors
    ///
    /// [`RedactError::RulesFile`] if the JSON is malformed,
    /// [`RedactError::InvalidPattern`] naming the rule whose pattern does not
    /// compile, [`RedactError::EmptyField`] for a rule with an empty name,
    /// pattern or type, and [`RedactError::UnknownStrategy`] for a bad
    /// `default_strategy`.
    pub fn from_rules_json(json: &str, default_strategy_override: Option<Strategy>) -> Result<Redactor, RedactError> {
        let file: RulesFile = serde_json::from_str(json).map_err(RedactError::RulesFile)?;

        let file_strategy = file.default_strategy.as_deref().map(Strategy::from_str).transpose()?;
        let strategy = default_strategy_override.or(file_strategy).unwrap_or_default();
        let template = file.strategies.label.replacement.as_deref().unwrap_or(DEFAULT_LABEL_TEMPLATE);

        let builtins =
            BUILTINS.as_ref().map_err(|(rule, source)| RedactError::Builtin { rule: (*rule).to_owned(), source: source.clone() })?;
        let mut rules: Vec<Rule> = builtins
            .iter()
            .map(|b| Rule { kind: b.kind.to_owned(), label: render_label(template, b.kind), regex: b.regex.clone(), check: b.check })
            .collect();

        for spec in file.rules {
            let name = spec.name.trim();
            if name.is_empty() {
                return Err(RedactError::EmptyField { rule: spec.name.clone(), field: "name" });
            }
            if spec.pattern.is_empty() {
                return Err(RedactError::EmptyField { rule: name.to_owned(), field: "pattern" });
            }
            let kind = spec.kind.as_deref().unwrap_or(name).trim().to_lowercase();
            if kind.is_empty() {
                return Err(RedactError::EmptyField { rule: name.to_owned(), field: "type" });
            }
            let regex = Regex::new(&spec.pattern).map_err(|source| RedactError::InvalidPattern { rule: name.to_owned(), source })?;
            rules.push(Rule { label: render_label(template, &kind), kind, regex, check: Check::None });
        }

        Ok(Redactor::assemble(rules, strategy))
    }

    /// The strategy this redactor applies.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The lower-case types this redactor detects, in priority order.
    pub fn types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            if !types.contains(&rule.kind.as_str()) {
                types.push(&rule.kind);
            }
        }
        types
    }

    /// Redacts every detected value in `text`.
    pub fn redact_str(&self, text: &str) -> Redacted {
        let mut counts = BTreeMap::new();
        let mut current = Cow::Borrowed(text);
        for _ in 0..MAX_PASSES {
            match self.pass(&current, &mut counts) {
                Some(next) => current = Cow::Owned(next),
                None => break,
            }
        }
        Redacted { text: current.into_owned(), counts }
    }

    /// Redacts every string inside `value` in place — object values and array
    /// elements, recursively; object keys, numbers, booleans and nulls are left
    /// untouched — and returns how many values of each type were redacted.
    pub fn redact_json(&self, value: &mut serde_json::Value) -> BTreeMap<String, u64> {
        use serde_json::Value;

        let mut counts = BTreeMap::new();
        // An explicit stack: a deeply nested value cannot overflow the call stack.
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    let redacted = self.redact_str(s);
                    if !redacted.counts.is_empty() {
                        *s = redacted.text;
                        for (kind, n) in redacted.counts {
                            *counts.entry(kind).or_insert(0) += n;
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => stack.extend(map.values_mut()),
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        counts
    }

    fn assemble(rules: Vec<Rule>, strategy: Strategy) -> Redactor {
        let mut protected: Vec<String> = Vec::new();
        for rule in &rules {
            for label in [rule.label.clone(), render_label(DEFAULT_LABEL_TEMPLATE, &rule.kind)] {
                if !label.is_empty() && !protected.contains(&label) {
                    protected.push(label);
                }
            }
        }
        Redactor { rules, strategy, protected }
    }

    /// One redaction pass over `text`; `None` when nothing was found.
    fn pass(&self, text: &str, counts: &mut BTreeMap<String, u64>) -> Option<String> {
        // (priority, start, end) of every acceptable match, in absolute offsets.
        let mut candidates: Vec<(usize, usize, usize)> = Vec::new();
        for segment in unprotected_segments(text, &self.protected) {
            let haystack = &text[segment.clone()];
            for (priority, rule) in self.rules.iter().enumerate() {
                for m in rule.regex.find_iter(haystack) {
                    if m.is_empty() {
                        continue;
                    }
                    for r in rule.check.accept(m.as_str()) {
                        if !r.is_empty() {
                            let start = segment.start + m.start() + r.start;
                            candidates.push((priority, start, start + r.len()));
                        }
                    }
                }
            }
        }
        if candidates.is_empty() {
            return None;
        }

        // Highest priority first; within a rule, earlier then longer.
        candidates.sort_by_key(|&(priority, start, end)| (priority, start, usize::MAX - (end - start)));
        let mut accepted: BTreeMap<usize, (usize, &Rule)> = BTreeMap::new();
        for (priority, start, end) in candidates {
            let overlaps = accepted.range(..end).next_back().is_some_and(|(_, &(prev_end, _))| prev_end > start);
            if overlaps {
                continue;
            }
            if let Some(rule) = self.rules.get(priority) {
                accepted.insert(start, (end, rule));
            }
        }

        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (&start, &(end, rule)) in &accepted {
            out.push_str(&text[last..start]);
            out.push_str(&self.replacement(rule, &text[start..end]));
            *counts.entry(rule.kind.clone()).or_insert(0) += 1;
            last = end;
        }
        out.push_str(&text[last..]);
        Some(out)
    }

    fn replacement<'a>(&self, rule: &'a Rule, value: &str) -> Cow<'a, str> {
        match self.strategy {
            Strategy::Label => Cow::Borrowed(&rule.label),
            Strategy::Mask => Cow::Borrowed(MASK),
            Strategy::Partial => Cow::Owned(partial(&rule.kind, value)),
        }
    }
}

/// Renders a label template for a type: `{type}` becomes the upper-case type.
fn render_label(template: &str, kind: &str) -> String {
    template.replace("{type}", &kind.to_uppercase())
}

/// The [`Strategy::Partial`] form of `value`.
fn partial(kind: &str, value: &str) -> String {
    fn first_two(s: &str) -> &str {
        let end = s.char_indices().nth(2).map_or(s.len(), |(i, _)| i);
        &s[..end]
    }
    if kind == "email" {
        if let Some((local, domain)) = value.rsplit_once('@') {
            return format!("{}***@{}***", first_two(local), first_two(domain));
        }
    }
    let chars = value.chars().count();
    if chars < 6 {
        return "***".to_owned();
    }
    let tail_start = value.char_indices().nth(chars - 2).map_or(value.len(), |(i, _)| i);
    format!("{}***{}", first_two(value), &value[tail_start..])
}

/// The byte ranges of `text` outside redaction output: outside any exact
/// occurrence of a `protected` label and outside runs of three or more `*`.
fn unprotected_segments(text: &str, protected: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' {
            let start = i;
            while i < bytes.len() && bytes[i] == b'*' {
                i += 1;
            }
            if i - start >= 3 {
                spans.push(start..i);
            }
        } else {
            i += 1;
        }
    }
    for label in protected {
        spans.extend(text.match_indices(label.as_str()).map(|(s, m)| s..s + m.len()));
    }
    spans.sort_by_key(|r| r.start);

    let mut segments = Vec::with_capacity(spans.len() + 1);
    let mut cursor = 0;
    for span in spans {
        if span.start > cursor {
            segments.push(cursor..span.start);
        }
        cursor = cursor.max(span.end);
    }
    if cursor < text.len() {
        segments.push(cursor..text.len());
    }
    segments
}
