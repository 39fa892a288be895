//! Guards the key lifecycle (DESIGN §4): rotation policy/status, rewrap, retire (key bytes gone
//! from the database and its WAL), re-encryption (bodies change, chains do not), root-key
//! rotation, tampered or missing key rows, DEK roll-over, and SIGKILL at random points of
//! rewrap, reencrypt and rotate-root (the store always verifies and a rerun finishes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custos_tests::{line, Run, Store, TestResult};
use rusqlite::Connection;
use serde_json::json;

fn ingest_tenants(s: &Store, tenants: &[&str], per: usize) -> serde_json::Value {
    let mut lines = vec![];
    for i in 0..per {
        for t in tenants {
            lines.push(line(t, "runs", "run_started", json!({"run_id": format!("r{i}"), "note": "secret plan"})));
        }
    }
    s.ingest(&(lines.join("\n") + "\n"))
}

/// A command as the admin with extra environment (test hooks, another root key).
fn cmd_env(s: &Store, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = s.cmd();
    c.env("CUSTOS_TOKEN_FILE", &s.admin);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args);
    c
}

fn run_env(s: &Store, env: &[(&str, &str)], args: &[&str]) -> Run {
    let o = cmd_env(s, env, args).output().unwrap_or_else(|e| panic!("{e}"));
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

fn db(s: &Store) -> Connection {
    Connection::open(&s.db).unwrap_or_else(|e| panic!("{e}"))
}

fn wal_path(s: &Store) -> PathBuf {
    PathBuf::from(format!("{}-wal", s.db.display()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// (global_seq, dek_version, body, commitment, tenant_chain, global_chain) of a tenant, raw.
type RawRow = (i64, i64, Option<Vec<u8>>, Vec<u8>, Vec<u8>, Vec<u8>);
fn raw_rows(s: &Store, tenant: &str) -> Vec<RawRow> {
    let c = db(s);
    let mut st = c
        .prepare("SELECT global_seq, dek_version, body, commitment, tenant_chain, global_chain FROM events WHERE tenant = ?1 ORDER BY global_seq")
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = st
        .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap_or_else(|e| panic!("{e}"));
    rows.collect::<Result<Vec<_>, _>>().unwrap_or_else(|e| panic!("{e}"))
}

fn dek_versions(s: &Store, tenant: &str) -> Vec<i64> {
    let c = db(s);
    let mut st = c.prepare("SELECT version FROM deks WHERE tenant = ?1 ORDER BY version").unwrap_or_else(|e| panic!("{e}"));
    let v = st.query_map([tenant], |r| r.get(0)).unwrap_or_else(|e| panic!("{e}"));
    v.collect::<Result<Vec<i64>, _>>().unwrap_or_else(|e| panic!("{e}"))
}

fn verify_ok(s: &Store, env: &[(&str, &str)]) {
    let r = run_env(s, env, &["--json", "verify"]);
    r.expect(0);
    assert_eq!(r.json()["ok"], true, "{}", r.stdout);
}

#[test]
fn rotate_rewrap_retire_destroys_old_kek_and_keeps_every_event_readable() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme", "globex", "initech"], 3);
    // An idle second connection (as a server or backup tool would hold) keeps SQLite from
    // checkpointing and deleting the WAL when each custos process exits, so old page images
    // with the KEK stay in the WAL unless `keys retire` truncates it itself.
    let holder = db(&s);
    let _: i64 = holder.query_row("SELECT count(*) FROM keks", [], |r| r.get(0))?;
    s.run(&["keys", "rotate"]).expect(0);
    let old_wrapped: Vec<u8> = db(&s).query_row("SELECT wrapped FROM keks WHERE key_id = 'key-001'", [], |r| r.get(0))?;
    assert_eq!(old_wrapped.len(), 60);

    // Retiring a key that still wraps DEKs is refused, naming how many and the fix.
    let r = s.run(&["keys", "retire", "--yes", "key-001"]);
    r.expect(1);
    assert!(r.stderr.contains("still wraps 4 DEK(s)") && r.stderr.contains("keys rewrap"), "{}", r.stderr);
    // The active key cannot be retired; an unknown one is not found.
    assert!(s.run(&["keys", "retire", "--yes", "key-002"]).expect(1).stderr.contains("active key"));
    assert!(s.run(&["keys", "retire", "--yes", "key-404"]).expect(1).stderr.contains("no key"));

    let rw = s.run(&["--json", "keys", "rewrap"]);
    rw.expect(0);
    let v = rw.json();
    assert_eq!((v["rewrapped"].as_u64(), v["already_current"].as_u64(), v["deks"].as_u64()), (Some(4), Some(0), Some(4)));
    assert_eq!(v["key_id"], "key-002");
    // Idempotent.
    let v = s.run(&["--json", "keys", "rewrap"]).json();
    assert_eq!((v["rewrapped"].as_u64(), v["already_current"].as_u64()), (Some(0), Some(4)));
    let on_old: i64 = db(&s).query_row("SELECT count(*) FROM deks WHERE kek_id = 'key-001'", [], |r| r.get(0))?;
    assert_eq!(on_old, 0);

    let rt = s.run(&["--json", "keys", "retire", "--yes", "key-001"]);
    rt.expect(0);
    assert_eq!(rt.json()["retired"], true);

    let (status, wrapped): (String, Option<Vec<u8>>) =
        db(&s).query_row("SELECT status, wrapped FROM keks WHERE key_id = 'key-001'", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    assert_eq!(status, "retired");
    assert!(wrapped.is_none());
    let main = std::fs::read(&s.db)?;
    assert!(!contains(&main, &old_wrapped), "retired KEK's wrapped bytes are still in the database file");
    let wal = std::fs::read(wal_path(&s)).unwrap_or_default();
    assert!(!contains(&wal, &old_wrapped), "retired KEK's wrapped bytes are still in the WAL");
    drop(holder);
    assert_eq!(s.run(&["--json", "keys", "retire", "--yes", "key-001"]).expect(0).json()["retired"], false);

    // Every event still decrypts; verify passes; history keeps the retired key.
    let evs = s.run(&["events", "list", "--tenant", "acme"]);
    evs.expect(0);
    let evs = evs.jsonl();
    assert_eq!(evs.len(), 3);
    assert!(evs.iter().all(|e| e["data"]["note"] == "secret plan"));
    verify_ok(&s, &[]);
    let list = s.run(&["--json", "keys", "list"]).json();
    let keys = list["keys"].as_array().ok_or("keys")?;
    assert_eq!(keys.iter().map(|k| k["status"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["retired", "active"]);
    assert_eq!(s.system_events("keys_rewrapped").len(), 2);
    let ret = s.system_events("key_retired");
    assert_eq!(ret.len(), 1);
    assert_eq!(ret[0]["data"]["key_id"], "key-001");
    Ok(())
}

#[test]
fn reencrypt_changes_bodies_but_not_commitments_or_chains() -> TestResult {
    let s = Store::new();
    let receipt = ingest_tenants(&s, &["acme", "globex"], 6);
    // An auditor's bundle made before re-encryption...
    let bundle_before = s.dir.path().join("before");
    s.run(&["compliance", "export", "--tenant", "acme", "--out", bundle_before.to_str().ok_or("path")?]).expect(0);
    let expect = format!("{}:{}", receipt["last_seq"], receipt["global_head"].as_str().ok_or("head")?);
    s.run(&["checkpoint"]).expect(0);
    let before = raw_rows(&s, "acme");
    let globex_before = raw_rows(&s, "globex");
    assert_eq!(dek_versions(&s, "acme"), [1]);
    let holder = db(&s);
    let old_dek: Vec<u8> = holder.query_row("SELECT wrapped FROM deks WHERE tenant = 'acme'", [], |r| r.get(0))?;

    let r = s.run(&["--json", "keys", "reencrypt", "--tenant", "acme"]);
    r.expect(0);
    let v = r.json();
    let t = &v["tenants"][0];
    assert_eq!(t["tenant"], "acme");
    assert_eq!(t["reencrypted"], 6);
    assert_eq!(t["new_version"], 2);
    assert_eq!(t["destroyed_versions"], json!([1]));
    assert!(v["events_per_sec"].as_f64().unwrap_or(0.0) > 0.0);

    // The destroyed DEK's wrapped bytes are in neither the database file nor its WAL.
    assert!(!contains(&std::fs::read(&s.db)?, &old_dek), "old DEK still in the database file");
    assert!(!contains(&std::fs::read(wal_path(&s)).unwrap_or_default(), &old_dek), "old DEK still in the WAL");
    drop(holder);
    // Old DEK gone; every body re-sealed (new bytes, new version); header hashes untouched.
    assert_eq!(dek_versions(&s, "acme"), [2]);
    let after = raw_rows(&s, "acme");
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.0, a.0);
        assert_eq!((b.1, a.1), (1, 2));
        assert_ne!(b.2, a.2, "body of seq {} did not change", b.0);
        assert_eq!(b.3, a.3, "commitment changed");
        assert_eq!(b.4, a.4, "tenant chain changed");
        assert_eq!(b.5, a.5, "global chain changed");
    }
    // The other tenant is untouched; the ingest receipt and the signed checkpoint still verify
    // (the global head at that seq is unchanged).
    assert_eq!(globex_before, raw_rows(&s, "globex"));
    let v = s.run(&["--json", "verify", "--expect", &expect]).expect(0).json();
    assert_eq!((v["ok"].as_bool(), v["checkpoints"].as_u64()), (Some(true), Some(1)));
    let evs = s.run(&["events", "list", "--tenant", "acme"]).jsonl();
    assert!(evs.iter().all(|e| e["data"]["note"] == "secret plan"));
    // ...and one made after both verify offline, with the same tenant chain head.
    let bundle_after = s.dir.path().join("after");
    s.run(&["compliance", "export", "--tenant", "acme", "--out", bundle_after.to_str().ok_or("path")?]).expect(0);
    let head_of = |dir: &std::path::Path| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
        Ok(m["tenant_chain"].clone())
    };
    for b in [&bundle_before, &bundle_after] {
        s.run(&["compliance", "verify-bundle", b.to_str().ok_or("path")?]).expect(0);
    }
    let (hb, ha) = (head_of(&bundle_before)?, head_of(&bundle_after)?);
    assert!(hb["head"].as_str().is_some_and(|h| h.len() == 64), "{hb}");
    assert_eq!(hb, ha, "re-encryption must not change the tenant chain an auditor holds");
    s.run(&["compliance", "verify-bundle", bundle_after.to_str().ok_or("path")?, "--previous", bundle_before.to_str().ok_or("path")?])
        .expect(0);
    let ev = s.system_events("tenant_reencrypted");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["old_versions"], json!([1]));
    assert_eq!(ev[0]["data"]["reencrypted"], 6);
    assert_eq!(s.system_events("tenant_reencrypt_started").len(), 1);

    // --all re-encrypts every live stream, _system included.
    let v = s.run(&["--json", "keys", "reencrypt", "--all"]).expect(0).json();
    let names: Vec<&str> = v["tenants"].as_array().ok_or("tenants")?.iter().filter_map(|t| t["tenant"].as_str()).collect();
    assert_eq!(names, ["_system", "acme", "globex"]);
    assert_eq!(dek_versions(&s, "acme"), [3]);
    assert_eq!(dek_versions(&s, "globex"), [2]);
    verify_ok(&s, &[]);
    // Bad input.
    assert!(s.run(&["keys", "reencrypt", "--tenant", "nobody"]).expect(1).stderr.contains("no tenant"));
    s.run(&["keys", "reencrypt"]).expect(64);
    Ok(())
}

/// Re-encryption re-seals artifact content too, so the old DEK version can be destroyed
/// (after a suspected DEK compromise nothing may stay readable with it) while every
/// artifact still reads back byte for byte.
#[test]
fn reencrypt_reseals_artifacts_and_destroys_the_old_dek() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme"], 3);
    let small = s.dir.path().join("report.txt");
    std::fs::write(&small, b"quarterly numbers")?;
    // Three 1 MiB chunks and a short last one: order and the final flag are re-sealed too.
    let big = s.dir.path().join("big.bin");
    let big_content: Vec<u8> = (0..(3 << 20) + 1234).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&big, &big_content)?;
    let mut ids = vec![];
    for f in [&small, &big] {
        let put = s.run(&["--json", "artifacts", "put", "--tenant", "acme", f.to_str().ok_or("path")?]).expect(0).json();
        ids.push(put["artifact_id"].as_str().ok_or("artifact_id")?.to_string());
    }
    let c = rusqlite::Connection::open(&s.db)?;
    let chunk_bytes = |c: &rusqlite::Connection| -> rusqlite::Result<Vec<Vec<u8>>> {
        let mut st = c.prepare("SELECT body FROM artifact_chunks ORDER BY artifact_id, idx")?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect()
    };
    let before = chunk_bytes(&c)?;

    let v = s.run(&["--json", "keys", "reencrypt", "--tenant", "acme"]).expect(0).json();
    let t = &v["tenants"][0];
    assert_eq!(t["artifacts_resealed"], 2);
    assert_eq!(t["destroyed_versions"], json!([1]));
    assert_eq!(t["kept_for_artifacts"], json!([]));
    assert_eq!(dek_versions(&s, "acme"), [2]);
    let after = chunk_bytes(&c)?;
    assert_eq!(after.len(), before.len());
    assert!(before.iter().zip(&after).all(|(a, b)| a != b), "every chunk is sealed anew");
    let versions: Vec<i64> =
        c.prepare("SELECT dek_version FROM artifacts ORDER BY id")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    assert_eq!(versions, [2, 2]);

    for (id, want) in ids.iter().zip([b"quarterly numbers".to_vec(), big_content]) {
        let out = s.dir.path().join(format!("{id}.out"));
        s.run(&["artifacts", "get", id, "--out", out.to_str().ok_or("path")?]).expect(0);
        assert!(std::fs::read(&out)? == want, "artifact {id} reads back changed");
    }
    // A second run makes yet another DEK version, so it re-seals every artifact again
    // under it and destroys version 2 (reencrypt always moves everything to a fresh key).
    let again = s.run(&["--json", "keys", "reencrypt", "--tenant", "acme"]).expect(0).json();
    assert_eq!(again["tenants"][0]["artifacts_resealed"], 2, "the new run re-seals under its own new version");
    assert_eq!(dek_versions(&s, "acme"), [3]);
    verify_ok(&s, &[]);
    Ok(())
}

