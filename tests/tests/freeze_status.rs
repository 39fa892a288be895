//! Guards the emergency freeze and `custos status`: a freeze denies every budget check
//! it covers (exit 4, the freeze named), only those, until unfreeze; it lives in the log
//! (new processes, rebuild, a lost snapshot); RBAC; and the status screen lists freezes
//! before anything else and reflects holds, approvals, retention, backups and keys.

use custos_tests::{line, Backend, Run, Store, TestResult};
use serde_json::{json, Value};

const REASON: &str = "INC-4711 runaway agent";

fn seed(s: &Store) {
    let lines: Vec<String> = ["acme", "globex"].iter().map(|t| line(t, "runs", "job_done", json!({"t": t}))).collect();
    s.ingest(&lines.join("\n"));
}

fn check(s: &Store, tenant: &str) -> Run {
    s.run(&["--json", "budget", "check", "--tenant", tenant, "--usd", "0.01"])
}

#[track_caller]
fn assert_denied_by(r: &Run, scope: &str, tenant: Option<&str>) {
    r.expect(4);
    let o = r.json();
    assert_eq!(o["decision"], "deny", "{o}");
    assert_eq!(o["freeze"]["scope"], scope, "{o}");
    assert_eq!(o["freeze"]["tenant"], json!(tenant), "{o}");
    assert_eq!(o["freeze"]["reason"], REASON);
    assert_eq!(o["freeze"]["frozen_by"], "admin");
    let reason = o["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(REASON) && reason.contains("admin") && reason.contains("frozen"), "{reason}");
}

fn sqlite(s: &Store) -> rusqlite::Connection {
    rusqlite::Connection::open(&s.db).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn global_freeze_denies_every_tenant_until_unfreeze_and_refreezing_records_nothing() -> TestResult {
    let s = Store::new();
    seed(&s);
    check(&s, "acme").expect(0);

    let f = s.run(&["--json", "freeze", "--reason", REASON]);
    f.expect(0);
    let f = f.json();
    assert_eq!(f["event"], "freeze_applied");
    assert_eq!(f["already_frozen"], false);
    assert_eq!(f["freeze"]["scope"], "global");

    assert_denied_by(&check(&s, "acme"), "global", None);
    assert_denied_by(&check(&s, "globex"), "global", None);
    // Human output: exit 4 and the freeze named on stderr.
    let h = s.run(&["budget", "check", "--tenant", "acme", "--usd", "0.01"]);
    h.expect(4);
    assert!(h.stderr.contains("global freeze") && h.stderr.contains(REASON), "{}", h.stderr);
    // Each denial is recorded like any budget denial.
    assert_eq!(s.system_events("budget_denied").len(), 3);

    // Freezing again: exit 0, the existing freeze, no new event.
    let again = s.run(&["--json", "freeze", "--reason", "something else"]);
    again.expect(0);
    let again = again.json();
    assert_eq!(again["already_frozen"], true);
    assert_eq!(again["event"], Value::Null);
    assert_eq!(again["freeze"]["reason"], REASON);
    assert_eq!(s.system_events("freeze_applied").len(), 1);

    let u = s.run(&["--json", "unfreeze"]);
    u.expect(0);
    assert_eq!(u.json()["event"], "freeze_lifted");
    assert_eq!(u.json()["freeze"]["reason"], REASON);
    let ok = check(&s, "acme");
    ok.expect(0);
    assert_eq!(ok.json()["decision"], "allow");
    assert_eq!(ok.json()["freeze"], Value::Null);

    // Nothing to lift: exit 1 with a clear message, nothing recorded.
    let none = s.run(&["unfreeze"]);
    none.expect(1);
    assert!(none.stderr.contains("not frozen"), "{}", none.stderr);
    assert_eq!(s.system_events("freeze_lifted").len(), 1);
    // A reason is required, and an unknown tenant is refused rather than silently frozen.
    s.run(&["freeze"]).expect(64);
    s.run(&["freeze", "--reason", "  "]).expect(1);
    s.run(&["freeze", "--tenant", "acme-typo", "--reason", REASON]).expect(1);
    Ok(())
}

#[test]
fn tenant_freeze_affects_only_that_tenant_and_survives_processes_and_rebuild() -> TestResult {
    let s = Store::new();
    seed(&s);
    s.run(&["freeze", "--tenant", "acme", "--reason", REASON]).expect(0);
    // Each command is a new process: the freeze comes from the store, not from memory.
    assert_denied_by(&check(&s, "acme"), "tenant", Some("acme"));
    check(&s, "globex").expect(0);
    let list = s.run(&["--json", "freeze", "status"]);
    list.expect(0);
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));
    assert_eq!(list.json()[0]["tenant"], "acme");
    s.run(&["--json", "freeze", "list"]).expect(0);

    s.run(&["rebuild"]).expect(0);
    assert_denied_by(&check(&s, "acme"), "tenant", Some("acme"));
    if s.backend == Backend::Sqlite {
        // Lose every snapshot: the freeze is folded back from the log, by a read and by rebuild.
        sqlite(&s).execute("DELETE FROM snapshots", [])?;
        assert_denied_by(&check(&s, "acme"), "tenant", Some("acme"));
        sqlite(&s).execute("DELETE FROM snapshots", [])?;
        s.run(&["rebuild"]).expect(0);
        assert_denied_by(&check(&s, "acme"), "tenant", Some("acme"));
        check(&s, "globex").expect(0);
    }
    // Lifting the global scope does not lift a tenant's freeze.
    s.run(&["unfreeze"]).expect(1);
    assert_denied_by(&check(&s, "acme"), "tenant", Some("acme"));
    s.run(&["unfreeze", "--tenant", "acme"]).expect(0);
    check(&s, "acme").expect(0);
    s.run(&["rebuild"]).expect(0);
    check(&s, "acme").expect(0);
    Ok(())
}

