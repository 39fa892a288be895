//! Unit and property tests of the redaction engine.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::detectors::{luhn, BUILTINS};
use super::*;
// `Strategy` is ours; proptest's trait of the same name is used by path.
use super::Strategy;
use proptest::strategy::Strategy as _;

fn label() -> Redactor {
    Redactor::builtin(Strategy::Label)
}

/// Redacts with labels and returns the text.
fn lab(text: &str) -> String {
    label().redact_str(text).text
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
}

/// Asserts `sample` is detected as exactly one value of `kind`, both alone and
/// surrounded by prose.
fn assert_detected(sample: &str, kind: &str) {
    let redactor = label();
    let tag = format!("[REDACTED:{}]", kind.to_uppercase());
    let alone = redactor.redact_str(sample);
    assert_eq!(alone.text, tag, "{sample:?} alone");
    assert_eq!(alone.counts, counts(&[(kind, 1)]), "{sample:?} alone");
    let embedded = redactor.redact_str(&format!("value: {sample} (end)"));
    assert_eq!(embedded.text, format!("value: {tag} (end)"), "{sample:?} embedded");
    assert_eq!(embedded.counts, counts(&[(kind, 1)]), "{sample:?} embedded");
}

/// Asserts nothing at all is redacted in `text`.
fn assert_untouched(text: &str) {
    let out = label().redact_str(text);
    assert_eq!(out.text, text, "{text:?} should be left alone");
    assert!(out.counts.is_empty(), "{text:?}: {:?}", out.counts);
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\nuser@example.com 4111111111111111\n-----END RSA PRIVATE KEY-----";

// ---------------------------------------------------------------- built-ins

#[test]
fn builtin_patterns_all_compile_in_priority_order() {
    let builtins = BUILTINS.as_ref().map_err(|(k, e)| format!("{k}: {e}"));
    let kinds: Vec<&str> = builtins.iter().flat_map(|b| b.iter().map(|b| b.kind)).collect();
    assert_eq!(kinds, BUILTIN_TYPES.to_vec());
    assert_eq!(label().types(), BUILTIN_TYPES.to_vec());
}

#[test]
fn email_positive_and_negative() {
    for s in ["admin@company.com", "john.doe+tag@mail.example.co.uk", "a_b-c%d@sub-domain.example.org"] {
        assert_detected(s, "email");
    }
    for s in ["admin@company", "user@localhost", "not an @ email", "@company.com"] {
        assert_untouched(s);
    }
}

#[test]
fn phone_positive_and_negative() {
    for s in [
        "(555) 123-4567",
        "555-123-4567",
        "+1 555 123 4567",
        "555.123.4567",
        "555 123 4567",
        "+15551234567",
        "+1 (555) 123-4567",
        "1-555-123-4567",
    ] {
        assert_detected(s, "phone");
    }
    // Unix timestamps, short numbers, odd groupings and numbers glued to words.
    for s in ["1700000000", "555-1234", "12-345-6789", "555-123-45678", "ID555-123-4567"] {
        assert_untouched(s);
    }
}

#[test]
fn ssn_positive_and_negative() {
    for s in ["123-45-6789", "078-05-1120", "899-99-9999"] {
        assert_detected(s, "ssn");
    }
    for s in ["000-12-3456", "666-12-3456", "900-12-3456", "987-65-4321", "123-00-4567", "123-45-0000", "123-45-67890", "123456789"] {
        assert_untouched(s);
    }
}

#[test]
fn luhn_checksum() {
    assert!(luhn(b"4111111111111111"));
    assert!(luhn(b"378282246310005"));
    assert!(luhn(b"79927398713"));
    assert!(!luhn(b"4111111111111112"));
    assert!(!luhn(b"1234567812345678"));
    assert!(!luhn(b""));
    assert!(!luhn(b"41x1"));
}

#[test]
fn credit_card_positive_and_negative() {
    for s in [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011 0009 9013 9424",
    ] {
        assert_detected(s, "credit_card");
    }
    // 16 digits failing Luhn, too short, too long, and a Luhn-valid number in
    // a grouping no card uses (a one-digit group).
    for s in
        ["4111 1111 1111 1112", "1234567812345678", "1234-5678-1234-5678", "411111111111", "41111111111111111111111", "41111 11111 11111 1"]
    {
        assert_untouched(s);
    }
    // A card next to other numbers is still found, and only the card is taken.
    assert_eq!(lab("order 12 4111 1111 1111 1111 qty 3"), "order 12 [REDACTED:CREDIT_CARD] qty 3");
    assert_eq!(lab("4111 1111 1111 1111 5555 5555 5555 4444"), "[REDACTED:CREDIT_CARD] [REDACTED:CREDIT_CARD]");
}

#[test]
fn api_key_positive_and_negative() {
    for s in ["sk-abcdefghij0123456789", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx_yz-0123", "sk-ant-api03-AbCdEf0123456789_xyz-QRStuv"] {
        assert_detected(s, "api_key");
    }
    for s in ["sk-short123", "sk-learn-compatible-pipelines", "task-abcdefghij0123456789", "ask-ABCDEFGHIJ0123456789"] {
        assert_untouched(s);
    }
}

#[test]
fn aws_access_key_positive_and_negative() {
    for s in ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"] {
        assert_detected(s, "aws_access_key");
    }
    for s in ["AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLEX", "akiaiosfodnn7example", "ABIAIOSFODNN7EXAMPLE", "XAKIAIOSFODNN7EXAMPLE"] {
        assert_untouched(s);
    }
}

