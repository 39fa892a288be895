//! Guards legal holds and tenant deletion by crypto-shredding: nothing decryptable
//! of a deleted tenant remains in the database or its WAL, holds always win over
//! deletion and retention, the JSON contracts, RBAC and bad input.

use custos_tests::{line, line_at, Store};
use serde_json::json;

const MARKER: &str = "MARKER-zq81-unique-plaintext-7f3a9c";

fn db(store: &Store) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(&store.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap_or_else(|e| panic!("{e}"))
}

fn wrapped_deks(store: &Store, tenant: &str) -> Vec<Vec<u8>> {
    let c = db(store);
    let mut st = c.prepare("SELECT wrapped FROM deks WHERE tenant = ?1").unwrap_or_else(|e| panic!("{e}"));
    let rows = st.query_map([tenant], |r| r.get::<_, Vec<u8>>(0)).unwrap_or_else(|e| panic!("{e}"));
    rows.map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn raw_files(store: &Store) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = format!("{}{suffix}", store.db.display());
        if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

/// Sum of every field of a deletion's `counts` (artifact blobs included), which is what
/// `total_items` must equal.
fn sum_counts(report: &serde_json::Value) -> u64 {
    let counts = report["counts"].as_object().unwrap_or_else(|| panic!("no counts: {report}"));
    assert!(counts.contains_key("artifact_blobs"), "counts.artifact_blobs missing: {report}");
    counts.values().map(|v| v.as_u64().unwrap_or_else(|| panic!("non-numeric count in {report}"))).sum()
}

fn dek_rows(store: &Store, tenant: &str) -> i64 {
    db(store).query_row("SELECT count(*) FROM deks WHERE tenant = ?1", [tenant], |r| r.get(0)).unwrap_or_else(|e| panic!("{e}"))
}

fn seed(store: &Store) {
    let mut lines = vec![];
    for i in 0..40 {
        lines.push(line("doomed", "runs", "job_done", json!({"secret": MARKER, "i": i})));
        lines.push(line("keeper", "runs", "job_done", json!({"i": i})));
    }
    lines.push(line_at("doomed", "dlq", "dead", "2025-01-01T00:00:00Z", json!({"secret": MARKER})));
    lines.push(line("doomed", "costs", "spend", json!({"usd_micros": 5})));
    store.ingest(&lines.join("\n"));
}

#[test]
fn deletion_leaves_nothing_decryptable_and_log_still_verifies() {
    let s = Store::new();
    seed(&s);
    let deks = wrapped_deks(&s, "doomed");
    assert_eq!(deks.len(), 1, "doomed has one DEK before deletion");
    // A projection snapshot of the tenant (as budgets/checkpoints will write): its bytes must go too.
    // Its body carries the marker in the clear so the raw-bytes check below can see any leftover.
    {
        let c = rusqlite::Connection::open(&s.db).unwrap_or_else(|e| panic!("{e}"));
        c.execute(
            "INSERT INTO snapshots (tenant, name, covers_seq, dek_version, nonce, body) VALUES ('doomed', 'budget', 1, 1, zeroblob(12), ?1)",
            [format!("{MARKER}-snapshot").into_bytes()],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    let dry = s.run(&["--json", "compliance", "delete", "--tenant", "doomed", "--dry-run"]);
    dry.expect(0);
    let d = dry.json();
    assert_eq!(d["dry_run"], json!(true));
    assert_eq!(d["counts"]["runs"], json!(40));
    assert_eq!(d["counts"]["dlq"], json!(1));
    assert_eq!(d["counts"]["costs"], json!(1));
    assert_eq!(d["counts"]["keys"], json!(1));
    assert_eq!(d["counts"]["snapshots"], json!(1));
    assert_eq!(d["total_items"], json!(44));
    assert_eq!(d["total_items"], json!(sum_counts(&d)), "total_items sums every count");
    assert_eq!(wrapped_deks(&s, "doomed").len(), 1, "a dry run destroys nothing");

    // Another connection stays open (as a server's would), so the WAL outlives the command
    // and must have been truncated by the deletion itself.
    let holder = db(&s);
    let _: i64 = holder.query_row("SELECT count(*) FROM deks", [], |r| r.get(0)).unwrap_or(0);
    let r = s.run(&["--json", "compliance", "delete", "--yes", "--tenant", "doomed"]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["tenant"], json!("doomed"));
    assert_eq!(v["dry_run"], json!(false));
    assert!(v["deleted_at"].is_string());
    for k in ["runs", "costs", "approvals", "artifacts", "queue", "dlq", "governance", "custom", "snapshots", "keys"] {
        assert!(v["counts"][k].is_u64(), "counts.{k} missing: {v}");
    }
    assert_eq!(v["counts"], d["counts"], "the live run destroys what the dry run announced");
    assert_eq!(v["total_items"], json!(44));
    assert_eq!(v["total_items"], json!(sum_counts(&v)), "total_items sums every count");

    // Nothing of the tenant's keys or plaintext in the files.
    let files = raw_files(&s);
    assert!(files.iter().any(|(p, _)| p.ends_with("-wal")), "the WAL exists while another connection is open");
    for (path, bytes) in files {
        assert!(!contains(&bytes, MARKER.as_bytes()), "{path} holds the plaintext marker");
        for w in &deks {
            assert!(!contains(&bytes, w), "{path} still holds a wrapped DEK of the deleted tenant");
        }
    }
    drop(holder);
    assert!(wrapped_deks(&s, "doomed").is_empty());
    let c = db(&s);
    let live: i64 = c.query_row("SELECT count(*) FROM events WHERE tenant = 'doomed' AND body IS NOT NULL", [], |r| r.get(0)).unwrap_or(-1);
    assert_eq!(live, 0);
    let deleted_at: Option<i64> =
        c.query_row("SELECT deleted_at FROM tenant_heads WHERE tenant = 'doomed'", [], |r| r.get(0)).unwrap_or(None);
    assert!(deleted_at.is_some());
    let snaps: i64 = c.query_row("SELECT count(*) FROM snapshots WHERE tenant = 'doomed'", [], |r| r.get(0)).unwrap_or(-1);
    assert_eq!(snaps, 0);
    drop(c);

    // No decryption possible even with the root key: every record comes back without data.
    let list = s.run(&["events", "list", "--tenant", "doomed"]);
    list.expect(0);
    let evs = list.jsonl();
    assert_eq!(evs.len(), 42, "headers stay");
    assert!(evs.iter().all(|e| e["data"].is_null() && e["actor"].is_null()), "no body of doomed decrypts");
    assert!(!list.stdout.contains(MARKER));
    // The other tenant is untouched.
    let keep = s.run(&["events", "list", "--tenant", "keeper"]).jsonl();
    assert!(keep.iter().all(|e| e["data"].is_object()));

    let ver = s.run(&["--json", "verify"]);
    ver.expect(0);
    assert_eq!(ver.json()["purged"], json!(42));
    let ev = s.system_events("tenant_deleted");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["tenant"], json!("doomed"));
    assert_eq!(ev[0]["actor"], json!("admin"));
    assert_eq!(ev[0]["data"]["total_items"], json!(44));

    // Re-running succeeds with zero counts and records nothing new.
    let n = s.event_count();
    let again = s.run(&["--json", "compliance", "delete", "--yes", "--tenant", "doomed"]);
    again.expect(0);
    assert_eq!(again.json()["total_items"], json!(0));
    assert_eq!(again.json()["already_deleted"], json!(true));
    assert_eq!(s.event_count(), n);

    // Appends to a deleted tenant are refused, naming it.
    let app = s.run_stdin(&["ingest", "-"], &line("doomed", "runs", "x", json!({})));
    app.expect(1);
    assert!(app.stderr.contains("doomed") && app.stderr.contains("deleted"), "{}", app.stderr);
    assert_eq!(s.event_count(), n, "a refused ingest appends nothing");
}

#[test]
fn deletion_destroys_every_dek_version_of_the_tenant() {
    let s = Store::new();
    // A low seal limit makes ingest roll the tenant over to new DEK versions, so the
    // tenant holds several live versions when it is deleted.
    let lines: Vec<String> = (0..7).map(|i| line("multi", "runs", "job_done", json!({"secret": MARKER, "i": i}))).collect();
    let mut c = s.cmd();
    c.env("CUSTOS_TOKEN_FILE", &s.admin).env("CUSTOS_MAX_SEALS_PER_DEK", "2").args(["--json", "ingest", "-"]);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{e}"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        stdin.write_all(lines.join("\n").as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ingest(&line("bystander", "runs", "job_done", json!({})));

    let versions = dek_rows(&s, "multi");
    assert!(versions >= 2, "the tenant must hold more than one DEK version, has {versions}");
    let deks = wrapped_deks(&s, "multi");
    let r = s.run(&["--json", "compliance", "delete", "--yes", "--tenant", "multi"]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["counts"]["keys"], json!(versions), "every version is counted: {v}");
    assert_eq!(v["counts"]["runs"], json!(7));
    assert_eq!(v["total_items"], json!(sum_counts(&v)), "total_items sums every count");
    assert_eq!(dek_rows(&s, "multi"), 0, "no DEK row of the deleted tenant remains");
    assert_eq!(dek_rows(&s, "bystander"), 1, "other tenants keep their keys");
    for (path, bytes) in raw_files(&s) {
        assert!(!contains(&bytes, MARKER.as_bytes()), "{path} holds the plaintext marker");
        for w in &deks {
            assert!(!contains(&bytes, w), "{path} still holds a wrapped DEK of the deleted tenant");
        }
    }
    let evs = s.run(&["events", "list", "--tenant", "multi"]).jsonl();
    assert_eq!(evs.len(), 7, "headers stay");
    assert!(evs.iter().all(|e| e["data"].is_null()), "no body of the deleted tenant decrypts");
    s.run(&["verify"]).expect(0);
}

#[test]
fn applying_the_same_hold_twice_is_a_no_op() {
    let s = Store::new();
    s.ingest(&[line("acme", "runs", "r", json!({})), line("globex", "runs", "r", json!({}))].join("\n"));
    let args = ["--json", "compliance", "hold", "--tenant", "acme", "--reason", "matter 7", "--id", "CASE-7"];
    let first = s.run(&args);
    first.expect(0);
    let f = first.json();
    assert_eq!(f["already_active"], json!(false));

    // The cron job or an operator runs the same command again: same answer, nothing recorded.
    let n = s.event_count();
    let again = s.run(&args);
    again.expect(0);
    let a = again.json();
    assert_eq!(a["already_active"], json!(true));
    for k in ["event", "hold_id", "tenant", "reason", "applied_by", "applied_at", "review_by"] {
        assert_eq!(a[k], f[k], "{k} of the re-run answers the existing hold: {a}");
    }
    assert_eq!(s.event_count(), n, "a re-run appends no second hold_applied");
    assert_eq!(s.system_events("hold_applied").len(), 1);
    let text = s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "matter 7", "--id", "CASE-7"]);
    text.expect(0);
    assert!(text.stdout.contains("already active"), "{}", text.stdout);

    // The same id for another tenant or another reason is a clash, not a re-run.
    let other_tenant = s.run(&["compliance", "hold", "--tenant", "globex", "--reason", "matter 7", "--id", "CASE-7"]);
    other_tenant.expect(1);
    assert!(other_tenant.stderr.contains("CASE-7") && other_tenant.stderr.contains("already active"), "{}", other_tenant.stderr);
    let other_reason = s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "matter 8", "--id", "CASE-7"]);
    other_reason.expect(1);
    assert!(other_reason.stderr.contains("CASE-7") && other_reason.stderr.contains("already active"), "{}", other_reason.stderr);
    assert_eq!(s.event_count(), n, "refused holds append nothing");
    assert_eq!(s.run(&["--json", "compliance", "holds"]).json()["count"], json!(1));

    // Once released, the id applies afresh.
    s.run(&["compliance", "release", "--tenant", "acme", "--hold", "CASE-7"]).expect(0);
    let fresh = s.run(&args);
    fresh.expect(0);
    assert_eq!(fresh.json()["already_active"], json!(false));
    assert_eq!(s.system_events("hold_applied").len(), 2);
}

