//! Artifacts: encrypted chunked storage, labels, the tenant default label, and
//! clearance-checked retrieval (DESIGN §7 "Classification").

use std::path::Path;

use custos_compliance::artifact::{self, ArtifactError, CHUNK_SIZE};
use custos_compliance::classify::{decide, DEFAULT_LABEL, DEFAULT_LABEL_SETTING};
use custos_domain::{format_ts, now_micros, Category, Clearance, NewEvent, TenantId, Tier};
use custos_eventlog::{ArtifactRow, Pending};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{Platform, PlatformError, Principal};

/// An artifact as listed and shown (never its content).
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactInfo {
    /// Id.
    pub artifact_id: String,
    /// Tenant.
    pub tenant: String,
    /// Name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Label as set (null: the tenant default applies).
    pub label: Option<String>,
    /// Label that clearance checks use.
    pub effective_label: String,
    /// When stored.
    pub created_at: String,
    /// Global seq of its `artifact_stored` event.
    pub stored_seq: u64,
    /// Sealed chunks (still counted after a purge dropped them).
    pub chunks: u64,
    /// Storage tier: `hot`, `warm` or `cold`.
    pub tier: Tier,
    /// When the tier last changed.
    pub tier_changed_at: String,
    /// Start of the lifecycle age clock (stored, or last restored).
    pub age_from: String,
    /// When lifecycle purged its content (null while it has content).
    pub purged_at: Option<String>,
}

impl From<ArtifactError> for PlatformError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::Io(m) => PlatformError::Io(m),
            ArtifactError::Log(l) => l.into(),
            e @ ArtifactError::Integrity { .. } => PlatformError::Integrity(e.to_string()),
        }
    }
}

fn info(a: &ArtifactRow, default: Clearance) -> ArtifactInfo {
    ArtifactInfo {
        artifact_id: a.id.clone(),
        tenant: a.tenant.clone(),
        name: a.name.clone(),
        size: a.size,
        sha256: hex::encode(a.sha256),
        label: a.label.map(|l| l.as_str().to_string()),
        effective_label: a.label.unwrap_or(default).as_str().to_string(),
        created_at: format_ts(a.created_at),
        stored_seq: a.stored_seq,
        chunks: a.chunks,
        tier: a.tier,
        tier_changed_at: format_ts(a.tier_changed_at),
        age_from: format_ts(a.age_from),
        purged_at: a.purged_at.map(format_ts),
    }
}

fn tenant_event(tenant: &TenantId, category: Category, kind: &str, label: Option<Clearance>, data: Value, actor: &str) -> Pending {
    Pending { event: NewEvent { tenant: tenant.clone(), category, kind: kind.into(), occurred_at: None, label, data }, actor: actor.into() }
}

impl Platform {
    /// The tenant's default label (`Internal` unless set).
    pub fn default_label(&self, tenant: &str) -> Result<Clearance, PlatformError> {
        match self.log.backend().tenant_setting(tenant, DEFAULT_LABEL_SETTING)? {
            Some(v) => Ok(v.parse()?),
            None => Ok(DEFAULT_LABEL),
        }
    }

    /// Sets the tenant's default label, recording `default_label_set {label, previous}` in the
    /// tenant's stream (governance) in the same transaction. Idempotent: setting the current
    /// value records nothing.
    pub fn set_default_label(&mut self, who: &Principal, tenant: &str, label: Clearance) -> Result<Value, PlatformError> {
        let t = TenantId::parse(tenant)?;
        let previous = self.default_label(tenant)?;
        if self.log.backend().tenant_setting(tenant, DEFAULT_LABEL_SETTING)?.is_some() && previous == label {
            return Ok(json!({"tenant": tenant, "label": label, "previous": previous, "changed": false}));
        }
        let data = json!({"label": label, "previous": previous});
        let mut a = self.log.appender()?;
        let seqs = a.push(&[tenant_event(&t, Category::Governance, "default_label_set", None, data, &who.name)])?;
        a.tx().set_tenant_setting(tenant, DEFAULT_LABEL_SETTING, label.as_str())?;
        a.commit()?;
        Ok(json!({"tenant": tenant, "label": label, "previous": previous, "changed": true, "seq": seqs.first()}))
    }

