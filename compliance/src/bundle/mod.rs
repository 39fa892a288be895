//! Export bundles (docs/FORMAT.md "Export bundles"): the line schemas and manifest,
//! the streaming [`BundleWriter`], and the offline verifier [`verify_bundle`] that
//! needs nothing but the bundle and (optionally) the operator's public key.

mod verify;
mod writer;

use std::collections::BTreeMap;

use custos_domain::{Category, Clearance, TenantId, Timestamp};
use custos_eventlog::record::Header;
use serde::{Deserialize, Serialize};

pub use verify::{verify_bundle, KeySource, PreviousCheck, VerifyReport};
pub use writer::{ArtifactEntry, BundleWriter, ContentWriter, ExportSettings, Finished};

/// Format tag of `manifest.json`.
pub const BUNDLE_FORMAT: &str = "custos.bundle.v1";
/// The manifest file.
pub const MANIFEST: &str = "manifest.json";
/// The detached Ed25519 signature of the manifest bytes, as 128 lowercase hex digits.
pub const MANIFEST_SIG: &str = "manifest.sig";
/// Every header of the tenant's chain.
pub const CHAIN: &str = "chain.jsonl";
/// Human-readable audit trail.
pub const AUDIT_CSV: &str = "audit.csv";
/// Artifact index.
pub const ARTIFACT_INDEX: &str = "artifacts/index.jsonl";

/// Path of a category's event file inside the bundle.
pub fn category_file(c: Category) -> String {
    format!("events/{}.jsonl", c.as_str())
}

/// Key of a category's line count in `manifest.counts`: the category name, except
/// `artifacts` events, counted as `artifact_events` because `artifacts` counts exported
/// artifact contents.
pub fn count_key(c: Category) -> &'static str {
    match c {
        Category::Artifacts => "artifact_events",
        c => c.as_str(),
    }
}

/// The category a `manifest.counts` key counts lines of, if it is a category key.
pub fn count_key_category(k: &str) -> Option<Category> {
    Category::ALL.iter().copied().find(|c| count_key(*c) == k)
}

/// Errors of writing or verifying a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// File system.
    #[error("{0}")]
    Io(String),
    /// The bundle failed a check: `check` names which one.
    #[error("{check}: {detail}")]
    Invalid {
        /// Which check failed (`signature`, `files`, `chain`, `commitment`, `completeness`, `counts`, `previous`, ...).
        check: &'static str,
        /// What exactly.
        detail: String,
    },
    /// Storage, keys.
    #[error(transparent)]
    Log(#[from] custos_eventlog::LogError),
    /// Artifact content.
    #[error(transparent)]
    Artifact(#[from] crate::artifact::ArtifactError),
}

pub(crate) fn invalid(check: &'static str, detail: impl Into<String>) -> BundleError {
    BundleError::Invalid { check, detail: detail.into() }
}

pub(crate) fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> BundleError {
    BundleError::Io(format!("{what}: {e}"))
}

/// What became of one record of the tenant's chain in this bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its category line carries salt, actor and data; the commitment is checkable.
    Exported,
    /// Its category line is present but not checkable: data redacted (`pii`) or withheld (`policy`).
    Redacted,
    /// Omitted by policy `deny` (exporter not cleared).
    Denied,
    /// Its body was purged (retention or deletion) before the export.
    Purged,
    /// Outside `--since`/`--until`.
    OutOfRange,
}

/// Why a line is marked redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redaction {
    /// `--redact-pii` changed the data.
    Pii,
    /// Policy `redact`: exporter not cleared; only the header is kept.
    Policy,
}

/// The header fields as written in bundle lines (times in µs so hashes recompute exactly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineHeader {
    /// Position in the whole log.
    pub global_seq: u64,
    /// Tenant.
    pub tenant: String,
    /// Position in the tenant's stream.
    pub tenant_seq: u64,
    /// Category name.
    pub category: String,
    /// Kind.
    pub kind: String,
    /// µs since the epoch, UTC.
    pub occurred_at: Timestamp,
    /// µs since the epoch, UTC (log clock).
    pub recorded_at: Timestamp,
    /// Label name or null.
    pub label: Option<String>,
    /// Commitment, hex.
    pub commitment: String,
}