/// A damaged artifact stops re-encryption before anything of it is re-sealed: its chunks,
/// its DEK version and the old DEK all stay as they were (nothing half-written).
#[test]
fn reencrypt_refuses_to_reseal_a_damaged_artifact() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme"], 2);
    let f = s.dir.path().join("two.bin");
    std::fs::write(&f, vec![7u8; (1 << 20) + 10])?;
    let put = s.run(&["--json", "artifacts", "put", "--tenant", "acme", f.to_str().ok_or("path")?]).expect(0).json();
    let id = put["artifact_id"].as_str().ok_or("artifact_id")?.to_string();
    let c = rusqlite::Connection::open(&s.db)?;
    // Chunk 0 gets chunk 1's ciphertext, which does not open at position 0.
    c.execute_batch(&format!(
        "UPDATE artifact_chunks SET body = (SELECT body FROM artifact_chunks WHERE artifact_id = '{id}' AND idx = 1) WHERE artifact_id = '{id}' AND idx = 0"
    ))?;
    let before: Vec<Vec<u8>> =
        c.prepare("SELECT body FROM artifact_chunks ORDER BY idx")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let r = s.run(&["keys", "reencrypt", "--tenant", "acme"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&id) && r.stderr.contains("chunk 0"), "{}", r.stderr);
    let after: Vec<Vec<u8>> =
        c.prepare("SELECT body FROM artifact_chunks ORDER BY idx")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    assert_eq!(before, after, "nothing of the damaged artifact was re-sealed");
    let v: i64 = c.query_row("SELECT dek_version FROM artifacts WHERE id = ?1", [&id], |r| r.get(0))?;
    assert_eq!(v, 1);
    assert!(dek_versions(&s, "acme").contains(&1), "the DEK the artifact needs was not destroyed");
    Ok(())
}

