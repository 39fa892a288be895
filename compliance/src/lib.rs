//! Compliance rules of custos: legal holds, tenant deletion by crypto-shredding,
//! classification and clearance policy, PII/secret redaction, export bundles and
//! their offline verification.
//!
//! It decides *what* may be exported, deleted or redacted; it never schedules
//! retention and never talks SQL (storage goes through `custos-eventlog`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod artifact;
pub mod bundle;
pub mod classify;
pub mod deletion;
mod error;
pub mod holds;
pub mod redact;

pub use error::ComplianceError;
