//! Guards the PostgreSQL backend through the real binary: the foundation scenarios of
//! `custos_tests::scenarios` (the same ones SQLite passes), four concurrent writers
//! serialized by the advisory lock, rolled-back appends leaving no trace, `init`
//! refusing an existing store, and tampering via SQL caught by `verify`.
//!
//! Each test gets a fresh database on a throwaway server (`custos_tests::pg`). Without
//! PostgreSQL binaries the tests print `SKIPPING PostgreSQL tests` and pass, except
//! with `CI=true`, where they fail.

use custos_tests::scenarios::{self, sample};
use custos_tests::{custos, line, pg, Backend, Store, TestResult};
use serde_json::json;

/// A fresh PostgreSQL-backed store, or None when PostgreSQL is not installed (skip).
fn pg_store() -> Option<Store> {
    Store::with_backend(Backend::Postgres)
}

#[test]
fn init_ingest_list_verify_round_trip() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    assert!(s.location.starts_with("postgres://"));
    assert!(!s.db.exists(), "no SQLite file may be made for a PostgreSQL store");
    scenarios::init_ingest_list_verify_round_trip(&s)
}

#[test]
fn every_bad_input_class_rejects_the_whole_input() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    scenarios::every_bad_input_class_rejects_the_whole_input(&s)
}

#[test]
fn missing_wrong_and_disabled_tokens_are_denied_and_recorded() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    scenarios::missing_wrong_and_disabled_tokens_are_denied_and_recorded(&s)
}

#[test]
fn receipts_and_checkpoints_expose_truncation() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    scenarios::receipts_and_checkpoints_expose_truncation(&s)
}

#[test]
fn key_rotation_keeps_old_events_readable() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    scenarios::key_rotation_keeps_old_events_readable(&s)
}

#[test]
fn artifact_lifecycle_moves_restores_and_purges() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    scenarios::artifact_lifecycle_moves_restores_and_purges(&s)
}

/// The advisory-lock test: four processes append at once, the chain stays linear.
#[test]
fn four_processes_ingesting_at_once_lose_nothing() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    scenarios::concurrent_ingests_lose_nothing(&s, 4, 1500)?;
    let mut c = s.pg_client();
    let r = c.query_one("SELECT count(*), min(global_seq), max(global_seq) FROM events", &[])?;
    let (n, lo, hi): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    assert_eq!((lo, hi), (1, n), "global_seq is dense: 1..={n}");
    Ok(())
}

/// While another session holds the write lock, an append waits (up to the busy
/// timeout) and then fails cleanly; once it is released, appends go through.
#[test]
fn appends_wait_for_the_advisory_write_lock() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let before = s.event_count();
    let mut c = s.pg_client();
    let mut holder = c.transaction()?;
    holder.execute("SELECT pg_advisory_xact_lock($1)", &[&custos_eventlog::postgres::WRITE_LOCK_KEY])?;
    let out = s.cmd().env("CUSTOS_TOKEN_FILE", &s.admin).env("CUSTOS_BUSY_TIMEOUT_MS", "300").args(["checkpoint"]).output()?;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked"), "{}", String::from_utf8_lossy(&out.stderr));
    // Reads are not blocked by a writer.
    s.run(&["events", "list"]).expect(0);
    holder.rollback()?;
    s.ingest(&sample(3, "acme"));
    assert_eq!(s.event_count(), before + 3);
    Ok(())
}

/// A failing ingest rolls back inserted batches: no rows, no gap in global_seq, and the
/// next append continues the chain from the old head.
#[test]
fn rolled_back_append_leaves_no_trace() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let first = s.ingest(&sample(3, "acme"));
    // 5000 good lines (more than one 4096-event batch is inserted), then a bad one.
    let input = format!("{}\n{{not json\n", sample(5000, "beta"));
    let r = s.run_stdin(&["ingest", "-"], &input);
    r.expect(1);
    assert!(r.stderr.contains("line 5001"), "{}", r.stderr);
    let mut c = s.pg_client();
    let row = c.query_one("SELECT count(*), max(global_seq) FROM events", &[])?;
    assert_eq!(row.get::<_, i64>(0) as u64, first["last_seq"].as_u64().unwrap_or(0));
    assert_eq!(row.get::<_, i64>(1) as u64, first["last_seq"].as_u64().unwrap_or(0));
    let beta: i64 = c.query_one("SELECT count(*) FROM tenant_heads WHERE tenant = 'beta'", &[])?.get(0);
    assert_eq!(beta, 0, "no tenant head for the rolled-back tenant");
    let deks: i64 = c.query_one("SELECT count(*) FROM deks WHERE tenant = 'beta'", &[])?.get(0);
    assert_eq!(deks, 0, "no DEK for the rolled-back tenant");
    let next = s.ingest(&sample(2, "beta"));
    assert_eq!(next["first_seq"].as_u64(), first["last_seq"].as_u64().map(|v| v + 1), "no gap after a rollback");
    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["events"], next["last_seq"]);
    Ok(())
}

