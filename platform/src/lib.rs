//! The application service of custos: it opens a store with its root key,
//! resolves principals, enforces minimum roles (recording denials), and exposes
//! each user-facing operation as one method that returns a serializable result.
//!
//! The CLI and the HTTP server are thin faces over [`Platform`]; the rules
//! themselves live in `custos-domain`, `custos-compliance` and the projections.
//! It never prints and never exits: results and typed errors go back to the caller.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod actors;
mod alerts;
mod approvals;
mod artifacts;
mod auth;
mod backup;
mod budgets;
mod defaults;
mod error;
mod export;
mod freeze;
pub mod governance;
mod holds;
mod ingest;
mod key_lifecycle;
mod keys;
mod lifecycle;
mod listings;
mod read;
mod retention;
pub mod sample;
mod status;

use std::path::{Path, PathBuf};

use custos_crypto::RootKey;
use custos_domain::{Category, NewEvent, TenantId};
use custos_eventlog::{EventLog, Pending};
use serde::Serialize;
use serde_json::Value;

pub use actors::{ActorInfo, NewActor};
pub use alerts::{AlertOptions, AlertReport, ThresholdRow};
pub use approvals::{ApprovalsReport, CheckpointInfo, Decide, DecisionRow, NewCheckpoint};
pub use artifacts::ArtifactInfo;
pub use auth::{required_role, Principal, SYSTEM_ACTOR};
pub use backup::{restore, BackupInfo, RestoreInfo, BACKUP_MAGIC};
pub use budgets::{tenant_report, BudgetShow, CostRecordResult, CostReport, TenantBudget, TenantReport};
pub use defaults::Defaults;
pub use error::PlatformError;
pub use export::{verify_bundle_path, ExportOptions, ExportResult};
pub use freeze::{FreezeResult, UnfreezeResult};
pub use holds::{ComplianceViews, HoldInfo, ReleaseInfo};
pub use ingest::{IngestOptions, IngestReport};
pub use key_lifecycle::{
    KeyPolicy, KeyStatus, LifecycleOpts, ReencryptResult, RetireResult, RewrapResult, RootRotation, DEFAULT_ROTATION_DAYS,
};
pub use keys::KekInfo;
pub use lifecycle::{LifecycleSummary, TierCount, TierCounts};
pub use listings::{parse_checkpoint_status, parse_usd, CheckpointList, ExpiredList, HoldList, PolicyList};
pub use read::{parse_expect, EventFilter};
pub use status::{ApprovalsSummary, CheckpointSummary, HoldsSummary, LastRun, StatusReport, StoreSummary};

/// What `custos init` prints. The token is shown once and never stored.
#[derive(Debug, Serialize)]
pub struct InitResult {
    /// Store location.
    pub store: String,
    /// Root key file.
    pub root_key_file: String,
    /// The first Admin.
    pub admin: NewActor,
}

/// An open, unlocked store.
pub struct Platform {
    log: EventLog,
    location: String,
    defaults: Defaults,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Platform({})", self.location)
    }
}

impl Platform {
    /// Creates a store, its root key file (mode 0600), first KEK, signing key and
    /// the first Admin actor. Refuses to overwrite an existing store or key file.
    pub fn init(store: &str, root_key_file: &Path, admin_name: &str) -> Result<(Self, InitResult), PlatformError> {
        // Backend-aware: a file for SQLite, the custos tables for PostgreSQL. The backend's
        // create refuses again under its own lock; this early check only keeps a key file
        // from being written for a store that cannot be made.
        if EventLog::exists(store)? {
            return Err(PlatformError::Input(format!(
                "a custos store already exists at {}; refusing to overwrite it",
                custos_eventlog::postgres::redact(store)
            )));
        }
        if root_key_file.exists() {
            return Err(PlatformError::Input(format!(
                "root key file {} already exists; refusing to overwrite a key (choose another --root-key-file)",
                root_key_file.display()
            )));
        }
        let root = RootKey::create(root_key_file)?;
        let log = match EventLog::create(store, &root) {
            Ok(l) => l,
            Err(e) => {
                // Nothing half-made: a key file without its store is removed again.
                let _ = std::fs::remove_file(root_key_file);
                return Err(e.into());
            }
        };
        let mut p = Self { log, location: store.to_string(), defaults: Defaults::default() };
        let kek = p.log.backend().keks()?.into_iter().next().map(|k| k.key_id).unwrap_or_default();
        p.append_system("log_initialized", serde_json::json!({"key_id": kek, "alg": "AES256-GCM"}), SYSTEM_ACTOR)?;
        let admin = p.create_actor(admin_name, custos_domain::Role::Admin, custos_domain::Clearance::Restricted, SYSTEM_ACTOR)?;
        let res = InitResult { store: custos_eventlog::postgres::redact(store), root_key_file: root_key_file.display().to_string(), admin };
        Ok((p, res))
    }

    /// Opens an existing store and unlocks it with the root key file.
    pub fn open(store: &str, root_key_file: &Path) -> Result<Self, PlatformError> {
        let mut log = EventLog::open(store)?;
        let root = RootKey::load(root_key_file).map_err(|e| PlatformError::Input(e.to_string()))?;
        log.unlock(&root)?;
        Ok(Self { log, location: store.to_string(), defaults: Defaults::default() })
    }

    /// Opens a store without its root key: enough to authenticate and to verify
    /// chains and signatures (`verify --no-keys`), nothing that decrypts or appends.
    /// Denials cannot be recorded in this mode (recording needs the `_system` key).
    pub fn open_locked(store: &str) -> Result<Self, PlatformError> {
        Ok(Self { log: EventLog::open(store)?, location: store.to_string(), defaults: Defaults::default() })
    }

    /// Replaces the built-in defaults (from a config file) for settings the log has not
    /// recorded. A recorded setting always wins: the log is the shared truth, a config
    /// file is one operator's machine.
    pub fn with_defaults(mut self, defaults: Defaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// The defaults in force where the log records nothing.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The store location.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The underlying log (reads, verify, key operations in other crates).
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Mutable log access for operations implemented in other crates.
    pub fn log_mut(&mut self) -> &mut EventLog {
        &mut self.log
    }

    /// Appends one governance event to `_system` on behalf of `actor`.
    pub fn append_system(&mut self, kind: &str, data: Value, actor: &str) -> Result<u64, PlatformError> {
        let ev = NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: kind.into(),
            occurred_at: None,
            label: None,
            data,
        };
        Ok(self.log.append(&[Pending { event: ev, actor: actor.into() }])?.last_seq)
    }
}

/// Default root key file for a store: `<store>.key` beside an SQLite file; for a
/// PostgreSQL URL (which must never end up in a file name) `custos.key` in the
/// current directory — pass `--root-key-file` explicitly there.
pub fn default_root_key_file(store: &str) -> PathBuf {
    if custos_eventlog::postgres::is_postgres_url(store) {
        return PathBuf::from("custos.key");
    }
    PathBuf::from(format!("{store}.key"))
}
