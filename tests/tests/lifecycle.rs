//! Guards artifact storage tiers (issue 8): `lifecycle run` moves exactly the artifacts
//! whose age passed a window and purges those past the cold window, never for a tenant
//! under legal hold; a purge removes the ciphertext from the store file; dry runs and
//! second runs change nothing; restore resets tier and age; policy ordering; roles;
//! typed confirmation; export bundles account for purged artifacts; the summary.

use std::path::{Path, PathBuf};

use custos_tests::scenarios::{self, future_day};
use custos_tests::{custos, Run, Store};
use serde_json::{json, Value};

const DAY_MICROS: i64 = 86_400_000_000;
const PLAINTEXT: &str = "LIFECYCLE-PLAINTEXT-MARKER the quarterly board minutes, draft 7";

/// Stores `content` as an artifact of `tenant`; returns its id.
fn put(s: &Store, tenant: &str, name: &str, content: &str) -> String {
    let f = s.dir.path().join(name);
    std::fs::write(&f, content).unwrap_or_else(|e| panic!("{e}"));
    let r = s.run(&["--json", "artifacts", "put", "--tenant", tenant, f.to_str().unwrap_or_default()]);
    r.expect(0);
    r.json()["artifact_id"].as_str().unwrap_or_default().to_string()
}

fn db(s: &Store) -> rusqlite::Connection {
    rusqlite::Connection::open(&s.db).unwrap_or_else(|e| panic!("{e}"))
}

/// Makes an artifact `days` older: the embedded store has no other way to hold old artifacts.
fn age(s: &Store, id: &str, days: i64) {
    let d = days * DAY_MICROS;
    db(s)
        .execute(
            "UPDATE artifacts SET created_at = created_at - ?2, tier_changed_at = tier_changed_at - ?2, age_from = age_from - ?2 WHERE id = ?1",
            rusqlite::params![id, d],
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

fn show(s: &Store, id: &str) -> Value {
    let r = s.run(&["--json", "artifacts", "show", id]);
    r.expect(0);
    r.json()
}

fn lifecycle(s: &Store, args: &[&str]) -> Run {
    let mut a = vec!["--json", "--yes", "lifecycle", "run"];
    a.extend_from_slice(args);
    s.run(&a)
}

fn tiers(s: &Store, ids: &[&str]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            let v = show(s, id);
            if v["purged_at"].is_null() {
                v["tier"].as_str().unwrap_or_default().to_string()
            } else {
                "purged".into()
            }
        })
        .collect()
}