#[test]
fn init_refuses_an_existing_store_and_a_foreign_schema() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let other_key = s.dir.path().join("other.key");
    let again = custos().args(["init", "--store", &s.location, "--root-key-file"]).arg(&other_key).output()?;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(!other_key.exists(), "no key file for a store that was not made");
    // The first store is untouched.
    s.run(&["verify"]).expect(0);

    let Some(server) = pg::server() else { return Ok(()) };
    let foreign = server.fresh_db();
    let mut c = postgres::Client::connect(&foreign, postgres::NoTls)?;
    c.batch_execute("CREATE TABLE actors (id int)")?;
    let r = custos().args(["init", "--store", &foreign, "--root-key-file"]).arg(&other_key).output()?;
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not part of a custos store"), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!other_key.exists(), "key file removed again when the store cannot be made");
    let tables: i64 = c.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])?.get(0);
    assert_eq!(tables, 1, "nothing half-made");

    // An empty database is not a store: a clear error that says how to make one.
    let empty = server.fresh_db();
    let r = custos().env("CUSTOS_STORE", &empty).env("CUSTOS_ROOT_KEY_FILE", &s.key).args(["whoami"]).output()?;
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("custos init"), "{}", String::from_utf8_lossy(&r.stderr));
    Ok(())
}

#[test]
fn store_url_password_is_never_printed() -> TestResult {
    let Some(server) = pg::server() else { return Ok(()) };
    let url = server.fresh_db().replace("postgres:///", "postgres://custos:s3cr3t-pw@/");
    let d = tempfile::tempdir()?;
    let out = custos().args(["--json", "init", "--store", &url, "--root-key-file"]).arg(d.path().join("k")).output()?;
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("s3cr3t-pw"), "{all}");
    Ok(())
}

/// Store with seqs 1-2 from init, acme at 3..=6, beta at 7..=10, and a checkpoint.
fn fixture() -> Option<Store> {
    let s = pg_store()?;
    let lines: Vec<String> =
        (0..8).map(|i| line(if i < 4 { "acme" } else { "beta" }, "queue", "job_enqueued", json!({"job": i}))).collect();
    s.ingest(&lines.join("\n"));
    s.run(&["checkpoint"]).expect(0);
    Some(s)
}

#[test]
fn tampering_via_sql_is_detected_at_the_right_seq() -> TestResult {
    let cases: &[(&str, &str, u64)] = &[
        ("edited header field (kind)", "UPDATE events SET kind = 'job_enqueueD' WHERE global_seq = 4", 4),
        ("edited header field (occurred_at)", "UPDATE events SET occurred_at = occurred_at + 1 WHERE global_seq = 5", 5),
        ("deleted middle row", "DELETE FROM events WHERE global_seq = 5", 5),
        (
            "ciphertexts swapped between rows of one tenant",
            "UPDATE events e SET body = o.body, nonce = o.nonce FROM events o WHERE e.global_seq = 3 AND o.global_seq = 4",
            3,
        ),
        ("flipped byte in a commitment", "UPDATE events SET commitment = set_byte(commitment, 0, get_byte(commitment, 0) # 1) WHERE global_seq = 6", 6),
        ("body deleted without a purge record", "UPDATE events SET body = NULL, nonce = NULL WHERE global_seq = 7", 7),
        (
            "tail truncation behind a signed checkpoint",
            "DELETE FROM events WHERE global_seq >= 9; UPDATE tenant_heads SET last_seq = 2, chain = (SELECT tenant_chain FROM events WHERE global_seq = 8) WHERE tenant = 'beta'",
            9,
        ),
    ];
    for (name, sql, seq) in cases {
        let Some(s) = fixture() else { return Ok(()) };
        s.run(&["verify"]).expect(0);
        s.pg_client().batch_execute(sql)?;
        let r = s.run(&["--json", "verify"]);
        assert_eq!(r.code, 5, "{name}: {}", r.stdout);
        let v = r.json();
        assert_eq!(v["ok"], false, "{name}");
        assert_eq!(v["first_bad_seq"], *seq, "{name}: {v}");
    }
    Ok(())
}

