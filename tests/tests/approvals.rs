//! Guards approval checkpoints end to end: lifecycle, per-checkpoint role (exit 2,
//! recorded), expiry at the instant and the idempotent cron step, the audit report and
//! CSV, and two real processes racing to decide the same checkpoint (exactly one wins).

use std::process::Stdio;

use custos_tests::{Run, Store, TestResult};
use serde_json::Value;

fn create(s: &Store, id: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "approvals",
        "create",
        "--tenant",
        "acme",
        "--dag-run",
        "abc123_def456",
        "--prompt",
        "Approve weekly report draft?",
        "--id",
        id,
    ];
    args.extend_from_slice(extra);
    let r = s.run(&args);
    r.expect(0);
    r.json()
}

fn events(s: &Store, kind: &str) -> Vec<Value> {
    let r = s.run(&["events", "list", "--tenant", "acme", "--kind", kind]);
    r.expect(0);
    r.jsonl()
}

#[test]
fn lifecycle_create_list_approve_show_and_never_twice() -> TestResult {
    let s = Store::new();
    let op = s.actor("otto", "Operator", "Internal");
    let c = create(&s, "cp1", &[]);
    assert_eq!(c["status"], "pending");
    assert_eq!(c["required_role"], "Operator");
    assert_eq!(c["dag_run_id"], "abc123_def456");
    let created = custos_domain::parse_ts(c["created_at"].as_str().unwrap_or(""))?;
    let expires = custos_domain::parse_ts(c["expires_at"].as_str().unwrap_or(""))?;
    assert_eq!(expires - created, 72 * 3600 * 1_000_000, "default expiry is 72 h");

    let l = s.run(&["--json", "approvals", "list", "--status", "pending"]).json();
    assert_eq!(l["checkpoints"].as_array().map(|a| a.len()), Some(1));

    let a = s.run_as(&op, &["--json", "approvals", "approve", "cp1", "--kv", "signoff_text=Approved by manager", "priority=high"]);
    a.expect(0);
    assert_eq!(a.json()["status"], "approved");
    assert_eq!(a.json()["decided_by"], "otto");
    assert_eq!(a.json()["kv"]["priority"], "high");

    let again = s.run(&["approvals", "reject", "cp1", "--reason", "too late"]);
    again.expect(1);
    assert!(again.stderr.contains("conflict: checkpoint cp1 is already approved by otto"), "{}", again.stderr);
    s.run(&["approvals", "approve", "cp1"]).expect(1);

    let show = s.run(&["--json", "approvals", "show", "cp1"]).json();
    assert_eq!(show["status"], "approved");
    assert_eq!(events(&s, "checkpoint_approved").len(), 1);
    assert_eq!(events(&s, "checkpoint_rejected").len(), 0);
    assert_eq!(events(&s, "checkpoint_created")[0]["category"], "approvals");

    // Ids are unique across tenants; unknown ids are "not found".
    let dup = s.run(&["approvals", "create", "--tenant", "globex", "--dag-run", "x", "--prompt", "p", "--id", "cp1"]);
    dup.expect(1);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    s.run(&["approvals", "show", "nope"]).expect(1);
    s.run(&["approvals", "approve", "nope"]).expect(1);
    // Reject needs a reason; a generated id looks like ckpt-….
    create(&s, "cp2", &[]);
    s.run(&["approvals", "reject", "cp2"]).expect(64);
    let r = s.run(&["--json", "approvals", "reject", "cp2", "--reason", "Budget concerns - needs revision"]);
    r.expect(0);
    assert_eq!(r.json()["reason"], "Budget concerns - needs revision");
    let gen = s.run(&["--json", "approvals", "create", "--tenant", "acme", "--dag-run", "d", "--prompt", "p"]).json();
    assert!(gen["checkpoint_id"].as_str().unwrap_or("").starts_with("ckpt-"));
    Ok(())
}

