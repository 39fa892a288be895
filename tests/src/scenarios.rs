//! The end-to-end scenarios of the foundation contract that do not depend on the
//! storage backend. `tests/foundation.rs` runs them on SQLite and `tests/postgres.rs`
//! on PostgreSQL: the same assertions, through the real binary.

use serde_json::{json, Value};

use crate::{line, line_at, Store, TestResult};

/// `n` queue events of one tenant, as JSONL.
pub fn sample(n: usize, tenant: &str) -> String {
    (0..n).map(|i| line(tenant, "queue", "job_enqueued", json!({"job": i}))).collect::<Vec<_>>().join("\n")
}

/// init → ingest → list (filters) → show → verify (with and without keys, with a receipt).
pub fn init_ingest_list_verify_round_trip(s: &Store) -> TestResult {
    let r = s.ingest(&format!(
        "{}\n{}\n{}",
        line("acme", "runs", "run_completed", json!({"run_id":"r1","workflow":"w","status":"ok","provider":"openai","model":"gpt-4o","tokens_in":10,"tokens_out":5,"duration_ms":1200})),
        line("acme", "costs", "cost_recorded", json!({"run_id":"r1","provider":"openai","model":"gpt-4o","tokens_in":10,"tokens_out":5,"usd_micros":2100})),
        line_at("beta", "queue", "job_enqueued", "2025-10-03T12:00:00Z", json!({"job":"j1"}))
    ));
    // init wrote log_initialized + actor_added first.
    assert_eq!(r["appended"], 3);
    assert_eq!(r["first_seq"], 3);
    assert_eq!(r["last_seq"], 5);
    assert_eq!(r["tenants"], 2);
    assert_eq!(r["global_head"].as_str().map(str::len), Some(64));

    let list = s.run(&["events", "list", "--tenant", "acme"]);
    list.expect(0);
    let evs = list.jsonl();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1]["data"]["usd_micros"], 2100);
    assert_eq!(evs[1]["actor"], "admin");
    assert_eq!(evs[1]["tenant_seq"], 2);
    let beta = s.run(&["events", "list", "--tenant", "beta", "--since", "2025-10-01", "--until", "2025-10-04"]).jsonl();
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0]["occurred_at"], "2025-10-03T12:00:00Z");
    assert_eq!(s.run(&["events", "list", "--category", "costs"]).jsonl().len(), 1);
    assert_eq!(s.run(&["events", "list", "--kind", "run_completed", "--limit", "5"]).jsonl().len(), 1);
    let show = s.run(&["--json", "events", "show", "5"]);
    show.expect(0);
    assert_eq!(show.json()["tenant"], "beta");
    s.run(&["events", "show", "99"]).expect(1);

    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    let v = v.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 5);
    assert_eq!(v["bodies_checked"], 5);
    assert_eq!(v["first_bad_seq"], serde_json::Value::Null);
    let expect = format!("{}:{}", r["last_seq"], r["global_head"].as_str().unwrap_or_default());
    s.run(&["verify", "--expect", &expect]).expect(0);
    s.run(&["--json", "verify", "--no-keys"]).expect(0);
    Ok(())
}

/// Every class of bad input rejects the whole input, naming the line; nothing is appended.
pub fn every_bad_input_class_rejects_the_whole_input(s: &Store) -> TestResult {
    s.ingest(&sample(3, "acme"));
    let before = s.event_count();
    let good = line("acme", "queue", "job_enqueued", json!({"ok": true}));
    let cases = [
        ("invalid JSON", "{not json".to_string(), "line 2"),
        ("unknown category", line("acme", "nope", "x", json!({})), "unknown category"),
        ("bad tenant id", line("Acme Corp", "queue", "x", json!({})), "invalid tenant id"),
        (
            "malformed well-known kind",
            line("acme", "costs", "cost_recorded", json!({"run_id": "r", "usd_micros": 0.5})),
            "malformed cost_recorded",
        ),
        ("future time", line_at("acme", "queue", "x", "2999-01-01T00:00:00Z", json!({})), "in the future"),
        ("reserved tenant", line("_system", "governance", "x", json!({})), "reserved"),
        ("reserved kind", line("acme", "governance", "hold_released", json!({})), "recorded by custos itself"),
    ];
    for (name, bad, msg) in cases {
        let input = format!("{good}\n{bad}\n{good}\n");
        let r = s.run_stdin(&["ingest", "-"], &input);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("line 2"), "{name}: error must name the line: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{name}: {}", r.stderr);
        assert_eq!(s.event_count(), before, "{name}: nothing may be appended");
    }
    // A file that does not exist is a clear error too.
    let r = s.run(&["ingest", "/nonexistent/events.jsonl"]);
    r.expect(1);
    assert!(r.stderr.contains("/nonexistent/events.jsonl"));
    Ok(())
}

