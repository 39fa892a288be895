//! A bundle edited by someone who also holds the signing key (the file's hash fixed in
//! the manifest, the manifest signed again) still fails `verify-bundle`: category lines
//! are checked record by record against chain.jsonl, whose head is pinned by the signed
//! checkpoint, not only against the manifest's file hashes.

use std::path::Path;

use custos_compliance::classify::Policy;
use custos_crypto::sha256;
use custos_platform::{verify_bundle_path, ExportOptions, IngestOptions, Platform};
use serde_json::Value;

type R = Result<(), Box<dyn std::error::Error>>;

fn lines(p: &Path) -> Result<Vec<String>, std::io::Error> {
    Ok(std::fs::read_to_string(p)?.lines().map(str::to_string).collect())
}

/// Rewrites `rel` with `edit`, fixes its entry in manifest.json and re-signs the manifest.
fn edit_and_resign(p: &Platform, bundle: &Path, rel: &str, edit: &dyn Fn(&mut Vec<String>)) -> R {
    let mut v = lines(&bundle.join(rel))?;
    edit(&mut v);
    let text: String = v.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(bundle.join(rel), &text)?;
    let mut m: Value = serde_json::from_slice(&std::fs::read(bundle.join("manifest.json"))?)?;
    m["files"][rel] = serde_json::json!({"sha256": hex::encode(sha256(text.as_bytes())), "size": text.len()});
    let bytes = serde_json::to_vec_pretty(&m)?;
    std::fs::write(bundle.join("manifest.json"), &bytes)?;
    let sig = p.log().keys()?.signing()?.sign(&bytes);
    std::fs::write(bundle.join("manifest.sig"), format!("{}\n", hex::encode(sig)))?;
    Ok(())
}

#[test]
fn resigned_bundles_with_wrong_lines_fail_record_by_record() -> R {
    let d = tempfile::tempdir()?;
    let store = d.path().join("s.db").display().to_string();
    let (mut p, init) = Platform::init(&store, &d.path().join("k"), "admin")?;
    let who = p.authenticate(Some(&init.admin.token), "test")?;
    let mut input = String::new();
    for i in 0..6 {
        input.push_str(&format!("{{\"tenant\":\"acme\",\"category\":\"queue\",\"kind\":\"job_enqueued\",\"data\":{{\"i\":{i}}}}}\n"));
        input.push_str(&format!("{{\"tenant\":\"acme\",\"category\":\"dlq\",\"kind\":\"job_dead\",\"data\":{{\"i\":{i}}}}}\n"));
    }
    p.ingest(&who, &mut std::io::Cursor::new(input.into_bytes()), &IngestOptions::default(), &mut |_| {})?;
    let export = |p: &mut Platform, name: &str| -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
        let out = d.path().join(name);
        let o = ExportOptions {
            tenant: "acme".into(),
            out: out.clone(),
            archive: false,
            policy: Policy::Deny,
            require_labels: false,
            redact_pii: None,
            since: None,
            until: None,
        };
        p.export(&who, &o, &mut |_, _| {})?;
        Ok(out)
    };

    // The helper itself is sound: a re-signed but unedited bundle verifies.
    let b = export(&mut p, "same")?;
    edit_and_resign(&p, &b, "events/queue.jsonl", &|_| {})?;
    let (rep, err) = verify_bundle_path(&b, None, None);
    assert!(err.is_none() && rep.failed_check.is_none(), "{rep:?} {err:?}");

    type Edit = Box<dyn Fn(&mut Vec<String>)>;
    let cases: Vec<(&str, &str, Edit, &[&str])> = vec![
        ("line dropped", "events/queue.jsonl", Box::new(|v| drop(v.remove(2))), &["completeness"]),
        ("line duplicated", "events/queue.jsonl", Box::new(|v| v.insert(1, v[0].clone())), &["lines"]),
        ("lines swapped", "events/dlq.jsonl", Box::new(|v| v.swap(0, 1)), &["completeness", "lines"]),
        (
            "line moved to the other category file",
            "events/dlq.jsonl",
            Box::new(|v| v.push(v[0].replace("\"dlq\"", "\"queue\""))),
            &["lines", "completeness"],
        ),
        (
            "line of a record beyond the chain",
            "events/queue.jsonl",
            Box::new(|v| {
                let last = v[v.len() - 1].clone();
                v.push(last.replace("\"tenant_seq\":11", "\"tenant_seq\":99"));
            }),
            &["completeness", "lines"],
        ),
        ("data edited", "events/queue.jsonl", Box::new(|v| v[3] = v[3].replace("\"i\":3", "\"i\":4")), &["commitment"]),
        ("every line gone", "events/dlq.jsonl", Box::new(|v| v.clear()), &["completeness"]),
    ];
    for (i, (name, rel, edit, checks)) in cases.iter().enumerate() {
        let b = export(&mut p, &format!("t{i}"))?;
        edit_and_resign(&p, &b, rel, edit.as_ref())?;
        let (rep, err) = verify_bundle_path(&b, None, None);
        let got = rep.failed_check.clone().unwrap_or_default();
        assert!(err.is_some() && checks.contains(&got.as_str()), "{name}: failed_check {got:?}, wanted one of {checks:?} ({err:?})");
    }
    Ok(())
}
