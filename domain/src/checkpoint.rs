//! Approval checkpoints: payloads, the lifecycle state machine and its pure
//! decision functions (`decide(state, command) -> events | error`).
//!
//! Lifecycle: `pending → approved | rejected | expired`, each terminal, never twice.
//! A checkpoint expires **at** its expiry instant: it may be decided while
//! `now < expires_at`; from `expires_at` on, reads show it as expired even before
//! `approvals expire` records `checkpoint_expired`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{format_ts, Role, Timestamp};

/// Default expiry when neither `--expires-in` nor a recorded default is given: 72 h.
pub const DEFAULT_EXPIRY_SECS: i64 = 72 * 3600;

/// `checkpoint_created` (tenant stream, category approvals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCreated {
    /// Unique id (across tenants).
    pub checkpoint_id: String,
    /// The paused DAG run.
    pub dag_run_id: String,
    /// What the approver is asked.
    pub prompt: String,
    /// Minimum role of whoever decides.
    pub required_role: Role,
    /// Expiry instant, µs UTC.
    pub expires_at_micros: Timestamp,
}

/// `checkpoint_approved` (tenant stream, category approvals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointApproved {
    /// Which checkpoint.
    pub checkpoint_id: String,
    /// Role of the approver at decision time.
    pub actor_role: Role,
    /// Key/value inputs given with the approval.
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
}

/// `checkpoint_rejected` (tenant stream, category approvals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRejected {
    /// Which checkpoint.
    pub checkpoint_id: String,
    /// Role of the rejecter at decision time.
    pub actor_role: Role,
    /// Why.
    pub reason: String,
}

/// `checkpoint_expired` (tenant stream, category approvals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointExpired {
    /// Which checkpoint.
    pub checkpoint_id: String,
    /// The expiry instant it passed.
    pub expires_at_micros: Timestamp,
}

/// `approvals_config_set` (`_system`): the default expiry of new checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalsConfigSet {
    /// Default expiry, seconds.
    pub default_expiry_secs: i64,
}

/// Where a checkpoint is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a decision.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Expired before anyone decided.
    Expired,
}

impl Status {
    /// Name in flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
        }
    }
    /// Parses a `--status` value.
    pub fn parse(s: &str) -> Option<Self> {
        [Status::Pending, Status::Approved, Status::Rejected, Status::Expired].into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

/// A checkpoint as folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Id.
    pub checkpoint_id: String,
    /// Tenant.
    pub tenant: String,
    /// DAG run.
    pub dag_run_id: String,
    /// Prompt.
    pub prompt: String,
    /// Minimum role to decide.
    pub required_role: Role,
    /// Created (occurred_at of `checkpoint_created`).
    pub created_at: Timestamp,
    /// Creator.
    pub created_by: String,
    /// Expiry instant.
    pub expires_at: Timestamp,
    /// Recorded status (see [`Checkpoint::status_at`] for the effective one).
    pub status: Status,
    /// Decision or expiry time.
    #[serde(default)]
    pub decided_at: Option<Timestamp>,
    /// Who decided.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Their role then.
    #[serde(default)]
    pub decided_role: Option<Role>,
    /// Rejection reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Approval inputs.
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Effective status at `now`: a pending checkpoint at or past its expiry is expired.
    pub fn status_at(&self, now: Timestamp) -> Status {
        if self.status == Status::Pending && now >= self.expires_at {
            Status::Expired
        } else {
            self.status
        }
    }
}

/// Why a checkpoint command is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// Unknown id.
    #[error("no checkpoint {0:?}; list them with `custos approvals list`")]
    NotFound(String),
    /// The id is taken.
    #[error("checkpoint id {0:?} already exists; choose another --id or omit it")]
    Duplicate(String),
    /// Role below the checkpoint's required role.
    #[error("{actor} has role {have}; checkpoint {id} needs {need} or higher to decide")]
    RoleTooLow {
        /// Checkpoint.
        id: String,
        /// Actor.
        actor: String,
        /// Their role.
        have: Role,
        /// Required.
        need: Role,
    },
    /// Already approved / rejected / expired (the conflict a racing second decider sees).
    #[error("conflict: checkpoint {id} is already {status}{by}; a checkpoint is decided once")]
    AlreadyDecided {
        /// Checkpoint.
        id: String,
        /// Its status.
        status: &'static str,
        /// " by NAME at TIME" when known.
        by: String,
    },
    /// Past its expiry.
    #[error("checkpoint {id} expired at {at}; it can no longer be decided (re-run the DAG to create a new checkpoint)")]
    Expired {
        /// Checkpoint.
        id: String,
        /// Expiry, RFC 3339.
        at: String,
    },
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
}

