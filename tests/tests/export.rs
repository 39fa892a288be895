//! Guards export bundles: round trips (directory and .tar.gz, purged, denied and redacted
//! records), the tamper battery (each exit 5), the clearance × label × policy matrix with
//! recorded `export_denied` events, and agreement of tools/verify_bundle.py with verify-bundle.

use std::path::{Path, PathBuf};

use custos_tests::{custos, line, Run, Store};
use serde_json::{json, Value};

fn acme_events() -> String {
    let mut v = vec![];
    for i in 0..6 {
        v.push(line("acme", "runs", "run_note", json!({"i": i, "mail": format!("user{i}@example.com"), "f": 1.5, "s": "é\u{1}\"q"})));
    }
    v.push(line(
        "acme",
        "costs",
        "cost_recorded",
        json!({"run_id": "r1", "provider": "openai", "model": "gpt", "tokens_in": 1, "tokens_out": 2, "usd_micros": 2100}),
    ));
    v.push(line("globex", "runs", "run_note", json!({"i": 99})));
    v.join("\n")
}

fn export(store: &Store, token: &Path, args: &[&str]) -> Run {
    let mut a = vec!["--json", "compliance", "export"];
    a.extend_from_slice(args);
    store.run_as(token, &a)
}

/// verify-bundle with no store and no root key reachable: it must not need them.
fn verify(path: &Path, extra: &[&str]) -> Run {
    let out = custos()
        .env("CUSTOS_STORE", "/nonexistent/custos.db")
        .env("CUSTOS_ROOT_KEY_FILE", "/nonexistent/root.key")
        .args(["--json", "compliance", "verify-bundle"])
        .arg(path)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn python_verify(path: &Path, extra: &[&str], no_crypto: bool) -> i32 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/verify_bundle.py");
    let mut c = std::process::Command::new("python3");
    c.arg(script).arg(path).args(extra);
    if no_crypto {
        c.env("CUSTOS_PYVERIFY_NO_CRYPTO", "1");
    }
    let o = c.output().unwrap_or_else(|e| panic!("python3: {e}"));
    o.status.code().unwrap_or(-1)
}

fn has_py_crypto() -> bool {
    std::process::Command::new("python3").args(["-c", "import cryptography"]).status().map(|s| s.success()).unwrap_or(false)
}

