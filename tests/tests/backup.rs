//! Guards backup and restore: a consistent online copy (also while another process
//! appends) that restores into a store that verifies with the same root key, never
//! contains the root key, refuses to overwrite, and rejects truncated or foreign files.

use std::io::Write;

use custos_tests::{custos, line, Store};
use serde_json::json;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("gzip").arg("-dc").arg(path).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "gzip -dc failed");
    out.stdout
}

/// `custos restore FILE --store PATH` (no token needed: restore only creates new files).
fn restore(s: &Store, file: &std::path::Path, dest: &std::path::Path) -> custos_tests::Run {
    let out = custos().args(["--json", "restore"]).arg(file).arg("--store").arg(dest).output().unwrap_or_else(|e| panic!("{e}"));
    let _ = s;
    run_of(out)
}

fn run_of(o: std::process::Output) -> custos_tests::Run {
    custos_tests::Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// Runs `args` against another store with this store's root key and admin token.
fn run_on(s: &Store, db: &std::path::Path, args: &[&str]) -> custos_tests::Run {
    let out = custos()
        .env("CUSTOS_STORE", db)
        .env("CUSTOS_ROOT_KEY_FILE", &s.key)
        .env("CUSTOS_TOKEN_FILE", &s.admin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    run_of(out)
}

#[test]
fn backup_restores_into_a_store_that_verifies_and_never_holds_the_root_key() {
    let s = Store::new();
    let lines: Vec<String> = (0..200).map(|i| line(if i % 2 == 0 { "acme" } else { "globex" }, "runs", "r", json!({"i": i}))).collect();
    s.ingest(&lines.join("\n"));
    s.run(&["compliance", "delete", "--yes", "--tenant", "globex"]).expect(0);
    let out = s.dir.path().join("b.custos.gz");
    let b = s.run(&["--json", "backup", "--out", out.to_str().unwrap_or_default()]);
    b.expect(0);
    let bv = b.json();
    assert_eq!(bv["events"].as_u64(), Some(s.event_count() - 1), "the copy precedes its backup_created event");
    assert!(bv["sha256"].as_str().is_some_and(|h| h.len() == 64));
    assert!(!std::path::Path::new(&format!("{}.tmp", out.display())).exists(), "no temp file left");
    assert_eq!(s.system_events("backup_created").len(), 1);

    let root = std::fs::read(&s.key).unwrap_or_default();
    let raw = gunzip(&out);
    assert!(raw.starts_with(b"SQLite format 3\0"));
    assert!(!root.is_empty());
    for w in root.windows(16).step_by(8) {
        assert!(!contains(&raw, w), "the root key file's bytes appear in the backup");
    }

    let dest = s.dir.path().join("restored.db");
    let r = restore(&s, &out, &dest);
    r.expect(0);
    assert_eq!(r.json()["events"], bv["events"]);
    assert_eq!(r.json()["global_head"], bv["global_head"]);
    let v = run_on(&s, &dest, &["--json", "verify"]);
    v.expect(0);
    assert_eq!(v.json()["events"], bv["events"]);
    let evs = run_on(&s, &dest, &["events", "list", "--tenant", "acme"]).jsonl();
    assert_eq!(evs.len(), 100);
    assert!(evs.iter().all(|e| e["data"].is_object()), "restored bodies decrypt with the same root key");

    // Refuses to overwrite, both ways.
    let again = restore(&s, &out, &dest);
    again.expect(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    s.run(&["backup", "--out", out.to_str().unwrap_or_default()]).expect(1);
}

#[test]
fn restore_rejects_truncated_and_foreign_files_and_backup_needs_compliance() {
    let s = Store::new();
    s.ingest(&(0..300).map(|i| line("acme", "runs", "r", json!({"i": i, "pad": "x".repeat(200)}))).collect::<Vec<_>>().join("\n"));
    let out = s.dir.path().join("b.gz");
    s.run(&["backup", "--out", out.to_str().unwrap_or_default()]).expect(0);
    let full = std::fs::read(&out).unwrap_or_default();
    let dest = s.dir.path().join("r.db");

    let truncated = s.dir.path().join("trunc.gz");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let r = restore(&s, &truncated, &dest);
    r.expect(1);
    assert!(r.stderr.contains("truncated or corrupt"), "{}", r.stderr);
    assert!(!dest.exists(), "nothing restored");

    // Losing only the gzip trailer (CRC, length) or flipping one byte is caught too.
    for (name, bytes) in [
        ("no-trailer.gz", full[..full.len() - 4].to_vec()),
        ("one-byte-short.gz", full[..full.len() - 1].to_vec()),
        ("flipped.gz", {
            let mut f = full.clone();
            let mid = f.len() / 2;
            f[mid] ^= 0x55;
            f
        }),
    ] {
        let p = s.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{e}"));
        let r = restore(&s, &p, &dest);
        r.expect(1);
        assert!(r.stderr.contains("truncated or corrupt"), "{name}: {}", r.stderr);
        assert!(!dest.exists(), "{name}: nothing restored");
    }

    let junk = s.dir.path().join("junk.gz");
    std::fs::write(&junk, b"this is not a backup at all").unwrap_or_else(|e| panic!("{e}"));
    let r = restore(&s, &junk, &dest);
    r.expect(1);
    assert!(r.stderr.contains("not a custos backup"), "{}", r.stderr);

    // A valid gzip that custos did not write.
    let foreign = s.dir.path().join("foreign.gz");
    {
        let mut f = std::fs::File::create(s.dir.path().join("foreign")).unwrap_or_else(|e| panic!("{e}"));
        let _ = f.write_all(b"hello");
    }
    let st = std::process::Command::new("gzip").arg("-k").arg(s.dir.path().join("foreign")).status().unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success());
    let r = restore(&s, &foreign, &dest);
    r.expect(1);
    assert!(r.stderr.contains("not a custos backup"), "{}", r.stderr);
    let r = restore(&s, &s.dir.path().join("missing.gz"), &dest);
    r.expect(1);
    assert!(!dest.exists());
    for suffix in [".restore-tmp", ".restore-tmp-wal"] {
        assert!(!std::path::Path::new(&format!("{}{suffix}", dest.display())).exists(), "temp {suffix} left behind");
    }

    let n = s.event_count();
    let auditor = s.actor("aud", "Auditor", "Internal");
    let other = s.dir.path().join("x.gz");
    s.run_as(&auditor, &["backup", "--out", other.to_str().unwrap_or_default()]).expect(2);
    assert!(!other.exists());
    assert_eq!(s.event_count(), n + 2, "actor_added + access_denied only");
    let comp = s.actor("comp", "Compliance", "Internal");
    s.run_as(&comp, &["backup", "--out", other.to_str().unwrap_or_default()]).expect(0);
}

#[test]
fn backup_is_consistent_while_another_process_appends() {
    let s = Store::new();
    s.ingest(&(0..50).map(|i| line("acme", "runs", "r", json!({"i": i}))).collect::<Vec<_>>().join("\n"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let db = s.db.clone();
        let key = s.key.clone();
        let tok = s.admin.clone();
        std::thread::spawn(move || {
            let batch: String = (0..500).map(|i| line("busy", "queue", "q", json!({"i": i, "pad": "y".repeat(100)})) + "\n").collect();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut c = custos()
                    .env("CUSTOS_STORE", &db)
                    .env("CUSTOS_ROOT_KEY_FILE", &key)
                    .env("CUSTOS_TOKEN_FILE", &tok)
                    .args(["ingest", "-"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{e}"));
                if let Some(mut i) = c.stdin.take() {
                    let _ = i.write_all(batch.as_bytes());
                }
                assert!(c.wait().map(|s| s.success()).unwrap_or(false), "concurrent ingest failed");
                n += 1;
            }
            n
        })
    };
    let mut heads = vec![];
    for k in 0..3 {
        let out = s.dir.path().join(format!("live{k}.gz"));
        let b = s.run(&["--json", "backup", "--out", out.to_str().unwrap_or_default()]);
        b.expect(0);
        let dest = s.dir.path().join(format!("live{k}.db"));
        restore(&s, &out, &dest).expect(0);
        let v = run_on(&s, &dest, &["--json", "verify"]);
        v.expect(0);
        assert_eq!(v.json()["events"], b.json()["events"]);
        heads.push(b.json()["events"].as_u64().unwrap_or(0));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let batches = writer.join().unwrap_or(0);
    assert!(batches >= 1, "the writer ran");
    s.run(&["verify"]).expect(0);
}