#[test]
fn rotate_root_makes_the_old_key_useless_and_the_new_one_work() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme"], 2);
    s.run(&["checkpoint"]).expect(0);
    let public = s.run(&["--json", "keys", "public"]).expect(0).json()["public_key"].clone();
    let new_key = s.dir.path().join("root2.key");
    let nk = new_key.to_str().ok_or("path")?;
    let r = s.run(&["--json", "keys", "rotate-root", "--yes", "--new-root-key-file", nk]);
    r.expect(0);
    let v = r.json();
    assert_eq!(v["result"]["keks"], json!(["key-001"]));
    assert_eq!(v["result"]["signing_key"], true);
    assert!(v["next_steps"].to_string().contains("CUSTOS_ROOT_KEY_FILE"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&new_key)?.permissions().mode() & 0o777, 0o600);
    }
    // Old key: a clear integrity failure (exit 5) naming the key file.
    let old = s.run(&["events", "list"]);
    old.expect(5);
    assert!(old.stderr.contains("does not open this store") && old.stderr.contains("root.key"), "{}", old.stderr);
    // New key: everything works and verifies.
    let env = [("CUSTOS_ROOT_KEY_FILE", nk)];
    verify_ok(&s, &env);
    // Same signing key (re-wrapped, not replaced): old checkpoints verify, auditors' key is unchanged.
    assert_eq!(run_env(&s, &env, &["--json", "verify"]).json()["checkpoints"], 1);
    assert_eq!(run_env(&s, &env, &["--json", "keys", "public"]).expect(0).json()["public_key"], public);
    let evs = run_env(&s, &env, &["events", "list", "--tenant", "acme"]);
    evs.expect(0);
    assert_eq!(evs.jsonl().len(), 2);
    let rot = run_env(&s, &env, &["events", "list", "--tenant", "_system", "--kind", "root_key_rotated"]).jsonl();
    assert_eq!(rot.len(), 1);
    // Refuses to overwrite an existing file and changes nothing.
    let again = run_env(&s, &env, &["keys", "rotate-root", "--yes", "--new-root-key-file", nk]);
    again.expect(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    verify_ok(&s, &env);
    Ok(())
}