#[test]
fn deciding_needs_the_checkpoints_role_and_denials_are_recorded() -> TestResult {
    let s = Store::new();
    let viewer = s.actor("vera", "Viewer", "Internal");
    let op = s.actor("otto", "Operator", "Internal");
    let comp = s.actor("cleo", "Compliance", "Internal");
    create(&s, "cp-high", &["--role", "Compliance"]);
    let r = s.run_as(&op, &["approvals", "approve", "cp-high"]);
    r.expect(2);
    assert!(r.stderr.contains("needs Compliance"), "{}", r.stderr);
    s.run_as(&op, &["approvals", "reject", "cp-high", "--reason", "x"]).expect(2);
    let denied = s.system_events("access_denied");
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0]["data"]["action"], "approvals approve");
    assert_eq!(denied[0]["data"]["required_role"], "Compliance");
    assert_eq!(denied[0]["data"]["tenant"], "acme");
    // Viewers read but cannot create, expire or report.
    s.run_as(&viewer, &["approvals", "list"]).expect(0);
    s.run_as(&viewer, &["approvals", "show", "cp-high"]).expect(0);
    s.run_as(&viewer, &["approvals", "create", "--tenant", "acme", "--dag-run", "d", "--prompt", "p"]).expect(2);
    s.run_as(&viewer, &["approvals", "expire"]).expect(2);
    s.run_as(&op, &["approvals", "report"]).expect(2);
    // The required role decides.
    s.run_as(&comp, &["approvals", "approve", "cp-high"]).expect(0);
    assert_eq!(events(&s, "checkpoint_approved").len(), 1);
    Ok(())
}