#[test]
fn holds_win_over_deletion_and_retention() {
    let s = Store::new();
    let mut lines = vec![];
    for t in ["held", "free"] {
        for i in 0..5 {
            lines.push(line_at(t, "dlq", "dead", "2025-01-01T00:00:00Z", json!({"i": i})));
        }
    }
    s.ingest(&lines.join("\n"));
    let h = s.run(&["--json", "compliance", "hold", "--tenant", "held", "--reason", "litigation 42", "--id", "CASE-42"]);
    h.expect(0);
    let hv = h.json();
    assert_eq!(hv["event"], json!("hold_applied"));
    assert_eq!(hv["hold_id"], json!("CASE-42"));
    assert_eq!(hv["tenant"], json!("held"));
    assert_eq!(hv["reason"], json!("litigation 42"));
    assert_eq!(hv["applied_by"], json!("admin"));
    assert!(hv["applied_at"].is_string());

    let before = s.event_count();
    let deks = wrapped_deks(&s, "held");
    let del = s.run(&["--json", "compliance", "delete", "--yes", "--tenant", "held"]);
    del.expect(3);
    assert!(del.stderr.contains("CASE-42"), "{}", del.stderr);
    assert_eq!(s.event_count(), before + 1, "only the blocked attempt is recorded");
    assert_eq!(wrapped_deks(&s, "held"), deks, "no key destroyed");
    let blocked = s.system_events("deletion_blocked");
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["data"]["hold_ids"], json!(["CASE-42"]));
    s.run(&["compliance", "delete", "--tenant", "held", "--dry-run"]).expect(3);

    let rr = s.run(&["--json", "retention", "run", "--yes", "--as-of", "2025-06-01T00:00:00Z"]);
    rr.expect(0);
    let r = rr.json();
    assert_eq!(r["counts"]["dlq"], json!(5), "the free tenant is purged: {r}");
    assert_eq!(r["held"]["held"], json!(5), "the held tenant is reported, not purged: {r}");
    assert_eq!(r["total_purged"], json!(5));
    let held_live = s.run(&["events", "list", "--tenant", "held"]).jsonl();
    assert!(held_live.iter().all(|e| e["data"].is_object()), "held bodies survive retention");

    let rel = s.run(&["--json", "compliance", "release", "--tenant", "held", "--hold", "CASE-42"]);
    rel.expect(0);
    let rv = rel.json();
    assert_eq!(rv["event"], json!("hold_released"));
    assert_eq!(rv["hold_ids"], json!(["CASE-42"]));
    assert_eq!(rv["released_by"], json!("admin"));
    assert!(rv["released_at"].is_string());

    let rr2 = s.run(&["--json", "retention", "run", "--yes", "--as-of", "2025-06-01T00:00:00Z"]).json();
    assert_eq!(rr2["counts"]["dlq"], json!(5), "after release retention proceeds: {rr2}");
    assert_eq!(rr2["held"], json!({}));
    s.run(&["compliance", "delete", "--yes", "--tenant", "held"]).expect(0);
    s.run(&["verify"]).expect(0);
}