/// Crypto-shredding leaves dead tuples holding the wrapped DEK in the table file;
/// `compact()` (VACUUM FULL) rewrites the table so the bytes leave the live files.
#[test]
fn compact_removes_dead_dek_tuples_from_the_table_files() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let Some(server) = pg::server() else { return Ok(()) };
    s.ingest(&sample(2, "acme"));
    let mut c = s.pg_client();
    let wrapped: Vec<u8> = c.query_one("SELECT wrapped FROM deks WHERE tenant = 'acme'", &[])?.get(0);
    let file_has_it = |c: &mut postgres::Client| -> Result<bool, Box<dyn std::error::Error>> {
        c.batch_execute("CHECKPOINT")?;
        let rel: String = c.query_one("SELECT pg_relation_filepath('deks')", &[])?.get(0);
        let bytes = std::fs::read(server.dir.join("data").join(rel))?;
        Ok(bytes.windows(wrapped.len()).any(|w| w == wrapped.as_slice()))
    };
    // The shredding itself (a DELETE, as `tenant delete` does through the Tx trait).
    c.batch_execute("DELETE FROM deks WHERE tenant = 'acme'")?;
    assert!(file_has_it(&mut c)?, "the dead tuple still holds the wrapped DEK before compaction");
    let mut log = custos_eventlog::EventLog::open(&s.location)?;
    log.compact()?;
    assert!(!file_has_it(&mut c)?, "VACUUM FULL must drop the dead tuple");
    Ok(())
}

/// A store written by a newer custos (higher `schema_version`) is refused, not guessed at.
#[test]
fn newer_schema_version_is_refused() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    s.run(&["whoami"]).expect(0);
    s.pg_client().batch_execute("UPDATE schema_version SET version = 999")?;
    let r = s.run(&["whoami"]);
    r.expect(1);
    assert!(r.stderr.contains("newer than this custos understands"), "{}", r.stderr);
    Ok(())
}

/// Whether the live data file of `table` (heap, after a CHECKPOINT) contains `needle`.
fn relation_file_has(s: &Store, table: &str, needle: &[u8]) -> Result<bool, Box<dyn std::error::Error>> {
    let Some(server) = pg::server() else { return Ok(false) };
    let mut c = s.pg_client();
    c.batch_execute("CHECKPOINT")?;
    let rel: String = c.query_one("SELECT pg_relation_filepath($1::text::regclass)", &[&table])?.get(0);
    let bytes = std::fs::read(server.dir.join("data").join(rel))?;
    Ok(bytes.windows(needle.len()).any(|w| w == needle))
}

fn count(s: &Store, sql: &str) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(s.pg_client().query_one(sql, &[])?.get(0))
}