#[test]
fn tampered_or_missing_keys_give_clear_errors_not_panics() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme"], 2);
    let no_panic = |r: &Run| assert!(!r.stderr.contains("panicked"), "{}", r.stderr);

    // A wrong root key (a valid key file, just not this store's).
    let other = Store::new();
    let r = run_env(&s, &[("CUSTOS_ROOT_KEY_FILE", other.key.to_str().ok_or("p")?)], &["verify"]);
    r.expect(5);
    no_panic(&r);
    assert!(r.stderr.contains("does not open this store"), "{}", r.stderr);

    // A flipped byte in the wrapped DEK of acme.
    let flip = |sql_get: &str, sql_set: &str| -> TestResult {
        let c = db(&s);
        let mut w: Vec<u8> = c.query_row(sql_get, [], |r| r.get(0))?;
        w[20] ^= 0x01;
        c.execute(sql_set, [&w])?;
        Ok(())
    };
    flip("SELECT wrapped FROM deks WHERE tenant = 'acme'", "UPDATE deks SET wrapped = ?1 WHERE tenant = 'acme'")?;
    for args in [&["events", "list", "--tenant", "acme"][..], &["verify"][..], &["keys", "reencrypt", "--tenant", "acme"][..]] {
        let r = s.run(args);
        r.expect(5);
        no_panic(&r);
        assert!(r.stderr.contains("DEK acme v1") && r.stderr.contains("cannot be unwrapped"), "{args:?}: {}", r.stderr);
    }
    flip("SELECT wrapped FROM deks WHERE tenant = 'acme'", "UPDATE deks SET wrapped = ?1 WHERE tenant = 'acme'")?;
    verify_ok(&s, &[]);

    // A flipped byte in a wrapped KEK (the signing key still opens: the row was altered).
    s.run(&["keys", "rotate"]).expect(0);
    flip("SELECT wrapped FROM keks WHERE key_id = 'key-001'", "UPDATE keks SET wrapped = ?1 WHERE key_id = 'key-001'")?;
    let r = s.run(&["verify"]);
    r.expect(5);
    no_panic(&r);
    assert!(r.stderr.contains("key-001") && r.stderr.contains("altered"), "{}", r.stderr);
    flip("SELECT wrapped FROM keks WHERE key_id = 'key-001'", "UPDATE keks SET wrapped = ?1 WHERE key_id = 'key-001'")?;
    verify_ok(&s, &[]);

    // A KEK row deleted by hand while DEKs still need it.
    db(&s).execute("DELETE FROM keks WHERE key_id = 'key-001'", [])?;
    for args in [&["events", "list", "--tenant", "acme"][..], &["verify"][..], &["keys", "rewrap"][..]] {
        let r = s.run(args);
        r.expect(5);
        no_panic(&r);
        assert!(r.stderr.contains("key-001 is missing"), "{args:?}: {}", r.stderr);
    }
    Ok(())
}

