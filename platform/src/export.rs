//! `compliance export`: a signed, offline-verifiable bundle of one tenant (DESIGN §7,
//! docs/FORMAT.md "Export bundles"), streamed with bounded memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use custos_compliance::artifact;
use custos_compliance::bundle::{
    verify_bundle, ArtifactLine, BundleCheckpoint, BundleError, BundleWriter, EventLine, ExportSettings, Exporter, LineHeader, Redaction,
    Status, VerifyReport,
};
use custos_compliance::classify::{decide, Policy};
use custos_compliance::redact::Redactor;
use custos_domain::{format_ts, now_micros, Category, NewEvent, TenantId, Timestamp};
use custos_eventlog::{checkpoint_message, Pending, Query};
use serde::Serialize;
use serde_json::json;

use crate::{Platform, PlatformError, Principal, SYSTEM_ACTOR};

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Tenant.
    pub tenant: String,
    /// Destination directory (or `.tar.gz` file with `archive`).
    pub out: PathBuf,
    /// Write one `.tar.gz`.
    pub archive: bool,
    /// deny or redact.
    pub policy: Policy,
    /// Unlabeled items are denied.
    pub require_labels: bool,
    /// Redact PII/secrets in exported data.
    pub redact_pii: Option<Redactor>,
    /// occurred_at ≥.
    pub since: Option<Timestamp>,
    /// occurred_at <.
    pub until: Option<Timestamp>,
}

/// What an export answers.
#[derive(Debug, Clone, Serialize)]
pub struct ExportResult {
    /// Tenant.
    pub tenant: String,
    /// Export time (RFC 3339).
    pub export_date: String,
    /// Directory or archive written.
    pub export_path: String,
    /// Counts (see docs/FORMAT.md).
    pub counts: BTreeMap<String, u64>,
    /// Category lines + exported artifacts.
    pub total_items: u64,
    /// SHA-256 of manifest.json (also in the `export_created` event).
    pub manifest_sha256: String,
    /// Global seq of the `export_created` event.
    pub recorded_seq: u64,
}

impl From<BundleError> for PlatformError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Io(m) => PlatformError::Io(m),
            BundleError::Invalid { .. } => PlatformError::Integrity(e.to_string()),
            BundleError::Log(l) => l.into(),
            BundleError::Artifact(a) => a.into(),
        }
    }
}

/// Denied tenant_seqs as closed ranges, so the `export_denied` event stays small.
fn push_range(r: &mut Vec<[u64; 2]>, s: u64) {
    match r.last_mut() {
        Some(last) if last[1] + 1 == s => last[1] = s,
        _ => r.push([s, s]),
    }
}

fn governance(kind: &str, data: serde_json::Value) -> Pending {
    Pending {
        event: NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: kind.into(),
            occurred_at: None,
            label: None,
            data,
        },
        actor: SYSTEM_ACTOR.into(),
    }
}

