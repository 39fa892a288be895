//! Property: after any sequence of cost, budget, checkpoint and decision events —
//! through the commands (which keep snapshots) and raw appends (which, like ingest,
//! do not), with times on midnight UTC, month ends and expiry instants — the state
//! reads return (snapshot + tail) equals the state rebuilt from the whole log, spend by
//! day equals a naive recomputation from the events, and `rebuild` finds no drift.

use std::collections::BTreeMap;

use custos_domain::budget::{AnomalyRule, BudgetScope, Limits};
use custos_domain::checkpoint::Status;
use custos_domain::kinds::CostRecorded;
use custos_domain::{format_ts, parse_ts, Category, Clearance, NewEvent, Role, TenantId};
use custos_eventlog::{Pending, Query};
use custos_platform::{Decide, NewCheckpoint, Platform, Principal};
use custos_projections::budgets::SpendView;
use custos_projections::checkpoints::CheckpointsView;
use custos_projections::snapshot::load_folded;
use custos_projections::Projection;
use proptest::prelude::*;
use serde_json::json;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const BOUNDARIES: [&str; 6] = [
    "2024-02-29T00:00:00Z",
    "2024-03-01T00:00:00Z",
    "2025-12-31T00:00:00Z",
    "2026-01-01T00:00:00Z",
    "2026-01-31T00:00:00Z",
    "2026-02-01T00:00:00Z",
];

fn boundary(i: usize, delta: i64) -> i64 {
    parse_ts(BOUNDARIES[i % BOUNDARIES.len()]).unwrap_or(0) + delta
}

#[derive(Debug, Clone)]
enum Op {
    /// `cost record` (keeps the snapshot).
    Cost { t: usize, b: usize, delta: i64, usd: i64, provider: usize },
    /// A cost appended like ingest does (snapshot not updated).
    RawCost { t: usize, b: usize, delta: i64, usd: i64 },
    /// `budget set`.
    Budget { scope: usize, t: usize, daily: Option<i64>, monthly: Option<i64> },
    /// `approvals create`.
    Create { t: usize, id: usize, secs: i64 },
    /// `approvals approve|reject`.
    Decide { id: usize, approve: bool, role: usize },
    /// Raw checkpoint with a past expiry instant, optionally decided exactly at it.
    RawCheckpoint { t: usize, b: usize, decide_at_expiry: bool },
    /// `approvals expire`.
    Expire,
    /// `rebuild` in the middle of the sequence.
    Rebuild,
    /// `budget show` (a read that may refresh snapshots).
    Read,
}

fn op() -> impl Strategy<Value = Op> {
    let delta = prop_oneof![Just(-1i64), Just(0i64), Just(1i64), Just(-86_400_000_000i64)];
    prop_oneof![
        4 => (0..3usize, 0..6usize, delta.clone(), 0..5_000_000i64, 0..3usize).prop_map(|(t, b, delta, usd, provider)| Op::Cost { t, b, delta, usd, provider }),
        3 => (0..3usize, 0..6usize, delta, 0..5_000_000i64).prop_map(|(t, b, delta, usd)| Op::RawCost { t, b, delta, usd }),
        2 => (0..3usize, 0..3usize, proptest::option::of(0..10_000_000i64), proptest::option::of(0..100_000_000i64))
            .prop_map(|(scope, t, daily, monthly)| Op::Budget { scope, t, daily, monthly }),
        2 => (0..3usize, 0..6usize, 1..100_000i64).prop_map(|(t, id, secs)| Op::Create { t, id, secs }),
        3 => (0..6usize, any::<bool>(), 0..5usize).prop_map(|(id, approve, role)| Op::Decide { id, approve, role }),
        2 => (0..3usize, 0..6usize, any::<bool>()).prop_map(|(t, b, decide_at_expiry)| Op::RawCheckpoint { t, b, decide_at_expiry }),
        1 => Just(Op::Expire),
        1 => Just(Op::Rebuild),
        1 => Just(Op::Read),
    ]
}