/// A hold blocks deletion (exit 3); once released, deletion crypto-shreds the tenant on
/// PostgreSQL: DEK rows, snapshots and artifacts are gone, `reclaim` (VACUUM FULL)
/// removed the dead DEK tuple from the table file, headers stay and the log verifies.
#[test]
fn hold_then_deletion_crypto_shreds_and_verifies() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let mut lines: Vec<String> = (0..5).map(|i| line("doomed", "runs", "job_done", json!({"i": i, "note": "pg-secret"}))).collect();
    lines.push(line("keeper", "runs", "job_done", json!({"i": 0})));
    s.ingest(&lines.join("\n"));
    let art = s.dir.path().join("report.txt");
    std::fs::write(&art, b"artifact bytes of the doomed tenant")?;
    s.run(&["--json", "artifacts", "put", "--tenant", "doomed", art.to_str().unwrap_or_default()]).expect(0);
    let wrapped: Vec<u8> = s.pg_client().query_one("SELECT wrapped FROM deks WHERE tenant = 'doomed'", &[])?.get(0);

    s.run(&["compliance", "hold", "--tenant", "doomed", "--reason", "litigation", "--id", "CASE-1"]).expect(0);
    s.run(&["compliance", "delete", "--yes", "--tenant", "doomed"]).expect(3);
    assert_eq!(count(&s, "SELECT count(*) FROM deks WHERE tenant = 'doomed'")?, 1, "a held tenant keeps its key");
    s.run(&["compliance", "release", "--tenant", "doomed", "--hold", "CASE-1"]).expect(0);

    let dry = s.run(&["--json", "compliance", "delete", "--tenant", "doomed", "--dry-run"]);
    dry.expect(0);
    assert_eq!(dry.json()["counts"]["runs"], json!(5));
    assert_eq!(dry.json()["counts"]["artifacts"].as_u64().map(|n| n >= 1), Some(true), "{}", dry.stdout);
    let r = s.run(&["--json", "compliance", "delete", "--yes", "--tenant", "doomed"]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["counts"], dry.json()["counts"], "the live run destroys what the dry run announced");
    assert_eq!(v["storage_reclaimed"], json!(true), "{v}");

    assert_eq!(count(&s, "SELECT count(*) FROM deks WHERE tenant = 'doomed'")?, 0, "DEK rows are gone");
    assert_eq!(count(&s, "SELECT count(*) FROM events WHERE tenant = 'doomed' AND body IS NOT NULL")?, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM artifacts WHERE tenant = 'doomed'")?, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM artifact_chunks")?, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM snapshots WHERE tenant = 'doomed'")?, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM tenant_heads WHERE tenant = 'doomed' AND deleted_at IS NOT NULL")?, 1);
    assert!(!relation_file_has(&s, "deks", &wrapped)?, "VACUUM FULL must drop the dead tuple holding the wrapped DEK");

    let list = s.run(&["events", "list", "--tenant", "doomed"]);
    list.expect(0);
    assert!(list.jsonl().iter().all(|e| e["data"].is_null()), "no body of doomed decrypts");
    assert!(!list.stdout.contains("pg-secret"));
    assert!(s.run(&["events", "list", "--tenant", "keeper"]).jsonl().iter().all(|e| e["data"].is_object()));
    let ver = s.run(&["--json", "verify"]);
    ver.expect(0);
    assert_eq!(ver.json()["ok"], json!(true));
    assert_eq!(s.system_events("tenant_deleted").len(), 1);
    // Idempotent: a second run records nothing new.
    let n = s.event_count();
    s.run(&["compliance", "delete", "--yes", "--tenant", "doomed"]).expect(0);
    assert_eq!(s.event_count(), n);
    s.run_stdin(&["ingest", "-"], &line("doomed", "runs", "x", json!({}))).expect(1);
    Ok(())
}

/// A retention run on PostgreSQL purges exactly what its dry run announced, marks the
/// rows with the run's event, and the log verifies; a second run purges nothing.
#[test]
fn retention_run_purges_and_verifies() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let lines = [
        custos_tests::line_at("acme", "runs", "old_run", "2025-01-01T00:00:00Z", json!({"i": 1})),
        custos_tests::line_at("acme", "dlq", "old_dlq", "2025-01-01T00:00:00Z", json!({"i": 2})),
        line("acme", "runs", "new_run", json!({"i": 3})),
        custos_tests::line_at("beta", "costs", "old_cost", "2025-01-01T00:00:00Z", json!({"usd_micros": 1})),
    ];
    s.ingest(&lines.join("\n"));
    s.run(&["retention", "policy", "set", "--category", "runs", "--days", "10"]).expect(0);
    s.run(&["retention", "policy", "set", "--category", "dlq", "--days", "10", "--tenant", "acme"]).expect(0);
    let dry = s.run(&["--json", "retention", "run", "--dry-run"]);
    dry.expect(0);
    assert_eq!(count(&s, "SELECT count(*) FROM events WHERE body IS NULL")?, 0, "a dry run purges nothing");
    let live = s.run(&["--json", "retention", "run", "--yes"]);
    live.expect(0);
    let r = live.json();
    assert_eq!(r["counts"], dry.json()["counts"]);
    assert_eq!(r["counts"]["runs"], json!(1), "{r}");
    assert_eq!(r["counts"]["dlq"], json!(1), "{r}");
    assert_eq!(r["counts"]["costs"], json!(1), "beta's cost is older than the 180-day default: {r}");
    assert_eq!(r["total_purged"], json!(3), "{r}");
    assert_eq!(r["storage_reclaimed"], json!(true));
    let seq = r["event_seq"].as_i64().unwrap_or(-1);
    let mut c = s.pg_client();
    let purged: Vec<(String, Option<i64>)> = c
        .query("SELECT kind, purged_by FROM events WHERE body IS NULL ORDER BY global_seq", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: Vec<(String, Option<i64>)> = ["old_run", "old_dlq", "old_cost"].iter().map(|k| (k.to_string(), Some(seq))).collect();
    assert_eq!(purged, want);
    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["purged"], json!(3));
    assert_eq!(s.run(&["--json", "retention", "run", "--yes"]).json()["total_purged"], json!(0));
    s.run(&["verify"]).expect(0);
    Ok(())
}

