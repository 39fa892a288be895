//! The storage-backend contract. Everything above this trait is backend-agnostic;
//! every SQL statement lives in an implementation of it.

use custos_domain::Timestamp;

use crate::record::Header;
use crate::LogError;

/// One stored record: the hashed header plus what the log keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Hashed header.
    pub header: Header,
    /// DEK version that sealed the body.
    pub dek_version: u32,
    /// AEAD nonce (None once purged).
    pub nonce: Option<[u8; 12]>,
    /// Ciphertext ‖ tag (None once purged).
    pub body: Option<Vec<u8>>,
    /// Tenant chain value after this record.
    pub tenant_chain: [u8; 32],
    /// Global chain value after this record.
    pub global_chain: [u8; 32],
    /// Global seq of the governance event that purged the body.
    pub purged_by: Option<u64>,
}

/// Size and head of the whole log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// Number of records (= last global_seq).
    pub size: u64,
    /// Global chain value after the last record.
    pub chain: [u8; 32],
}

/// Cached head of one tenant's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantHead {
    /// Tenant id.
    pub tenant: String,
    /// Last tenant_seq.
    pub last_seq: u64,
    /// Tenant chain after it.
    pub chain: [u8; 32],
    /// Set once the tenant is crypto-shredded.
    pub deleted_at: Option<Timestamp>,
}

/// A wrapped key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRow {
    /// `key-001`, ...
    pub key_id: String,
    /// Wrapped under the root key (None once retired).
    pub wrapped: Option<Vec<u8>>,
    /// `active`, `decrypt-only` or `retired`.
    pub status: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A wrapped per-tenant data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DekRow {
    /// Tenant id.
    pub tenant: String,
    /// Version, from 1.
    pub version: u32,
    /// KEK that wraps it.
    pub kek_id: String,
    /// Wrapped key.
    pub wrapped: Vec<u8>,
    /// Seals made with it.
    pub seals: u64,
    /// Whether new bodies are sealed with it.
    pub active: bool,
    /// Creation time.
    pub created_at: Timestamp,
}

/// The wrapped signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningRow {
    /// Ed25519 public key.
    pub public_key: Vec<u8>,
    /// PKCS#8 wrapped under the root key: nonce ‖ ct ‖ tag.
    pub wrapped: Vec<u8>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A signed checkpoint of the log head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Log size signed.
    pub size: u64,
    /// Global chain at that size.
    pub head: [u8; 32],
    /// Signing time.
    pub signed_at: Timestamp,
    /// Public key used.
    pub public_key: Vec<u8>,
    /// Ed25519 signature over the checkpoint message.
    pub signature: Vec<u8>,
}

/// An actor as projected from `actor_added` / `actor_disabled` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRow {
    /// Unique name.
    pub name: String,
    /// Role name.
    pub role: String,
    /// Clearance name.
    pub clearance: String,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// Disabled actors cannot authenticate.
    pub disabled: bool,
    /// Seq of the event that created it.
    pub created_seq: u64,
}

/// An encrypted projection snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// Tenant (or `_system`).
    pub tenant: String,
    /// Projection name.
    pub name: String,
    /// tenant_seq the snapshot covers.
    pub covers_seq: u64,
    /// DEK version that sealed it.
    pub dek_version: u32,
    /// Nonce.
    pub nonce: [u8; 12],
    /// Ciphertext ‖ tag.
    pub body: Vec<u8>,
}

/// Which records a scan returns (all conditions ANDed). Order is global_seq ascending.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this category code.
    pub category: Option<custos_domain::Category>,
    /// Only this kind.
    pub kind: Option<String>,
    /// occurred_at ≥.
    pub since: Option<Timestamp>,
    /// occurred_at <.
    pub until: Option<Timestamp>,
    /// global_seq ≥.
    pub from_seq: Option<u64>,
    /// tenant_seq > (with `tenant`).
    pub after_tenant_seq: Option<u64>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// A storage backend (SQLite or PostgreSQL). Reads see a consistent snapshot per call.
