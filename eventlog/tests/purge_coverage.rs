//! Guards purge coverage at the log level: bodies purged by a retention run in one
//! transaction verify; a body dropped and attributed to a run whose cutoff does not
//! cover it, to a deletion of another tenant, or to a non-purge event is caught with
//! keys (and only the last without keys).

use custos_crypto::RootKey;
use custos_domain::{Category, NewEvent, TenantId};
use custos_eventlog::{EventLog, Pending, VerifyOptions};
use rusqlite::Connection;
use serde_json::json;

type R = Result<(), Box<dyn std::error::Error>>;

fn pending(tenant: TenantId, category: Category, kind: &str, at: i64, data: serde_json::Value) -> Pending {
    Pending { event: NewEvent { tenant, category, kind: kind.into(), occurred_at: Some(at), label: None, data }, actor: "t".into() }
}

fn ok(log: &EventLog, keys: bool) -> Result<bool, custos_eventlog::LogError> {
    Ok(log.verify(&VerifyOptions { with_keys: keys, expect: vec![] }, &mut |_| {})?.ok)
}

#[test]
fn retention_purge_is_checked_against_its_recorded_cutoffs() -> R {
    let d = tempfile::tempdir()?;
    let root = RootKey::create(&d.path().join("root.key"))?;
    let store = d.path().join("s.db").display().to_string();
    let mut log = EventLog::create(&store, &root)?;
    let acme = TenantId::parse("acme")?;
    let now = custos_domain::now_micros();
    let cutoff = now - 1_000_000_000;
    log.append(&[
        pending(acme.clone(), Category::Dlq, "old", cutoff - 1, json!({})),
        pending(acme.clone(), Category::Dlq, "edge", cutoff, json!({})),
        pending(acme.clone(), Category::Runs, "other_cat", cutoff - 5, json!({})),
        pending(TenantId::system(), Category::Governance, "log_initialized", now, json!({})),
    ])?;
    // The run: one transaction purges and records, purged_by = the event's seq.
    let mut a = log.appender()?;
    let seq = a.head().size + 1;
    let n = a.tx().purge_before_cutoffs("acme", &[(Category::Dlq, cutoff)], Some(seq))?;
    assert_eq!(n, vec![(Category::Dlq, 1)], "strictly older than the cutoff only");
    let data = json!({"as_of": "x", "cutoffs": {"default": {"dlq": cutoff}, "tenants": {}}, "held": {}, "counts": {"dlq": 1}});
    assert_eq!(a.push(&[pending(TenantId::system(), Category::Governance, "retention_enforced", now, data)])?, vec![seq]);
    a.commit()?;
    assert!(ok(&log, true)? && ok(&log, false)?);

    let c = Connection::open(&store)?;
    let tamper = |kind: &str, by: i64| -> Result<(), rusqlite::Error> {
        c.execute("UPDATE events SET body = NULL, nonce = NULL, purged_by = ?2 WHERE kind = ?1", rusqlite::params![kind, by])?;
        Ok(())
    };
    let (nonce, body): (Vec<u8>, Vec<u8>) =
        c.query_row("SELECT nonce, body FROM events WHERE kind='edge'", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    tamper("edge", seq as i64)?; // at the cutoff: not covered
    assert!(!ok(&log, true)?, "a body at the cutoff blamed on the run is caught with keys");
    assert!(ok(&log, false)?, "without keys only the header-level rule applies");
    c.execute("UPDATE events SET purged_by = NULL, nonce = ?1, body = ?2 WHERE kind='edge'", rusqlite::params![nonce, body])?;
    assert!(ok(&log, true)?);
    tamper("other_cat", seq as i64)?; // a category the run had no cutoff for
    assert!(!ok(&log, true)?);
    tamper("other_cat", 4)?; // seq 4 is log_initialized, not a purge event
    assert!(!ok(&log, false)?, "a non-purge event never covers a body, even without keys");
    Ok(())
}