#[test]
fn hold_commands_contract_and_bad_input() {
    let s = Store::new();
    s.ingest(&[line("acme", "runs", "r", json!({})), line("globex", "runs", "r", json!({}))].join("\n"));
    let gen = s.run(&["--json", "compliance", "hold", "--tenant", "acme", "--reason", "audit"]);
    gen.expect(0);
    let id = gen.json()["hold_id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("hold-") && id.len() == 13 && id[5..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "second matter", "--id", "CASE-2"]).expect(0);
    s.run(&["compliance", "hold", "--tenant", "globex", "--reason", "third", "--id", "CASE-3"]).expect(0);

    let n = s.event_count();
    let dup = s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "again", "--id", "CASE-2"]);
    dup.expect(1);
    assert!(dup.stderr.contains("CASE-2") && dup.stderr.contains("already active"), "{}", dup.stderr);
    let unknown = s.run(&["compliance", "hold", "--tenant", "nobody", "--reason", "x"]);
    unknown.expect(1);
    assert!(unknown.stderr.contains("unknown tenant nobody"), "{}", unknown.stderr);
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "   "]).expect(1);
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "x", "--id", "bad id!"]).expect(1);
    s.run(&["compliance", "hold", "--tenant", "Bad Tenant", "--reason", "x"]).expect(1);
    let nohold = s.run(&["compliance", "release", "--tenant", "acme", "--hold", "CASE-9"]);
    nohold.expect(1);
    assert!(nohold.stderr.contains("no active hold CASE-9"), "{}", nohold.stderr);
    s.run(&["compliance", "release", "--tenant", "acme", "--hold", "CASE-3"]).expect(1); // CASE-3 belongs to globex
    s.run(&["compliance", "release", "--tenant", "acme"]).expect(64); // --hold or --all is required
    s.run(&["compliance", "delete", "--yes", "--tenant", "nobody"]).expect(1);
    assert_eq!(s.event_count(), n, "refused commands append nothing");

    let list = s.run(&["--json", "compliance", "holds"]).json();
    assert_eq!(list["count"], json!(3));
    let h0 = &list["holds"][0];
    for k in ["hold_id", "tenant", "reason", "applied_by", "applied_at"] {
        assert!(h0[k].is_string(), "holds[0].{k}: {list}");
    }
    let acme = s.run(&["--json", "compliance", "holds", "--tenant", "acme"]).json();
    assert_eq!(acme["count"], json!(2));

    // RBAC: Operator may not hold; Auditor may list but not release/delete; Compliance may do all.
    let op = s.actor("op", "Operator", "Internal");
    let aud = s.actor("aud", "Auditor", "Internal");
    let viewer = s.actor("viewer", "Viewer", "Internal");
    let comp = s.actor("comp", "Compliance", "Internal");
    let n = s.event_count();
    s.run_as(&op, &["compliance", "hold", "--tenant", "acme", "--reason", "x"]).expect(2);
    s.run_as(&aud, &["compliance", "release", "--tenant", "acme", "--all"]).expect(2);
    s.run_as(&aud, &["compliance", "delete", "--yes", "--tenant", "globex"]).expect(2);
    s.run_as(&viewer, &["compliance", "holds"]).expect(2);
    assert_eq!(s.event_count(), n + 4, "each denial is recorded and nothing else happens");
    assert_eq!(s.system_events("access_denied").len(), 4);
    s.run_as(&aud, &["compliance", "holds"]).expect(0);
    let all = s.run_as(&comp, &["--json", "compliance", "release", "--tenant", "acme", "--all"]);
    all.expect(0);
    assert_eq!(all.json()["hold_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(all.json()["released_by"], json!("comp"));
    assert_eq!(s.run(&["--json", "compliance", "holds"]).json()["count"], json!(1));

    // The projection survives a rebuild unchanged.
    let rb = s.run(&["--json", "rebuild"]);
    rb.expect(0);
    assert_eq!(rb.json()["holds"], json!(1));
    assert_eq!(rb.json()["repaired"], json!(false));
}

#[test]
fn quickstart_tours_hold_blocked_deletion_retention_and_erasure() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let qs = dir.path().join("qs");
    let out = custos_tests::custos().arg("quickstart").arg("--dir").arg(&qs).output().unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for want in ["hold CASE-QS-1 applied", "-> exit 3", "released CASE-QS-1", "retention_enforced as of", "tenant_deleted:", "verify: OK"] {
        assert!(text.contains(want), "quickstart output lacks {want:?}:\n{text}");
    }
    let c = rusqlite::Connection::open(qs.join("custos.db")).unwrap_or_else(|e| panic!("{e}"));
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM events WHERE tenant='_system' AND kind IN ('deletion_blocked','tenant_deleted','retention_enforced')",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    assert_eq!(n, 3);
}