impl LineHeader {
    /// From a stored header.
    pub fn from_header(h: &Header) -> Self {
        Self {
            global_seq: h.global_seq,
            tenant: h.tenant.to_string(),
            tenant_seq: h.tenant_seq,
            category: h.category.as_str().to_string(),
            kind: h.kind.clone(),
            occurred_at: h.occurred_at,
            recorded_at: h.recorded_at,
            label: h.label.map(|l| l.as_str().to_string()),
            commitment: hex::encode(h.commitment),
        }
    }

    /// Back to a header (strict: every field must parse).
    pub fn to_header(&self) -> Result<Header, String> {
        let mut commitment = [0u8; 32];
        hex::decode_to_slice(&self.commitment, &mut commitment).map_err(|_| format!("bad commitment {:?}", self.commitment))?;
        Ok(Header {
            global_seq: self.global_seq,
            tenant: TenantId::parse_any(&self.tenant).map_err(|e| e.to_string())?,
            tenant_seq: self.tenant_seq,
            category: self.category.parse().map_err(|e: custos_domain::DomainError| e.to_string())?,
            kind: self.kind.clone(),
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            label: self.label.as_deref().map(str::parse::<Clearance>).transpose().map_err(|e| e.to_string())?,
            commitment,
        })
    }
}

/// One line of `chain.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLine {
    /// Header fields.
    #[serde(flatten)]
    pub header: LineHeader,
    /// Entry hash, hex (recomputable from the header).
    pub entry_hash: String,
    /// Tenant chain value after this record, hex.
    pub tenant_chain: String,
    /// What became of it in this bundle.
    pub status: Status,
    /// True iff `status` is `redacted`.
    pub redacted: bool,
    /// Why redacted (with status `redacted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Redaction>,
    /// Global seq of the purge event (with status `purged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_by: Option<u64>,
}

/// One line of `events/<category>.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    /// Header fields.
    #[serde(flatten)]
    pub header: LineHeader,
    /// Commitment salt, hex (null when redacted: with the salt, low-entropy redacted values could be brute-forced).
    pub salt: Option<String>,
    /// Actor (null when withheld by policy).
    pub actor: Option<String>,
    /// Payload (redacted with `pii`, null with `policy`).
    pub data: Option<serde_json::Value>,
    /// True when the line cannot be checked against its commitment.
    pub redacted: bool,
    /// Why redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Redaction>,
    /// Matches replaced by `--redact-pii`, by type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction_counts: Option<BTreeMap<String, u64>>,
}

/// One line of `artifacts/index.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactLine {
    /// Artifact id.
    pub artifact_id: String,
    /// Name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Label as set (null: default applies).
    pub label: Option<String>,
    /// Label the decision used.
    pub effective_label: String,
    /// Global seq of its `artifact_stored` event.
    pub stored_seq: u64,
    /// `exported` (content at `path`), `redacted` (policy redact: metadata only) or
    /// `purged` (lifecycle destroyed the content: metadata and SHA-256 only).
    pub status: String,
    /// Content file inside the bundle, when exported.
    pub path: Option<String>,
    /// When lifecycle purged the content (µs), for `purged` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<i64>,
}

/// The exporter as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exporter {
    /// Actor name.
    pub actor: String,
    /// Role.
    pub role: String,
    /// Clearance.
    pub clearance: String,
}

/// Size and head of the tenant chain covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Last tenant_seq.
    pub size: u64,
    /// Tenant chain value at it, hex.
    pub head: String,
}

/// The global signed checkpoint with the tenant head (message: `eventlog::checkpoint_message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleCheckpoint {
    /// Log size.
    pub size: u64,
    /// Global chain head at that size, hex.
    pub global_head: String,
    /// Signing time, µs.
    pub signed_at: Timestamp,
    /// Tenant.
    pub tenant: String,
    /// Tenant chain size.
    pub tenant_size: u64,
    /// Tenant chain head, hex.
    pub tenant_head: String,
    /// Ed25519 signature over the checkpoint message, hex.
    pub signature: String,
}

