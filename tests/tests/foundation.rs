//! Guards the foundation contract through the real binary: init, ingest (all-or-nothing,
//! line-numbered errors), events, verify, receipts, checkpoints, tokens and RBAC, exit codes.

use custos_tests::{custos, line, line_at, Store, TestResult};
use serde_json::json;

fn sample(n: usize, tenant: &str) -> String {
    (0..n).map(|i| line(tenant, "queue", "job_enqueued", json!({"job": i}))).collect::<Vec<_>>().join("\n")
}

#[test]
fn init_ingest_list_verify_round_trip() -> TestResult {
    let s = Store::new();
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

#[test]
fn init_refuses_to_overwrite_and_prints_token_once() -> TestResult {
    let s = Store::new();
    let again = custos().args(["init", "--store"]).arg(&s.db).arg("--root-key-file").arg(s.dir.path().join("other.key")).output()?;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let key_taken = custos().args(["init", "--store"]).arg(s.dir.path().join("new.db")).arg("--root-key-file").arg(&s.key).output()?;
    assert_eq!(key_taken.status.code(), Some(1));
    assert!(!s.dir.path().join("new.db").exists(), "nothing half-made");
    // The token is stored only hashed.
    let token = std::fs::read_to_string(&s.admin)?;
    let raw = std::fs::read(&s.db)?;
    let wal = std::fs::read(format!("{}-wal", s.db.display())).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "token in plaintext on disk");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&s.key)?.permissions().mode() & 0o777, 0o600);
    }
    Ok(())
}

#[test]
fn root_key_with_wide_mode_is_refused() -> TestResult {
    let s = Store::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o644))?;
        let r = s.run(&["whoami"]);
        r.expect(1);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    }
    Ok(())
}

