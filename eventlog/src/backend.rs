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

/// A stored artifact: metadata in the clear, content in sealed chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    /// `art_` + 24 hex digits.
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Display name (file name by default).
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    /// Classification label (None: the tenant's default label applies).
    pub label: Option<custos_domain::Clearance>,
    /// DEK version that sealed the chunks.
    pub dek_version: u32,
    /// Plaintext bytes per chunk (the last may be shorter).
    pub chunk_size: u64,
    /// Number of chunks (at least 1; an empty artifact has one empty final chunk).
    pub chunks: u64,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Global seq of its `artifact_stored` event.
    pub stored_seq: u64,
    /// Storage tier (recorded state; `hot` when stored).
    pub tier: custos_domain::Tier,
    /// When the tier last changed (stored, lifecycle move or restore).
    pub tier_changed_at: Timestamp,
    /// Start of the lifecycle age clock: when stored, or when last restored.
    pub age_from: Timestamp,
    /// When lifecycle purged its content (chunks gone, metadata kept).
    pub purged_at: Option<Timestamp>,
}

/// One sealed chunk of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactChunk {
    /// Artifact id.
    pub artifact_id: String,
    /// Position, from 0.
    pub index: u64,
    /// AEAD nonce.
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
    /// Bodies are not needed (header-level verification): a backend may return an empty
    /// body for a present one and skip copying it; purged bodies stay `None`.
    pub headers_only: bool,
    /// Chain values are not needed (decrypting reads: an [`crate::Event`] carries none): a
    /// backend may return zeros for them and skip reading them.
    pub skip_chains: bool,
}

