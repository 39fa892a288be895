//! Legal holds: the rules for applying and releasing them, and their events.
//!
//! A hold blocks deletion of its tenant and retention purge of the tenant's bodies.
//! Several holds may be active per tenant (one per case); each has an id that is
//! unique among active holds. Holds are `_system` events, folded by
//! [`custos_projections::HoldsView`].

use custos_crypto::random_bytes;
use custos_domain::{Category, NewEvent, TenantId, Timestamp};
use custos_eventlog::{Appender, EventLog, Pending};
pub use custos_projections::holds::{HoldApplied, HoldReleased};
use custos_projections::{HoldState, HoldsView};

use crate::ComplianceError;

/// Longest reason accepted (a case reference and a sentence, not a document).
pub const MAX_REASON: usize = 1000;

/// What `release` releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseTarget {
    /// One hold by id.
    One(String),
    /// Every active hold of the tenant.
    All,
}

/// Checks a hold id: 1-64 characters of letters, digits, '.', '_', '-', ':'.
pub fn validate_hold_id(id: &str) -> Result<(), ComplianceError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ComplianceError::Input(format!(
            "invalid hold id {id:?}: use 1-64 letters, digits, '.', '_', '-' or ':' starting with a letter or digit (e.g. CASE-2025-17)"
        )))
    }
}

/// A fresh `hold-<8 hex>` id.
pub fn new_hold_id() -> Result<String, ComplianceError> {
    let mut b = [0u8; 4];
    random_bytes(&mut b).map_err(|e| ComplianceError::Log(e.into()))?;
    Ok(format!("hold-{}", hex::encode(b)))
}

/// What applying a hold comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyPlan {
    /// A new hold: record this `hold_applied`.
    New(HoldApplied),
    /// The very same hold (id, tenant, reason) is already active. Applying it again must
    /// be a no-op so that scripts and cron jobs can re-run a hold command safely; the
    /// caller answers with this existing hold and records nothing.
    AlreadyActive(HoldState),
}

/// Validates an apply against the active holds; returns the event payload to record,
/// or the active hold an identical earlier apply created.
pub fn plan_apply(
    view: &HoldsView,
    tenant: &TenantId,
    reason: &str,
    id: Option<&str>,
    review_by: Option<Timestamp>,
) -> Result<ApplyPlan, ComplianceError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ComplianceError::Input("--reason must not be empty: name the matter or case the hold is for".into()));
    }
    if reason.len() > MAX_REASON {
        return Err(ComplianceError::Input(format!("--reason is {} bytes; keep it under {MAX_REASON} (reference the case)", reason.len())));
    }
    let hold_id = match id {
        Some(i) => {
            validate_hold_id(i)?;
            i.to_string()
        }
        None => loop {
            let i = new_hold_id()?;
            if !view.active.contains_key(&i) {
                break i;
            }
        },
    };
    if let Some(h) = view.active.get(&hold_id) {
        // Only an exact repeat is idempotent: the same id naming another tenant or matter
        // is most likely a typo or a clash of case ids, and silently answering the old
        // hold would hide that the requested hold was never applied.
        if h.tenant != tenant.as_str() || h.reason != reason {
            return Err(ComplianceError::Input(format!(
                "hold {hold_id} is already active on tenant {} with reason {:?}; choose another --id or release it first",
                h.tenant, h.reason
            )));
        }
        if review_by.is_some() && review_by != h.review_by {
            return Err(ComplianceError::Input(format!(
                "hold {hold_id} is already active with a different review date; release it and apply it again to change the date"
            )));
        }
        return Ok(ApplyPlan::AlreadyActive(h.clone()));
    }
    Ok(ApplyPlan::New(HoldApplied { hold_id, tenant: tenant.to_string(), reason: reason.to_string(), review_by_micros: review_by }))
}

/// Validates a release against the active holds; returns the event payload.
pub fn plan_release(view: &HoldsView, tenant: &TenantId, target: &ReleaseTarget) -> Result<HoldReleased, ComplianceError> {
    let active = view.of_tenant(tenant.as_str());
    let hold_ids: Vec<String> = match target {
        ReleaseTarget::All => active.iter().map(|h| h.hold_id.clone()).collect(),
        ReleaseTarget::One(id) => {
            if active.iter().any(|h| &h.hold_id == id) {
                vec![id.clone()]
            } else {
                vec![]
            }
        }
    };
    if hold_ids.is_empty() {
        let what = match target {
            ReleaseTarget::All => "no active holds".to_string(),
            ReleaseTarget::One(id) => format!("no active hold {id}"),
        };
        return Err(ComplianceError::NotFound(format!("tenant {tenant} has {what}; see `custos compliance holds --tenant {tenant}`")));
    }
    Ok(HoldReleased { tenant: tenant.to_string(), hold_ids })
}

