//! The tamper battery of docs/SECURITY.md: every attack on a stored log is caught by
//! `custos verify` with exit 5 and the right first bad sequence number.

use custos_tests::{line, Store, TestResult};
use rusqlite::Connection;
use serde_json::json;

/// A store with seqs 1-2 from init, then acme at 3..=6 and beta at 7..=10, and a checkpoint.
fn fixture() -> (Store, serde_json::Value) {
    let s = Store::new();
    let lines: Vec<String> =
        (0..8).map(|i| line(if i < 4 { "acme" } else { "beta" }, "queue", "job_enqueued", json!({"job": i}))).collect();
    let r = s.ingest(&lines.join("\n"));
    s.run(&["checkpoint"]).expect(0);
    (s, r)
}

fn attack(sql: &str) -> Result<(serde_json::Value, i32), Box<dyn std::error::Error>> {
    let (s, _) = fixture();
    let c = Connection::open(&s.db)?;
    c.execute_batch(sql)?;
    drop(c);
    let r = s.run(&["--json", "verify"]);
    Ok((r.json(), r.code))
}

#[test]
fn every_attack_is_detected_at_the_right_seq() -> TestResult {
    let cases: &[(&str, &str, u64)] = &[
        ("flipped byte in a header field (kind)", "UPDATE events SET kind = 'job_enqueueD' WHERE global_seq = 4", 4),
        ("flipped bit in a header field (occurred_at)", "UPDATE events SET occurred_at = occurred_at + 1 WHERE global_seq = 5", 5),
        ("flipped byte in a commitment", "UPDATE events SET commitment = CAST(X'00' || substr(commitment, 2) AS BLOB) WHERE global_seq = 6", 6),
        ("flipped byte in a ciphertext", "UPDATE events SET body = CAST(substr(body, 1, 20) || X'FF' || substr(body, 22) AS BLOB) WHERE global_seq = 7", 7),
        ("flipped byte in a stored chain hash", "UPDATE events SET global_chain = CAST(X'00' || substr(global_chain, 2) AS BLOB) WHERE global_seq = 8", 8),
        ("flipped byte in a tenant chain hash", "UPDATE events SET tenant_chain = CAST(X'00' || substr(tenant_chain, 2) AS BLOB) WHERE global_seq = 9", 9),
        ("deleted middle row", "DELETE FROM events WHERE global_seq = 5", 5),
        ("body deleted without a purge record", "UPDATE events SET body = NULL, nonce = NULL WHERE global_seq = 6", 6),
        ("body deleted, blamed on an unrelated event", "UPDATE events SET body = NULL, nonce = NULL, purged_by = 10 WHERE global_seq = 6", 6),
        (
            "ciphertexts swapped between rows of one tenant",
            "UPDATE events SET body = (SELECT body FROM events WHERE global_seq = 4), nonce = (SELECT nonce FROM events WHERE global_seq = 4) WHERE global_seq = 3",
            3,
        ),
        (
            "ciphertexts swapped between tenants",
            "UPDATE events SET body = (SELECT body FROM events WHERE global_seq = 8), nonce = (SELECT nonce FROM events WHERE global_seq = 8), dek_version = 1 WHERE global_seq = 4",
            4,
        ),
        (
            "tail truncation behind a signed checkpoint",
            "DELETE FROM events WHERE global_seq >= 9; UPDATE tenant_heads SET last_seq = 2, chain = (SELECT tenant_chain FROM events WHERE global_seq = 8) WHERE tenant = 'beta'",
            9,
        ),
        ("tenant stream cut without touching other rows", "DELETE FROM events WHERE global_seq = 10", 10),
        ("a record's header re-chained by the attacker", "UPDATE events SET kind = 'x', tenant_chain = zeroblob(32), global_chain = zeroblob(32) WHERE global_seq = 10", 10),
    ];
    for (name, sql, seq) in cases {
        let (v, code) = attack(sql)?;
        assert_eq!(code, 5, "{name}: {v}");
        assert_eq!(v["ok"], false, "{name}");
        assert_eq!(v["first_bad_seq"], *seq, "{name}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}");
    }
    Ok(())
}

#[test]
fn truncation_behind_a_kept_receipt_is_detected_without_checkpoints() -> TestResult {
    let s = Store::new();
    let r = s.ingest(&(0..5).map(|i| line("acme", "queue", "x", json!({"i": i}))).collect::<Vec<_>>().join("\n"));
    let receipt = format!("{}:{}", r["last_seq"], r["global_head"].as_str().unwrap_or_default());
    let c = Connection::open(&s.db)?;
    // Roll back the last two events consistently (heads rewritten too): only the receipt can tell.
    c.execute_batch(
        "DELETE FROM events WHERE global_seq >= 6; UPDATE tenant_heads SET last_seq = 3, chain = (SELECT tenant_chain FROM events WHERE global_seq = 5) WHERE tenant = 'acme'",
    )?;
    drop(c);
    s.run(&["verify"]).expect(0);
    let v = s.run(&["--json", "verify", "--expect", &receipt]);
    v.expect(5);
    assert_eq!(v.json()["first_bad_seq"], 6);
    Ok(())
}

#[test]
fn forged_checkpoint_is_detected() -> TestResult {
    let (s, _) = fixture();
    let c = Connection::open(&s.db)?;
    c.execute_batch("UPDATE checkpoints SET signature = CAST(X'00' || substr(signature, 2) AS BLOB)")?;
    drop(c);
    let v = s.run(&["--json", "verify", "--no-keys"]);
    v.expect(5);
    assert!(v.json()["error"].as_str().unwrap_or("").contains("signature"));
    Ok(())
}

#[test]
fn wrong_root_key_is_an_integrity_failure() -> TestResult {
    let (s, _) = fixture();
    let other = Store::new();
    let r = s.cmd().env("CUSTOS_TOKEN_FILE", &s.admin).env("CUSTOS_ROOT_KEY_FILE", &other.key).args(["verify"]).output()?;
    assert_eq!(r.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&r.stderr).contains("does not open this store"));
    Ok(())
}

#[test]
fn not_a_store_is_a_clear_error() -> TestResult {
    let s = Store::new();
    let junk = s.dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not sqlite at all, just bytes")?;
    let r = s.cmd().env("CUSTOS_STORE", &junk).env("CUSTOS_TOKEN_FILE", &s.admin).args(["whoami"]).output()?;
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a custos store"), "{}", String::from_utf8_lossy(&r.stderr));
    let missing = s.cmd().env("CUSTOS_STORE", s.dir.path().join("missing.db")).args(["whoami"]).output()?;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("custos init"));
    Ok(())
}