impl Platform {
    /// Exports one tenant. Denials become `export_denied` events and the export an
    /// `export_created` event (with the manifest hash), appended in one transaction after the
    /// bundle is complete; if that append fails the bundle is removed.
    pub fn export(
        &mut self,
        who: &Principal,
        o: &ExportOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportResult, PlatformError> {
        TenantId::parse_any(&o.tenant)?;
        let th = self
            .log
            .backend()
            .tenant_heads()?
            .into_iter()
            .find(|h| h.tenant == o.tenant)
            .ok_or_else(|| PlatformError::NotFound(format!("tenant {} has no events; nothing to export", o.tenant)))?;
        if th.deleted_at.is_some() {
            return Err(PlatformError::Input(format!("tenant {} was deleted (crypto-shredded); its bodies cannot be exported", o.tenant)));
        }
        let head = self.log.head()?;
        let default = self.default_label(&o.tenant)?;
        let now = now_micros();
        let settings = ExportSettings {
            tenant: o.tenant.clone(),
            exporter: Exporter { actor: who.name.clone(), role: who.role.to_string(), clearance: who.clearance.to_string() },
            policy: o.policy,
            require_labels: o.require_labels,
            redact_pii: o.redact_pii.is_some(),
            default_label: default,
            since: o.since,
            until: o.until,
            exported_at: now,
        };
        let mut w = BundleWriter::create(&o.out, o.archive, settings)?;
        let mut denied_ranges: Vec<[u64; 2]> = vec![];
        let mut denied_events = 0u64;
        let mut pii_counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut failed: Option<PlatformError> = None;
        let total = th.last_seq;
        let in_range = |t: Timestamp| o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t < u);
        let log = &self.log;
        // The export re-derives the tenant chain as it streams: a bundle of a log that does not
        // verify is refused (exit 5) rather than handed to an auditor to discover.
        let mut chain = custos_eventlog::record::GENESIS;
        let mut expect_seq = 1u64;
        log.backend().scan(&Query { tenant: Some(o.tenant.clone()), ..Default::default() }, &mut |rec| {
            if rec.header.global_seq > head.size {
                return Ok(false);
            }
            let tchain = rec.tenant_chain;
            let h = rec.header.clone();
            let step = (|| -> Result<(), PlatformError> {
                chain = custos_eventlog::record::link(custos_eventlog::record::TENANT_CHAIN_PREFIX, &chain, &h.entry_hash());
                if h.tenant_seq != expect_seq || chain != tchain {
                    return Err(PlatformError::Integrity(format!(
                        "the log of {} does not verify at seq {} (tenant_seq {}); run `custos verify` before exporting",
                        o.tenant, h.global_seq, h.tenant_seq
                    )));
                }
                expect_seq += 1;
                if rec.body.is_none() {
                    return Ok(w.record(&h, &tchain, Status::Purged, None, rec.purged_by, None)?);
                }
                if !in_range(h.occurred_at) {
                    return Ok(w.record(&h, &tchain, Status::OutOfRange, None, None, None)?);
                }
                if decide(who.clearance, h.label, default, o.require_labels).is_err() {
                    denied_events += 1;
                    push_range(&mut denied_ranges, h.tenant_seq);
                    match o.policy {
                        Policy::Deny => w.record(&h, &tchain, Status::Denied, None, None, None)?,
                        Policy::Redact => {
                            let line = EventLine {
                                header: LineHeader::from_header(&h),
                                salt: None,
                                actor: None,
                                data: None,
                                redacted: true,
                                redaction: Some(Redaction::Policy),
                                redaction_counts: None,
                            };
                            w.record(&h, &tchain, Status::Redacted, Some(Redaction::Policy), None, Some(&line))?
                        }
                    }
                    return Ok(());
                }
                let ev = log.open_record(rec)?;
                let mut data = ev.data.unwrap_or(serde_json::Value::Null);
                let counts = o.redact_pii.as_ref().map(|r| r.redact_json(&mut data)).filter(|c| !c.is_empty());
                let (status, redaction) =
                    if counts.is_some() { (Status::Redacted, Some(Redaction::Pii)) } else { (Status::Exported, None) };
                if let Some(c) = &counts {
                    for (k, v) in c {
                        *pii_counts.entry(k.clone()).or_default() += v;
                    }
                }
                let line = EventLine {
                    header: LineHeader::from_header(&h),
                    // The salt of a redacted line is withheld: with it, low-entropy originals could be brute-forced.
                    salt: if counts.is_some() { None } else { ev.salt.map(hex::encode) },
                    actor: ev.actor,
                    data: Some(data),
                    redacted: counts.is_some(),
                    redaction,
                    redaction_counts: counts,
                };
                Ok(w.record(&h, &tchain, status, redaction, None, Some(&line))?)
            })();
            progress(h.tenant_seq, total);
            match step {
                Ok(()) => Ok(true),
                Err(e) => {
                    failed = Some(e);
                    Ok(false)
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }

        // Artifacts stored within the exported log prefix and time range.
        let mut denied_artifacts = vec![];
        for a in log.backend().artifacts(Some(&o.tenant))? {
            if a.stored_seq > head.size || !in_range(a.created_at) {
                continue;
            }
            let eff = a.label.unwrap_or(default);
            let line = ArtifactLine {
                artifact_id: a.id.clone(),
                name: a.name.clone(),
                size: a.size,
                sha256: hex::encode(a.sha256),
                label: a.label.map(|l| l.as_str().to_string()),
                effective_label: eff.as_str().to_string(),
                stored_seq: a.stored_seq,
                status: String::new(),
                path: None,
                purged_at: None,
            };
            match (decide(who.clearance, a.label, default, o.require_labels), a.purged_at) {
                // Lifecycle destroyed the content: the bundle still accounts for the artifact.
                (Ok(()), Some(at)) => w.purged_artifact(line, at)?,
                (Ok(()), None) => {
                    let dek = log
                        .keys()?
                        .dek(log.backend(), &a.tenant, a.dek_version)?
                        .ok_or_else(|| PlatformError::Integrity(format!("the key of artifact {} is missing", a.id)))?;
                    let mut write = |out: &mut dyn std::io::Write| -> Result<u64, BundleError> {
                        Ok(artifact::open_stream(log.backend(), &dek, &a, out, &mut |_| {})?)
                    };
                    w.artifact(line, Some(&mut write))?;
                }
                (Err(d), _) => {
                    w.count("artifacts_denied", 1);
                    if o.policy == Policy::Redact {
                        w.artifact(line, None)?;
                    }
                    denied_artifacts.push(json!({
                        "tenant": o.tenant, "items": "artifact", "artifact_id": a.id, "label": eff.as_str(),
                        "clearance": who.clearance.as_str(), "actor": who.name, "reason": d.reason(), "policy": o.policy.as_str(),
                    }));
                }
            }
        }

        let (tsize, thead) = w.head();
        let keys = log.keys()?;
        let sk = keys.signing()?;
        let signed_at = now_micros();
        let sig = sk.sign(&checkpoint_message(head.size, &head.chain, signed_at, Some((&o.tenant, tsize, &thead))));
        let cp = BundleCheckpoint {
            size: head.size,
            global_head: hex::encode(head.chain),
            signed_at,
            tenant: o.tenant.clone(),
            tenant_size: tsize,
            tenant_head: hex::encode(thead),
            signature: hex::encode(sig),
        };
        let fin = w.finish(cp, &sk.public_key(), &|b| sk.sign(b).to_vec())?;
        let path = fin.path.display().to_string();

        let mut events: Vec<Pending> = denied_artifacts.into_iter().map(|d| governance("export_denied", d)).collect();
        if denied_events > 0 {
            events.push(governance(
                "export_denied",
                json!({
                    "tenant": o.tenant, "items": "events", "count": denied_events, "tenant_seqs": denied_ranges,
                    "clearance": who.clearance.as_str(), "actor": who.name, "policy": o.policy.as_str(),
                    "require_labels": o.require_labels,
                }),
            ));
        }
        events.push(governance(
            "export_created",
            json!({
                "tenant": o.tenant, "actor": who.name, "clearance": who.clearance.as_str(), "path": path,
                "archive": o.archive, "manifest_sha256": fin.manifest_sha256, "policy": o.policy.as_str(),
                "require_labels": o.require_labels, "redact_pii": o.redact_pii.is_some(), "pii_counts": pii_counts,
                "counts": fin.manifest.counts, "tenant_size": tsize, "tenant_head": hex::encode(thead), "log_size": head.size,
            }),
        ));
        let recorded = (|| -> Result<u64, PlatformError> {
            let mut a = self.log.appender()?;
            let seqs = a.push(&events)?;
            a.commit()?;
            Ok(seqs.last().copied().unwrap_or(0))
        })();
        let recorded_seq = match recorded {
            Ok(s) => s,
            Err(e) => {
                // An export that is not on record must not exist either.
                let _ = if o.archive { std::fs::remove_file(&fin.path) } else { std::fs::remove_dir_all(&fin.path) };
                return Err(e);
            }
        };
        Ok(ExportResult {
            tenant: o.tenant.clone(),
            export_date: format_ts(now),
            export_path: path,
            counts: fin.manifest.counts.clone(),
            total_items: fin.manifest.total_items,
            manifest_sha256: fin.manifest_sha256,
            recorded_seq,
        })
    }
}

/// Offline verification of a bundle (no store, no root key): see
/// [`custos_compliance::bundle::verify_bundle`]. Returns the report; `Err` only when the
/// bundle cannot be read at all.
pub fn verify_bundle_path(path: &Path, public_key: Option<&[u8]>, previous: Option<&Path>) -> (VerifyReport, Option<PlatformError>) {
    let mut rep = VerifyReport::default();
    let err = match verify_bundle(path, public_key, previous, &mut rep) {
        Ok(()) => None,
        Err(BundleError::Invalid { check, detail }) => {
            rep.failed_check = Some(check.to_string());
            rep.error = Some(detail.clone());
            Some(PlatformError::Integrity(format!("bundle check `{check}` failed: {detail}")))
        }
        Err(e) => {
            rep.error = Some(e.to_string());
            Some(e.into())
        }
    };
    (rep, err)
}
