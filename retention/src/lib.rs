//! Retention of custos: per-category policies (built-in defaults, store-wide and
//! per-tenant overrides recorded as `retention_policy_set` events) and their
//! enforcement.
//!
//! A run purges the bodies whose `occurred_at` is older than `as_of − window`,
//! never those of a tenant under legal hold (reported as held, with the count it
//! would have purged), and records `retention_enforced` — with the cutoffs it used,
//! so `verify` can check that every purged body is covered — in the same
//! transaction as the purge. Headers and commitments stay: the log still verifies.
//! `_system` is never purged: its governance events (holds, deletions, key
//! rotations, retention runs themselves) are the proof of what happened to
//! everything else.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod enforce;
mod error;
pub mod lifecycle;
mod policy;

pub use enforce::{enforce, RetentionReport, MICROS_PER_DAY};
pub use error::RetentionError;
pub use lifecycle::{LifecycleItem, LifecycleReport, Windows, DEFAULT_WINDOWS};
pub use policy::{default_days, effective_days, list, plan_set, validate_days, PolicyRow, DEFAULT_DAYS, MAX_DAYS};
