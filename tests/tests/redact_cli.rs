//! Guards the redaction CLI: each strategy, custom rules, idempotence through the CLI,
//! no store needed; and `ingest --redact` storing redacted data with one recorded
//! `ingest_redacted` event carrying the counts.

use custos_tests::{custos, line, Run, Store};
use serde_json::json;

fn redact(args: &[&str], stdin: &str) -> Run {
    use std::io::Write;
    let mut child = custos()
        .env("CUSTOS_STORE", "/nonexistent/custos.db")
        .args(["redact"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let o = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

const TEXT: &str = "mail admin@company.com or call (555) 123-4567, key sk-proj-4fT9xQ2mZ8rLk3Vb7NcW1yHd";

#[test]
fn strategies_counts_and_idempotence() {
    let r = redact(&["--json", "-"], TEXT);
    r.expect(0);
    let j = r.json();
    let label = j["text"].as_str().unwrap_or_default().to_string();
    assert!(label.contains("[REDACTED:EMAIL]") && label.contains("[REDACTED:PHONE]"), "{label}");
    assert!(!label.contains("admin@company.com") && !label.contains("4fT9xQ2mZ8"));
    assert_eq!(j["counts"]["email"], 1);
    assert_eq!(j["counts"]["phone"], 1);
    assert_eq!(j["total"], j["counts"].as_object().map(|m| m.values().filter_map(|v| v.as_u64()).sum::<u64>()).unwrap_or(0));
    // Idempotent through the CLI: redacting the output changes nothing and counts nothing.
    let again = redact(&["--json", "-"], &label);
    assert_eq!(again.json()["text"], label);
    assert_eq!(again.json()["total"], 0);

    let mask = redact(&["--json", "--strategy", "mask"], TEXT).json();
    let m = mask["text"].as_str().unwrap_or_default();
    assert!(m.contains("***") && !m.contains("REDACTED") && !m.contains("admin@company.com"), "{m}");
    assert_eq!(redact(&["--json", "--strategy", "mask"], m).json()["text"], m);
    let partial = redact(&["--json", "--strategy", "partial"], TEXT).json();
    let p = partial["text"].as_str().unwrap_or_default();
    assert!(!p.contains("admin@company.com") && p != TEXT, "{p}");
    assert_eq!(redact(&["--json", "--strategy", "partial"], p).json()["text"], p);

    // Human form: text on stdout, the summary on stderr.
    let h = redact(&[], TEXT);
    h.expect(0);
    assert!(h.stdout.contains("[REDACTED:EMAIL]"));
    assert!(h.stderr.contains("email=1"), "{}", h.stderr);

    redact(&["--strategy", "shred"], TEXT).expect(1);
}

#[test]
fn custom_rules_file() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rules = d.path().join("rules.json");
    std::fs::write(&rules, json!({"rules": [{"name": "ticket", "pattern": "TCK-[0-9]{4}"}]}).to_string()).unwrap_or_else(|e| panic!("{e}"));
    let r = redact(&["--json", "--rules", rules.to_str().unwrap_or_default()], "see TCK-1234 and admin@company.com");
    r.expect(0);
    let j = r.json();
    assert_eq!(j["counts"]["ticket"], 1, "{j}");
    assert!(!j["text"].as_str().unwrap_or_default().contains("TCK-1234"));
    let again = redact(&["--json", "--rules", rules.to_str().unwrap_or_default()], j["text"].as_str().unwrap_or_default());
    assert_eq!(again.json()["total"], 0);
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap_or_else(|e| panic!("{e}"));
    let r = redact(&["--rules", bad.to_str().unwrap_or_default()], "x");
    r.expect(1);
    assert!(r.stderr.contains("bad.json"), "{}", r.stderr);
}

#[test]
fn ingest_redact_stores_redacted_data_and_records_counts() {
    let s = Store::new();
    let input = [
        line("acme", "runs", "run_note", json!({"note": "contact bob@example.com", "n": 1, "nested": {"ip": "10.1.2.3"}})),
        line("acme", "runs", "run_note", json!({"note": "nothing here", "n": 2})),
    ]
    .join("\n");
    let r = s.run_stdin(&["--json", "ingest", "--redact", "-"], &input);
    r.expect(0);
    let j = r.json();
    assert_eq!(j["appended"], 2);
    assert_eq!(j["redaction"]["counts"]["email"], 1);
    assert_eq!(j["redaction"]["events_redacted"], 1);
    let evs = s.run(&["events", "list", "--tenant", "acme"]).jsonl();
    assert_eq!(evs[0]["data"]["note"], "contact [REDACTED:EMAIL]");
    assert_eq!(evs[0]["data"]["n"], 1);
    assert_eq!(evs[1]["data"]["note"], "nothing here");
    let recorded = s.system_events("ingest_redacted");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["data"]["counts"]["email"], 1);
    assert_eq!(recorded[0]["data"]["total"], j["redaction"]["total"]);
    // The plaintext never reached the database file or its WAL.
    for f in [s.db.clone(), s.db.with_extension("db-wal")] {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(!bytes.windows(15).any(|w| w == b"bob@example.com"), "{}", f.display());
    }
    // Without --redact nothing is redacted or recorded.
    s.ingest(&line("acme", "runs", "run_note", json!({"note": "eve@example.com"})));
    assert_eq!(s.system_events("ingest_redacted").len(), 1);
    let r = s.run_stdin(&["ingest", "--strategy", "mask", "-"], "");
    r.expect(64);
    s.run(&["verify"]).expect(0);
}