/// Rotate → rewrap → retire on PostgreSQL: the retired KEK's wrap is NULL and gone from
/// the table file, every event still decrypts and the log verifies.
#[test]
fn key_rotate_rewrap_retire_round_trip() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let lines: Vec<String> =
        ["acme", "globex"].iter().flat_map(|t| (0..3).map(move |i| line(t, "runs", "job_done", json!({"i": i, "note": "plan"})))).collect();
    s.ingest(&lines.join("\n"));
    s.run(&["keys", "rotate"]).expect(0);
    let old: Vec<u8> = s.pg_client().query_one("SELECT wrapped FROM keks WHERE key_id = 'key-001'", &[])?.get(0);
    let r = s.run(&["keys", "retire", "--yes", "key-001"]);
    r.expect(1);
    assert!(r.stderr.contains("keys rewrap"), "{}", r.stderr);
    let rw = s.run(&["--json", "keys", "rewrap"]);
    rw.expect(0);
    let deks = count(&s, "SELECT count(*) FROM deks")? as u64;
    assert_eq!(rw.json()["rewrapped"].as_u64(), Some(deks), "{}", rw.stdout);
    assert_eq!(s.run(&["--json", "keys", "rewrap"]).json()["rewrapped"], json!(0), "idempotent");
    assert_eq!(count(&s, "SELECT count(*) FROM deks WHERE kek_id = 'key-001'")?, 0);
    let rt = s.run(&["--json", "keys", "retire", "--yes", "key-001"]);
    rt.expect(0);
    assert_eq!(rt.json()["retired"], json!(true));
    let (status, wrapped): (String, Option<Vec<u8>>) = {
        let r = s.pg_client().query_one("SELECT status, wrapped FROM keks WHERE key_id = 'key-001'", &[])?;
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "retired");
    assert!(wrapped.is_none());
    assert!(!relation_file_has(&s, "keks", &old)?, "the retired KEK's wrap left the table file: {}", rt.stdout);
    assert_eq!(s.run(&["--json", "keys", "retire", "--yes", "key-001"]).json()["retired"], json!(false), "idempotent");
    for t in ["acme", "globex"] {
        let evs = s.run(&["events", "list", "--tenant", t]).jsonl();
        assert_eq!(evs.len(), 3);
        assert!(evs.iter().all(|e| e["data"]["note"] == "plan"), "{t} still decrypts");
    }
    s.run(&["verify"]).expect(0);
    Ok(())
}

/// Export from a PostgreSQL store, then verify the bundle offline (no store, no key).
#[test]
fn export_and_verify_bundle_round_trip() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let lines: Vec<String> = (0..4).map(|i| line("acme", "runs", "run_note", json!({"i": i}))).collect();
    s.ingest(&lines.join("\n"));
    let pk = s.run(&["--json", "keys", "public"]).json()["public_key"].as_str().unwrap_or_default().to_string();
    let dir = s.dir.path().join("bundle");
    let r = s.run(&["--json", "compliance", "export", "--tenant", "acme", "--out", dir.to_str().unwrap_or_default()]);
    r.expect(0);
    assert_eq!(r.json()["counts"]["runs"], json!(4), "{}", r.stdout);
    assert_eq!(r.json()["counts"]["chain"], json!(4));
    let out = custos()
        .env("CUSTOS_STORE", "/nonexistent/custos.db")
        .env("CUSTOS_ROOT_KEY_FILE", "/nonexistent/root.key")
        .args(["--json", "compliance", "verify-bundle"])
        .arg(&dir)
        .args(["--public-key", &pk])
        .output()?;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["ok"], json!(true));
    assert_eq!(v["commitments_checked"], json!(4));
    // Tampering with the bundle is still caught.
    let chain = dir.join("chain.jsonl");
    let text = std::fs::read_to_string(&chain)?;
    std::fs::write(&chain, text.replacen("run_note", "run_notE", 1))?;
    let bad = custos().args(["--json", "compliance", "verify-bundle"]).arg(&dir).args(["--public-key", &pk]).output()?;
    assert_eq!(bad.status.code(), Some(5));
    assert_eq!(s.system_events("export_created").len(), 1);
    s.run(&["verify"]).expect(0);
    Ok(())
}