#[test]
fn run_moves_exactly_the_aged_artifacts_and_a_second_run_is_a_no_op() {
    let s = Store::new();
    let young = put(&s, "acme", "young.txt", "y");
    let ten = put(&s, "acme", "ten.txt", "ten days");
    let forty = put(&s, "acme", "forty.txt", "forty days");
    let old = put(&s, "acme", "old.txt", "a hundred days");
    age(&s, &ten, 10);
    age(&s, &forty, 40);
    age(&s, &old, 100);
    let all = [young.as_str(), ten.as_str(), forty.as_str(), old.as_str()];
    assert_eq!(tiers(&s, &all), ["hot", "hot", "hot", "hot"]);

    // Dry run: the same answer, nothing changed, nothing recorded.
    let events = s.event_count();
    let dry = s.run(&["--json", "lifecycle", "run", "--dry-run"]);
    dry.expect(0);
    let d = dry.json();
    assert_eq!(d["dry_run"], true);
    assert_eq!(d["moved"], json!({"warm": 1, "cold": 1}));
    assert_eq!(d["purged"], 1);
    assert_eq!(d["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(tiers(&s, &all), ["hot", "hot", "hot", "hot"]);
    assert_eq!(s.event_count(), events, "a dry run records nothing");
    assert!(s.system_events("lifecycle_run").is_empty());

    let r = lifecycle(&s, &[]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["moved"], json!({"warm": 1, "cold": 1}));
    assert_eq!(v["purged"], 1);
    assert_eq!(v["held"], json!({}));
    let item = |id: &str| v["items"].as_array().into_iter().flatten().find(|i| i["artifact_id"] == id).cloned().unwrap_or_default();
    assert_eq!(item(&ten)["to"], "warm");
    assert_eq!(item(&forty)["to"], "cold");
    assert_eq!(item(&old)["action"], "purge");
    assert!(item(&young).is_null(), "a young artifact is not touched");
    assert_eq!(tiers(&s, &all), ["hot", "warm", "cold", "purged"]);
    // Each move and purge is recorded in the tenant stream, the run in _system.
    let acme = s.run(&["events", "list", "--tenant", "acme", "--category", "artifacts"]).jsonl();
    let kinds: Vec<&str> = acme.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "artifact_tier_changed").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "artifact_purged").count(), 1);
    let moved = acme.iter().find(|e| e["kind"] == "artifact_tier_changed" && e["data"]["artifact_id"] == ten.as_str()).cloned();
    let moved = moved.unwrap_or_default();
    assert_eq!(moved["data"]["from"], "hot");
    assert_eq!(moved["data"]["to"], "warm");
    assert_eq!(moved["data"]["reason"], "lifecycle");
    let runs = s.system_events("lifecycle_run");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["data"]["purged"], 1);
    assert_eq!(runs[0]["data"]["moved"], json!({"warm": 1, "cold": 1}));

    // Second run at the same time: nothing moves, nothing is purged.
    let again = lifecycle(&s, &[]);
    again.expect(0);
    let a = again.json();
    assert_eq!(a["moved"], json!({"warm": 0, "cold": 0}));
    assert_eq!(a["purged"], 0);
    assert_eq!(a["items"], json!([]));
    assert_eq!(tiers(&s, &all), ["hot", "warm", "cold", "purged"]);

    // --now in the future ages everything: 8 days on, the young one is warm, the ten-day one not yet cold.
    let later = lifecycle(&s, &["--now", &future_day(8)]);
    later.expect(0);
    assert_eq!(later.json()["moved"], json!({"warm": 1, "cold": 0}));
    assert_eq!(tiers(&s, &all), ["warm", "warm", "cold", "purged"]);
    s.run(&["verify"]).expect(0);
}

#[test]
fn held_tenant_is_skipped_entirely_and_reported() {
    let s = Store::new();
    let a = put(&s, "acme", "a.txt", "acme content");
    let b_old = put(&s, "beta", "b-old.txt", "beta old content");
    let b_mid = put(&s, "beta", "b-mid.txt", "beta mid content");
    age(&s, &a, 100);
    age(&s, &b_old, 100);
    age(&s, &b_mid, 10);
    s.run(&["compliance", "hold", "--tenant", "beta", "--reason", "litigation 7", "--id", "CASE-7"]).expect(0);

    let r = lifecycle(&s, &[]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["purged"], 1);
    assert_eq!(v["moved"], json!({"warm": 0, "cold": 0}));
    assert_eq!(v["held"], json!({"beta": 2}));
    assert_eq!(tiers(&s, &[&a, &b_old, &b_mid]), ["purged", "hot", "hot"]);
    let out = s.dir.path().join("b.out");
    s.run(&["artifacts", "get", &b_old, "--out", out.to_str().unwrap_or_default()]).expect(0);
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "beta old content");
    assert_eq!(s.system_events("lifecycle_run")[0]["data"]["held"], json!({"beta": 2}));

    // Once released, the next run catches up.
    s.run(&["compliance", "release", "--tenant", "beta", "--hold", "CASE-7"]).expect(0);
    let r = lifecycle(&s, &[]);
    r.expect(0);
    assert_eq!(r.json()["purged"], 1);
    assert_eq!(r.json()["held"], json!({}));
    assert_eq!(tiers(&s, &[&a, &b_old, &b_mid]), ["purged", "purged", "warm"]);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn store_bytes(db: &Path) -> Vec<u8> {
    let mut all = std::fs::read(db).unwrap_or_default();
    let mut wal = PathBuf::from(db).into_os_string();
    wal.push("-wal");
    all.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    all
}

