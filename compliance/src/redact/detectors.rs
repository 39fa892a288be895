//! Built-in detectors: their patterns, their priority order and the
//! post-match checks (Luhn, SSN area rules, key entropy) that regexes alone
//! cannot express.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// A check applied to every regex match before it counts as a detection.
///
/// A check returns the sub-ranges (relative to the match) that are really
/// sensitive; an empty result rejects the match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Accept the whole match.
    None,
    /// Credit card: 13–19 digits passing the Luhn checksum.
    Luhn,
    /// US SSN: area not 000/666/9xx, group not 00, serial not 0000.
    Ssn,
    /// API key: the body must contain a digit or an upper-case letter, so
    /// hyphenated prose such as `sk-learn-compatible-pipelines` is left alone.
    ApiKey,
}

impl Check {
    /// The sensitive sub-ranges of `matched` (empty when it is rejected).
    pub(crate) fn accept(self, matched: &str) -> Vec<Range<usize>> {
        let whole = || std::iter::once(0..matched.len()).collect();
        match self {
            Check::None => whole(),
            Check::Ssn if ssn_ok(matched) => whole(),
            Check::ApiKey if api_key_ok(matched) => whole(),
            Check::Ssn | Check::ApiKey => Vec::new(),
            Check::Luhn => card_ranges(matched),
        }
    }
}

/// One built-in detector: its type (the lower-case count key), pattern and check.
pub(crate) struct Builtin {
    pub(crate) kind: &'static str,
    pub(crate) regex: Regex,
    pub(crate) check: Check,
}

/// The built-in detectors, most specific first. The order is the priority
/// used to resolve overlapping matches.
const SPECS: [(&str, &str, Check); 10] = [
    (
        "private_key",
        // Through the matching END line; a block truncated before its END line
        // is redacted to the end of the text rather than leaking key material.
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\z)",
        Check::None,
    ),
    ("jwt", r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", Check::None),
    (
        "api_key",
        // OpenAI `sk-...` and Anthropic `sk-ant-...`.
        r"\bsk-(?:ant-)?[A-Za-z0-9_-]{20,}",
        Check::ApiKey,
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", Check::None),
    (
        "url",
        // Trailing punctuation (end of a sentence, closing parenthesis) is not
        // part of the URL.
        r#"(?i)\bhttps?://[^\s<>"'`{}|\\^\[\]]*[^\s<>"'`{}|\\^\[\].,;:!?)]"#,
        Check::None,
    ),
    ("email", r"\b[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b", Check::None),
    (
        "credit_card",
        // Any run of digit groups separated by single spaces or dashes; the
        // Luhn check then picks the 13–19 digit windows that are card numbers.
        r"\b\d+(?:[ -]\d+)*\b",
        Check::Luhn,
    ),
    ("ssn", r"\b\d{3}-\d{2}-\d{4}\b", Check::Ssn),
    (
        "phone",
        // `+1` forms may omit separators; bare forms need them, so ten-digit
        // numbers such as Unix timestamps are not mistaken for phone numbers.
        r"\+1[-. ]?(?:\(\d{3}\)[-. ]?|\d{3}[-. ]?)\d{3}[-. ]?\d{4}\b|(?:\b1[-. ])?(?:\(\d{3}\)[-. ]?|\b\d{3}[-. ])\d{3}[-. ]\d{4}\b",
        Check::None,
    ),
    ("ipv4", r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b", Check::None),
];

/// The types of the built-in detectors, in priority order (most specific first).
pub const BUILTIN_TYPES: [&str; 10] =
    ["private_key", "jwt", "api_key", "aws_access_key", "url", "email", "credit_card", "ssn", "phone", "ipv4"];

/// The compiled built-in detectors, compiled once per process. An `Err` names
/// the detector whose pattern failed to compile (a programming error that the
/// unit tests catch).
pub(crate) static BUILTINS: LazyLock<Result<Vec<Builtin>, (&'static str, regex::Error)>> = LazyLock::new(|| {
    SPECS
        .iter()
        .map(|&(kind, pattern, check)| Regex::new(pattern).map(|regex| Builtin { kind, regex, check }).map_err(|e| (kind, e)))
        .collect()
});

/// Whether `digits` (ASCII digits only) passes the Luhn checksum.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if v > 9 {
            return false;
        }
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    // Not `is_multiple_of`: the workspace MSRV (1.85) predates it.
    !digits.is_empty() && matches!(sum % 10, 0)
}

/// The card numbers inside a run of digit groups (`matched` is digits
/// separated by single spaces or dashes).
///
/// A window is either one group of 13–19 digits, or consecutive groups of
/// 3–8 digits each totalling 13–19 digits (4-4-4-4, 4-6-5, 4-4-4-4-3, ...).
/// Windows are taken left to right, longest Luhn-valid one first, so a card
/// number preceded or followed by other numbers is still found.
fn card_ranges(matched: &str) -> Vec<Range<usize>> {
    let bytes = matched.as_bytes();
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                groups.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push(s..bytes.len());
    }

    let mut found = Vec::new();
    let mut i = 0;
    while i < groups.len() {
        let mut best = None;
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        for j in i..groups.len() {
            let group = &groups[j];
            digits.extend_from_slice(&bytes[group.clone()]);
            if digits.len() > 19 {
                break;
            }
            let multi_ok = j == i || groups[i..=j].iter().all(|g| (3..=8).contains(&g.len()));
            if digits.len() >= 13 && multi_ok && luhn(&digits) {
                best = Some(j);
            }
        }
        match best {
            Some(j) => {
                found.push(groups[i].start..groups[j].end);
                i = j + 1;
            }
            None => i += 1,
        }
    }
    found
}

/// Whether `matched` (`ddd-dd-dddd`) is a plausible SSN.
fn ssn_ok(matched: &str) -> bool {
    let mut parts = matched.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Whether the body of an `sk-` key looks random rather than like prose.
fn api_key_ok(matched: &str) -> bool {
    let body = matched.strip_prefix("sk-").unwrap_or(matched);
    body.bytes().any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}