#[test]
fn status_reports_policy_and_overdue_rotation() -> TestResult {
    let s = Store::new();
    let v = s.run(&["--json", "keys", "status"]).expect(0).json();
    assert_eq!((v["rotation_overdue"].as_bool(), v["rotation_days"].as_u64()), (Some(false), Some(90)));
    assert_eq!(v["active_key_id"], "key-001");
    // Age the active key by 100 days (created_at is not hashed anywhere).
    db(&s).execute("UPDATE keks SET created_at = created_at - 100 * 86400000000 WHERE key_id = 'key-001'", [])?;
    let v = s.run(&["--json", "keys", "status"]).expect(0).json();
    assert_eq!(v["rotation_overdue"], true);
    assert!(v["active_key_age_days"].as_i64().unwrap_or(0) >= 100);
    let human = s.run(&["keys", "status"]);
    human.expect(0);
    assert!(human.stdout.contains("WARNING") && human.stdout.contains("keys rotate"), "{}", human.stdout);
    // A longer policy, recorded as an event, clears the warning.
    let p = s.run(&["--json", "keys", "policy", "--rotation-days", "365"]).expect(0).json();
    assert_eq!(p["rotation_days"], 365);
    assert_eq!(s.system_events("key_policy_set").len(), 1);
    let v = s.run(&["--json", "keys", "status"]).expect(0).json();
    assert_eq!((v["rotation_overdue"].as_bool(), v["rotation_days"].as_u64()), (Some(false), Some(365)));
    s.run(&["keys", "policy", "--rotation-days", "0"]).expect(1);
    // Admin only, and the denial is recorded.
    let op = s.actor("op", "Operator", "Internal");
    s.run_as(&op, &["keys", "rewrap"]).expect(2);
    s.run_as(&op, &["keys", "status"]).expect(2);
    assert!(s.system_events("access_denied").iter().any(|e| e["data"].to_string().contains("keys rewrap")));
    Ok(())
}

/// The form: `keys status --rotation-days N` records the policy exactly as
/// `keys policy` does (same event, same Admin check) and reports the status under it.
#[test]
fn status_with_rotation_days_records_the_policy_and_reports_it() -> TestResult {
    let s = Store::new();
    let v = s.run(&["--json", "keys", "status", "--rotation-days", "1"]).expect(0).json();
    assert_eq!((v["rotation_days"].as_u64(), v["rotation_overdue"].as_bool()), (Some(1), Some(false)), "{v}");
    let set = s.system_events("key_policy_set");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["data"]["rotation_days"], 1);
    assert_eq!(set[0]["data"]["previous_rotation_days"], 90);
    // `keys policy` sees the same record, and plain `status` keeps using it.
    assert_eq!(s.run(&["--json", "keys", "policy"]).expect(0).json()["rotation_days"], 1);
    // Two days old under a one-day policy: overdue, with the warning line.
    db(&s).execute("UPDATE keks SET created_at = created_at - 2 * 86400000000 WHERE key_id = 'key-001'", [])?;
    let human = s.run(&["keys", "status"]);
    human.expect(0);
    assert!(human.stdout.contains("every 1 days") && human.stdout.contains("WARNING"), "{}", human.stdout);
    // Bad values: out of range is bad input (1), not a number is a usage error (64); neither records anything.
    s.run(&["keys", "status", "--rotation-days", "0"]).expect(1);
    s.run(&["keys", "status", "--rotation-days", "3651"]).expect(1);
    s.run(&["keys", "status", "--rotation-days", "soon"]).expect(64);
    assert_eq!(s.system_events("key_policy_set").len(), 1);
    // Setting the policy needs Admin, and the denial names `keys policy`.
    let op = s.actor("op", "Operator", "Internal");
    s.run_as(&op, &["keys", "status", "--rotation-days", "30"]).expect(2);
    assert!(s.system_events("access_denied").iter().any(|e| e["data"].to_string().contains("keys policy")));
    assert_eq!(s.system_events("key_policy_set").len(), 1);
    Ok(())
}