#[test]
fn purge_removes_the_content_from_the_store_file() {
    let s = Store::new();
    let id = put(&s, "acme", "minutes.txt", PLAINTEXT);
    let keep = put(&s, "acme", "keep.txt", "still hot");
    let ct: Vec<u8> = db(&s)
        .query_row("SELECT body FROM artifact_chunks WHERE artifact_id = ?1 AND idx = 0", [&id], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ct.len() > PLAINTEXT.len(), "sealed chunk");
    assert!(contains(&store_bytes(&s.db), &ct), "the ciphertext is in the store before the purge");
    assert!(!contains(&store_bytes(&s.db), PLAINTEXT.as_bytes()), "content is never stored in the clear");
    age(&s, &id, 91);

    lifecycle(&s, &[]).expect(0);
    let chunks: i64 = db(&s)
        .query_row("SELECT count(*) FROM artifact_chunks WHERE artifact_id = ?1", [&id], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chunks, 0, "chunk rows are gone");
    let bytes = store_bytes(&s.db);
    assert!(!contains(&bytes, &ct), "the purged ciphertext is not in the database file or its WAL");
    assert!(!contains(&bytes, PLAINTEXT.as_bytes()));

    let out = s.dir.path().join("x.out");
    let g = s.run(&["artifacts", "get", &id, "--out", out.to_str().unwrap_or_default()]);
    g.expect(1);
    assert!(g.stderr.contains("was purged by lifecycle on 20"), "{}", g.stderr);
    assert!(!out.exists());
    let v = show(&s, &id);
    assert!(v["purged_at"].as_str().is_some_and(|t| t.starts_with("20")));
    assert_eq!(v["size"], PLAINTEXT.len());
    let r = s.run(&["artifacts", "restore", &id, "--to", "hot"]);
    r.expect(1);
    assert!(r.stderr.contains("purged") && r.stderr.contains("cannot be restored"), "{}", r.stderr);
    // The other artifact and the log are intact.
    s.run(&["artifacts", "get", &keep, "--out", out.to_str().unwrap_or_default()]).expect(0);
    s.run(&["verify"]).expect(0);
    let list = s.run(&["artifacts", "list"]);
    assert!(list.stdout.contains("purged"), "{}", list.stdout);
}

#[test]
fn restore_resets_tier_and_age() {
    let s = Store::new();
    let id = put(&s, "acme", "r.txt", "restore me");
    age(&s, &id, 40);
    lifecycle(&s, &[]).expect(0);
    assert_eq!(tiers(&s, &[&id]), ["cold"]);

    let r = s.run(&["--json", "artifacts", "restore", &id, "--to", "hot"]);
    r.expect(0);
    assert_eq!(r.json()["from"], "cold");
    assert_eq!(r.json()["to"], "hot");
    assert_eq!(tiers(&s, &[&id]), ["hot"]);
    let ev = s.run(&["events", "list", "--tenant", "acme", "--kind", "artifact_tier_changed"]).jsonl();
    assert_eq!(ev.last().map(|e| e["data"]["reason"].clone()), Some(json!("restore")));
    // The age clock restarted: the same run at the same time leaves it hot (40 days old otherwise).
    let again = lifecycle(&s, &[]);
    again.expect(0);
    assert_eq!(again.json()["items"], json!([]));
    assert_eq!(tiers(&s, &[&id]), ["hot"]);
    // ... and it ages again from the restore.
    lifecycle(&s, &["--now", &future_day(8)]).expect(0);
    assert_eq!(tiers(&s, &[&id]), ["warm"]);
    s.run(&["--json", "artifacts", "restore", &id, "--to", "warm"]).expect(0);
    s.run(&["artifacts", "restore", &id, "--to", "cold"]).expect(1);
    s.run(&["artifacts", "restore", &id, "--to", "tepid"]).expect(1);
    s.run(&["artifacts", "restore", "art_000000000000000000000000", "--to", "hot"]).expect(1);
}

