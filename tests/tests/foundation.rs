//! Guards the foundation contract through the real binary: init, ingest (all-or-nothing,
//! line-numbered errors), events, verify, receipts, checkpoints, tokens and RBAC, exit codes.
//! Backend-agnostic scenarios live in `custos_tests::scenarios` (also run on PostgreSQL by
//! `tests/postgres.rs`); they follow `CUSTOS_TEST_BACKEND` (SQLite by default).

use custos_tests::scenarios::{self, sample};
use custos_tests::{custos, line, Backend, Store, TestResult};
use serde_json::json;

#[test]
fn init_ingest_list_verify_round_trip() -> TestResult {
    scenarios::init_ingest_list_verify_round_trip(&Store::new())
}

#[test]
fn init_refuses_to_overwrite_and_prints_token_once() -> TestResult {
    // Reads the SQLite file's raw bytes.
    let Some(s) = Store::with_backend(Backend::Sqlite) else { return Ok(()) };
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
    scenarios::every_bad_input_class_rejects_the_whole_input(&Store::new())
}

#[test]
fn missing_wrong_and_disabled_tokens_are_denied_and_recorded() -> TestResult {
    scenarios::missing_wrong_and_disabled_tokens_are_denied_and_recorded(&Store::new())
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
    scenarios::receipts_and_checkpoints_expose_truncation(&Store::new())
}

#[test]
fn two_processes_ingesting_at_once_lose_nothing() -> TestResult {
    scenarios::concurrent_ingests_lose_nothing(&Store::new(), 2, 3000)
}

#[test]
fn key_rotation_keeps_old_events_readable() -> TestResult {
    scenarios::key_rotation_keeps_old_events_readable(&Store::new())
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
