//! The append-only, hash-chained, encrypted event log of custos.
//!
//! It owns the record format (clear header, AES-256-GCM body, salted commitment,
//! entry hash, tenant and global chains), the storage-backend trait and its SQLite
//! and PostgreSQL
//! implementations, batched appends, stream reads, purge of ciphertext, signed
//! checkpoints and `verify`. Every SQL statement of custos lives in this crate.
//!
//! It never applies business rules: who may append, what a hold blocks and which
//! bodies retention purges are decided above it. Start from [`EventLog`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
mod error;
mod event;
pub mod keyring;
mod log;
pub mod postgres;
pub mod rawbench;
pub mod record;
mod rotation;
pub mod sqlite;
mod verify;

pub use backend::{ArtifactChunk, ArtifactRow, Backend, Checkpointer, Head, Query, StoredRecord, Tx};
pub use error::LogError;
pub use event::{Event, RawEvent};
pub use log::max_seals_from_env;
pub use log::{
    checkpoint_message, cleared, prepare, Appender, EventLog, Pending, Prepared, Receipt, SignedCheckpoint, VerifyOptions, VerifyReport,
    DEFAULT_MAX_SEALS,
};
pub use rotation::{ReencryptBatch, RootRewrap};
pub use verify::PURGE_KINDS;
