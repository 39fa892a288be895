//! Guards the log's core contract: appends chain and verify; every tamper is caught.

use custos_crypto::RootKey;
use custos_domain::{Category, NewEvent, TenantId};
use custos_eventlog::{EventLog, Pending, Query, VerifyOptions};
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::json;

type R = Result<(), Box<dyn std::error::Error>>;

fn setup() -> Result<(tempfile::TempDir, String, RootKey, EventLog), Box<dyn std::error::Error>> {
    let d = tempfile::tempdir()?;
    let root = RootKey::create(&d.path().join("root.key"))?;
    let store = d.path().join("store.db").display().to_string();
    let log = EventLog::create(&store, &root)?;
    Ok((d, store, root, log))
}

fn ev(tenant: &str, i: u64) -> Pending {
    Pending {
        event: NewEvent {
            tenant: TenantId::parse(tenant).unwrap_or_else(|_| TenantId::system()),
            category: Category::Queue,
            kind: "job_enqueued".into(),
            occurred_at: None,
            label: None,
            data: json!({"job": i, "marker": format!("secret-{tenant}-{i}")}),
        },
        actor: "tester".into(),
    }
}

fn verify(log: &EventLog, keys: bool) -> Result<custos_eventlog::VerifyReport, custos_eventlog::LogError> {
    log.verify(&VerifyOptions { with_keys: keys, expect: vec![] }, &mut |_| {})
}

#[test]
fn append_read_verify_roundtrip() -> R {
    let (_d, store, root, mut log) = setup()?;
    let batch: Vec<Pending> = (0..10).map(|i| ev(if i % 2 == 0 { "acme" } else { "beta" }, i)).collect();
    let r = log.append(&batch)?;
    assert_eq!((r.appended, r.first_seq, r.last_seq, r.tenants), (10, 1, 10, 2));
    let mut seen = vec![];
    log.read(&Query { tenant: Some("beta".into()), ..Default::default() }, &mut |e| {
        seen.push((e.header.tenant_seq, e.data.clone(), e.actor.clone()));
        Ok(true)
    })?;
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], (1, Some(json!({"job": 1, "marker": "secret-beta-1"})), Some("tester".into())));
    let rep = verify(&log, true)?;
    assert!(rep.ok, "{rep:?}");
    assert_eq!((rep.events, rep.tenants, rep.bodies_checked), (10, 2, 10));
    // Reopen from disk: same answers.
    let mut again = EventLog::open(&store)?;
    again.unlock(&root)?;
    assert!(verify(&again, true)?.ok);
    assert_eq!(again.head()?.size, 10);
    // Plaintext is not on disk.
    drop(again);
    drop(log);
    let raw = std::fs::read(&store)?;
    let wal = std::fs::read(format!("{store}-wal")).unwrap_or_default();
    for b in [raw, wal] {
        assert!(!b.windows(8).any(|w| w == b"secret-a"), "plaintext found on disk");
    }
    Ok(())
}

fn tamper(sql: &str) -> Result<custos_eventlog::VerifyReport, Box<dyn std::error::Error>> {
    let (_d, store, root, mut log) = setup()?;
    let batch: Vec<Pending> = (0..6).map(|i| ev(if i < 3 { "acme" } else { "beta" }, i)).collect();
    log.append(&batch)?;
    log.checkpoint()?;
    drop(log);
    let c = Connection::open(&store)?;
    c.execute_batch(sql)?;
    drop(c);
    let mut log = EventLog::open(&store)?;
    log.unlock(&root)?;
    Ok(verify(&log, true)?)
}

#[test]
fn tamper_battery() -> R {
    let cases: &[(&str, &str, Option<u64>)] = &[
        ("header kind", "UPDATE events SET kind = 'job_dequeued' WHERE global_seq = 2", Some(2)),
        ("header time", "UPDATE events SET occurred_at = occurred_at + 1 WHERE global_seq = 3", Some(3)),
        ("commitment", "UPDATE events SET commitment = zeroblob(32) WHERE global_seq = 4", Some(4)),
        ("ciphertext", "UPDATE events SET body = CAST(substr(body,1,5) || 'X' || substr(body,7) AS BLOB) WHERE global_seq = 5", Some(5)),
        ("chain", "UPDATE events SET global_chain = zeroblob(32) WHERE global_seq = 2", Some(2)),
        ("tenant chain", "UPDATE events SET tenant_chain = zeroblob(32) WHERE global_seq = 6", Some(6)),
        ("deleted row", "DELETE FROM events WHERE global_seq = 3", Some(3)),
        ("body dropped", "UPDATE events SET body = NULL, nonce = NULL WHERE global_seq = 2", Some(2)),
        ("body dropped, fake purge", "UPDATE events SET body = NULL, nonce = NULL, purged_by = 6 WHERE global_seq = 2", Some(2)),
        (
            "swapped bodies",
            "UPDATE events SET body = (SELECT body FROM events WHERE global_seq = 5), nonce = (SELECT nonce FROM events WHERE global_seq = 5) WHERE global_seq = 1",
            Some(1),
        ),
        (
            "tail truncation behind checkpoint",
            "DELETE FROM events WHERE global_seq = 6; UPDATE tenant_heads SET last_seq = 2, chain = (SELECT tenant_chain FROM events WHERE global_seq = 5) WHERE tenant = 'beta'",
            Some(6),
        ),
    ];
    for (name, sql, seq) in cases {
        let rep = tamper(sql)?;
        assert!(!rep.ok, "{name}: not detected");
        assert_eq!(rep.first_bad_seq, *seq, "{name}: {rep:?}");
    }
    Ok(())
}