/// Commands on one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Approve.
    Approve {
        /// Actor name.
        actor: String,
        /// Actor role.
        role: Role,
        /// Inputs.
        kv: BTreeMap<String, String>,
        /// Decision time.
        now: Timestamp,
    },
    /// Reject.
    Reject {
        /// Actor name.
        actor: String,
        /// Actor role.
        role: Role,
        /// Reason (non-empty).
        reason: String,
        /// Decision time.
        now: Timestamp,
    },
    /// Record expiry if due (idempotent: no event when not due or already terminal).
    Expire {
        /// Cron time.
        now: Timestamp,
    },
}

/// An event a decision produces: kind and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointEvent {
    /// `checkpoint_created`.
    Created(CheckpointCreated),
    /// `checkpoint_approved`.
    Approved(CheckpointApproved),
    /// `checkpoint_rejected`.
    Rejected(CheckpointRejected),
    /// `checkpoint_expired`.
    Expired(CheckpointExpired),
}

impl CheckpointEvent {
    /// Event kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckpointEvent::Created(_) => "checkpoint_created",
            CheckpointEvent::Approved(_) => "checkpoint_approved",
            CheckpointEvent::Rejected(_) => "checkpoint_rejected",
            CheckpointEvent::Expired(_) => "checkpoint_expired",
        }
    }
    /// Payload as JSON.
    pub fn data(&self) -> serde_json::Value {
        let r = match self {
            CheckpointEvent::Created(x) => serde_json::to_value(x),
            CheckpointEvent::Approved(x) => serde_json::to_value(x),
            CheckpointEvent::Rejected(x) => serde_json::to_value(x),
            CheckpointEvent::Expired(x) => serde_json::to_value(x),
        };
        r.unwrap_or(serde_json::Value::Null)
    }
}

/// Decides a create: the id must be new (ids are unique across tenants), the expiry after `now`.
pub fn decide_create(id_taken: bool, c: CheckpointCreated, now: Timestamp) -> Result<Vec<CheckpointEvent>, CheckpointError> {
    if id_taken {
        return Err(CheckpointError::Duplicate(c.checkpoint_id));
    }
    if c.checkpoint_id.is_empty() || c.checkpoint_id.len() > 128 || c.checkpoint_id.chars().any(|ch| ch.is_control() || ch.is_whitespace())
    {
        return Err(CheckpointError::Invalid(format!("invalid checkpoint id {:?}: 1-128 characters, no spaces", c.checkpoint_id)));
    }
    if c.dag_run_id.trim().is_empty() {
        return Err(CheckpointError::Invalid("--dag-run must not be empty".into()));
    }
    if c.expires_at_micros <= now {
        return Err(CheckpointError::Invalid("the expiry must be in the future (--expires-in > 0)".into()));
    }
    Ok(vec![CheckpointEvent::Created(c)])
}

/// Decides approve / reject / expire on the state of one checkpoint.
pub fn decide(cp: Option<&Checkpoint>, id: &str, cmd: Command) -> Result<Vec<CheckpointEvent>, CheckpointError> {
    let Some(cp) = cp else { return Err(CheckpointError::NotFound(id.to_string())) };
    let id = cp.checkpoint_id.clone();
    let terminal = |cp: &Checkpoint| CheckpointError::AlreadyDecided {
        id: cp.checkpoint_id.clone(),
        status: cp.status.as_str(),
        by: match (&cp.decided_by, cp.decided_at) {
            (Some(b), Some(t)) => format!(" by {b} at {}", format_ts(t)),
            (None, Some(t)) => format!(" since {}", format_ts(t)),
            _ => String::new(),
        },
    };
    match cmd {
        Command::Expire { now } => {
            if cp.status == Status::Pending && now >= cp.expires_at {
                Ok(vec![CheckpointEvent::Expired(CheckpointExpired { checkpoint_id: id, expires_at_micros: cp.expires_at })])
            } else {
                Ok(vec![])
            }
        }
        Command::Approve { actor, role, kv, now } => {
            check_decidable(cp, &actor, role, now, terminal)?;
            Ok(vec![CheckpointEvent::Approved(CheckpointApproved { checkpoint_id: id, actor_role: role, kv })])
        }
        Command::Reject { actor, role, reason, now } => {
            if reason.trim().is_empty() {
                return Err(CheckpointError::Invalid("--reason must not be empty: say why it is rejected".into()));
            }
            check_decidable(cp, &actor, role, now, terminal)?;
            Ok(vec![CheckpointEvent::Rejected(CheckpointRejected { checkpoint_id: id, actor_role: role, reason })])
        }
    }
}