#[test]
fn policy_set_changes_thresholds_and_rejects_bad_ordering() {
    let s = Store::new();
    let id = put(&s, "acme", "p.txt", "policy");
    age(&s, &id, 3);
    let show = s.run(&["--json", "lifecycle", "policy", "show"]);
    show.expect(0);
    assert_eq!(show.json()["windows"], json!({"hot": 7, "warm": 30, "cold": 90}));
    lifecycle(&s, &[]).expect(0);
    assert_eq!(tiers(&s, &[&id]), ["hot"]);

    s.run(&["--json", "lifecycle", "policy", "set", "--tier", "hot", "--days", "2"]).expect(0);
    let w = s.run(&["--json", "lifecycle", "policy", "show"]).json();
    assert_eq!(w["windows"], json!({"hot": 2, "warm": 30, "cold": 90}));
    assert_eq!(w["policies"][0]["source"], "set");
    assert_eq!(w["policies"][0]["set_by"], "admin");
    lifecycle(&s, &[]).expect(0);
    assert_eq!(tiers(&s, &[&id]), ["warm"]);

    let bad = s.run(&["lifecycle", "policy", "set", "--tier", "warm", "--days", "2"]);
    bad.expect(1);
    assert!(bad.stderr.contains("hot < warm < cold"), "{}", bad.stderr);
    s.run(&["lifecycle", "policy", "set", "--tier", "cold", "--days", "30"]).expect(1);
    s.run(&["lifecycle", "policy", "set", "--tier", "hot", "--days", "0"]).expect(1);
    s.run(&["lifecycle", "policy", "set", "--tier", "lukewarm", "--days", "5"]).expect(1);
    let set = s.system_events("lifecycle_policy_set");
    assert_eq!(set.len(), 1, "refused changes are not recorded");
    assert_eq!(set[0]["data"], json!({"tier": "hot", "days": 2}));
    // The policy survives a rebuild of the governance snapshot.
    s.run(&["rebuild"]).expect(0);
    assert_eq!(s.run(&["--json", "lifecycle", "policy", "show"]).json()["windows"]["hot"], 2);
}

#[test]
fn roles_are_enforced() {
    let s = Store::new();
    let id = put(&s, "acme", "r.txt", "roles");
    let op = s.actor("op", "Operator", "Restricted");
    let auditor = s.actor("aud", "Auditor", "Restricted");
    let viewer = s.actor("view", "Viewer", "Public");
    s.run_as(&op, &["lifecycle", "run", "--dry-run"]).expect(2);
    s.run_as(&auditor, &["--yes", "lifecycle", "run"]).expect(2);
    s.run_as(&op, &["artifacts", "restore", &id, "--to", "hot"]).expect(2);
    s.run_as(&op, &["lifecycle", "policy", "set", "--tier", "hot", "--days", "3"]).expect(2);
    s.run_as(&viewer, &["lifecycle", "summary"]).expect(2);
    s.run_as(&auditor, &["lifecycle", "summary"]).expect(0);
    s.run_as(&viewer, &["lifecycle", "policy", "show"]).expect(0);
    let denied = s.system_events("access_denied");
    assert!(denied.iter().any(|d| d["data"]["action"] == "lifecycle run" && d["data"]["actor"] == "op"));
    assert!(denied.iter().any(|d| d["data"]["action"] == "artifacts restore"));
}

#[test]
fn purge_needs_confirmation_and_refuses_without_a_terminal() {
    let s = Store::new();
    let old = put(&s, "acme", "old.txt", "old");
    let mid = put(&s, "acme", "mid.txt", "mid");
    age(&s, &old, 100);
    age(&s, &mid, 10);
    let r = s.run_stdin(&["lifecycle", "run"], "purge\n");
    r.expect(1);
    assert!(r.stderr.contains("--yes") && r.stderr.contains("not a terminal"), "{}", r.stderr);
    assert_eq!(tiers(&s, &[&old, &mid]), ["hot", "hot"], "nothing changed");
    assert!(s.system_events("lifecycle_run").is_empty());
    // A run that only moves destroys nothing and needs no confirmation.
    s.run(&["artifacts", "restore", &old, "--to", "hot"]).expect(0);
    let r = s.run_stdin(&["--json", "lifecycle", "run"], "");
    r.expect(0);
    assert_eq!(tiers(&s, &[&old, &mid]), ["hot", "warm"]);
}