/// Missing, wrong and disabled tokens exit 2 and each denial is recorded in `_system`.
pub fn missing_wrong_and_disabled_tokens_are_denied_and_recorded(s: &Store) -> TestResult {
    let none = s.cmd().args(["whoami"]).output()?;
    assert_eq!(none.status.code(), Some(2));
    let wrong = s.cmd().env("CUSTOS_TOKEN", "cus_0000").args(["events", "list"]).output()?;
    assert_eq!(wrong.status.code(), Some(2));
    let bob = s.actor("bob", "Operator", "Internal");
    s.run_as(&bob, &["whoami"]).expect(0);
    s.run(&["actors", "disable", "bob"]).expect(0);
    s.run_as(&bob, &["whoami"]).expect(2);
    let denials = s.system_events("access_denied");
    let reasons: Vec<&str> = denials.iter().filter_map(|d| d["data"]["reason"].as_str()).collect();
    assert!(reasons.contains(&"no token given"), "{reasons:?}");
    assert!(reasons.contains(&"unknown token"), "{reasons:?}");
    assert!(reasons.contains(&"actor disabled"), "{reasons:?}");
    // The last Admin cannot be disabled.
    s.run(&["actors", "disable", "admin"]).expect(1);
    Ok(())
}

/// Receipts and signed checkpoints: a wrong receipt is an integrity failure at its seq.
pub fn receipts_and_checkpoints_expose_truncation(s: &Store) -> TestResult {
    let r = s.ingest(&sample(5, "acme"));
    let receipt = format!("{}:{}", r["last_seq"], r["global_head"].as_str().unwrap_or_default());
    let cp = s.run(&["--json", "checkpoint"]);
    cp.expect(0);
    assert_eq!(cp.json()["size"], r["last_seq"]);
    let pk = s.run(&["keys", "public"]);
    assert_eq!(pk.stdout.trim(), cp.json()["public_key"].as_str().unwrap_or_default());
    // A wrong receipt hash is caught.
    let bad = format!("{}:{}", r["last_seq"], "00".repeat(32));
    let v = s.run(&["--json", "verify", "--expect", &bad]);
    v.expect(5);
    assert_eq!(v.json()["first_bad_seq"], r["last_seq"]);
    s.run(&["verify", "--expect", &receipt]).expect(0);
    Ok(())
}

/// `procs` processes ingest `per` events each at the same time: nothing is lost, each
/// ingest gets one contiguous run of seqs, and the chain verifies.
pub fn concurrent_ingests_lose_nothing(s: &Store, procs: usize, per: usize) -> TestResult {
    let tenants: Vec<String> = (0..procs).map(|i| format!("t{i}")).collect();
    let spawn = |input: String| {
        let mut c = s.cmd();
        c.env("CUSTOS_TOKEN_FILE", &s.admin)
            .args(["--json", "ingest", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("{e}"));
        let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(input.as_bytes());
        });
        child
    };
    let before = s.event_count();
    // All children start before any is waited for, so their transactions contend.
    let children: Vec<_> = tenants.iter().map(|t| spawn(sample(per, t))).collect();
    let mut ranges = vec![];
    for c in children {
        let o = c.wait_with_output()?;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let r: Value = serde_json::from_slice(&o.stdout)?;
        assert_eq!(r["appended"], per as u64);
        ranges.push((r["first_seq"].as_u64().unwrap_or(0), r["last_seq"].as_u64().unwrap_or(0)));
    }
    // Each ingest is one transaction: its seqs are one contiguous run, and the runs
    // tile the log with no gap and no overlap.
    ranges.sort();
    let mut next = before + 1;
    for (first, last) in &ranges {
        assert_eq!(*first, next, "runs {ranges:?} must tile the log after {before}");
        assert_eq!(last - first + 1, per as u64);
        next = last + 1;
    }
    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["events"], before + (procs * per) as u64);
    for t in &tenants {
        assert_eq!(s.run(&["events", "list", "--tenant", t]).jsonl().len(), per);
    }
    Ok(())
}