#[test]
fn jwt_positive_and_negative() {
    assert_detected(JWT, "jwt");
    assert_eq!(lab(&format!("Authorization: Bearer {JWT}")), "Authorization: Bearer [REDACTED:JWT]");
    for s in ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", "abJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"] {
        assert_untouched(s);
    }
}

#[test]
fn ipv4_positive_and_negative() {
    for s in ["192.168.1.1", "10.0.0.255", "255.255.255.255", "0.0.0.0"] {
        assert_detected(s, "ipv4");
    }
    for s in ["999.1.1.1", "256.1.1.1", "1.1.1.999", "1.2.3", "01.02.03.04", "version 1.2.3"] {
        assert_untouched(s);
    }
}

#[test]
fn url_positive_and_negative() {
    for s in ["https://example.com/path?q=1&r=2#frag", "http://example.com", "HTTPS://Example.COM/A", "http://192.168.1.1:8080/admin"] {
        assert_detected(s, "url");
    }
    // Trailing sentence punctuation stays outside the URL.
    assert_eq!(lab("see https://example.com/docs."), "see [REDACTED:URL].");
    for s in ["ftp://example.com", "example.com", "https://", "nothttps://example.com"] {
        assert_untouched(s);
    }
}

#[test]
fn private_key_positive_and_negative() {
    // The whole block goes, including the e-mail and card number inside it.
    let out = label().redact_str(&format!("key:\n{RSA_KEY}\ndone"));
    assert_eq!(out.text, "key:\n[REDACTED:PRIVATE_KEY]\ndone");
    assert_eq!(out.counts, counts(&[("private_key", 1)]));
    assert_detected(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
        "private_key",
    );
    assert_detected("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----", "private_key");
    // Two blocks are two matches, not one spanning the text between them.
    assert_eq!(lab(&format!("{RSA_KEY}\nbetween\n{RSA_KEY}")), "[REDACTED:PRIVATE_KEY]\nbetween\n[REDACTED:PRIVATE_KEY]");
    // A block truncated before its END line is redacted to the end.
    assert_eq!(lab("log: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrY"), "log: [REDACTED:PRIVATE_KEY]");
    for s in [
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    ] {
        assert_untouched(s);
    }
}

#[test]
fn hashes_and_plain_text_are_untouched() {
    for s in [
        "",
        "hello world",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "2024-01-15T10:20:30Z seq 42 amount 1234.56",
        "123e4567-e89b-12d3-a456-426614174000",
    ] {
        assert_untouched(s);
    }
}

// ------------------------------------------------------- overlap / priority

#[test]
fn overlapping_matches_keep_the_more_specific_detector() {
    // The URL contains an e-mail and an IP: one URL.
    let out = label().redact_str("go to http://192.168.1.1/u/admin@company.com now");
    assert_eq!(out.text, "go to [REDACTED:URL] now");
    assert_eq!(out.counts, counts(&[("url", 1)]));

    // An API key inside a URL wins over the URL; the rest of the URL is still redacted.
    let out = label().redact_str("https://api.example.com/v1?key=sk-abcdefghij0123456789");
    assert_eq!(out.text, "[REDACTED:URL][REDACTED:API_KEY]");
    assert_eq!(out.counts, counts(&[("api_key", 1), ("url", 1)]));

    let out = label().redact_str("mail admin@company.com, call (555) 123-4567, ssn 123-45-6789, ip 10.0.0.1, card 4111 1111 1111 1111");
    assert_eq!(
        out.text,
        "mail [REDACTED:EMAIL], call [REDACTED:PHONE], ssn [REDACTED:SSN], ip [REDACTED:IPV4], card [REDACTED:CREDIT_CARD]"
    );
    assert_eq!(out.counts, counts(&[("credit_card", 1), ("email", 1), ("ipv4", 1), ("phone", 1), ("ssn", 1)]));
    assert_eq!(out.total(), 5);
}