#[test]
fn export_lists_a_purged_artifact_and_both_verifiers_accept_it() {
    let s = Store::new();
    let gone = put(&s, "acme", "gone.txt", "purged content");
    let kept = put(&s, "acme", "kept.txt", "kept content");
    age(&s, &gone, 100);
    lifecycle(&s, &[]).expect(0);
    let out = s.dir.path().join("bundle");
    let r = s.run(&["--json", "compliance", "export", "--tenant", "acme", "--out", out.to_str().unwrap_or_default()]);
    r.expect(0);
    let dir = PathBuf::from(r.json()["export_path"].as_str().unwrap_or_default());
    let index: Vec<Value> = std::fs::read_to_string(dir.join("artifacts/index.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let line = |id: &str| index.iter().find(|l| l["artifact_id"] == id).cloned().unwrap_or_default();
    assert_eq!(line(&gone)["status"], "purged");
    assert!(line(&gone)["path"].is_null());
    assert_eq!(line(&gone)["size"], "purged content".len());
    assert_eq!(line(&gone)["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(line(&kept)["status"], "exported");
    assert!(!dir.join("artifacts").join(&gone).exists());
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap_or_default()).unwrap_or_default();
    assert_eq!(manifest["counts"]["artifacts_purged"], 1);
    assert_eq!(manifest["counts"]["artifacts"], 1);

    let v = custos()
        .args(["--json", "compliance", "verify-bundle"])
        .arg(&dir)
        .env("CUSTOS_STORE", "/nonexistent/custos.db")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/verify_bundle.py");
    let py = std::process::Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .env("CUSTOS_PYVERIFY_NO_CRYPTO", "1")
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert_eq!(py.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));

    // A purged line claiming content is rejected: the status is checked, not trusted.
    let idx = dir.join("artifacts/index.jsonl");
    let text = std::fs::read_to_string(&idx).unwrap_or_default();
    std::fs::write(&idx, text.replace("\"status\":\"purged\",\"path\":null", "\"status\":\"purged\",\"path\":\"artifacts/x\""))
        .unwrap_or_else(|e| panic!("{e}"));
    let v = custos().args(["compliance", "verify-bundle"]).arg(&dir).output().unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(v.status.code(), Some(0));
}

#[test]
fn summary_counts_and_bytes_per_tier_and_tenant() {
    let s = Store::new();
    let a1 = put(&s, "acme", "a1.txt", "12345");
    let _a2 = put(&s, "acme", "a2.txt", "1234567890");
    let a3 = put(&s, "acme", "a3.txt", "123");
    let b1 = put(&s, "beta", "b1.txt", "1234567");
    age(&s, &a1, 10);
    age(&s, &a3, 100);
    age(&s, &b1, 40);
    lifecycle(&s, &[]).expect(0);
    let r = s.run(&["--json", "lifecycle", "summary"]);
    r.expect(0);
    let v = r.json();
    let c = |n: u64, b: u64| json!({"count": n, "bytes": b});
    assert_eq!(v["total"]["hot"], c(1, 10));
    assert_eq!(v["total"]["warm"], c(1, 5));
    assert_eq!(v["total"]["cold"], c(1, 7));
    assert_eq!(v["total"]["purged"], c(1, 3));
    assert_eq!(v["tenants"]["acme"]["hot"], c(1, 10));
    assert_eq!(v["tenants"]["acme"]["purged"], c(1, 3));
    assert_eq!(v["tenants"]["beta"]["cold"], c(1, 7));
    assert_eq!(v["tenants"]["beta"]["hot"], c(0, 0));
    let one = s.run(&["--json", "lifecycle", "summary", "--tenant", "beta"]).json();
    assert_eq!(one["total"]["cold"], c(1, 7));
    assert!(one["tenants"]["acme"].is_null());
    let human = s.run(&["lifecycle", "summary"]);
    human.expect(0);
    assert!(human.stdout.contains("acme") && human.stdout.contains("purged: 1 (3 B)"), "{}", human.stdout);
}

#[test]
fn backend_agnostic_scenario_on_sqlite() -> custos_tests::TestResult {
    scenarios::artifact_lifecycle_moves_restores_and_purges(&Store::new())
}