fn check_decidable(
    cp: &Checkpoint,
    actor: &str,
    role: Role,
    now: Timestamp,
    terminal: impl Fn(&Checkpoint) -> CheckpointError,
) -> Result<(), CheckpointError> {
    if role < cp.required_role {
        return Err(CheckpointError::RoleTooLow {
            id: cp.checkpoint_id.clone(),
            actor: actor.to_string(),
            have: role,
            need: cp.required_role,
        });
    }
    if cp.status != Status::Pending {
        return Err(terminal(cp));
    }
    if now >= cp.expires_at {
        return Err(CheckpointError::Expired { id: cp.checkpoint_id.clone(), at: format_ts(cp.expires_at) });
    }
    Ok(())
}

/// Folds one checkpoint event into a map of checkpoints. Pure and total: events that do
/// not apply (unknown id, already terminal) change nothing, so a fold never fails.
pub fn apply(
    map: &mut BTreeMap<String, Checkpoint>,
    tenant: &str,
    kind: &str,
    occurred_at: Timestamp,
    actor: Option<&str>,
    data: &serde_json::Value,
) {
    match kind {
        "checkpoint_created" => {
            let Ok(c) = CheckpointCreated::deserialize(data) else { return };
            map.entry(c.checkpoint_id.clone()).or_insert(Checkpoint {
                checkpoint_id: c.checkpoint_id,
                tenant: tenant.to_string(),
                dag_run_id: c.dag_run_id,
                prompt: c.prompt,
                required_role: c.required_role,
                created_at: occurred_at,
                created_by: actor.unwrap_or_default().to_string(),
                expires_at: c.expires_at_micros,
                status: Status::Pending,
                decided_at: None,
                decided_by: None,
                decided_role: None,
                reason: None,
                kv: BTreeMap::new(),
            });
        }
        "checkpoint_approved" | "checkpoint_rejected" | "checkpoint_expired" => {
            let Some(id) = data.get("checkpoint_id").and_then(|v| v.as_str()) else { return };
            let Some(cp) = map.get_mut(id) else { return };
            if cp.status != Status::Pending {
                return;
            }
            cp.decided_at = Some(occurred_at);
            match kind {
                "checkpoint_approved" => {
                    let Ok(a) = CheckpointApproved::deserialize(data) else { return };
                    cp.status = Status::Approved;
                    cp.decided_by = actor.map(str::to_string);
                    cp.decided_role = Some(a.actor_role);
                    cp.kv = a.kv;
                }
                "checkpoint_rejected" => {
                    let Ok(r) = CheckpointRejected::deserialize(data) else { return };
                    cp.status = Status::Rejected;
                    cp.decided_by = actor.map(str::to_string);
                    cp.decided_role = Some(r.actor_role);
                    cp.reason = Some(r.reason);
                }
                _ => cp.status = Status::Expired,
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = 1_700_000_000_000_000;
    const H: Timestamp = 3_600_000_000;

    fn created() -> CheckpointCreated {
        CheckpointCreated {
            checkpoint_id: "cp1".into(),
            dag_run_id: "run-1".into(),
            prompt: "Ship it?".into(),
            required_role: Role::Operator,
            expires_at_micros: T0 + 72 * H,
        }
    }

    fn given(events: &[(CheckpointEvent, Timestamp, &str)]) -> BTreeMap<String, Checkpoint> {
        let mut m = BTreeMap::new();
        for (e, t, a) in events {
            apply(&mut m, "acme", e.kind(), *t, Some(a), &e.data());
        }
        m
    }

    fn approve(role: Role, now: Timestamp) -> Command {
        Command::Approve { actor: "op".into(), role, kv: BTreeMap::new(), now }
    }

    #[test]
    fn given_nothing_when_create_then_created_pending() {
        let ev = decide_create(false, created(), T0).unwrap_or_default();
        let m = given(&[(ev[0].clone(), T0, "op")]);
        assert_eq!(m["cp1"].status, Status::Pending);
        assert_eq!(m["cp1"].status_at(T0 + 72 * H - 1), Status::Pending);
    }

    #[test]
    fn given_existing_when_create_same_id_then_duplicate() {
        let m = given(&[(CheckpointEvent::Created(created()), T0, "op")]);
        assert!(matches!(decide_create(m.contains_key("cp1"), created(), T0), Err(CheckpointError::Duplicate(_))));
        let mut past = created();
        past.expires_at_micros = T0;
        assert!(matches!(decide_create(false, past, T0), Err(CheckpointError::Invalid(_))));
    }

    #[test]
    fn given_pending_when_approved_by_enough_role_then_approved_event() {
        let m = given(&[(CheckpointEvent::Created(created()), T0, "op")]);
        let ev = decide(m.get("cp1"), "cp1", approve(Role::Operator, T0 + H)).unwrap_or_default();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind(), "checkpoint_approved");
        let m2 = given(&[(CheckpointEvent::Created(created()), T0, "op"), (ev[0].clone(), T0 + H, "op")]);
        assert_eq!(m2["cp1"].status, Status::Approved);
        assert_eq!(m2["cp1"].decided_by.as_deref(), Some("op"));
    }

    #[test]
    fn given_pending_when_role_too_low_then_refused() {
        let m = given(&[(CheckpointEvent::Created(created()), T0, "op")]);
        assert!(matches!(decide(m.get("cp1"), "cp1", approve(Role::Viewer, T0)), Err(CheckpointError::RoleTooLow { .. })));
    }

    #[test]
    fn given_pending_when_decided_at_expiry_instant_then_expired() {
        let m = given(&[(CheckpointEvent::Created(created()), T0, "op")]);
        let exp = T0 + 72 * H;
        assert!(decide(m.get("cp1"), "cp1", approve(Role::Admin, exp - 1)).is_ok());
        assert!(matches!(decide(m.get("cp1"), "cp1", approve(Role::Admin, exp)), Err(CheckpointError::Expired { .. })));
        assert_eq!(m["cp1"].status_at(exp), Status::Expired);
    }

    #[test]
    fn given_decided_when_decided_again_then_conflict() {
        let m = given(&[
            (CheckpointEvent::Created(created()), T0, "op"),
            (
                CheckpointEvent::Approved(CheckpointApproved {
                    checkpoint_id: "cp1".into(),
                    actor_role: Role::Operator,
                    kv: BTreeMap::new(),
                }),
                T0 + H,
                "alice",
            ),
        ]);
        let r =
            decide(m.get("cp1"), "cp1", Command::Reject { actor: "bob".into(), role: Role::Admin, reason: "no".into(), now: T0 + 2 * H });
        match r {
            Err(e @ CheckpointError::AlreadyDecided { .. }) => assert!(e.to_string().contains("already approved by alice")),
            other => panic!("{other:?}"),
        }
        // A late second approval event in the log changes nothing (never twice).
        let m2 = given(&[
            (CheckpointEvent::Created(created()), T0, "op"),
            (
                CheckpointEvent::Approved(CheckpointApproved {
                    checkpoint_id: "cp1".into(),
                    actor_role: Role::Operator,
                    kv: BTreeMap::new(),
                }),
                T0 + H,
                "alice",
            ),
            (
                CheckpointEvent::Rejected(CheckpointRejected { checkpoint_id: "cp1".into(), actor_role: Role::Admin, reason: "x".into() }),
                T0 + 2 * H,
                "bob",
            ),
        ]);
        assert_eq!(m2["cp1"].status, Status::Approved);
    }

    #[test]
    fn given_pending_when_expire_before_and_at_instant_then_only_at_instant() {
        let m = given(&[(CheckpointEvent::Created(created()), T0, "op")]);
        let exp = T0 + 72 * H;
        assert!(decide(m.get("cp1"), "cp1", Command::Expire { now: exp - 1 }).unwrap_or_default().is_empty());
        let ev = decide(m.get("cp1"), "cp1", Command::Expire { now: exp }).unwrap_or_default();
        assert_eq!(ev.len(), 1);
        let m2 = given(&[(CheckpointEvent::Created(created()), T0, "op"), (ev[0].clone(), exp, "custos")]);
        assert_eq!(m2["cp1"].status, Status::Expired);
        // Idempotent: expiring an expired checkpoint produces nothing.
        assert!(decide(m2.get("cp1"), "cp1", Command::Expire { now: exp + H }).unwrap_or_default().is_empty());
    }

    #[test]
    fn given_unknown_or_empty_reason_then_errors() {
        assert!(matches!(decide(None, "nope", approve(Role::Admin, T0)), Err(CheckpointError::NotFound(_))));
        let m = given(&[(CheckpointEvent::Created(created()), T0, "op")]);
        let r = decide(m.get("cp1"), "cp1", Command::Reject { actor: "a".into(), role: Role::Admin, reason: " ".into(), now: T0 });
        assert!(matches!(r, Err(CheckpointError::Invalid(_))));
    }
}