/// A governance event for `_system`.
pub fn system_event(kind: &str, data: serde_json::Value, occurred_at: Option<i64>) -> NewEvent {
    NewEvent { tenant: TenantId::system(), category: Category::Governance, kind: kind.into(), occurred_at, label: None, data }
}

/// Fails with [`ComplianceError::Conflict`] unless `_system` still ends at `expected`
/// (the tenant_seq the caller's holds/policies view was folded up to). Called inside
/// the write transaction, so a decision taken on that view cannot race another process.
pub fn guard_system(a: &mut Appender<'_>, expected: u64) -> Result<(), ComplianceError> {
    let now = a.tx().tenant_head(custos_domain::SYSTEM_TENANT)?.map(|h| h.last_seq).unwrap_or(0);
    if now != expected {
        return Err(ComplianceError::Conflict(format!("_system moved from {expected} to {now}")));
    }
    Ok(())
}

/// Appends one `_system` event, guarded by [`guard_system`]; returns its global seq.
pub fn append_guarded(
    log: &mut EventLog,
    expected_system_seq: u64,
    kind: &str,
    data: serde_json::Value,
    occurred_at: i64,
    actor: &str,
) -> Result<u64, ComplianceError> {
    let mut a = log.appender()?;
    guard_system(&mut a, expected_system_seq)?;
    let seqs = a.push(&[Pending { event: system_event(kind, data, Some(occurred_at)), actor: actor.into() }])?;
    a.commit()?;
    Ok(seqs.first().copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(holds: &[(&str, &str)]) -> HoldsView {
        let mut v = HoldsView::default();
        for (i, (id, t)) in holds.iter().enumerate() {
            v.active.insert(
                id.to_string(),
                HoldState {
                    hold_id: id.to_string(),
                    tenant: t.to_string(),
                    reason: "r".into(),
                    applied_by: "a".into(),
                    applied_at: 0,
                    applied_seq: i as u64,
                    review_by: None,
                },
            );
        }
        v
    }

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap_or_else(|_| TenantId::system())
    }

    #[test]
    fn apply_rules() {
        let v = view(&[("CASE-1", "acme")]);
        // The same id, tenant and reason again is the same hold: answered, not re-applied.
        assert!(
            matches!(plan_apply(&v, &t("acme"), " r ", Some("CASE-1"), None), Ok(ApplyPlan::AlreadyActive(h)) if h.hold_id == "CASE-1")
        );
        assert!(matches!(plan_apply(&v, &t("acme"), "r", Some("CASE-1"), Some(5)), Err(ComplianceError::Input(_))));
        assert!(matches!(plan_apply(&v, &t("acme"), "x", Some("CASE-1"), None), Err(ComplianceError::Input(_))));
        assert!(matches!(plan_apply(&v, &t("globex"), "r", Some("CASE-1"), None), Err(ComplianceError::Input(_))));
        assert!(matches!(plan_apply(&v, &t("acme"), "  ", None, None), Err(ComplianceError::Input(_))));
        assert!(matches!(plan_apply(&v, &t("acme"), "x", Some("bad id"), None), Err(ComplianceError::Input(_))));
        let p = match plan_apply(&v, &t("acme"), "matter 7", None, None) {
            Ok(ApplyPlan::New(p)) => p,
            other => panic!("{other:?}"),
        };
        assert!(p.hold_id.starts_with("hold-") && p.hold_id.len() == 13, "{}", p.hold_id);
        assert!(
            matches!(plan_apply(&v, &t("acme"), "second case", Some("CASE-2"), None), Ok(ApplyPlan::New(_))),
            "several holds per tenant"
        );
    }

    #[test]
    fn release_rules() {
        let v = view(&[("CASE-1", "acme"), ("CASE-2", "acme"), ("CASE-3", "globex")]);
        let all = plan_release(&v, &t("acme"), &ReleaseTarget::All).map(|r| r.hold_ids).unwrap_or_default();
        assert_eq!(all, vec!["CASE-1".to_string(), "CASE-2".to_string()]);
        assert!(matches!(plan_release(&v, &t("acme"), &ReleaseTarget::One("CASE-3".into())), Err(ComplianceError::NotFound(_))));
        assert!(matches!(plan_release(&v, &t("initech"), &ReleaseTarget::All), Err(ComplianceError::NotFound(_))));
        assert!(plan_release(&v, &t("globex"), &ReleaseTarget::One("CASE-3".into())).is_ok());
    }
}