#[test]
fn existing_redaction_output_is_not_rematched() {
    let custom = Redactor::from_rules_json(
        r#"{"rules": [
            {"name": "shouty", "pattern": "[A-Z]{4,}", "type": "shout"},
            {"name": "stars", "pattern": "\\*{3,}", "type": "stars"}
        ]}"#,
        None,
    );
    let Ok(custom) = custom else { panic!("{custom:?}") };
    let text = "[REDACTED:EMAIL] ******** ad***@co*** [REDACTED:SHOUT]";
    let out = custom.redact_str(text);
    assert_eq!(out.text, text);
    assert!(out.counts.is_empty());
    // Outside the labels the custom rule still applies.
    assert_eq!(custom.redact_str("LOUD [REDACTED:EMAIL]").text, "[REDACTED:SHOUT] [REDACTED:EMAIL]");
}

// --------------------------------------------------------------- strategies

#[test]
fn strategy_from_str() {
    assert!(matches!("label".parse(), Ok(Strategy::Label)));
    assert!(matches!("mask".parse(), Ok(Strategy::Mask)));
    assert!(matches!("partial".parse(), Ok(Strategy::Partial)));
    assert!(matches!(" Mask ".parse(), Ok(Strategy::Mask)));
    let err = "blur".parse::<Strategy>();
    assert!(matches!(&err, Err(RedactError::UnknownStrategy(s)) if s == "blur"));
    let msg = err.map(|_| ()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("`blur`") && msg.contains("label, mask, partial"), "{msg}");
    for s in [Strategy::Label, Strategy::Mask, Strategy::Partial] {
        assert_eq!(s.to_string().parse::<Strategy>().ok(), Some(s));
    }
    assert_eq!(Strategy::default(), Strategy::Label);
}

#[test]
fn label_strategy_exact_output() {
    let out = label().redact_str(&format!("a admin@company.com b (555) 123-4567 c sk-abcdefghij0123456789 d AKIAIOSFODNN7EXAMPLE e {JWT}"));
    assert_eq!(out.text, "a [REDACTED:EMAIL] b [REDACTED:PHONE] c [REDACTED:API_KEY] d [REDACTED:AWS_ACCESS_KEY] e [REDACTED:JWT]");
}

#[test]
fn mask_strategy_exact_output() {
    let mask = Redactor::builtin(Strategy::Mask);
    let out = mask.redact_str("mail admin@company.com ip 10.0.0.1 key sk-abcdefghij0123456789xyzxyzxyz");
    assert_eq!(out.text, "mail ******** ip ******** key ********");
    assert_eq!(out.counts, counts(&[("api_key", 1), ("email", 1), ("ipv4", 1)]));
    assert_eq!(mask.strategy(), Strategy::Mask);
}

#[test]
fn partial_strategy_exact_output() {
    let partial_redactor = Redactor::builtin(Strategy::Partial);
    let p = |s: &str| partial_redactor.redact_str(s).text;
    assert_eq!(p("admin@company.com"), "ad***@co***");
    assert_eq!(p("mail a@b.co now"), "mail a***@b.*** now");
    assert_eq!(p("sk-abcdefghij0123456789"), "sk***89");
    assert_eq!(p("ip 10.0.0.1"), "ip 10***.1");
    assert_eq!(p("(555) 123-4567"), "(5***67");
    assert_eq!(p("4111 1111 1111 1111"), "41***11");
    assert_eq!(p("123-45-6789"), "12***89");
    assert_eq!(partial("custom", "adminroom"), "ad***om");
    assert_eq!(partial("custom", "abcdef"), "ab***ef");
    assert_eq!(partial("custom", "abcde"), "***");
    assert_eq!(partial("custom", "ééééééé"), "éé***éé");

    // Short values (custom rule) become `***`.
    let custom =
        Redactor::from_rules_json(r#"{"rules": [{"name": "pin", "pattern": "PIN[0-9]{2}", "type": "pin"}]}"#, Some(Strategy::Partial));
    let Ok(custom) = custom else { panic!("{custom:?}") };
    let out = custom.redact_str("pin PIN42 id 1.2.3.4");
    assert_eq!(out.text, "pin *** id 1.***.4");
    assert_eq!(out.counts, counts(&[("ipv4", 1), ("pin", 1)]));
}

// ------------------------------------------------------------- custom rules

const CUSTOM: &str = r#"{
  "rules": [
    {"name": "custom_pattern", "pattern": "CUSTOM-[0-9]{6}", "type": "custom_id", "description": "Custom ID format"}
  ],
  "strategies": {"label": {"replacement": "[REDACTED:{type}]"}},
  "default_strategy": "label",
  "version": 3
}"#;