/// Artifacts (migration 2 tables) round-trip byte for byte on PostgreSQL, and labels
/// and tenant settings persist.
#[test]
fn artifacts_put_get_label_round_trip() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    s.ingest(&line("acme", "runs", "x", json!({})));
    let src = s.dir.path().join("big.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data)?;
    let put = s.run(&["--json", "artifacts", "put", "--tenant", "acme", src.to_str().unwrap_or_default()]);
    put.expect(0);
    let id = put.json()["artifact_id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("art_"), "{}", put.stdout);
    assert!(count(&s, "SELECT count(*) FROM artifact_chunks")? >= 1);
    let dest = s.dir.path().join("out.bin");
    s.run(&["artifacts", "get", &id, "--out", dest.to_str().unwrap_or_default()]).expect(0);
    assert_eq!(std::fs::read(&dest)?, data);
    s.run(&["artifacts", "label", &id, "--label", "Restricted"]).expect(0);
    let label: Option<String> = s.pg_client().query_one("SELECT label FROM artifacts WHERE id = $1", &[&id])?.get(0);
    assert_eq!(label.as_deref(), Some("Restricted"));
    s.run(&["artifacts", "default-label", "--tenant", "acme", "--label", "Internal"]).expect(0);
    assert_eq!(count(&s, "SELECT count(*) FROM tenant_settings WHERE tenant = 'acme'")?, 1);
    s.run(&["verify"]).expect(0);
    // Re-encryption re-seals the content on PostgreSQL too and destroys the old DEK.
    let v = s.run(&["--json", "keys", "reencrypt", "--tenant", "acme"]).expect(0).json();
    assert_eq!(v["tenants"][0]["artifacts_resealed"], 1, "{v}");
    assert_eq!(v["tenants"][0]["destroyed_versions"], json!([1]), "{v}");
    assert_eq!(count(&s, "SELECT count(*) FROM artifacts WHERE dek_version = 2")?, 1);
    std::fs::remove_file(&dest)?;
    s.run(&["artifacts", "get", &id, "--out", dest.to_str().unwrap_or_default()]).expect(0);
    assert_eq!(std::fs::read(&dest)?, data);
    s.run(&["verify"]).expect(0);
    Ok(())
}

/// `custos backup` / `restore` write SQLite files; on PostgreSQL they refuse clearly and
/// point at pg_dump / pg_restore, changing nothing.
#[test]
fn backup_and_restore_point_at_pg_dump() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let n = s.event_count();
    let out = s.dir.path().join("b.gz");
    let r = s.run(&["backup", "--out", out.to_str().unwrap_or_default()]);
    r.expect(1);
    assert!(r.stderr.contains("pg_dump"), "{}", r.stderr);
    assert!(!out.exists());
    assert_eq!(s.event_count(), n, "nothing recorded");
    let fake = s.dir.path().join("fake.gz");
    std::fs::write(&fake, b"x")?;
    let r = s.run(&["restore", fake.to_str().unwrap_or_default()]);
    r.expect(1);
    assert!(r.stderr.contains("pg_restore"), "{}", r.stderr);
    Ok(())
}