    /// Stores `file` as an artifact of `tenant`, streamed in sealed chunks, and records
    /// `artifact_stored` (category artifacts) in the same transaction.
    pub fn artifact_put(
        &mut self,
        who: &Principal,
        tenant: &str,
        file: &Path,
        name: Option<&str>,
        label: Option<Clearance>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ArtifactInfo, PlatformError> {
        let t = TenantId::parse(tenant)?;
        let mut src =
            std::fs::File::open(file).map_err(|e| PlatformError::Input(format!("cannot open artifact file {}: {e}", file.display())))?;
        let len = src.metadata().map(|m| m.len()).unwrap_or(0);
        let name = match name {
            Some(n) => n.to_string(),
            None => file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "artifact".into()),
        };
        if name.is_empty() || name.len() > 255 {
            return Err(PlatformError::Input("artifact --name must be 1 to 255 bytes".into()));
        }
        let default = self.default_label(tenant)?;
        let id = artifact::new_id()?;
        let now = now_micros();
        let mut a = self.log.appender()?;
        let chunks_expected = len.div_ceil(CHUNK_SIZE as u64).max(1);
        let (dek_version, dek) = a.dek_for(&t, chunks_expected)?;
        let mut reader = std::io::BufReader::with_capacity(CHUNK_SIZE, &mut src);
        let sealed = artifact::seal_stream(a.tx(), &dek, dek_version, tenant, &id, &mut reader, progress)?;
        let data = json!({
            "artifact_id": id, "name": name, "size": sealed.size, "sha256": hex::encode(sealed.sha256),
            "label": label.map(Clearance::as_str),
        });
        let seqs = a.push(&[tenant_event(&t, Category::Artifacts, "artifact_stored", label, data, &who.name)])?;
        let row = ArtifactRow {
            id,
            tenant: tenant.to_string(),
            name,
            size: sealed.size,
            sha256: sealed.sha256,
            label,
            dek_version,
            chunk_size: CHUNK_SIZE as u64,
            chunks: sealed.chunks,
            created_at: now,
            stored_seq: seqs.first().copied().unwrap_or(0),
            tier: Tier::Hot,
            tier_changed_at: now,
            age_from: now,
            purged_at: None,
        };
        a.tx().put_artifact(&row)?;
        a.commit()?;
        Ok(info(&row, default))
    }

    fn artifact_row(&self, id: &str) -> Result<ArtifactRow, PlatformError> {
        self.log
            .backend()
            .artifact(id)?
            .ok_or_else(|| PlatformError::NotFound(format!("no artifact {id}; `custos artifacts list` shows the ids")))
    }

    /// One artifact's metadata.
    pub fn artifact_show(&self, id: &str) -> Result<ArtifactInfo, PlatformError> {
        let a = self.artifact_row(id)?;
        Ok(info(&a, self.default_label(&a.tenant)?))
    }

    /// Artifacts of one tenant, or all.
    pub fn artifacts_list(&self, tenant: Option<&str>) -> Result<Vec<ArtifactInfo>, PlatformError> {
        let rows = self.log.backend().artifacts(tenant)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(info(r, self.default_label(&r.tenant)?));
        }
        Ok(out)
    }

    /// Writes an artifact's content to `out` (via `out.tmp`, renamed after the SHA-256 checks).
    /// An actor whose clearance is below the effective label is refused (exit 2, `access_denied`).
    pub fn artifact_get(
        &mut self,
        who: &Principal,
        id: &str,
        out: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ArtifactInfo, PlatformError> {
        let a = self.artifact_row(id)?;
        if let Some(at) = a.purged_at {
            return Err(PlatformError::NotFound(format!(
                "artifact {id} was purged by lifecycle on {}: its content is gone (metadata and SHA-256 remain; `custos artifacts show {id}`)",
                format_ts(at)
            )));
        }
        let default = self.default_label(&a.tenant)?;
        if let Err(d) = decide(who.clearance, a.label, default, false) {
            let reason = format!("clearance {} below artifact {id}: {}", who.clearance, d.reason());
            self.record_denial(&who.name, "artifacts get", None, Some(who.role), &reason, Some(&a.tenant));
            return Err(PlatformError::Denied(format!(
                "{} has clearance {}; artifact {id} is {}",
                who.name,
                who.clearance,
                a.label.unwrap_or(default)
            )));
        }
        let dek = self
            .log
            .keys()?
            .dek(self.log.backend(), &a.tenant, a.dek_version)?
            .ok_or_else(|| PlatformError::Integrity(format!("the key of artifact {id} is gone (tenant deleted?)")))?;
        let mut tmp = out.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let res = (|| -> Result<(), PlatformError> {
            let f = std::fs::File::create(&tmp).map_err(|e| PlatformError::Io(format!("cannot create {}: {e}", tmp.display())))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            artifact::open_stream(self.log.backend(), &dek, &a, &mut w, progress)?;
            let f = w.into_inner().map_err(|e| PlatformError::Io(format!("writing {}: {e}", tmp.display())))?;
            f.sync_all().map_err(|e| PlatformError::Io(format!("writing {}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, out).map_err(|e| PlatformError::Io(format!("cannot rename to {}: {e}", out.display())))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res?;
        Ok(info(&a, default))
    }

    /// Sets an artifact's label (Compliance+), recording `artifact_labeled {artifact_id, old, new}`
    /// in the tenant's stream in the same transaction. Setting the same label again records nothing.
    pub fn artifact_label(&mut self, who: &Principal, id: &str, label: Clearance) -> Result<Value, PlatformError> {
        let a = self.artifact_row(id)?;
        let t = TenantId::parse(&a.tenant)?;
        if a.label == Some(label) {
            return Ok(json!({"artifact_id": id, "old": a.label, "new": label, "changed": false}));
        }
        let data = json!({"artifact_id": id, "old": a.label.map(Clearance::as_str), "new": label.as_str()});
        let mut ap = self.log.appender()?;
        let seqs = ap.push(&[tenant_event(
            &t,
            Category::Artifacts,
            "artifact_labeled",
            Some(label.max(a.label.unwrap_or(label))),
            data,
            &who.name,
        )])?;
        ap.tx().set_artifact_label(id, Some(label))?;
        ap.commit()?;
        Ok(json!({"artifact_id": id, "old": a.label, "new": label, "changed": true, "seq": seqs.first()}))
    }
}