#[test]
fn wrong_root_key_is_refused() -> R {
    let (d, store, _root, log) = setup()?;
    drop(log);
    let other = RootKey::create(&d.path().join("other.key"))?;
    let mut log = EventLog::open(&store)?;
    let err = log.unlock(&other).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("does not open this store"), "{err}");
    Ok(())
}

#[test]
fn dek_rolls_over_at_seal_limit() -> R {
    let (_d, _store, _root, mut log) = setup()?;
    log.max_seals = 4;
    for i in 0..3 {
        log.append(&[ev("acme", i), ev("acme", i + 100), ev("acme", i + 200)])?;
    }
    let deks = log.backend().deks(Some("acme"))?;
    assert!(deks.len() >= 2, "{deks:?}");
    assert!(deks.iter().all(|d| d.seals <= 4), "{deks:?}");
    assert_eq!(deks.iter().filter(|d| d.active).count(), 1);
    assert!(verify(&log, true)?.ok);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn any_append_sequence_verifies(batches in prop::collection::vec(prop::collection::vec(0u8..4, 0..8), 1..6)) {
        let (_d, _s, _r, mut log) = setup().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut total = 0u64;
        for b in batches {
            let evs: Vec<Pending> = b.iter().enumerate().map(|(i, t)| ev(&format!("t{t}"), i as u64)).collect();
            let r = log.append(&evs).map_err(|e| TestCaseError::fail(e.to_string()))?;
            total += evs.len() as u64;
            prop_assert_eq!(r.last_seq, total);
        }
        let rep = verify(&log, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(rep.ok, "{:?}", rep);
        prop_assert_eq!(rep.events, total);
    }
}

fn wal_bytes(store: &str) -> u64 {
    std::fs::metadata(format!("{store}-wal")).map(|m| m.len()).unwrap_or(0)
}

/// Appends `commits` transactions of 100 events (~1.5 KB each on disk) each.
fn append_commits(log: &mut EventLog, commits: u64) -> R {
    for c in 0..commits {
        let batch: Vec<Pending> = (0..100)
            .map(|i| {
                let mut e = ev("acme", c * 100 + i);
                e.event.data["pad"] = json!("x".repeat(1000));
                e
            })
            .collect();
        log.append(&batch)?;
    }
    Ok(())
}

#[test]
fn detached_checkpoints_leave_commits_alone_and_keep_the_wal_reused() -> R {
    let (_d, store, root, mut log) = setup()?;
    let mut cp = log.detach_checkpoints()?.ok_or("SQLite has a WAL to checkpoint")?;
    append_commits(&mut log, 40)?;
    // ~6 MB committed and no inline checkpoint: SQLite's own would have reset the WAL
    // at 1000 pages (~4 MB).
    let grown = wal_bytes(&store);
    assert!(grown > 5_000_000, "WAL holds {grown} bytes; commits still checkpoint inline");
    assert!(cp.step()?, "a passive checkpoint with no reader copies the whole WAL");
    // Once copied, the next commits start the WAL over instead of growing it.
    append_commits(&mut log, 20)?;
    assert!(wal_bytes(&store) <= grown, "WAL grew from {grown} to {} after a full checkpoint", wal_bytes(&store));
    assert!(verify(&log, true)?.ok);
    drop(log);
    let mut again = EventLog::open(&store)?;
    again.unlock(&root)?;
    let rep = verify(&again, true)?;
    assert!(rep.ok && rep.events == 6000, "{rep:?}");
    Ok(())
}

#[test]
fn a_long_wal_is_truncated_once_fully_copied() -> R {
    let (_d, store, _root, mut log) = setup()?;
    let _inline_off = log.detach_checkpoints()?;
    let mut cp = custos_eventlog::sqlite::SqliteBackend::open(std::path::Path::new(&store))?.wal_checkpointer(64)?;
    append_commits(&mut log, 5)?;
    assert!(wal_bytes(&store) > 64 * 4096);
    assert!(cp.step()?);
    assert_eq!(wal_bytes(&store), 0, "a WAL past its bound is truncated after a full checkpoint");
    append_commits(&mut log, 1)?;
    assert!(verify(&log, true)?.ok);
    Ok(())
}