/// The PostgreSQL backup the docs prescribe works: `pg_dump` of a live store, `pg_restore`
/// into a new database, and the restored store verifies with the same root key, lists the
/// same events and takes new appends on the same chain.
#[test]
fn pg_dump_and_pg_restore_give_a_verifying_store() -> TestResult {
    let Some(s) = pg_store() else { return Ok(()) };
    let Some(server) = pg::server() else { return Ok(()) };
    s.ingest(&sample(5, "acme"));
    s.run(&["checkpoint"]).expect(0);
    let dump = s.dir.path().join("custos.dump");
    let st =
        std::process::Command::new(server.bin.join("pg_dump")).args(["--format=custom", "--file"]).arg(&dump).arg(&s.location).status()?;
    assert!(st.success(), "pg_dump failed");
    let restored = server.fresh_db();
    let st = std::process::Command::new(server.bin.join("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&restored)
        .arg(&dump)
        .status()?;
    assert!(st.success(), "pg_restore failed");

    let on = |args: &[&str]| s.run(&[&["--store", restored.as_str()][..], args].concat());
    let v = on(&["--json", "verify"]).expect(0).json();
    assert_eq!((v["ok"].as_bool(), v["checkpoints"].as_u64()), (Some(true), Some(1)), "{v}");
    let listed = |r: custos_tests::Run| r.jsonl().iter().map(|e| e["data"].clone()).collect::<Vec<_>>();
    let original = listed(s.run(&["events", "list", "--tenant", "acme"]));
    assert_eq!(original.len(), 5);
    assert_eq!(listed(on(&["events", "list", "--tenant", "acme"])), original);
    // The copy is a live store: it appends on the restored chain and still verifies.
    s.run_stdin(&["--store", restored.as_str(), "ingest", "-"], &sample(1, "acme")).expect(0);
    on(&["verify"]).expect(0);
    Ok(())
}

/// `custos serve` on a PostgreSQL store: an authenticated POST appends, a GET streams
/// it back, SIGTERM stops it cleanly and the log verifies.
#[test]
fn serve_appends_and_lists_on_postgres() -> TestResult {
    use std::io::BufRead;
    let Some(s) = pg_store() else { return Ok(()) };
    let mut child = s
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(s.dir.path().join("serve.log"))?)
        .spawn()?;
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut first)?;
    let addr = first.strip_prefix("listening on ").and_then(|r| r.split_whitespace().next()).unwrap_or_default().to_string();
    let result = (|| -> TestResult {
        let log = || std::fs::read_to_string(s.dir.path().join("serve.log")).unwrap_or_default();
        assert!(addr.starts_with("127.0.0.1:"), "unexpected first line {first:?}; server log:\n{}", log());
        let token = std::fs::read_to_string(&s.admin)?.trim().to_string();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
        let body = json!([{"tenant": "acme", "category": "queue", "kind": "job_enqueued", "data": {"job_id": "j1"}},
                          {"tenant": "acme", "category": "queue", "kind": "job_enqueued", "data": {"job_id": "j2"}}])
        .to_string();
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/v1/events"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body)?;
        let res = agent.run(req)?;
        assert_eq!(res.status().as_u16(), 200);
        let rc: serde_json::Value = serde_json::from_str(&res.into_body().read_to_string()?)?;
        assert_eq!(rc["appended"], json!(2), "{rc}");
        let req = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("http://{addr}/v1/events?tenant=acme"))
            .header("Authorization", format!("Bearer {token}"))
            .body(String::new())?;
        let res = agent.run(req)?;
        assert_eq!(res.status().as_u16(), 200);
        let text = res.into_body().read_to_string()?;
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("j2"));
        Ok(())
    })();
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait()?;
    result?;
    let log = std::fs::read_to_string(s.dir.path().join("serve.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "graceful stop; server log:\n{log}");
    let v = s.run(&["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["ok"], json!(true));
    Ok(())
}

#[test]
fn server_bench_runs_on_postgres_in_a_scratch_schema() -> TestResult {
    let Some(pg) = pg::server() else { return Ok(()) };
    let url = pg.fresh_db();
    let dir = tempfile::tempdir()?;
    let r = custos_tests::Run::capture(
        custos()
            .env("CUSTOS_BENCH_SECS", "0.3")
            .env("CUSTOS_BENCH_CLIENTS", "2")
            .env("CUSTOS_BENCH_EVENTS_PER_REQUEST", "4")
            .args(["--json", "--store", &url, "bench", "--suite", "server", "--events", "1000", "--tenants", "3", "--dir"])
            .arg(dir.path()),
    );
    r.expect(0);
    let v = r.json();
    assert_eq!(v["backend"], "postgres");
    assert!(v["levels"][0]["events"].as_u64().is_some_and(|e| e > 0) && v["levels"][0]["errors"] == 0, "{v}");
    // The scratch schema is dropped: the database holds no custos tables afterwards.
    let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
    let left: i64 = c.query_one("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'custos_bench_%'", &[])?.get(0);
    assert_eq!(left, 0);
    Ok(())
}