#[test]
fn freeze_needs_admin_status_needs_auditor_and_freeze_kinds_cannot_be_ingested() -> TestResult {
    let s = Store::new();
    seed(&s);
    let operator = s.actor("op", "Operator", "Internal");
    let compliance = s.actor("co", "Compliance", "Internal");
    let auditor = s.actor("au", "Auditor", "Internal");
    let viewer = s.actor("vi", "Viewer", "Internal");
    for who in [&operator, &compliance] {
        s.run_as(who, &["freeze", "--reason", REASON]).expect(2);
        s.run_as(who, &["freeze", "--tenant", "acme", "--reason", REASON]).expect(2);
    }
    s.run(&["freeze", "--reason", REASON]).expect(0);
    for who in [&operator, &compliance] {
        s.run_as(who, &["unfreeze"]).expect(2);
    }
    s.run_as(&auditor, &["freeze", "status"]).expect(0);
    s.run_as(&auditor, &["status"]).expect(0);
    s.run_as(&viewer, &["status"]).expect(2);
    s.run_as(&operator, &["status"]).expect(2);
    s.run_as(&operator, &["freeze", "status"]).expect(2);
    let denied = s.system_events("access_denied");
    assert!(denied.iter().any(|e| e["data"]["action"] == "freeze" && e["data"]["actor"] == "co"), "{denied:?}");
    assert!(denied.iter().any(|e| e["data"]["action"] == "unfreeze"));
    assert_eq!(s.system_events("freeze_applied").len(), 1, "denied attempts record no freeze");

    // Governance history cannot be forged with a JSONL line.
    for kind in ["freeze_applied", "freeze_lifted"] {
        let forged = line("acme", "governance", kind, json!({"scope": "global", "reason": "forged"}));
        let r = s.run_stdin(&["ingest", "-"], &forged);
        assert_eq!(r.code, 1, "{kind} was accepted: {}", r.stdout);
        assert!(r.stderr.contains(kind), "{}", r.stderr);
    }
    s.run(&["unfreeze"]).expect(0);
    check(&s, "acme").expect(0);
    Ok(())
}

