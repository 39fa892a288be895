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