#[test]
fn dek_rolls_over_at_the_seal_limit_and_reencrypt_handles_it() -> TestResult {
    let s = Store::new();
    let env = [("CUSTOS_MAX_SEALS_PER_DEK", "3")];
    let lines: Vec<String> = (0..10).map(|i| line("acme", "runs", "run_started", json!({"i": i}))).collect();
    let mut c = cmd_env(&s, &env, &["--json", "ingest", "-"]);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    use std::io::Write;
    child.stdin.take().ok_or("stdin")?.write_all(lines.join("\n").as_bytes())?;
    assert!(child.wait_with_output()?.status.success());
    assert_eq!(dek_versions(&s, "acme"), [1, 2, 3, 4]);
    let seals: i64 = db(&s).query_row("SELECT max(seals) FROM deks WHERE tenant = 'acme'", [], |r| r.get(0))?;
    assert!(seals <= 3);
    let evs = s.run(&["events", "list", "--tenant", "acme"]).jsonl();
    assert_eq!(evs.len(), 10);
    assert!(evs.iter().all(|e| !e["data"].is_null()));
    verify_ok(&s, &[]);
    // Re-encryption under the same limit rolls over too, then destroys versions 1..4.
    let v = run_env(&s, &env, &["--json", "keys", "reencrypt", "--tenant", "acme"]).expect(0).json();
    assert_eq!(v["tenants"][0]["destroyed_versions"], json!([1, 2, 3, 4]));
    assert!(dek_versions(&s, "acme").iter().all(|v| *v >= 5));
    verify_ok(&s, &[]);
    Ok(())
}

/// The seal bound is a hard stop for artifacts too: a multi-chunk artifact that would carry
/// the active DEK past it goes to a new DEK version first, and one needing more seals than
/// the bound alone is refused (nothing stored).
#[test]
fn artifact_seals_never_push_a_dek_past_the_limit() -> TestResult {
    let s = Store::new();
    let limit = 3i64;
    let env = [("CUSTOS_MAX_SEALS_PER_DEK", "3")];
    ingest_tenants(&s, &["acme"], 2);
    let all_seals = |s: &Store| -> rusqlite::Result<Vec<i64>> {
        let c = db(s);
        let mut st = c.prepare("SELECT seals FROM deks")?;
        let v = st.query_map([], |r| r.get(0))?;
        v.collect()
    };
    // Two chunks, then three chunks (exactly the bound): each starts on a DEK it fits in.
    let mut stored = vec![];
    for (name, len) in [("two.bin", (1 << 20) + 7), ("three.bin", (2 << 20) + 99)] {
        let path = s.dir.path().join(name);
        let content: Vec<u8> = (0..len).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        std::fs::write(&path, &content)?;
        let put = run_env(&s, &env, &["--json", "artifacts", "put", "--tenant", "acme", path.to_str().ok_or("path")?]).expect(0).json();
        stored.push((put["artifact_id"].as_str().ok_or("artifact_id")?.to_string(), content));
        let seals = all_seals(&s)?;
        assert!(seals.iter().all(|n| *n <= limit), "after {name}: seals {seals:?} pass the limit {limit}");
    }
    assert!(dek_versions(&s, "acme").len() >= 3, "the puts rolled over: {:?}", dek_versions(&s, "acme"));
    // Six chunks cannot fit any DEK of three seals: refused with a clear message, nothing kept.
    let huge = s.dir.path().join("huge.bin");
    std::fs::write(&huge, vec![7u8; (5 << 20) + 1])?;
    let before = dek_versions(&s, "acme");
    let r = run_env(&s, &env, &["artifacts", "put", "--tenant", "acme", huge.to_str().ok_or("path")?]);
    r.expect(1);
    assert!(r.stderr.contains("needs 6 seals") && r.stderr.contains("at most 3"), "{}", r.stderr);
    assert_eq!(dek_versions(&s, "acme"), before);
    let n: i64 = db(&s).query_row("SELECT count(*) FROM artifacts", [], |r| r.get(0))?;
    assert_eq!(n, 2);
    let seals = all_seals(&s)?;
    assert!(seals.iter().all(|n| *n <= limit), "seals {seals:?} pass the limit {limit}");
    for (id, want) in &stored {
        let out = s.dir.path().join(format!("{id}.out"));
        s.run(&["artifacts", "get", id, "--out", out.to_str().ok_or("path")?]).expect(0);
        assert!(std::fs::read(&out)? == *want, "artifact {id} reads back changed");
    }
    verify_ok(&s, &[]);
    Ok(())
}

