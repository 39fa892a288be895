//! Guards the projections invariant for holds and retention policies: after any
//! mix of ingest, hold, release, policy changes, retention runs and deletions, the
//! incremental state (snapshot + tail) equals a rebuild from the log, holds always
//! win, and the log verifies with keys.

use custos_compliance::holds::ReleaseTarget;
use custos_domain::{Category, Role};
use custos_eventlog::VerifyOptions;
use custos_platform::{Platform, Principal};
use proptest::prelude::*;

const TENANTS: [&str; 3] = ["ta", "tb", "tc"];

#[derive(Debug, Clone)]
enum Op {
    Ingest { tenant: usize, n: usize, age_days: i64 },
    Hold { tenant: usize, id: Option<usize> },
    Release { tenant: usize, id: Option<usize> },
    Policy { tenant: Option<usize>, cat: usize, days: i64 },
    Retention { back_days: i64, dry: bool },
    Delete { tenant: usize, dry: bool },
    Rebuild,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 1..6usize, 0..400i64).prop_map(|(tenant, n, age_days)| Op::Ingest { tenant, n, age_days }),
        2 => (0..3usize, proptest::option::of(0..3usize)).prop_map(|(tenant, id)| Op::Hold { tenant, id }),
        2 => (0..3usize, proptest::option::of(0..3usize)).prop_map(|(tenant, id)| Op::Release { tenant, id }),
        1 => (proptest::option::of(0..3usize), 0..8usize, 1..200i64).prop_map(|(tenant, cat, days)| Op::Policy { tenant, cat, days }),
        2 => (0..100i64, any::<bool>()).prop_map(|(back_days, dry)| Op::Retention { back_days, dry }),
        1 => (0..3usize, any::<bool>()).prop_map(|(tenant, dry)| Op::Delete { tenant, dry }),
        1 => Just(Op::Rebuild),
    ]
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn ingest(p: &mut Platform, who: &Principal, tenant: &str, n: usize, age_days: i64) {
    let at = custos_domain::format_ts(custos_domain::now_micros() - age_days * 86_400_000_000);
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let cat = Category::ALL[i % 8].as_str();
            serde_json::json!({"tenant": tenant, "category": cat, "kind": "k", "occurred_at": at, "data": {"i": i}}).to_string()
        })
        .collect();
    // Ingest into a deleted tenant is refused; that is part of the mix.
    let _ = p.ingest(who, &mut lines.join("\n").as_bytes(), &Default::default(), &mut |_| {});
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn incremental_equals_rebuild(ops in proptest::collection::vec(op(), 1..14)) {
        let dir = tempfile::tempdir().map_err(fail)?;
        let store = dir.path().join("s.db").display().to_string();
        let (mut p, init) = Platform::init(&store, &dir.path().join("k"), "admin").map_err(fail)?;
        let who = p.authenticate(Some(&init.admin.token), "test").map_err(fail)?;
        prop_assert_eq!(who.role, Role::Admin);
        for t in TENANTS {
            ingest(&mut p, &who, t, 2, 1);
        }
        for o in &ops {
            match o {
                Op::Ingest { tenant, n, age_days } => ingest(&mut p, &who, TENANTS[*tenant], *n, *age_days),
                Op::Hold { tenant, id } => {
                    let id = id.map(|i| format!("CASE-{i}"));
                    let _ = p.hold_apply(&who, TENANTS[*tenant], "prop", id.as_deref(), None);
                }
                Op::Release { tenant, id } => {
                    let target = id.map(|i| ReleaseTarget::One(format!("CASE-{i}"))).unwrap_or(ReleaseTarget::All);
                    let _ = p.hold_release(&who, TENANTS[*tenant], &target);
                }
                Op::Policy { tenant, cat, days } => {
                    let _ = p.retention_policy_set(&who, tenant.map(|t| TENANTS[t]), Category::ALL[*cat], *days);
                }
                Op::Retention { back_days, dry } => {
                    let as_of = custos_domain::now_micros() - back_days * 86_400_000_000;
                    let r = p.retention_run(&who, Some(as_of), *dry, &mut |_, _| {}).map_err(fail)?;
                    let views = p.compliance_views().map_err(fail)?;
                    for t in r.held.keys() {
                        prop_assert!(views.holds.is_held(t), "{} reported held without a hold", t);
                    }
                }
                Op::Delete { tenant, dry } => {
                    let t = TENANTS[*tenant];
                    let held = p.compliance_views().map_err(fail)?.holds.is_held(t);
                    let r = p.tenant_delete(&who, t, *dry);
                    if held {
                        prop_assert_eq!(r.map_err(|e| e.exit_code()).err(), Some(3), "a held tenant must not be deleted");
                    } else {
                        prop_assert!(r.is_ok(), "{:?}", r);
                    }
                }
                Op::Rebuild => {
                    let (_, _, drifted) = p.rebuild_compliance().map_err(fail)?;
                    prop_assert!(!drifted, "snapshot drifted from the log");
                }
            }
            let inc = p.compliance_views().map_err(fail)?;
            let full = p.compliance_views_rebuilt().map_err(fail)?;
            prop_assert_eq!(&inc, &full, "after {:?}", o);
        }
        let rep = p.verify(&VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {}).map_err(fail)?;
        prop_assert!(rep.ok, "{:?}", rep.error);
        for h in p.log().backend().tenant_heads().map_err(fail)? {
            if h.deleted_at.is_some() {
                prop_assert!(p.log().backend().deks(Some(&h.tenant)).map_err(fail)?.is_empty(), "deleted tenant keeps a DEK");
                prop_assert!(!p.compliance_views().map_err(fail)?.holds.is_held(&h.tenant), "deleted tenant is held");
            }
        }
    }
}