fn raw(p: &mut Platform, tenant: &str, cat: Category, kind: &str, at: i64, data: serde_json::Value) {
    let ev = NewEvent {
        tenant: TenantId::parse(tenant).unwrap_or_else(|e| panic!("{e}")),
        category: cat,
        kind: kind.into(),
        occurred_at: Some(at),
        label: None,
        data,
    };
    p.log_mut().append(&[Pending { event: ev, actor: "importer".into() }]).unwrap_or_else(|e| panic!("{e}"));
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let store = dir.path().join("s.db").display().to_string();
    let (mut p, _) = Platform::init(&store, &dir.path().join("s.key"), "admin").map_err(|e| TestCaseError::fail(e.to_string()))?;
    let admin = Principal { name: "admin".into(), role: Role::Admin, clearance: Clearance::Restricted };
    let mut raw_ids = 0usize;
    for op in ops {
        match op.clone() {
            Op::Cost { t, b, delta, usd, provider } => {
                let c = CostRecorded {
                    run_id: "r".into(),
                    provider: ["openai", "anthropic", "local"][provider].into(),
                    model: "m".into(),
                    tokens_in: 3,
                    tokens_out: 4,
                    usd_micros: usd,
                };
                p.cost_record(&admin, TENANTS[t], c, Some(boundary(b, delta))).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::RawCost { t, b, delta, usd } => {
                let data = json!({"run_id": "r", "provider": "openai", "model": "raw", "tokens_in": 1, "tokens_out": 2, "usd_micros": usd});
                raw(&mut p, TENANTS[t], Category::Costs, "cost_recorded", boundary(b, delta), data);
            }
            Op::Budget { scope, t, daily, monthly } => {
                let scope = [BudgetScope::Tenant, BudgetScope::TenantDefault, BudgetScope::Global][scope];
                let tenant = (scope == BudgetScope::Tenant).then_some(TENANTS[t]);
                let _ = p.budget_set(&admin, scope, tenant, Limits { daily_usd_micros: daily, monthly_usd_micros: monthly });
            }
            Op::Create { t, id, secs } => {
                let n = NewCheckpoint {
                    tenant: TENANTS[t].into(),
                    dag_run_id: "d".into(),
                    prompt: "p".into(),
                    required_role: Role::Operator,
                    expires_in_secs: Some(secs),
                    id: Some(format!("cp{id}")),
                };
                let _ = p.approvals_create(&admin, n);
            }
            Op::Decide { id, approve, role } => {
                let who = Principal { name: format!("actor{role}"), role: Role::ALL[role], clearance: Clearance::Internal };
                let d = if approve { Decide::Approve(BTreeMap::new()) } else { Decide::Reject("no".into()) };
                let _ = p.approvals_decide(&who, &format!("cp{id}"), d);
            }
            Op::RawCheckpoint { t, b, decide_at_expiry } => {
                raw_ids += 1;
                let id = format!("raw{raw_ids}");
                let created = boundary(b, -3_600_000_000);
                let expires = boundary(b, 0);
                let data = json!({"checkpoint_id": id, "dag_run_id": "d", "prompt": "p", "required_role": "Operator", "expires_at_micros": expires});
                raw(&mut p, TENANTS[t], Category::Approvals, "checkpoint_created", created, data);
                if decide_at_expiry {
                    raw(
                        &mut p,
                        TENANTS[t],
                        Category::Approvals,
                        "checkpoint_expired",
                        expires,
                        json!({"checkpoint_id": id, "expires_at_micros": expires}),
                    );
                }
            }
            Op::Expire => {
                p.approvals_expire().map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::Rebuild => {
                let r = p.rebuild_governance(&mut |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(r.drift.is_empty(), "drift mid-sequence: {:?}", r.drift);
            }
            Op::Read => {
                p.budget_show(None).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
    }
    check(&mut p)
}

fn check(p: &mut Platform) -> Result<(), TestCaseError> {
    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
    let mut naive_total = 0i64;
    for t in p.live_tenants().map_err(|e| fail(&e))? {
        // Rebuilt: the whole stream folded from scratch.
        let (mut s, mut c) = (SpendView::default(), CheckpointsView::default());
        let mut naive_day: BTreeMap<String, i64> = BTreeMap::new();
        let mut naive_month: BTreeMap<String, i64> = BTreeMap::new();
        let mut expiries = vec![];
        p.log()
            .read(&Query { tenant: Some(t.clone()), ..Default::default() }, &mut |e| {
                s.apply(&e);
                c.apply(&e);
                if e.header.kind == "cost_recorded" {
                    let usd = e.data.as_ref().and_then(|d| d["usd_micros"].as_i64()).unwrap_or(0);
                    let ts = format_ts(e.header.occurred_at);
                    *naive_day.entry(ts[..10].to_string()).or_default() += usd;
                    *naive_month.entry(ts[..7].to_string()).or_default() += usd;
                }
                if e.header.kind == "checkpoint_created" {
                    if let Some(x) = e.data.as_ref().and_then(|d| d["expires_at_micros"].as_i64()) {
                        expiries.push((e.data.as_ref().and_then(|d| d["checkpoint_id"].as_str()).unwrap_or("").to_string(), x));
                    }
                }
                Ok(true)
            })
            .map_err(|e| fail(&e))?;
        // Incremental: what reads see.
        let inc_s = load_folded::<SpendView>(p.log(), &t).map_err(|e| fail(&e))?.state;
        let inc_c = load_folded::<CheckpointsView>(p.log(), &t).map_err(|e| fail(&e))?.state;
        prop_assert_eq!(&inc_s, &s, "spend of {} drifted", t);
        prop_assert_eq!(&inc_c, &c, "checkpoints of {} drifted", t);
        // Spend by UTC day and month equals the naive recomputation from formatted times.
        let by_day: BTreeMap<String, i64> =
            s.days.iter().map(|(d, x)| (custos_domain::budget::day_string(*d), x.total.usd_micros)).collect();
        prop_assert_eq!(by_day, naive_day.clone());
        for (m, total) in &naive_month {
            let sum: i64 =
                s.days.iter().filter(|(d, _)| custos_domain::budget::month_string(**d) == *m).map(|(_, x)| x.total.usd_micros).sum();
            prop_assert_eq!(sum, *total, "month {}", m);
        }
        naive_total += naive_day.values().sum::<i64>();
        // Expiry instant: pending until one µs before, expired at it.
        for (id, x) in expiries {
            if let Some(cp) = c.checkpoints.get(&id) {
                if cp.status == Status::Pending {
                    prop_assert_eq!(cp.status_at(x - 1), Status::Pending);
                    prop_assert_eq!(cp.status_at(x), Status::Expired);
                }
            }
        }
    }
    let rep = p.cost_report(None, 5000, AnomalyRule::default()).map_err(|e| fail(&e))?;
    prop_assert_eq!(rep.total_usd_micros, naive_total, "report total vs naive");
    for tr in &rep.tenants {
        let prov: i64 = tr.providers.iter().map(|m| m.total_usd_micros).sum();
        prop_assert_eq!(prov, tr.total_usd_micros);
    }
    let r = p.rebuild_governance(&mut |_| {}).map_err(|e| fail(&e))?;
    prop_assert!(r.drift.is_empty(), "drift: {:?}", r.drift);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn incremental_equals_rebuilt(ops in proptest::collection::vec(op(), 1..30)) {
        run(&ops)?;
    }
}

#[test]
fn a_wrong_snapshot_is_reported_as_drift_and_repaired() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("s.db").display().to_string();
    let (mut p, _) = Platform::init(&store, &dir.path().join("s.key"), "admin")?;
    let admin = Principal { name: "admin".into(), role: Role::Admin, clearance: Clearance::Restricted };
    let c = CostRecorded { run_id: "r".into(), provider: "openai".into(), model: "m".into(), tokens_in: 1, tokens_out: 1, usd_micros: 42 };
    p.cost_record(&admin, "acme", c, None)?;
    // Forge a snapshot that claims more spend than the log holds.
    let head = p.log().backend().tenant_heads()?.into_iter().find(|h| h.tenant == "acme").map(|h| h.last_seq).unwrap_or(0);
    let mut bad = load_folded::<SpendView>(p.log(), "acme")?.state;
    if let Some(d) = bad.days.values_mut().next() {
        d.total.usd_micros += 1;
    }
    {
        let mut a = p.log_mut().appender()?;
        custos_projections::snapshot::save_in(&mut a, "acme", "budgets", head, &bad)?;
        a.commit()?;
    }
    let r = p.rebuild_governance(&mut |_| {})?;
    assert_eq!(r.drift, vec!["acme/budgets".to_string()]);
    assert_eq!(p.rebuild_governance(&mut |_| {})?.drift, Vec::<String>::new());
    assert_eq!(p.budget_show(Some("acme"))?.tenants[0].today_usd_micros, 42);
    Ok(())
}
