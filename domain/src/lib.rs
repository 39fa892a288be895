//! The vocabulary of custos: tenant ids, event categories and kinds with their
//! typed payloads, roles and clearances, money (integer micro-USD) and time.
//!
//! This crate owns validation of what an event *is*; it is pure and never does
//! I/O, cryptography or SQL. Start from [`NewEvent`], which is what every
//! append path (CLI ingest, commands, the server) builds and validates.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alerts;
pub mod budget;
mod category;
pub mod checkpoint;
mod error;
mod event;
pub mod freeze;
pub mod kinds;
mod money;
mod role;
mod tenant;
mod tier;
mod time;

pub use category::Category;
pub use error::DomainError;
pub use event::{parse_event_line, NewEvent};
pub use money::UsdMicros;
pub use role::{Clearance, Role};
pub use tenant::{TenantId, SYSTEM_TENANT};
pub use tier::Tier;
pub use time::{format_ts, now_micros, parse_duration_secs, parse_ts, Timestamp, MAX_FUTURE_SKEW_MICROS};