#[test]
fn every_bad_input_class_rejects_the_whole_input() -> TestResult {
    let s = Store::new();
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

#[test]
fn missing_wrong_and_disabled_tokens_are_denied_and_recorded() -> TestResult {
    let s = Store::new();
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

/// Every command × every role: exit 0 when the role is high enough, else exit 2 and a recorded denial.
#[test]
fn rbac_matrix() -> TestResult {
    let s = Store::new();
    s.ingest(&sample(2, "acme"));
    let roles = ["Viewer", "Operator", "Auditor", "Compliance", "Admin"];
    let tokens: Vec<_> = roles.iter().map(|r| s.actor(&format!("u-{}", r.to_lowercase()), r, "Restricted")).collect();
    let input = sample(1, "acme");
    let mut n = 0;
    let commands: Vec<(Vec<String>, usize, bool)> = vec![
        (vec!["events".into(), "list".into()], 0, false),
        (vec!["events".into(), "show".into(), "3".into()], 0, false),
        (vec!["whoami".into()], 0, false),
        (vec!["keys".into(), "public".into()], 0, false),
        (vec!["ingest".into(), "-".into()], 1, true),
        (vec!["checkpoint".into()], 1, false),
        (vec!["verify".into()], 2, false),
        (vec!["rebuild".into()], 2, false),
        (vec!["keys".into(), "list".into()], 4, false),
        (vec!["keys".into(), "active".into()], 4, false),
        (vec!["keys".into(), "rotate".into()], 4, false),
        (vec!["actors".into(), "list".into()], 4, false),
        (vec!["actors".into(), "add".into(), "NEW".into(), "--role".into(), "Viewer".into()], 4, false),
    ];
    for (cmd, min, stdin) in &commands {
        for (i, role) in roles.iter().enumerate() {
            let args: Vec<String> = cmd
                .iter()
                .map(|a| {
                    if a == "NEW" {
                        n += 1;
                        format!("new-{n}")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = if *stdin { s.run_stdin_as(&tokens[i], &args, &input) } else { s.run_as(&tokens[i], &args) };
            let want = if i >= *min { 0 } else { 2 };
            assert_eq!(r.code, want, "{role} running {args:?}: {}", r.stderr);
        }
    }
    let denied = s.system_events("access_denied");
    assert!(denied.len() >= 20, "each denial is recorded, got {}", denied.len());
    assert!(denied
        .iter()
        .any(|d| d["data"]["actor"] == "u-viewer" && d["data"]["action"] == "ingest" && d["data"]["required_role"] == "Operator"));
    Ok(())
}

#[test]
fn usage_errors_exit_64_never_2() -> TestResult {
    let s = Store::new();
    for args in
        [vec!["bogus"], vec!["events"], vec!["events", "show", "not-a-number"], vec!["verify", "--nope"], vec!["actors", "add", "x"]]
    {
        let r = s.run(&args);
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
    }
    assert_eq!(s.run(&["--help"]).code, 0);
    assert_eq!(s.run(&["--version"]).code, 0);
    // Bad values that clap accepts but custos rejects are ordinary errors (1).
    s.run(&["events", "list", "--category", "nope"]).expect(1);
    s.run(&["events", "list", "--since", "yesterday"]).expect(1);
    s.run(&["verify", "--expect", "12"]).expect(1);
    s.run(&["actors", "add", "x", "--role", "Root"]).expect(1);
    Ok(())
}

#[test]
fn receipts_and_checkpoints_expose_truncation() -> TestResult {
    let s = Store::new();
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

#[test]
fn two_processes_ingesting_at_once_lose_nothing() -> TestResult {
    let s = Store::new();
    let a = sample(3000, "acme");
    let b = sample(3000, "beta");
    let spawn = |input: String| {
        let mut c = s.cmd();
        c.env("CUSTOS_TOKEN_FILE", &s.admin)
            .args(["--json", "ingest", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("{e}"));
        let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(input.as_bytes());
        });
        child
    };
    let (c1, c2) = (spawn(a), spawn(b));
    let (o1, o2) = (c1.wait_with_output()?, c2.wait_with_output()?);
    assert_eq!(o1.status.code(), Some(0), "{}", String::from_utf8_lossy(&o1.stderr));
    assert_eq!(o2.status.code(), Some(0), "{}", String::from_utf8_lossy(&o2.stderr));
    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["events"], 6002);
    assert_eq!(s.run(&["events", "list", "--tenant", "beta"]).jsonl().len(), 3000);
    Ok(())
}

#[test]
fn key_rotation_keeps_old_events_readable() -> TestResult {
    let s = Store::new();
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

#[test]
fn quickstart_runs_end_to_end() -> TestResult {
    let d = tempfile::tempdir()?;
    let r = custos().args(["--json", "quickstart", "--dir"]).arg(d.path().join("tour")).output()?;
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout)?;
    assert_eq!(v["verify"]["ok"], true);
    assert!(v["ingest"]["appended"].as_u64().unwrap_or(0) > 100);
    Ok(())
}

#[test]
fn viewers_see_no_governance_history_and_labels_above_clearance_are_withheld() -> TestResult {
    let s = Store::new();
    s.ingest(&format!(
        "{}\n{}",
        serde_json::json!({"tenant":"acme","category":"custom","kind":"note","label":"Restricted","data":{"secret":"launch codes"}}),
        line("acme", "custom", "note", json!({"open": true}))
    ));
    let viewer = s.actor("vic", "Viewer", "Internal");
    let all = s.run_as(&viewer, &["events", "list"]);
    all.expect(0);
    let evs = all.jsonl();
    assert!(evs.iter().all(|e| e["tenant"] != "_system"), "viewer must not read _system");
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["label"], "Restricted");
    assert_eq!(evs[0]["data"], serde_json::Value::Null, "withheld above clearance");
    assert_eq!(evs[1]["data"]["open"], true);
    s.run_as(&viewer, &["events", "list", "--tenant", "_system"]).expect(2);
    s.run_as(&viewer, &["events", "show", "1"]).expect(2);
    // The admin (Restricted) sees everything.
    assert_eq!(s.run(&["events", "list", "--tenant", "acme"]).jsonl()[0]["data"]["secret"], "launch codes");
    Ok(())
}

#[test]
fn verify_without_keys_needs_no_root_key() -> TestResult {
    let s = Store::new();
    s.ingest(&sample(3, "acme"));
    let r = s
        .cmd()
        .env("CUSTOS_TOKEN_FILE", &s.admin)
        .env("CUSTOS_ROOT_KEY_FILE", s.dir.path().join("absent.key"))
        .args(["--json", "verify", "--no-keys"])
        .output()?;
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout)?;
    assert_eq!((v["ok"].as_bool(), v["events"].as_u64(), v["bodies_checked"].as_u64()), (Some(true), Some(5), Some(0)));
    Ok(())
}