/// The quickstart's key step really runs: rotate, rewrap every live DEK, retire and destroy
/// the old KEK, and verify afterwards.
#[test]
fn quickstart_rotates_rewraps_and_retires_the_old_kek() -> TestResult {
    let d = tempfile::tempdir()?;
    let dir = d.path().join("tour");
    let out = custos_tests::custos().args(["quickstart", "--dir"]).arg(&dir).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // The step number is left out: other tour steps may be added before it.
    assert!(text.lines().any(|l| l.ends_with("keys: rotate the KEK, rewrap every DEK under it, retire the old KEK, verify")), "{text}");
    let want = "   key-002 is active; 3 DEK(s) rewrapped; key-001 retired: destroyed; verify: OK (";
    assert!(text.lines().any(|l| l.starts_with(want)), "no line starts with {want:?}:\n{text}");
    // The line tells the truth about the store it left behind.
    let c = Connection::open(dir.join("custos.db"))?;
    let (status, wrapped): (String, Option<Vec<u8>>) =
        c.query_row("SELECT status, wrapped FROM keks WHERE key_id = 'key-001'", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    assert_eq!((status.as_str(), wrapped), ("retired", None));
    let kek_ids: Vec<String> = c.prepare("SELECT kek_id FROM deks")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    // Later tour steps may add tenants (new DEKs, wrapped by the active key); none is left under key-001.
    assert!(kek_ids.len() >= 3 && kek_ids.iter().all(|k| k == "key-002"), "{kek_ids:?}");
    Ok(())
}

/// Tiny deterministic PRNG (no extra dependency); seeded from the clock, printed on failure.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn seed() -> u64 {
    let s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
    eprintln!("crash loop seed {s}");
    s
}

/// Spawns `args` with the test hooks and SIGKILLs it after `delay` (if still running).
fn kill_after(s: &Store, env: &[(&str, &str)], args: &[&str], delay: Duration) -> bool {
    let mut child = cmd_env(s, env, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    killed
}

fn timed(s: &Store, env: &[(&str, &str)], args: &[&str]) -> Duration {
    let t0 = Instant::now();
    run_env(s, env, args).expect(0);
    t0.elapsed()
}

const HOOKS: [(&str, &str); 2] = [("CUSTOS_TEST_BATCH", "1"), ("CUSTOS_TEST_SLOW_MS", "3")];
const KILLS: usize = 30;

#[test]
fn sigkill_during_rewrap_never_strands_a_dek() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"], 1);
    let mut rng = Lcg(seed());
    s.run(&["keys", "rotate"]).expect(0);
    let full = timed(&s, &HOOKS, &["keys", "rewrap"]);
    let mut partial = 0;
    for i in 0..KILLS {
        s.run(&["keys", "rotate"]).expect(0);
        let delay = Duration::from_micros(rng.next(full.as_micros() as u64 * 6 / 5));
        kill_after(&s, &HOOKS, &["keys", "rewrap"], delay);
        // Whatever was committed, every DEK is wrapped by a live KEK: every body decrypts.
        verify_ok(&s, &[]);
        let pending = s.run(&["--json", "keys", "status"]).expect(0).json()["deks_pending_rewrap"].as_u64().unwrap_or(0);
        if pending > 0 && pending < 11 {
            partial += 1;
        }
        let v = s.run(&["--json", "keys", "rewrap"]).expect(0).json();
        assert_eq!(v["rewrapped"].as_u64().unwrap_or(0) + v["already_current"].as_u64().unwrap_or(0), 11, "iteration {i}");
        assert_eq!(s.run(&["--json", "keys", "status"]).json()["deks_pending_rewrap"], 0);
        // Retire the previous key now and then, so retired rows accumulate too.
        if i % 5 == 0 {
            let prev = format!("key-{:03}", i + 2);
            s.run(&["keys", "retire", "--yes", &prev]).expect(0);
        }
    }
    eprintln!("rewrap: {partial}/{KILLS} kills landed mid-way");
    assert!(partial > 0, "no kill landed in the middle of a rewrap; the loop tests nothing");
    verify_ok(&s, &[]);
    Ok(())
}