#[test]
fn expiry_applies_at_the_instant_and_the_cron_step_is_idempotent() -> TestResult {
    let s = Store::new();
    create(&s, "soon", &["--expires-in", "1s"]);
    create(&s, "later", &[]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    // Reads treat it as expired before `approvals expire` runs.
    let l = s.run(&["--json", "approvals", "list", "--status", "expired"]).json();
    assert_eq!(l["checkpoints"][0]["checkpoint_id"], "soon");
    let r = s.run(&["approvals", "approve", "soon"]);
    r.expect(1);
    assert!(r.stderr.contains("expired at"), "{}", r.stderr);
    let e = s.run(&["--json", "approvals", "expire"]);
    e.expect(0);
    assert_eq!(e.json()["expired"], 1);
    assert_eq!(s.run(&["--json", "approvals", "expire"]).json()["expired"], 0);
    assert_eq!(events(&s, "checkpoint_expired").len(), 1);
    assert_eq!(s.run(&["--json", "approvals", "show", "later"]).json()["status"], "pending");
    // Default expiry is configurable and recorded.
    s.run(&["approvals", "config", "--default-expiry", "48h"]).expect(0);
    let c = create(&s, "cfg", &[]);
    let d =
        custos_domain::parse_ts(c["expires_at"].as_str().unwrap_or(""))? - custos_domain::parse_ts(c["created_at"].as_str().unwrap_or(""))?;
    assert_eq!(d, 48 * 3600 * 1_000_000);
    assert_eq!(s.system_events("approvals_config_set").len(), 1);
    s.run(&["approvals", "create", "--tenant", "acme", "--dag-run", "d", "--prompt", "p", "--expires-in", "3x"]).expect(1);
    Ok(())
}

#[test]
fn report_counts_decisions_and_writes_csv() -> TestResult {
    let s = Store::new();
    let aud = s.actor("audrey", "Auditor", "Internal");
    let op = s.actor("otto", "Operator", "Internal");
    for id in ["a1", "a2", "r1", "p1"] {
        create(&s, id, &[]);
    }
    create(&s, "e1", &["--expires-in", "1s"]);
    s.run_as(&op, &["approvals", "approve", "a1"]).expect(0);
    s.run(&["approvals", "approve", "a2"]).expect(0);
    s.run(&["approvals", "reject", "r1", "--reason", "needs, \"quotes\" and commas"]).expect(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    s.run(&["approvals", "expire"]).expect(0);
    let csv = s.dir.path().join("audit_checkpoints.csv");
    let r = s.run_as(&aud, &["--json", "approvals", "report", "--days", "7", "--csv", csv.to_str().unwrap_or("")]);
    r.expect(0);
    let j = r.json();
    assert_eq!(
        (j["approved"].as_u64(), j["rejected"].as_u64(), j["expired"].as_u64(), j["pending"].as_u64()),
        (Some(2), Some(1), Some(1), Some(1))
    );
    assert_eq!(j["approvals_by_actor"]["otto"], 1);
    assert_eq!(j["approvals_by_actor"]["admin"], 1);
    assert_eq!(j["approvals_by_role"]["Operator"], 1);
    assert_eq!(j["approvals_by_role"]["Admin"], 1);
    assert!(j["median_secs_to_decision"].is_i64());
    let text = std::fs::read_to_string(&csv)?;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,event,checkpoint_id,dag_run_id,tenant,actor,role,reason"));
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("checkpoint_rejected,r1,abc123_def456,acme,admin,Admin,\"needs, \"\"quotes\"\" and commas\""), "{text}");
    assert!(text.contains("checkpoint_expired,e1"), "{text}");
    Ok(())
}

/// Writes the report CSV and returns its data rows (header dropped).
fn report_csv(s: &Store, name: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let csv = s.dir.path().join(name);
    s.run(&["approvals", "report", "--days", "7", "--csv", csv.to_str().unwrap_or("")]).expect(0);
    Ok(std::fs::read_to_string(&csv)?.lines().skip(1).map(str::to_string).collect())
}

#[test]
fn report_rows_of_expired_checkpoints_do_not_depend_on_the_cron_step() -> TestResult {
    let s = Store::new();
    let soon = create(&s, "soon", &["--expires-in", "1s"]);
    create(&s, "ok", &[]);
    s.run(&["approvals", "approve", "ok"]).expect(0);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let before = report_csv(&s, "before.csv")?;
    // Let the cron step run visibly later than the expiry instant, so a row that took the
    // time of the recorded `checkpoint_expired` event would differ.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.run(&["--json", "approvals", "expire"]).json()["expired"], 1);
    let after = report_csv(&s, "after.csv")?;
    assert_eq!(before, after, "the report must read the same before and after `approvals expire`");

    let expires_at = custos_domain::parse_ts(soon["expires_at"].as_str().unwrap_or(""))?;
    let row = after.iter().find(|l| l.contains(",checkpoint_expired,soon,")).ok_or("no expired row")?;
    let ts = row.split(',').next().unwrap_or("");
    assert_eq!(custos_domain::parse_ts(ts)?, expires_at, "{row}");
    // Rows are ordered by instant (the approval came before the expiry).
    let instants = after.iter().map(|l| custos_domain::parse_ts(l.split(',').next().unwrap_or(""))).collect::<Result<Vec<_>, _>>()?;
    assert!(instants.windows(2).all(|w| w[0] <= w[1]), "{after:?}");
    assert!(after[0].contains(",checkpoint_approved,ok,"), "{after:?}");
    Ok(())
}

fn spawn(s: &Store, token: &std::path::Path, args: &[&str]) -> std::process::Child {
    s.cmd()
        .env("CUSTOS_TOKEN_FILE", token)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn finish(c: std::process::Child) -> Run {
    let o = c.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

#[test]
fn two_processes_racing_to_decide_exactly_one_wins() -> TestResult {
    let s = Store::new();
    let alice = s.actor("alice", "Operator", "Internal");
    let bob = s.actor("bob", "Admin", "Internal");
    const ROUNDS: usize = 20;
    for i in 0..ROUNDS {
        create(&s, &format!("race-{i}"), &[]);
    }
    for i in 0..ROUNDS {
        let id = format!("race-{i}");
        let a = spawn(&s, &alice, &["approvals", "approve", &id]);
        let b = spawn(&s, &bob, &["approvals", "reject", &id, "--reason", "race"]);
        let (ra, rb) = (finish(a), finish(b));
        let mut codes = [ra.code, rb.code];
        codes.sort_unstable();
        assert_eq!(codes, [0, 1], "round {i}: exactly one wins\nA: {ra:?}\nB: {rb:?}");
        let loser = if ra.code == 1 { &ra } else { &rb };
        assert!(loser.stderr.contains("conflict: checkpoint"), "round {i}: {}", loser.stderr);
    }
    let decided = events(&s, "checkpoint_approved").len() + events(&s, "checkpoint_rejected").len();
    assert_eq!(decided, ROUNDS, "one decision event per checkpoint");
    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["ok"], true);
    let rb = s.run(&["--json", "rebuild"]).json();
    assert_eq!(rb["governance"]["drift"], serde_json::json!([]));
    Ok(())
}