fn public_key(store: &Store) -> String {
    store.run(&["--json", "keys", "public"]).json()["public_key"].as_str().unwrap_or_default().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")) {
        let e = e.unwrap_or_else(|e| panic!("{e}"));
        let dest = to.join(e.file_name());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn edit_lines(p: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    f(&mut v);
    std::fs::write(p, v.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Purges chosen bodies as a retention run would: a `_system` `retention_enforced` event
/// whose recorded cutoffs (now, for every category of acme) cover them, then
/// `Tx::purge_bodies` naming it — so `verify` with keys accepts the coverage.
fn purge(store: &Store, seqs: &[u64]) {
    let mut p = custos_platform::Platform::open(&store.db.display().to_string(), &store.key).unwrap_or_else(|e| panic!("{e}"));
    let by = p
        .append_system(
            "retention_enforced",
            json!({"test": true, "purged": seqs.len(), "cutoffs": {"default": {}, "tenants": {"acme": {
                "runs": custos_domain::now_micros(), "costs": custos_domain::now_micros(), "approvals": custos_domain::now_micros(),
                "artifacts": custos_domain::now_micros(), "queue": custos_domain::now_micros(), "dlq": custos_domain::now_micros(),
                "governance": custos_domain::now_micros(), "custom": custos_domain::now_micros()}}}}),
            custos_platform::SYSTEM_ACTOR,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (backend, _) = p.log_mut().parts_mut().unwrap_or_else(|e| panic!("{e}"));
    let mut tx = backend.begin().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tx.purge_bodies(seqs, by).unwrap_or_else(|e| panic!("{e}")), seqs.len() as u64);
    tx.commit().unwrap_or_else(|e| panic!("{e}"));
}

fn acme_seqs(store: &Store) -> Vec<u64> {
    store.run(&["events", "list", "--tenant", "acme"]).jsonl().iter().map(|e| e["global_seq"].as_u64().unwrap_or(0)).collect()
}

fn sha256_hex(p: &Path) -> String {
    let o = std::process::Command::new("sha256sum").arg(p).output().unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn round_trip_directory_and_archive_with_purged_records() {
    let s = Store::new();
    s.ingest(&acme_events());
    let seqs = acme_seqs(&s);
    purge(&s, &seqs[1..3]);
    s.run(&["verify"]).expect(0);
    let pk = public_key(&s);
    let dir = s.dir.path().join("bundle");
    let r = export(&s, &s.admin, &["--tenant", "acme", "--out", dir.to_str().unwrap_or_default()]);
    r.expect(0);
    let j = r.json();
    assert_eq!(j["tenant"], "acme");
    assert_eq!(j["counts"]["runs"], 4, "{j}");
    assert_eq!(j["counts"]["costs"], 1);
    assert_eq!(j["counts"]["events_purged"], 2);
    assert_eq!(j["counts"]["chain"], 7);
    assert_eq!(j["total_items"], 5);
    assert_eq!(j["export_path"], dir.display().to_string());
    for f in ["manifest.json", "manifest.sig", "chain.jsonl", "audit.csv", "events/runs.jsonl", "events/costs.jsonl"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let chain = read_jsonl(&dir.join("chain.jsonl"));
    assert_eq!(chain.len(), 7);
    assert_eq!(chain.iter().filter(|c| c["status"] == "purged").count(), 2);
    assert!(chain.iter().all(|c| c["tenant"] == "acme"));
    let audit = std::fs::read_to_string(dir.join("audit.csv")).unwrap_or_default();
    assert!(audit.starts_with("seq,tenant_seq,time,category,kind,actor,label,status,summary"));
    assert_eq!(audit.lines().count(), 8);

    let v = verify(&dir, &["--public-key", &pk]);
    v.expect(0);
    let vj = v.json();
    assert_eq!(vj["ok"], true);
    assert_eq!(vj["key_source"], "argument");
    assert_eq!(vj["purged"], 2);
    assert_eq!(vj["commitments_checked"], 5);
    assert_eq!(verify(&dir, &[]).json()["key_source"], "manifest");

    let created = s.system_events("export_created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["manifest_sha256"], sha256_hex(&dir.join("manifest.json")));

    let arch = s.dir.path().join("bundle2");
    let r = export(&s, &s.admin, &["--tenant", "acme", "--out", arch.to_str().unwrap_or_default(), "--archive"]);
    r.expect(0);
    let path = PathBuf::from(r.json()["export_path"].as_str().unwrap_or_default());
    assert!(path.to_string_lossy().ends_with(".tar.gz") && path.is_file());
    verify(&path, &["--public-key", &pk]).expect(0);
    assert_eq!(python_verify(&path, &["--public-key", &pk], false), 0);
    assert_eq!(python_verify(&dir, &[], true), 0, "stdlib-only path");
    // A flipped byte anywhere after the gzip header (deflate data, CRC, length) is caught,
    // including bytes that only decompress into tar padding no bundle hash covers.
    let bytes = std::fs::read(&path).unwrap_or_default();
    let damaged = s.dir.path().join("damaged.tar.gz");
    for i in 0..16 {
        let at = 10 + (bytes.len() - 11) * i / 15;
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        std::fs::write(&damaged, &b).unwrap_or_default();
        let r = verify(&damaged, &["--public-key", &pk]);
        assert_ne!(r.code, 0, "a flipped byte at {at} of {} passed verification", bytes.len());
        assert_ne!(python_verify(&damaged, &[], true), 0, "a flipped byte at {at} passed the Python verifier");
    }
    // The log itself still verifies after the exports recorded their events.
    s.run(&["verify"]).expect(0);
}

#[test]
fn redact_pii_marks_lines_and_chain() {
    let s = Store::new();
    s.ingest(&acme_events());
    let dir = s.dir.path().join("b");
    let r = export(&s, &s.admin, &["--tenant", "acme", "--out", dir.to_str().unwrap_or_default(), "--redact-pii"]);
    r.expect(0);
    assert_eq!(r.json()["counts"]["events_redacted"], 6);
    let runs = read_jsonl(&dir.join("events/runs.jsonl"));
    for l in &runs {
        assert_eq!(l["redacted"], true);
        assert_eq!(l["redaction"], "pii");
        assert!(l["salt"].is_null(), "a redacted line must not carry its salt");
        assert_eq!(l["data"]["mail"], "[REDACTED:EMAIL]");
        assert_eq!(l["redaction_counts"]["email"], 1);
    }
    let costs = read_jsonl(&dir.join("events/costs.jsonl"));
    assert_eq!(costs[0]["redacted"], false, "nothing to redact: still checkable");
    let chain = read_jsonl(&dir.join("chain.jsonl"));
    assert_eq!(chain.iter().filter(|c| c["redacted"] == true && c["redaction"] == "pii").count(), 6);
    let v = verify(&dir, &[]);
    v.expect(0);
    assert_eq!(v.json()["redacted"], 6);
    assert_eq!(v.json()["commitments_checked"], 1);
    assert_eq!(python_verify(&dir, &[], true), 0);
}

type Tamper = Box<dyn Fn(&Path)>;

#[test]
fn tamper_battery_each_exits_5() {
    let s = Store::new();
    s.ingest(&acme_events());
    let pk = public_key(&s);
    let good = s.dir.path().join("good");
    export(&s, &s.admin, &["--tenant", "acme", "--out", good.to_str().unwrap_or_default()]).expect(0);
    let other = s.dir.path().join("globex");
    export(&s, &s.admin, &["--tenant", "globex", "--out", other.to_str().unwrap_or_default()]).expect(0);
    verify(&good, &["--public-key", &pk]).expect(0);
    let crypto = has_py_crypto();

    let other2 = other.clone();
    let cases: Vec<(&str, &str, bool, Tamper)> = vec![
        (
            "edited event line",
            "files",
            true,
            Box::new(|d: &Path| edit_lines(&d.join("events/runs.jsonl"), |v| v[0] = v[0].replace("\"i\":0", "\"i\":7"))),
        ),
        (
            "dropped line",
            "files",
            true,
            Box::new(|d: &Path| {
                edit_lines(&d.join("events/runs.jsonl"), |v| {
                    v.remove(2);
                })
            }),
        ),
        ("two lines swapped", "files", true, Box::new(|d: &Path| edit_lines(&d.join("events/runs.jsonl"), |v| v.swap(0, 1)))),
        (
            "line added",
            "files",
            true,
            Box::new(|d: &Path| {
                edit_lines(&d.join("events/runs.jsonl"), |v| {
                    let l = v[0].clone();
                    v.push(l);
                })
            }),
        ),
        (
            "chain line dropped",
            "files",
            true,
            Box::new(|d: &Path| {
                edit_lines(&d.join("chain.jsonl"), |v| {
                    v.remove(3);
                })
            }),
        ),
        (
            "edited manifest count",
            "signature",
            false,
            Box::new(|d: &Path| {
                let p = d.join("manifest.json");
                let m = std::fs::read_to_string(&p).unwrap_or_default().replacen("\"runs\": 6", "\"runs\": 5", 1);
                std::fs::write(p, m).unwrap_or_else(|e| panic!("{e}"));
            }),
        ),
        (
            "replaced signature",
            "signature",
            false,
            Box::new(move |d: &Path| {
                std::fs::copy(other2.join("manifest.sig"), d.join("manifest.sig")).unwrap_or_else(|e| panic!("{e}"));
            }),
        ),
        (
            "unlisted file added",
            "files",
            true,
            Box::new(|d: &Path| std::fs::write(d.join("events/extra.jsonl"), "{}\n").unwrap_or_else(|e| panic!("{e}"))),
        ),
    ];
    for (i, (name, check, py_without_crypto, f)) in cases.iter().enumerate() {
        let d = s.dir.path().join(format!("t{i}"));
        copy_dir(&good, &d);
        f(&d);
        let r = verify(&d, &["--public-key", &pk]);
        r.expect(5);
        assert_eq!(r.json()["failed_check"], *check, "{name}: {}", r.stdout);
        assert!(r.stderr.contains(check), "{name}: error names the check: {}", r.stderr);
        if *py_without_crypto {
            assert_eq!(python_verify(&d, &[], true), 5, "python (stdlib only) disagrees on {name}");
        }
        if crypto {
            assert_eq!(python_verify(&d, &["--public-key", &pk], false), 5, "python disagrees on {name}");
        }
    }

    // Another tenant's chain spliced in (chain.jsonl and its lines replaced).
    let d = s.dir.path().join("spliced");
    copy_dir(&good, &d);
    std::fs::copy(other.join("chain.jsonl"), d.join("chain.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(other.join("events/runs.jsonl"), d.join("events/runs.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    verify(&d, &["--public-key", &pk]).expect(5);
    assert_eq!(python_verify(&d, &[], true), 5);

    // A bundle signed by another store's key, checked against the real store's key.
    let s2 = Store::new();
    s2.ingest(&acme_events());
    let forged = s2.dir.path().join("forged");
    export(&s2, &s2.admin, &["--tenant", "acme", "--out", forged.to_str().unwrap_or_default()]).expect(0);
    verify(&forged, &[]).expect(0);
    let r = verify(&forged, &["--public-key", &pk]);
    r.expect(5);
    assert_eq!(r.json()["failed_check"], "signature");
    if crypto {
        assert_eq!(python_verify(&forged, &["--public-key", &pk], false), 5);
    }

    // Rollback: an older bundle checked against a newer one it should extend.
    let old = s.dir.path().join("old");
    export(&s, &s.admin, &["--tenant", "acme", "--out", old.to_str().unwrap_or_default()]).expect(0);
    s.ingest(&line("acme", "runs", "run_note", json!({"i": 100})));
    let new = s.dir.path().join("new");
    export(&s, &s.admin, &["--tenant", "acme", "--out", new.to_str().unwrap_or_default()]).expect(0);
    verify(&new, &["--public-key", &pk, "--previous", old.to_str().unwrap_or_default()]).expect(0);
    verify(&new, &["--previous", old.join("manifest.json").to_str().unwrap_or_default()]).expect(0);
    assert_eq!(python_verify(&new, &["--previous", old.to_str().unwrap_or_default()], true), 0);
    let r = verify(&old, &["--public-key", &pk, "--previous", new.to_str().unwrap_or_default()]);
    r.expect(5);
    assert_eq!(r.json()["failed_check"], "previous");
    assert_eq!(python_verify(&old, &["--previous", new.to_str().unwrap_or_default()], true), 5);
    // A fork: another store's acme chain of the same length does not extend this one's.
    let r = verify(&forged, &["--previous", old.join("manifest.json").to_str().unwrap_or_default()]);
    r.expect(5);
    assert_eq!(r.json()["failed_check"], "previous", "{}", r.stdout);
}

#[test]
fn clearance_matrix_and_policies() {
    let s = Store::new();
    let labels = [Some("Public"), Some("Internal"), Some("Confidential"), Some("Restricted"), None];
    let mut lines = vec![];
    for l in labels {
        let mut v = json!({"tenant": "acme", "category": "runs", "kind": "run_note", "data": {"label": l}});
        if let Some(l) = l {
            v["label"] = json!(l);
        }
        lines.push(v.to_string());
    }
    s.ingest(&lines.join("\n"));
    for (i, l) in labels.iter().enumerate() {
        let f = s.dir.path().join(format!("art{i}.bin"));
        std::fs::write(&f, format!("artifact {i}")).unwrap_or_else(|e| panic!("{e}"));
        let mut args = vec!["--json", "artifacts", "put", "--tenant", "acme", f.to_str().unwrap_or_default()];
        if let Some(l) = l {
            args.extend(["--label", l]);
        }
        s.run(&args).expect(0);
    }
    let rank = |l: Option<&str>| {
        ["Public", "Internal", "Confidential", "Restricted"].iter().position(|x| Some(*x) == l.or(Some("Internal"))).unwrap_or(9)
    };
    let mut n = 0;
    for (ci, clearance) in ["Public", "Internal", "Confidential", "Restricted"].iter().enumerate() {
        let tok = s.actor(&format!("aud-{}", clearance.to_lowercase()), "Auditor", clearance);
        let k = labels.iter().filter(|l| rank(**l) <= ci).count() as u64;
        for policy in ["deny", "redact"] {
            let before = s.system_events("export_denied").len();
            let out = s.dir.path().join(format!("m-{clearance}-{policy}"));
            let r = export(&s, &tok, &["--tenant", "acme", "--out", out.to_str().unwrap_or_default(), "--policy", policy]);
            r.expect(0);
            let c = &r.json()["counts"];
            let denied = 5 - k;
            assert_eq!(c["artifacts"], k, "{clearance} {policy}: {c}");
            assert_eq!(c["artifacts_denied"], denied, "{clearance} {policy}");
            assert_eq!(c["events_denied"], 2 * denied, "{clearance} {policy}: runs and artifact_stored events");
            if policy == "deny" {
                assert_eq!(c["runs"], k);
                assert_eq!(c["artifact_events"], k);
                assert_eq!(c.get("events_redacted").and_then(Value::as_u64).unwrap_or(0), 0);
            } else {
                assert_eq!(c["runs"], 5);
                assert_eq!(c["artifact_events"], 5);
                assert_eq!(c["events_redacted"], 2 * denied);
                for l in read_jsonl(&out.join("events/runs.jsonl")) {
                    if l["redacted"] == true {
                        assert!(l["data"].is_null() && l["actor"].is_null() && l["salt"].is_null(), "{l}");
                    }
                }
            }
            // Contents on disk: exactly the cleared artifacts (plus the index).
            let files = std::fs::read_dir(out.join("artifacts")).map(|d| d.count()).unwrap_or(0) as u64;
            assert_eq!(files, k + 1, "contents + index");
            let chain = read_jsonl(&out.join("chain.jsonl"));
            assert_eq!(chain.len(), 10, "the chain is always complete");
            let after = s.system_events("export_denied");
            let expect_new = denied + u64::from(denied > 0);
            assert_eq!((after.len() - before) as u64, expect_new, "{clearance} {policy}: one per artifact + one for events");
            if denied > 0 {
                let ev = after.iter().rev().find(|e| e["data"]["items"] == "events").unwrap_or(&Value::Null);
                assert_eq!(ev["data"]["count"], 2 * denied);
                assert_eq!(ev["data"]["clearance"], *clearance);
            }
            verify(&out, &[]).expect(0);
            n += 1;
        }
    }
    assert_eq!(n, 8);
    // --require-labels: the unlabeled event and artifact are denied even for Restricted.
    let out = s.dir.path().join("req");
    let r = export(&s, &s.admin, &["--tenant", "acme", "--out", out.to_str().unwrap_or_default(), "--require-labels"]);
    r.expect(0);
    assert_eq!(r.json()["counts"]["artifacts_denied"], 1);
    assert_eq!(r.json()["counts"]["events_denied"], 2);
    verify(&out, &[]).expect(0);
    // Below Auditor: refused and recorded.
    let op = s.actor("op", "Operator", "Restricted");
    let before = s.system_events("access_denied").len();
    export(&s, &op, &["--tenant", "acme", "--out", s.dir.path().join("nope").to_str().unwrap_or_default()]).expect(2);
    assert_eq!(s.system_events("access_denied").len(), before + 1);
    assert!(!s.dir.path().join("nope").exists());
}

#[test]
fn export_errors_name_the_input() {
    let s = Store::new();
    s.ingest(&acme_events());
    let r = s.run(&["compliance", "export", "--tenant", "nosuch", "--out", s.dir.path().join("x").to_str().unwrap_or_default()]);
    r.expect(1);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
    let d = s.dir.path().join("exists");
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    let r = s.run(&["compliance", "export", "--tenant", "acme", "--out", d.to_str().unwrap_or_default()]);
    r.expect(1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    let r = s.run(&["compliance", "export", "--tenant", "acme", "--out", "y", "--policy", "shred"]);
    r.expect(1);
    assert!(r.stderr.contains("shred"));
    assert!(s.system_events("export_created").is_empty(), "failed exports are not recorded");
    let r = verify(&s.dir.path().join("missing"), &[]);
    r.expect(1);
}

#[test]
fn time_range_keeps_the_chain_complete() {
    let s = Store::new();
    let lines = [
        custos_tests::line_at("acme", "runs", "run_note", "2026-01-05T00:00:00Z", json!({"i": 1})),
        custos_tests::line_at("acme", "runs", "run_note", "2026-02-05T00:00:00Z", json!({"i": 2})),
        custos_tests::line_at("acme", "runs", "run_note", "2026-03-05T00:00:00Z", json!({"i": 3})),
    ];
    s.ingest(&lines.join("\n"));
    let out = s.dir.path().join("feb");
    let r = export(
        &s,
        &s.admin,
        &["--tenant", "acme", "--out", out.to_str().unwrap_or_default(), "--since", "2026-02-01", "--until", "2026-03-01"],
    );
    r.expect(0);
    assert_eq!(r.json()["counts"]["runs"], 1);
    assert_eq!(r.json()["counts"]["events_out_of_range"], 2);
    let runs = read_jsonl(&out.join("events/runs.jsonl"));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["data"]["i"], 2);
    let chain = read_jsonl(&out.join("chain.jsonl"));
    assert_eq!(
        chain.iter().map(|c| c["status"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
        ["out_of_range", "exported", "out_of_range"]
    );
    let v = verify(&out, &[]);
    v.expect(0);
    assert_eq!(v.json()["out_of_range"], 2);
    assert_eq!(python_verify(&out, &[], true), 0);
}

#[test]
fn export_refuses_a_log_that_does_not_verify() {
    let s = Store::new();
    s.ingest(&acme_events());
    let seqs = acme_seqs(&s);
    let db = rusqlite::Connection::open(&s.db).unwrap_or_else(|e| panic!("{e}"));
    db.execute("UPDATE events SET kind = 'forged' WHERE global_seq = ?1", [seqs[2] as i64]).unwrap_or_else(|e| panic!("{e}"));
    drop(db);
    let out = s.dir.path().join("bad");
    let r = export(&s, &s.admin, &["--tenant", "acme", "--out", out.to_str().unwrap_or_default()]);
    r.expect(5);
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".custos-export-"))
        .collect();
    assert!(leftovers.is_empty(), "staging directory removed");
    assert!(s.system_events("export_created").is_empty());
}

/// The tour's export step must reach scripts (`--json`) and readers: a bundle that exists on
/// disk, with the verify-bundle report beside it, and the human lines that say so.
#[test]
fn quickstart_exports_and_verifies_a_bundle() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let qs = d.path().join("tour-json");
    let out = custos().args(["--json", "quickstart", "--dir"]).arg(&qs).output().unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "quickstart --json failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let ex = &v["export"];
    assert_eq!(ex["tenant"], "acme-corp", "{ex}");
    let path = PathBuf::from(ex["export_path"].as_str().unwrap_or_else(|| panic!("no export_path: {ex}")));
    assert!(path.starts_with(&qs), "bundle {} is outside --dir {}", path.display(), qs.display());
    assert!(path.join("manifest.json").is_file() && path.join("manifest.sig").is_file(), "bundle {} missing on disk", path.display());
    assert!(ex["total_items"].as_u64().unwrap_or(0) > 0, "{ex}");
    assert!(ex["counts"]["chain"].as_u64().unwrap_or(0) > 0, "{ex}");
    assert_eq!(ex["manifest_sha256"].as_str().map(str::len), Some(64), "{ex}");
    let rep = &ex["verify_bundle"];
    assert_eq!(rep["ok"], true, "{rep}");
    assert_eq!(rep["failed_check"], Value::Null, "{rep}");
    assert_eq!(rep["bundle"].as_str(), path.to_str(), "{rep}");
    // The bundle the JSON names really is the one verified: an independent verify-bundle agrees.
    let again = verify(&path, &["--public-key", rep["public_key"].as_str().unwrap_or_default()]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);

    let qs = d.path().join("tour-human");
    let out = custos().args(["quickstart", "--dir"]).arg(&qs).output().unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "quickstart failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    for want in ["export and verify offline", "exported ", "bundle-acme-corp", "verify-bundle: OK", "custos compliance verify-bundle "] {
        assert!(text.contains(want), "quickstart output lacks {want:?}:\n{text}");
    }
}