#[test]
fn status_lists_freezes_first_and_reflects_the_store() -> TestResult {
    let s = Store::new();
    seed(&s);
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "litigation", "--id", "CASE-9"]).expect(0);
    s.run(&["approvals", "create", "--tenant", "globex", "--dag-run", "d1", "--prompt", "ship?", "--id", "cp-old"]).expect(0);
    s.run(&["approvals", "create", "--tenant", "globex", "--dag-run", "d2", "--prompt", "ship?", "--id", "cp-new"]).expect(0);
    s.run(&["retention", "run", "--yes", "--as-of", "2026-01-15T00:00:00Z"]).expect(0);
    s.run(&["keys", "policy", "--rotation-days", "30"]).expect(0);
    let backup = s.dir.path().join("b.custos");
    s.run(&["backup", "--out", backup.to_str().unwrap_or_default()]).expect(0);
    s.run(&["checkpoint"]).expect(0);
    if s.backend == Backend::Sqlite {
        // The active key was made 100 days ago: older than the 30-day policy.
        sqlite(&s).execute("UPDATE keks SET created_at = created_at - 100 * 86400000000 WHERE status = 'active'", [])?;
    }
    s.run(&["freeze", "--tenant", "globex", "--reason", REASON]).expect(0);

    let r = s.run(&["--json", "status"]);
    r.expect(0);
    assert!(r.stdout.trim_start().starts_with("{\"freezes\":"), "freezes must come first: {}", r.stdout);
    let v = r.json();
    assert_eq!(v["freezes"][0]["tenant"], "globex");
    assert_eq!(v["freezes"][0]["reason"], REASON);
    assert_eq!(v["holds"]["count"], 1);
    assert_eq!(v["holds"]["active"][0]["hold_id"], "CASE-9");
    assert_eq!(v["approvals"]["pending"], 2);
    assert_eq!(v["approvals"]["oldest"]["checkpoint_id"], "cp-old");
    assert_eq!(v["last_retention_run"]["details"]["as_of"], "2026-01-15T00:00:00Z");
    assert_eq!(v["last_retention_run"]["by"], "admin");
    assert!(v["last_backup"]["details"]["file"].as_str().unwrap_or_default().ends_with("b.custos"), "{v}");
    assert_eq!(v["keys"]["active_key_id"], "key-001");
    assert_eq!(v["keys"]["rotation_days"], 30);
    if s.backend == Backend::Sqlite {
        assert_eq!(v["keys"]["active_key_age_days"], 100);
        assert_eq!(v["keys"]["rotation_overdue"], true);
    }
    let events = s.event_count();
    assert_eq!(v["store"]["events"], json!(events));
    assert!(v["store"]["bytes"].as_u64().unwrap_or(0) > 0);
    // The checkpoint was signed before the freeze (and before verify's own reads).
    let cp = v["last_checkpoint"]["seq"].as_u64().unwrap_or(0);
    assert!(cp > 0 && cp < events, "{v}");

    // Human: the freeze block comes before every other line.
    let h = s.run(&["status"]);
    h.expect(0);
    let first = h.stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(first.starts_with("FREEZES (1)"), "{}", h.stdout);
    let at = |needle: &str| h.stdout.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{}", h.stdout));
    assert!(at("tenant globex") < at("store"), "{}", h.stdout);
    assert!(at(REASON) < at("legal holds"));
    for needle in ["CASE-9", "cp-old", "key-001", "2026-01-15T00:00:00Z", "b.custos"] {
        at(needle);
    }

    // Without freezes the block still leads, saying so.
    s.run(&["unfreeze", "--tenant", "globex"]).expect(0);
    let h = s.run(&["status"]);
    assert!(h.stdout.starts_with("FREEZES (0)\n  no active freeze"), "{}", h.stdout);
    assert_eq!(s.run(&["--json", "status"]).json()["freezes"], json!([]));
    Ok(())
}