#[test]
fn sigkill_during_reencrypt_leaves_a_verifying_store_and_rerun_finishes() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme", "globex"], 12);
    // Artifacts are re-sealed after the bodies, one transaction each: kills land there too.
    let mut arts = vec![];
    for i in 0..4 {
        let f = s.dir.path().join(format!("a{i}.txt"));
        std::fs::write(&f, format!("artifact {i} content").repeat(100 * (i + 1)))?;
        let put = s.run(&["--json", "artifacts", "put", "--tenant", "acme", f.to_str().ok_or("path")?]).expect(0).json();
        arts.push((put["artifact_id"].as_str().ok_or("artifact_id")?.to_string(), std::fs::read(&f)?));
    }
    let mut rng = Lcg(seed());
    let full = timed(&s, &HOOKS, &["keys", "reencrypt", "--tenant", "acme"]);
    let mut resumed = 0;
    for i in 0..KILLS {
        let delay = Duration::from_micros(rng.next(full.as_micros() as u64 * 6 / 5));
        kill_after(&s, &HOOKS, &["keys", "reencrypt", "--tenant", "acme"], delay);
        verify_ok(&s, &[]);
        // Every second iteration is killed again before being finished (resume of a resume).
        if i % 2 == 1 {
            continue;
        }
        let v = s.run(&["--json", "keys", "reencrypt", "--tenant", "acme"]).expect(0).json();
        if v["tenants"][0]["resumed"] == true {
            resumed += 1;
        }
        let versions = dek_versions(&s, "acme");
        assert_eq!(versions.len(), 1, "iteration {i}: old DEK versions left behind: {versions:?}");
        let rows = raw_rows(&s, "acme");
        assert!(rows.iter().all(|r| r.1 == versions[0]), "iteration {i}: a body is not under the final DEK");
        let evs = s.run(&["events", "list", "--tenant", "acme"]).jsonl();
        let evs: Vec<_> = evs.iter().filter(|e| e["kind"] != "artifact_stored").collect();
        assert_eq!(evs.len(), 12);
        assert!(evs.iter().all(|e| e["data"]["note"] == "secret plan"));
        let (id, want) = &arts[i % arts.len()];
        let out = s.dir.path().join("got.bin");
        s.run(&["artifacts", "get", id, "--out", out.to_str().ok_or("path")?]).expect(0);
        assert!(&std::fs::read(&out)? == want, "iteration {i}: artifact {id} changed");
    }
    eprintln!("reencrypt: {resumed} reruns resumed an interrupted run");
    assert!(resumed > 0, "no kill landed in the middle of a re-encryption; the loop tests nothing");
    verify_ok(&s, &[]);
    Ok(())
}

#[test]
fn sigkill_during_rotate_root_leaves_exactly_one_working_key() -> TestResult {
    let s = Store::new();
    ingest_tenants(&s, &["acme"], 2);
    let mut rng = Lcg(seed());
    let hooks = [("CUSTOS_TEST_SLOW_MS", "30")];
    let mut current: PathBuf = s.key.clone();
    let key_env = |p: &Path| p.to_str().unwrap_or_default().to_string();
    let first = s.dir.path().join("k-first");
    let cur = key_env(&current);
    let full =
        timed(&s, &[hooks[0], ("CUSTOS_ROOT_KEY_FILE", &cur)], &["keys", "rotate-root", "--yes", "--new-root-key-file", &key_env(&first)]);
    current = first;
    let (mut committed, mut orphaned) = (0, 0);
    for i in 0..KILLS {
        let next = s.dir.path().join(format!("k{i}"));
        let cur = key_env(&current);
        let delay = Duration::from_micros(rng.next(full.as_micros() as u64 * 6 / 5));
        kill_after(
            &s,
            &[hooks[0], ("CUSTOS_ROOT_KEY_FILE", &cur)],
            &["keys", "rotate-root", "--yes", "--new-root-key-file", &key_env(&next)],
            delay,
        );
        let nk = key_env(&next);
        let new_ok = next.exists() && run_env(&s, &[("CUSTOS_ROOT_KEY_FILE", &nk)], &["--json", "verify"]).code == 0;
        let old = run_env(&s, &[("CUSTOS_ROOT_KEY_FILE", &cur)], &["--json", "verify"]);
        if new_ok {
            // Committed: the old key opens nothing any more.
            old.expect(5);
            committed += 1;
            current = next;
        } else {
            // Not committed: the old key still works; an orphan new file is deleted (runbook).
            old.expect(0);
            if next.exists() {
                orphaned += 1;
                std::fs::remove_file(&next)?;
            }
        }
        // A rerun with a new path always completes.
        if i % 3 == 0 {
            let again = s.dir.path().join(format!("k{i}-again"));
            let cur = key_env(&current);
            run_env(&s, &[("CUSTOS_ROOT_KEY_FILE", &cur)], &["keys", "rotate-root", "--yes", "--new-root-key-file", &key_env(&again)])
                .expect(0);
            current = again;
        }
    }
    eprintln!("rotate-root: {committed} committed, {orphaned} orphan files, of {KILLS} kills");
    assert!(committed > 0 && orphaned > 0, "kills never landed both before and after the commit");
    verify_ok(&s, &[("CUSTOS_ROOT_KEY_FILE", &key_env(&current))]);
    let rot = run_env(
        &s,
        &[("CUSTOS_ROOT_KEY_FILE", &key_env(&current))],
        &["events", "list", "--tenant", "_system", "--kind", "root_key_rotated"],
    );
    rot.expect(0);
    assert!(!rot.jsonl().is_empty());
    Ok(())
}