/// One file's digest in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// SHA-256, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// Tenant exported.
    pub tenant: String,
    /// Export time, µs.
    pub exported_at: Timestamp,
    /// Export time, RFC 3339 (for people).
    pub exported_at_utc: String,
    /// Who exported, with which clearance.
    pub exporter: Exporter,
    /// `deny` or `redact`.
    pub policy: String,
    /// Whether unlabeled items were denied.
    pub require_labels: bool,
    /// Whether `--redact-pii` ran over exported data.
    pub redact_pii: bool,
    /// The tenant's default label at export time.
    pub default_label: String,
    /// occurred_at lower bound (µs), if any.
    pub since: Option<Timestamp>,
    /// occurred_at upper bound (µs, exclusive), if any.
    pub until: Option<Timestamp>,
    /// Counts (see docs/FORMAT.md).
    pub counts: BTreeMap<String, u64>,
    /// Sum of category lines and exported artifacts.
    pub total_items: u64,
    /// Tenant chain covered (equals the last line of chain.jsonl).
    pub tenant_chain: ChainHead,
    /// Signed global checkpoint including the tenant head.
    pub checkpoint: BundleCheckpoint,
    /// Ed25519 public key of the store, hex.
    pub public_key: String,
    /// Every other file of the bundle.
    pub files: BTreeMap<String, FileEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_eventlog::record::{link, GENESIS, TENANT_CHAIN_PREFIX};
    use serde_json::json;

    /// The worked example of docs/FORMAT.md "Export bundles"; tools/verify_bundle.py computes the same.
    #[test]
    fn documented_vectors() {
        let salt: [u8; 16] = std::array::from_fn(|i| i as u8);
        let body = custos_crypto::canonical::to_vec(&json!({"actor": "admin", "data": {"usd_micros": 2100, "model": "gpt-4o"}}));
        assert_eq!(body, br#"{"actor":"admin","data":{"model":"gpt-4o","usd_micros":2100}}"#);
        let c = custos_crypto::commitment(&salt, &body);
        assert_eq!(hex::encode(c), "c6557931d510e43404dd8561a73c356e5703092425fbadf4755c7794b0424b30");
        let lh = LineHeader {
            global_seq: 1,
            tenant: "acme".into(),
            tenant_seq: 1,
            category: "costs".into(),
            kind: "cost_recorded".into(),
            occurred_at: 1_759_492_800_000_000,
            recorded_at: 1_759_492_800_000_001,
            label: None,
            commitment: hex::encode(c),
        };
        let h = lh.to_header().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(LineHeader::from_header(&h), lh);
        let e = h.entry_hash();
        assert_eq!(hex::encode(e), "9dd0c28c9560b6c7dc2c61678d09b48bbb3d08af620da722b471c507aba1ee57");
        assert_eq!(
            hex::encode(link(TENANT_CHAIN_PREFIX, &GENESIS, &e)),
            "0ce29f394087f9322014b3232119ae8178b4485d7c8322c3beb419f4d099da83"
        );
    }

    #[test]
    fn line_schemas_are_stable() {
        let cl = ChainLine {
            header: LineHeader {
                global_seq: 3,
                tenant: "acme".into(),
                tenant_seq: 1,
                category: "runs".into(),
                kind: "k".into(),
                occurred_at: 1,
                recorded_at: 2,
                label: Some("Public".into()),
                commitment: "00".repeat(32),
            },
            entry_hash: "11".repeat(32),
            tenant_chain: "22".repeat(32),
            status: Status::Redacted,
            redacted: true,
            redaction: Some(Redaction::Policy),
            purged_by: None,
        };
        let v = serde_json::to_value(&cl).unwrap_or_default();
        assert_eq!(v["status"], "redacted");
        assert_eq!(v["redaction"], "policy");
        assert_eq!(v["label"], "Public");
        assert!(v.get("purged_by").is_none());
        assert_eq!(serde_json::from_value::<ChainLine>(v).ok(), Some(cl));
        assert_eq!(count_key(Category::Artifacts), "artifact_events");
        assert_eq!(count_key_category("runs"), Some(Category::Runs));
        assert_eq!(count_key_category("artifacts"), None);
    }
}