/// Key rotation: the new KEK is active, the old one decrypt-only, old events readable.
pub fn key_rotation_keeps_old_events_readable(s: &Store) -> TestResult {
    s.ingest(&sample(2, "acme"));
    let r = s.run(&["--json", "keys", "rotate"]);
    r.expect(0);
    assert_eq!(r.json()["event"], "key_rotated");
    assert_eq!(r.json()["new_key"]["key_id"], "key-002");
    assert_eq!(r.json()["new_key"]["status"], "active");
    s.ingest(&sample(2, "gamma"));
    let keys = s.run(&["--json", "keys", "list"]).json();
    let statuses: Vec<(&str, &str)> = keys["keys"]
        .as_array()
        .map(|a| a.iter().map(|k| (k["key_id"].as_str().unwrap_or(""), k["status"].as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    assert_eq!(statuses, vec![("key-001", "decrypt-only"), ("key-002", "active")]);
    assert_eq!(s.run(&["--json", "keys", "active"]).json()["key_id"], "key-002");
    assert_eq!(s.run(&["events", "list", "--tenant", "acme"]).jsonl()[0]["data"]["job"], 0);
    assert_eq!(s.system_events("key_rotated").len(), 1);
    s.run(&["verify"]).expect(0);
    Ok(())
}

/// Artifact tiers (schema migration 3) on any backend: ages measured at a future `--now`
/// move, restore and purge; a held tenant is untouched; a purged artifact cannot be read.
pub fn artifact_lifecycle_moves_restores_and_purges(s: &Store) -> TestResult {
    let put = |tenant: &str, name: &str, content: &str| -> Result<String, Box<dyn std::error::Error>> {
        let f = s.dir.path().join(name);
        std::fs::write(&f, content)?;
        let r = s.run(&["--json", "artifacts", "put", "--tenant", tenant, &f.display().to_string()]);
        r.expect(0);
        Ok(r.json()["artifact_id"].as_str().unwrap_or_default().to_string())
    };
    let tier = |id: &str| -> String {
        let v = s.run(&["--json", "artifacts", "show", id]).json();
        if v["purged_at"].is_null() {
            v["tier"].as_str().unwrap_or_default().to_string()
        } else {
            "purged".into()
        }
    };
    let a = put("acme", "a.txt", "alpha")?;
    let b = put("acme", "b.txt", "bravo")?;
    let h = put("held", "h.txt", "hotel")?;
    s.run(&["compliance", "hold", "--tenant", "held", "--reason", "case 1", "--id", "CASE-1"]).expect(0);
    assert_eq!(tier(&a), "hot");
    let r = s.run(&["--json", "--yes", "lifecycle", "run", "--now", &future_day(10)]);
    r.expect(0);
    assert_eq!(r.json()["moved"], serde_json::json!({"warm": 2, "cold": 0}));
    assert_eq!(r.json()["held"], serde_json::json!({"held": 1}));
    s.run(&["artifacts", "restore", &b, "--to", "hot"]).expect(0);
    assert_eq!((tier(&a), tier(&b), tier(&h)), ("warm".into(), "hot".into(), "hot".into()));
    let r = s.run(&["--json", "--yes", "lifecycle", "run", "--now", &future_day(91)]);
    r.expect(0);
    assert_eq!(r.json()["purged"], 2);
    assert_eq!((tier(&a), tier(&b), tier(&h)), ("purged".into(), "purged".into(), "hot".into()));
    let out = s.dir.path().join("a.out");
    let g = s.run(&["artifacts", "get", &a, "--out", &out.display().to_string()]);
    g.expect(1);
    assert!(g.stderr.contains("purged by lifecycle"), "{}", g.stderr);
    let sm = s.run(&["--json", "lifecycle", "summary"]).json();
    assert_eq!(sm["total"]["purged"], serde_json::json!({"count": 2, "bytes": 10}));
    assert_eq!(sm["tenants"]["held"]["hot"], serde_json::json!({"count": 1, "bytes": 5}));
    s.run(&["verify"]).expect(0);
    Ok(())
}

/// `YYYY-MM-DD` of today + `days` (UTC), for `--now` (civil-from-days, H. Hinnant).
pub fn future_day(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let z = (now / 86_400 + days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
