//! Read models of custos, folded from the event log: actors, the keyring view,
//! and (as capabilities land) budgets, checkpoints, labels, holds, freezes and policies.
//!
//! A projection is a pure fold — `apply` takes an event and cannot fail — so
//! incremental state always equals state rebuilt from the log. Per-tenant state
//! is persisted as a snapshot sealed with that tenant's DEK ([`snapshot`]), so
//! crypto-shredding a tenant makes its snapshot unreadable with no extra step.
//! This crate never decides what may be appended.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod actors;
pub mod budgets;
pub mod checkpoints;
pub mod freezes;
pub mod holds;
mod keyring;
pub mod lifecycle;
pub mod retention;
pub mod snapshot;

pub use actors::{ActorState, ActorsView};
pub use freezes::{FreezeState, FreezesView};
pub use holds::{HoldState, HoldsView};
pub use keyring::{KekState, KeyringView};
pub use lifecycle::LifecyclePolicies;
pub use retention::{PolicyState, RetentionPolicies};

/// A read model folded from events.
pub trait Projection {
    /// Folds one event. Must not fail: unknown kinds and undecryptable bodies are ignored.
    fn apply(&mut self, ev: &custos_eventlog::Event);
}