#[test]
fn custom_rule_matches_alongside_builtins() {
    let redactor = Redactor::from_rules_json(CUSTOM, None);
    let Ok(redactor) = redactor else { panic!("{redactor:?}") };
    assert_eq!(redactor.strategy(), Strategy::Label);
    let out = redactor.redact_str("id CUSTOM-123456 for admin@company.com, not CUSTOM-12345");
    assert_eq!(out.text, "id [REDACTED:CUSTOM_ID] for [REDACTED:EMAIL], not CUSTOM-12345");
    assert_eq!(out.counts, counts(&[("custom_id", 1), ("email", 1)]));
    assert!(redactor.types().contains(&"custom_id"));
}

#[test]
fn custom_rule_bad_regex_names_the_rule() {
    let json = r#"{"rules": [{"name": "broken_rule", "pattern": "CUSTOM-[0-9", "type": "x"}]}"#;
    let err = Redactor::from_rules_json(json, None);
    assert!(matches!(&err, Err(RedactError::InvalidPattern { rule, .. }) if rule == "broken_rule"));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("broken_rule"), "{msg}");
}

#[test]
fn custom_rules_file_errors() {
    assert!(matches!(Redactor::from_rules_json("{not json", None), Err(RedactError::RulesFile(_))));
    assert!(matches!(Redactor::from_rules_json(r#"{"rules": [{"name": "x"}]}"#, None), Err(RedactError::RulesFile(_))));
    assert!(matches!(
        Redactor::from_rules_json(r#"{"rules": [{"name": "x", "pattern": ""}]}"#, None),
        Err(RedactError::EmptyField { field: "pattern", .. })
    ));
    assert!(matches!(
        Redactor::from_rules_json(r#"{"rules": [{"name": " ", "pattern": "a"}]}"#, None),
        Err(RedactError::EmptyField { field: "name", .. })
    ));
    assert!(matches!(
        Redactor::from_rules_json(r#"{"rules": [{"name": "x", "pattern": "a", "type": ""}]}"#, None),
        Err(RedactError::EmptyField { field: "type", .. })
    ));
    // A bad default strategy is an error even when overridden.
    let err = Redactor::from_rules_json(r#"{"default_strategy": "blur"}"#, Some(Strategy::Mask));
    assert!(matches!(&err, Err(RedactError::UnknownStrategy(s)) if s == "blur"));
}

#[test]
fn custom_rules_file_strategy_template_and_defaults() {
    // default_strategy from the file, and the override winning over it.
    let json = r#"{"rules": [], "default_strategy": "mask"}"#;
    let file = Redactor::from_rules_json(json, None).map(|r| r.strategy());
    assert!(matches!(file, Ok(Strategy::Mask)));
    let overridden = Redactor::from_rules_json(json, Some(Strategy::Partial)).map(|r| r.strategy());
    assert!(matches!(overridden, Ok(Strategy::Partial)));
    let empty = Redactor::from_rules_json("{}", None).map(|r| r.strategy());
    assert!(matches!(empty, Ok(Strategy::Label)));

    // Template override applies to built-in and custom types; type defaults to
    // the rule name and is case-normalised.
    let json = r#"{
        "rules": [{"name": "Ticket", "pattern": "TCK-[0-9]+"}],
        "strategies": {"label": {"replacement": "<<{type}>>"}, "mask": {"ignored": true}}
    }"#;
    let redactor = Redactor::from_rules_json(json, None);
    let Ok(redactor) = redactor else { panic!("{redactor:?}") };
    let out = redactor.redact_str("TCK-42 from admin@company.com");
    assert_eq!(out.text, "<<TICKET>> from <<EMAIL>>");
    assert_eq!(out.counts, counts(&[("email", 1), ("ticket", 1)]));
    let again = redactor.redact_str(&out.text);
    assert_eq!(again.text, out.text);
    assert!(again.counts.is_empty());
}

// -------------------------------------------------------------------- JSON

#[test]
fn redact_json_nested_values_not_keys() {
    let mut value = json!({
        "admin@company.com": "key stays, value 10.0.0.1 goes",
        "user": {
            "email": "admin@company.com",
            "phones": ["555-123-4567", {"work": "(555) 123-4567"}, 5551234567_u64],
            "age": 42,
            "active": true,
            "note": null,
            "ssn": "123-45-6789"
        },
        "list": [[["deep admin@company.com"]], "nothing here", 1.5]
    });
    let counts_out = label().redact_json(&mut value);
    assert_eq!(
        value,
        json!({
            "admin@company.com": "key stays, value [REDACTED:IPV4] goes",
            "user": {
                "email": "[REDACTED:EMAIL]",
                "phones": ["[REDACTED:PHONE]", {"work": "[REDACTED:PHONE]"}, 5551234567_u64],
                "age": 42,
                "active": true,
                "note": null,
                "ssn": "[REDACTED:SSN]"
            },
            "list": [[["deep [REDACTED:EMAIL]"]], "nothing here", 1.5]
        })
    );
    assert_eq!(counts_out, counts(&[("email", 2), ("ipv4", 1), ("phone", 2), ("ssn", 1)]));
    // Second time round: nothing left.
    let before = value.clone();
    assert!(label().redact_json(&mut value).is_empty());
    assert_eq!(value, before);

    let mut scalar = json!("sk-abcdefghij0123456789");
    assert_eq!(label().redact_json(&mut scalar), counts(&[("api_key", 1)]));
    assert_eq!(scalar, json!("[REDACTED:API_KEY]"));
}

// ------------------------------------------------------------- idempotence

const SAMPLES: &[&str] = &[
    "admin@company.com",
    "a@b.co",
    "(555) 123-4567",
    "555-123-4567",
    "+1 555 123 4567",
    "555.123.4567",
    "123-45-6789",
    "4111 1111 1111 1111",
    "4111111111111111",
    "378282246310005",
    "sk-abcdefghij0123456789",
    "sk-ant-api03-AbCdEf0123456789_xyz-QRStuv",
    "AKIAIOSFODNN7EXAMPLE",
    JWT,
    "192.168.1.1",
    "https://example.com/a?b=c",
    RSA_KEY,
    "-----BEGIN PRIVATE KEY-----\nabc",
    "CUSTOM-123456",
    "[REDACTED:EMAIL]",
    "********",
    "ad***@co***",
    "***",
    "*",
];

fn piece() -> impl proptest::strategy::Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(SAMPLES).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9 @.:/*()+_\\[\\]-]{0,10}",
        1 => "[0-9 .-]{0,8}",
        1 => "\\PC{0,6}",
    ]
}

fn redactors() -> Vec<Redactor> {
    let mut all: Vec<Redactor> = [Strategy::Label, Strategy::Mask, Strategy::Partial].into_iter().map(Redactor::builtin).collect();
    for strategy in [Strategy::Label, Strategy::Partial] {
        if let Ok(r) = Redactor::from_rules_json(CUSTOM, Some(strategy)) {
            all.push(r);
        }
    }
    let templated = r#"{"rules": [{"name": "c", "pattern": "CUSTOM-[0-9]{6}", "type": "custom_id"}],
        "strategies": {"label": {"replacement": "<{type}>"}}}"#;
    if let Ok(r) = Redactor::from_rules_json(templated, None) {
        all.push(r);
    }
    assert_eq!(all.len(), 6);
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn redaction_is_idempotent(pieces in proptest::collection::vec(piece(), 0..8)) {
        let text = pieces.concat();
        for redactor in redactors() {
            let once = redactor.redact_str(&text);
            let twice = redactor.redact_str(&once.text);
            prop_assert_eq!(&twice.text, &once.text, "strategy {}", redactor.strategy());
            prop_assert!(twice.counts.is_empty(), "second pass counted {:?}", twice.counts);
        }
    }

    #[test]
    fn samples_separated_by_spaces_are_always_redacted(
        picks in proptest::collection::vec(proptest::sample::select(SAMPLES), 1..6),
    ) {
        let redactor = Redactor::builtin(Strategy::Mask);
        let out = redactor.redact_str(&picks.join(" | "));
        for pick in picks {
            let is_pii = !pick.contains('*') && !pick.starts_with("[REDACTED") && !pick.starts_with("CUSTOM");
            if is_pii {
                prop_assert!(!out.text.contains(pick), "{:?} leaked in {:?}", pick, out.text);
            }
        }
    }
}