pub trait Backend: Send {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// Begins the single write transaction (takes the store's write lock).
    fn begin(&mut self) -> Result<Box<dyn Tx + '_>, LogError>;
    /// Size and head of the log.
    fn head(&self) -> Result<Head, LogError>;
    /// Streams matching records in global_seq order; the callback returns false to stop.
    fn scan(&self, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError>;
    /// One record by global_seq.
    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, LogError>;
    /// All tenant heads.
    fn tenant_heads(&self) -> Result<Vec<TenantHead>, LogError>;
    /// All KEK rows, oldest first.
    fn keks(&self) -> Result<Vec<KekRow>, LogError>;
    /// DEK rows (of one tenant, or all).
    fn deks(&self, tenant: Option<&str>) -> Result<Vec<DekRow>, LogError>;
    /// The wrapped signing key.
    fn signing_key(&self) -> Result<Option<SigningRow>, LogError>;
    /// Checkpoints, oldest first.
    fn checkpoints(&self) -> Result<Vec<CheckpointRow>, LogError>;
    /// Actor by token hash.
    fn actor_by_token(&self, hash: &[u8; 32]) -> Result<Option<ActorRow>, LogError>;
    /// All actors.
    fn actors(&self) -> Result<Vec<ActorRow>, LogError>;
    /// A snapshot.
    fn snapshot(&self, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError>;
    /// Bytes used by the store (for status and benchmarks).
    fn size_bytes(&self) -> Result<u64, LogError>;
    /// Makes destroyed material (deleted DEK rows, purged bodies) leave the live
    /// database files: SQLite truncates its WAL (`secure_delete` already zeroes freed
    /// pages), PostgreSQL rewrites the key and event tables (`VACUUM FULL`). Backups,
    /// WAL archives and replicas keep old pages until they expire.
    fn compact(&mut self) -> Result<(), LogError>;
}

/// The write transaction. Dropping it without `commit` rolls everything back.
pub trait Tx {
    /// Head as seen inside the transaction.
    fn head(&mut self) -> Result<Head, LogError>;
    /// One tenant's head.
    fn tenant_head(&mut self, tenant: &str) -> Result<Option<TenantHead>, LogError>;
    /// Inserts records (already sealed and chained).
    fn insert(&mut self, recs: &[StoredRecord]) -> Result<(), LogError>;
    /// Upserts a tenant head.
    fn set_tenant_head(&mut self, h: &TenantHead) -> Result<(), LogError>;
    /// The tenant's active DEK.
    fn active_dek(&mut self, tenant: &str) -> Result<Option<DekRow>, LogError>;
    /// Inserts or replaces a DEK row.
    fn put_dek(&mut self, row: &DekRow) -> Result<(), LogError>;
    /// Adds to a DEK's seal count.
    fn add_seals(&mut self, tenant: &str, version: u32, n: u64) -> Result<(), LogError>;
    /// Destroys every DEK of a tenant; returns how many.
    fn delete_deks(&mut self, tenant: &str, version: Option<u32>) -> Result<u64, LogError>;
    /// Inserts or replaces a KEK row.
    fn put_kek(&mut self, row: &KekRow) -> Result<(), LogError>;
    /// Stores the wrapped signing key.
    fn put_signing_key(&mut self, row: &SigningRow) -> Result<(), LogError>;
    /// Stores a checkpoint.
    fn put_checkpoint(&mut self, row: &CheckpointRow) -> Result<(), LogError>;
    /// Inserts or replaces an actor row.
    fn put_actor(&mut self, row: &ActorRow) -> Result<(), LogError>;
    /// Inserts or replaces a snapshot.
    fn put_snapshot(&mut self, row: &SnapshotRow) -> Result<(), LogError>;
    /// Deletes a tenant's snapshots; returns how many.
    fn delete_snapshots(&mut self, tenant: &str) -> Result<u64, LogError>;
    /// Drops the bodies of records, marking who purged them; returns how many changed.
    fn purge_bodies(&mut self, seqs: &[u64], purged_by: u64) -> Result<u64, LogError>;
    /// Replaces a body (re-encryption). The hashed header is untouched.
    fn replace_body(&mut self, seq: u64, dek_version: u32, nonce: &[u8; 12], body: &[u8]) -> Result<(), LogError>;
    /// Commits durably.
    fn commit(self: Box<Self>) -> Result<(), LogError>;
}