impl Query {
    /// This query as a decrypting read runs it: with bodies (the empty bodies of a
    /// headers-only scan fail authentication and would look like tampering), without
    /// chain values (nothing decrypted carries them).
    pub fn for_decrypting(&self) -> Query {
        Query { headers_only: false, skip_chains: true, ..self.clone() }
    }
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
    /// One artifact's metadata.
    fn artifact(&self, id: &str) -> Result<Option<ArtifactRow>, LogError>;
    /// Artifacts (of one tenant, or all), oldest first.
    fn artifacts(&self, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError>;
    /// One sealed chunk (read one at a time so memory stays bounded by the chunk size).
    fn artifact_chunk(&self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError>;
    /// A per-tenant setting (e.g. `default_label`).
    fn tenant_setting(&self, tenant: &str, name: &str) -> Result<Option<String>, LogError>;
    /// Bytes used by the store (for status and benchmarks).
    fn size_bytes(&self) -> Result<u64, LogError>;
    /// Records of `tenant` that still have a body, optionally only of `category` and with
    /// `occurred_at < before` (retention and deletion dry runs).
    fn count_live(&self, tenant: &str, category: Option<custos_domain::Category>, before: Option<Timestamp>) -> Result<u64, LogError>;
    /// Number of projection snapshots stored for `tenant`.
    fn count_snapshots(&self, tenant: &str) -> Result<u64, LogError>;
    /// Writes a consistent copy of the whole store to `dest` (a new file) while other
    /// processes may keep appending. The copy holds wrapped keys only, never the root key.
    fn backup_to(&self, dest: &std::path::Path) -> Result<(), LogError>;
    /// Makes freed space unrecoverable from the store's files after destroying key
    /// material (SQLite: checkpoint the WAL into the database and truncate it; freed
    /// pages are zeroed by `secure_delete`. PostgreSQL: `VACUUM FULL` of the key, event,
    /// snapshot and artifact tables so dead tuples leave the data files). Returns false
    /// when a concurrent reader kept the WAL from being fully truncated (run it again
    /// later). Backups, WAL archives and replicas keep old pages until they expire.
    fn reclaim(&self) -> Result<bool, LogError>;
    /// Bodies still present per DEK version of a tenant: (version, count), by version.
    fn body_counts_by_dek(&self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError>;
    /// For a long-lived writer: stops this connection from checkpointing its write-ahead
    /// log inside commits and returns a [`Checkpointer`] to run on another thread, so a
    /// commit waits for its own fsync only. None where the backend has no such log to
    /// manage (PostgreSQL checkpoints in its own server processes).
    fn detach_checkpoints(&mut self) -> Result<Option<Box<dyn Checkpointer>>, LogError> {
        Ok(None)
    }
}

/// Moves committed pages from a write-ahead log into the store, off the commit path.
pub trait Checkpointer: Send {
    /// Checkpoints what it can without blocking the writer; forces a full checkpoint
    /// (which briefly waits for the writer) only once the log has outgrown its bound.
    /// True when the log was fully checkpointed.
    fn step(&mut self) -> Result<bool, LogError>;
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
    /// Same as [`Backend::count_live`], inside the transaction.
    fn count_live(&mut self, tenant: &str, category: Option<custos_domain::Category>, before: Option<Timestamp>) -> Result<u64, LogError>;
    /// Retention in one pass over a tenant: counts (`purged_by` None) or drops (Some) the
    /// remaining bodies whose `occurred_at` is before the cutoff of their category
    /// (categories not listed are untouched). Returns the count per category.
    fn purge_before_cutoffs(
        &mut self,
        tenant: &str,
        cutoffs: &[(custos_domain::Category, Timestamp)],
        purged_by: Option<u64>,
    ) -> Result<Vec<(custos_domain::Category, u64)>, LogError>;
    /// Drops the bodies of records, marking who purged them; returns how many changed.
    fn purge_bodies(&mut self, seqs: &[u64], purged_by: u64) -> Result<u64, LogError>;
    /// Replaces a body (re-encryption). The hashed header is untouched.
    fn replace_body(&mut self, seq: u64, dek_version: u32, nonce: &[u8; 12], body: &[u8]) -> Result<(), LogError>;
    /// All KEK rows, oldest first, as seen inside the transaction.
    fn keks(&mut self) -> Result<Vec<KekRow>, LogError>;
    /// Up to `limit` DEK rows wrapped by a KEK other than `kek_id`.
    fn deks_not_wrapped_by(&mut self, kek_id: &str, limit: u64) -> Result<Vec<DekRow>, LogError>;
    /// How many DEK rows `kek_id` wraps.
    fn count_deks_wrapped_by(&mut self, kek_id: &str) -> Result<u64, LogError>;
    /// Replaces a DEK's wrapping (rewrap); the key itself, its seal count and status are untouched.
    fn set_dek_wrapping(&mut self, tenant: &str, version: u32, kek_id: &str, wrapped: &[u8]) -> Result<(), LogError>;
    /// Bodies still present per DEK version of a tenant: (version, count), by version.
    fn body_counts_by_dek(&mut self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError>;
    /// Stored (not purged) artifacts per DEK version of a tenant: (version, count). Their
    /// chunks are sealed with that version, so it must outlive them.
    fn artifact_counts_by_dek(&mut self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError>;
    /// Up to `limit` records of `tenant` with a body sealed under a DEK version below `below`
    /// and `tenant_seq > after`, in tenant_seq order (re-encryption batches).
    fn bodies_below_dek(&mut self, tenant: &str, below: u32, after: u64, limit: u64) -> Result<Vec<StoredRecord>, LogError>;
    /// Streams matching records as seen inside the transaction (read-your-writes; used to
    /// re-read state under the write lock before deciding what to append).
    fn scan(&mut self, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError>;
    /// A tenant's DEK rows as seen inside the transaction.
    fn deks(&mut self, tenant: &str) -> Result<Vec<DekRow>, LogError>;
    /// A snapshot as seen inside the transaction.
    fn snapshot(&mut self, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError>;
    /// Inserts one sealed artifact chunk.
    fn put_artifact_chunk(&mut self, c: &ArtifactChunk) -> Result<(), LogError>;
    /// One chunk as seen inside the transaction (re-sealing reads under the write lock).
    fn artifact_chunk(&mut self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError>;
    /// Replaces a stored chunk's nonce and ciphertext (re-sealing); returns rows changed.
    fn replace_artifact_chunk(&mut self, c: &ArtifactChunk) -> Result<u64, LogError>;
    /// Sets the DEK version an artifact's chunks are sealed with; returns rows changed.
    fn set_artifact_dek(&mut self, id: &str, version: u32) -> Result<u64, LogError>;
    /// Inserts an artifact's metadata row (after its chunks).
    fn put_artifact(&mut self, a: &ArtifactRow) -> Result<(), LogError>;
    /// Sets (or clears) an artifact's label; returns rows changed.
    fn set_artifact_label(&mut self, id: &str, label: Option<custos_domain::Clearance>) -> Result<u64, LogError>;
    /// Artifacts (of one tenant, or all) as seen inside the transaction, oldest first.
    fn artifacts(&mut self, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError>;
    /// Sets an artifact's tier and `tier_changed_at = at`; with `reset_age` also
    /// `age_from = at` (restore). Purged artifacts are left alone. Returns rows changed.
    fn set_artifact_tier(&mut self, id: &str, tier: custos_domain::Tier, at: Timestamp, reset_age: bool) -> Result<u64, LogError>;
    /// Drops an artifact's chunks and marks it purged at `at` (its metadata stays).
    /// Returns rows changed (0 when already purged or unknown).
    fn purge_artifact(&mut self, id: &str, at: Timestamp) -> Result<u64, LogError>;
    /// Drops every artifact (metadata and chunks) of a tenant; returns how many artifacts.
    fn delete_artifacts(&mut self, tenant: &str) -> Result<u64, LogError>;
    /// Upserts a per-tenant setting.
    fn set_tenant_setting(&mut self, tenant: &str, name: &str, value: &str) -> Result<(), LogError>;
    /// Commits durably.
    fn commit(self: Box<Self>) -> Result<(), LogError>;
}
