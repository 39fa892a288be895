//! Key lifecycle (DESIGN §4): rotation policy and status, rewrap, retire,
//! re-encrypt and root-key rotation. Every step is a `_system` event; every long
//! operation commits in batches so a crash leaves a store that verifies and a rerun
//! that finishes (docs/OPERATIONS.md "Key lifecycle").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use custos_crypto::RootKey;
use custos_domain::{format_ts, now_micros, Category, NewEvent, TenantId, Timestamp};
use custos_eventlog::{EventLog, Pending, Query};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{Platform, PlatformError, Principal};

/// Default rotation period of the active KEK, days.
pub const DEFAULT_ROTATION_DAYS: u32 = 90;
const DAY_MICROS: i64 = 86_400_000_000;

/// How long operations batch their work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleOpts {
    /// Items (DEKs or bodies) per transaction.
    pub batch: u64,
    /// Pause between batches, ms (test hook only).
    pub pause_ms: u64,
}

impl Default for LifecycleOpts {
    fn default() -> Self {
        Self { batch: 1000, pause_ms: 0 }
    }
}

impl LifecycleOpts {
    /// Defaults, overridden by the test hooks `CUSTOS_TEST_BATCH` (items per transaction)
    /// and `CUSTOS_TEST_SLOW_MS` (sleep between batches and before a root rotation commits),
    /// which exist so crash tests can SIGKILL operations mid-way. Not for production use.
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
        let d = Self::default();
        Self { batch: get("CUSTOS_TEST_BATCH").map(|b| b.max(1)).unwrap_or(d.batch), pause_ms: get("CUSTOS_TEST_SLOW_MS").unwrap_or(0) }
    }

    fn pause(&self) {
        if self.pause_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.pause_ms));
        }
    }
}

/// The key rotation policy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Days after which the active KEK is due for rotation.
    pub rotation_days: u32,
    /// Whether this is the default (no `key_policy_set` recorded).
    pub default: bool,
    /// When it was set (RFC 3339), if set.
    pub set_at: Option<String>,
    /// Who set it, if set.
    pub set_by: Option<String>,
}

/// `keys status`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    /// Active KEK id.
    pub active_key_id: String,
    /// Its creation time.
    pub active_key_created_at: String,
    /// Whole days since then.
    pub active_key_age_days: i64,
    /// Policy period.
    pub rotation_days: u32,
    /// When the next rotation is due (RFC 3339).
    pub next_rotation_due: String,
    /// True when the active KEK is older than the policy allows.
    pub rotation_overdue: bool,
    /// KEKs by status.
    pub keys: BTreeMap<String, u64>,
    /// DEKs in the store.
    pub deks: u64,
    /// DEKs wrapped by a KEK other than the active one (`keys rewrap` moves them).
    pub deks_pending_rewrap: u64,
    /// Decrypt-only KEKs that wrap nothing (`keys retire` may destroy them).
    pub retirable: Vec<String>,
    /// Human warnings (also a reason to page someone).
    pub warnings: Vec<String>,
}

/// `keys rewrap`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RewrapResult {
    /// The KEK every DEK is now wrapped by.
    pub key_id: String,
    /// DEKs re-wrapped by this run.
    pub rewrapped: u64,
    /// DEKs that were already wrapped by it.
    pub already_current: u64,
    /// DEKs in the store.
    pub deks: u64,
    /// Transactions committed.
    pub batches: u64,
}

/// `keys retire`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetireResult {
    /// The key.
    pub key_id: String,
    /// False when it was already retired (nothing done, nothing recorded).
    pub retired: bool,
    /// Whether the WAL was truncated (false: a concurrent reader held it; rerun later).
    pub wal_scrubbed: bool,
}

/// `keys reencrypt`, per tenant.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReencryptResult {
    /// Tenant.
    pub tenant: String,
    /// DEK versions the bodies were sealed with before.
    pub old_versions: Vec<u32>,
    /// First DEK version of this re-encryption (bodies end up at it or above).
    pub new_version: u32,
    /// Bodies re-sealed by this run.
    pub reencrypted: u64,
    /// Bodies that were already at the new version (resumed runs, appends meanwhile).
    pub already_current: u64,
    /// Old DEK versions destroyed.
    pub destroyed_versions: Vec<u32>,
    /// Stored artifacts re-sealed under the new version (all their chunks, one
    /// transaction per artifact).
    pub artifacts_resealed: u64,
    /// Old DEK versions kept because an artifact is still sealed with them (only when
    /// an artifact appeared under an old version mid-run; a rerun re-seals it).
    pub kept_for_artifacts: Vec<u32>,
    /// Snapshots dropped (they rebuild from the log on next use).
    pub snapshots_dropped: u64,
    /// True when this run finished an interrupted one.
    pub resumed: bool,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Bodies per second.
    pub events_per_sec: f64,
}

/// `keys rotate-root`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RootRotation {
    /// The new root key file.
    pub new_root_key_file: String,
    /// KEKs re-wrapped.
    pub keks: Vec<String>,
    /// Whether the signing key was re-wrapped.
    pub signing_key: bool,
    /// Whether the WAL was truncated afterwards.
    pub wal_scrubbed: bool,
}

fn system_event(kind: &str, data: Value, actor: &str) -> Pending {
    Pending {
        event: NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: kind.into(),
            occurred_at: None,
            label: None,
            data,
        },
        actor: actor.into(),
    }
}

impl Platform {
    /// Decrypted `_system` events of `kind`, oldest first.
    pub(crate) fn system_events_of(&self, kind: &str) -> Result<Vec<(Timestamp, Option<String>, Value)>, PlatformError> {
        let q = Query { tenant: Some(TenantId::system().as_str().into()), kind: Some(kind.into()), ..Default::default() };
        let mut out = vec![];
        self.log.read(&q, &mut |e| {
            out.push((e.header.recorded_at, e.actor, e.data.unwrap_or(Value::Null)));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The rotation policy in force (the last `key_policy_set`, else the configured
    /// default, else 90 days).
    pub fn keys_policy(&self) -> Result<KeyPolicy, PlatformError> {
        let last = self.system_events_of("key_policy_set")?.into_iter().rev().find_map(|(at, by, d)| {
            let days = u32::try_from(d.get("rotation_days")?.as_u64()?).ok()?;
            Some(KeyPolicy { rotation_days: days, default: false, set_at: Some(format_ts(at)), set_by: by })
        });
        Ok(last.unwrap_or(KeyPolicy { rotation_days: self.defaults().rotation_days, default: true, set_at: None, set_by: None }))
    }

    /// Sets the rotation period (1..=3650 days), recorded as `key_policy_set`.
    pub fn keys_policy_set(&mut self, p: &Principal, days: u32) -> Result<KeyPolicy, PlatformError> {
        if !(1..=3650).contains(&days) {
            return Err(PlatformError::Input(format!("--rotation-days {days} is out of range; give 1 to 3650 days (default 90)")));
        }
        let previous = self.keys_policy()?;
        self.append_system("key_policy_set", json!({"rotation_days": days, "previous_rotation_days": previous.rotation_days}), &p.name)?;
        self.keys_policy()
    }

    /// Policy, age of the active KEK, whether rotation is overdue, pending rewraps and retirable keys.
    pub fn keys_status(&self) -> Result<KeyStatus, PlatformError> {
        let policy = self.keys_policy()?;
        let keks = self.log.backend().keks()?;
        let active = keks
            .iter()
            .find(|k| k.status == "active")
            .ok_or_else(|| PlatformError::Integrity("the store has no active key-encryption key".into()))?;
        let deks = self.log.backend().deks(None)?;
        let now = now_micros();
        // The same due date `custos alerts` fires on.
        let due = custos_domain::alerts::rotation_due(active.created_at, policy.rotation_days);
        let age = (now - active.created_at) / DAY_MICROS;
        let overdue = now >= due;
        let mut by_status = BTreeMap::new();
        for k in &keks {
            *by_status.entry(k.status.clone()).or_insert(0u64) += 1;
        }
        let pending = deks.iter().filter(|d| d.kek_id != active.key_id).count() as u64;
        let retirable: Vec<String> = keks
            .iter()
            .filter(|k| k.status == "decrypt-only" && !deks.iter().any(|d| d.kek_id == k.key_id))
            .map(|k| k.key_id.clone())
            .collect();
        let mut warnings = vec![];
        if overdue {
            warnings.push(format!(
                "active key {} is {age} days old; the policy rotates every {} days: run `custos keys rotate` then `custos keys rewrap`",
                active.key_id, policy.rotation_days
            ));
        }
        if pending > 0 {
            warnings.push(format!("{pending} DEK(s) are still wrapped by an older key: run `custos keys rewrap`"));
        }
        Ok(KeyStatus {
            active_key_id: active.key_id.clone(),
            active_key_created_at: format_ts(active.created_at),
            active_key_age_days: age,
            rotation_days: policy.rotation_days,
            next_rotation_due: format_ts(due),
            rotation_overdue: overdue,
            keys: by_status,
            deks: deks.len() as u64,
            deks_pending_rewrap: pending,
            retirable,
            warnings,
        })
    }

    /// Re-wraps every DEK under the active KEK, `opts.batch` per transaction, without touching
    /// bodies; records `keys_rewrapped`. Idempotent; a crash leaves each DEK wrapped by a live KEK.
    pub fn keys_rewrap(
        &mut self,
        p: &Principal,
        opts: LifecycleOpts,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RewrapResult, PlatformError> {
        let active = self.keys_active()?.key_id;
        let deks = self.log.backend().deks(None)?;
        let pending = deks.iter().filter(|d| d.kek_id != active).count() as u64;
        progress(0, pending);
        let (mut done, mut batches) = (0u64, 0u64);
        loop {
            let n = self.log.rewrap_batch(opts.batch)?;
            if n == 0 {
                break;
            }
            done += n;
            batches += 1;
            progress(done, pending.max(done));
            opts.pause();
        }
        let total = self.log.backend().deks(None)?.len() as u64;
        let res = RewrapResult { key_id: active, rewrapped: done, already_current: total.saturating_sub(done), deks: total, batches };
        self.append_system(
            "keys_rewrapped",
            json!({"key_id": res.key_id, "rewrapped": res.rewrapped, "already_current": res.already_current, "deks": res.deks}),
            &p.name,
        )?;
        Ok(res)
    }

    /// Destroys a decrypt-only KEK that wraps no DEK: its wrapped bytes leave the database,
    /// its free pages and the WAL; the row stays as `retired` for history. Records `key_retired`.
    pub fn keys_retire(&mut self, p: &Principal, key_id: &str) -> Result<RetireResult, PlatformError> {
        let Some(row) = self.log.backend().keks()?.into_iter().find(|k| k.key_id == key_id) else {
            return Err(PlatformError::NotFound(format!("no key {key_id:?} in this store; `custos keys list` shows the keys")));
        };
        if row.status == "retired" {
            return Ok(RetireResult { key_id: key_id.into(), retired: false, wal_scrubbed: self.log.backend().reclaim()? });
        }
        let mut a = self.log.appender()?;
        // Checked inside the write transaction so a concurrent rotate or append cannot slip between.
        let row = a
            .tx()
            .keks()?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| PlatformError::NotFound(format!("key {key_id} vanished; rerun `custos keys list`")))?;
        if row.status == "active" {
            return Err(PlatformError::Input(format!(
                "{key_id} is the active key and cannot be retired; run `custos keys rotate`, then `custos keys rewrap`, then retire it"
            )));
        }
        let n = a.tx().count_deks_wrapped_by(key_id)?;
        if n > 0 {
            return Err(PlatformError::Input(format!(
                "{key_id} still wraps {n} DEK(s); run `custos keys rewrap` to move them to the active key, then retire it"
            )));
        }
        a.tx().put_kek(&custos_eventlog::backend::KekRow { wrapped: None, status: "retired".into(), ..row })?;
        a.push(&[system_event("key_retired", json!({"key_id": key_id}), &p.name)])?;
        a.commit()?;
        // Dropping the unwrapped key zeroizes it.
        self.log.parts_mut()?.1.forget_kek(key_id);
        let scrubbed = self.log.backend().reclaim()?;
        Ok(RetireResult { key_id: key_id.into(), retired: true, wal_scrubbed: scrubbed })
    }

    /// Re-encrypts one tenant (`Some`) or every live tenant including `_system` (`None`)
    /// under a new DEK version, `opts.batch` bodies per transaction, then destroys the old
    /// versions and drops the tenant's snapshots. Resumes an interrupted run.
    pub fn keys_reencrypt(
        &mut self,
        p: &Principal,
        tenant: Option<&str>,
        opts: LifecycleOpts,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> Result<Vec<ReencryptResult>, PlatformError> {
        let heads = self.log.backend().tenant_heads()?;
        let tenants: Vec<String> = match tenant {
            Some(t) => {
                TenantId::parse_any(t)?;
                let h = heads.iter().find(|h| h.tenant == t).ok_or_else(|| {
                    PlatformError::NotFound(format!("no tenant {t:?} in this store; `custos events list` shows the tenants"))
                })?;
                if h.deleted_at.is_some() {
                    return Err(PlatformError::Input(format!("tenant {t} was deleted (crypto-shredded); there is nothing to re-encrypt")));
                }
                vec![t.to_string()]
            }
            None => heads.iter().filter(|h| h.deleted_at.is_none()).map(|h| h.tenant.clone()).collect(),
        };
        // Interrupted runs: a start event without its finish event.
        let finished: BTreeSet<(String, u64)> = self
            .system_events_of("tenant_reencrypted")?
            .into_iter()
            .filter_map(|(_, _, d)| Some((d.get("tenant")?.as_str()?.to_string(), d.get("new_version")?.as_u64()?)))
            .collect();
        let mut unfinished: BTreeMap<String, u32> = BTreeMap::new();
        for (_, _, d) in self.system_events_of("tenant_reencrypt_started")? {
            let (Some(t), Some(v)) = (d.get("tenant").and_then(Value::as_str), d.get("new_version").and_then(Value::as_u64)) else {
                continue;
            };
            if !finished.contains(&(t.to_string(), v)) {
                unfinished.insert(t.to_string(), v as u32);
            }
        }
        let mut out = vec![];
        for t in tenants {
            out.push(self.reencrypt_one(p, &t, unfinished.get(&t).copied(), opts, progress)?);
        }
        // Destroyed DEK rows leave the WAL once, after every tenant is done.
        self.log.backend().reclaim()?;
        Ok(out)
    }

    fn reencrypt_one(
        &mut self,
        p: &Principal,
        tenant: &str,
        resume: Option<u32>,
        opts: LifecycleOpts,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> Result<ReencryptResult, PlatformError> {
        let t0 = Instant::now();
        let existing = self.log.backend().deks(Some(tenant))?;
        let resume = resume.filter(|v| existing.iter().any(|d| d.version == *v));
        let (target, resumed) = match resume {
            Some(v) => (v, true),
            None => (self.reencrypt_start(p, tenant)?, false),
        };
        let old_versions: Vec<u32> = self.log.backend().deks(Some(tenant))?.iter().map(|d| d.version).filter(|v| *v < target).collect();
        let total = self.count_bodies_below(tenant, target)?;
        progress(tenant, 0, total);
        let (mut after, mut done) = (0u64, 0u64);
        loop {
            let b = self.log.reencrypt_batch(tenant, target, after, opts.batch)?;
            if b.reencrypted == 0 {
                break;
            }
            done += b.reencrypted;
            after = b.last_tenant_seq;
            progress(tenant, done, total.max(done));
            opts.pause();
        }
        let artifacts_resealed = self.reseal_artifacts(tenant, target, opts)?;
        // Finish: destroy old versions nothing references, drop snapshots, record it — one transaction.
        // A version an artifact still uses (one stored under it after the re-seal pass) is
        // kept: destroying it would make that artifact unreadable, which is deletion.
        let mut a = self.log.appender()?;
        let counts = a.tx().body_counts_by_dek(tenant)?;
        let artifacts = a.tx().artifact_counts_by_dek(tenant)?;
        let used = |c: &[(u32, u64)], v: u32| c.iter().any(|(cv, n)| *cv == v && *n > 0);
        let (mut destroyed, mut kept_for_artifacts) = (vec![], vec![]);
        for v in old_versions.iter().copied().filter(|v| !used(&counts, *v)) {
            if used(&artifacts, v) {
                kept_for_artifacts.push(v);
            } else if a.tx().delete_deks(tenant, Some(v))? > 0 {
                destroyed.push(v);
            }
        }
        let snapshots = a.tx().delete_snapshots(tenant)?;
        let current: u64 = counts.iter().filter(|(v, _)| *v >= target).map(|(_, n)| n).sum();
        let secs = t0.elapsed().as_secs_f64();
        let res = ReencryptResult {
            tenant: tenant.into(),
            old_versions,
            new_version: target,
            reencrypted: done,
            already_current: current.saturating_sub(done),
            destroyed_versions: destroyed,
            artifacts_resealed,
            kept_for_artifacts,
            snapshots_dropped: snapshots,
            resumed,
            seconds: secs,
            events_per_sec: if secs > 0.0 { done as f64 / secs } else { 0.0 },
        };
        let data = json!({
            "tenant": tenant, "old_versions": res.old_versions, "new_version": target, "reencrypted": done,
            "already_current": res.already_current, "destroyed_versions": res.destroyed_versions,
            "artifacts_resealed": res.artifacts_resealed, "kept_for_artifacts": res.kept_for_artifacts,
            "snapshots_dropped": snapshots, "resumed": resumed,
        });
        a.push(&[system_event("tenant_reencrypted", data, &p.name)])?;
        a.commit()?;
        self.log.keys()?.forget_tenant(tenant);
        Ok(res)
    }

    /// Makes the new active DEK version and records `tenant_reencrypt_started`, in one transaction.
    fn reencrypt_start(&mut self, p: &Principal, tenant: &str) -> Result<u32, PlatformError> {
        let mut a = self.log.appender()?;
        let mut cur = a
            .tx()
            .active_dek(tenant)?
            .ok_or_else(|| PlatformError::NotFound(format!("tenant {tenant} has no data key (no events yet?)")))?;
        let v = cur.version + 1;
        let (row, _) = a.keys().new_dek(tenant, v, now_micros())?;
        cur.active = false;
        a.tx().put_dek(&cur)?;
        a.tx().put_dek(&row)?;
        let old: Vec<(u32, u64)> = a.tx().body_counts_by_dek(tenant)?;
        let bodies: u64 = old.iter().map(|(_, n)| n).sum();
        a.push(&[system_event(
            "tenant_reencrypt_started",
            json!({"tenant": tenant, "new_version": v, "previous_version": cur.version, "bodies": bodies}),
            &p.name,
        )])?;
        a.commit()?;
        Ok(v)
    }

    /// Re-seals the content of every live artifact of `tenant` still sealed below
    /// `target`, one transaction per artifact (so a crash leaves each artifact wholly
    /// old or wholly new, and a rerun continues with the rest). Returns artifacts re-sealed.
    fn reseal_artifacts(&mut self, tenant: &str, target: u32, opts: LifecycleOpts) -> Result<u64, PlatformError> {
        let id = TenantId::parse_any(tenant)?;
        let todo: Vec<_> =
            self.log.backend().artifacts(Some(tenant))?.into_iter().filter(|a| a.purged_at.is_none() && a.dek_version < target).collect();
        let mut n = 0;
        for art in todo {
            let old = {
                let keys = self.log.keys()?;
                keys.dek(self.log.backend(), tenant, art.dek_version)?.ok_or_else(|| {
                    PlatformError::Integrity(format!(
                        "artifact {} is sealed with DEK v{} of {tenant}, which is missing",
                        art.id, art.dek_version
                    ))
                })?
            };
            let mut a = self.log.appender()?;
            // The active DEK, with its seal count charged (and rolled over past the bound).
            let (version, new) = a.dek_for(&id, art.chunks)?;
            custos_compliance::artifact::reseal(a.tx(), &art, &old, &new, version)?;
            a.tx().set_artifact_dek(&art.id, version)?;
            a.commit()?;
            n += 1;
            opts.pause();
        }
        Ok(n)
    }

    fn count_bodies_below(&self, tenant: &str, target: u32) -> Result<u64, PlatformError> {
        Ok(self.log.backend().body_counts_by_dek(tenant)?.into_iter().filter(|(v, _)| *v < target).map(|(_, n)| n).sum())
    }

    /// Generates a new root key into `new_path` (0600, refuses an existing file), re-wraps
    /// every live KEK and the signing key under it in one transaction with `root_key_rotated`.
    /// If the transaction fails the new file is removed again and the old key still works.
    pub fn keys_rotate_root(&mut self, p: &Principal, new_path: &Path, opts: LifecycleOpts) -> Result<RootRotation, PlatformError> {
        let new_root = RootKey::create(new_path).map_err(|e| PlatformError::Input(e.to_string()))?;
        if let Some(dir) = new_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The new file's directory entry must be durable before the store depends on it.
            if let Ok(f) = std::fs::File::open(dir) {
                let _ = f.sync_all();
            }
        }
        opts.pause();
        let shown = new_path.display().to_string();
        let res = (|| -> Result<custos_eventlog::RootRewrap, PlatformError> {
            let mut a = self.log.appender()?;
            let rw = EventLog::rewrap_under_root(&mut a, &new_root)?;
            let data = json!({"new_root_key_file": shown, "keks": rw.keks, "signing_key": rw.signing_key});
            a.push(&[system_event("root_key_rotated", data, &p.name)])?;
            a.commit()?;
            Ok(rw)
        })();
        let rw = match res {
            Ok(rw) => rw,
            Err(e) => {
                let _ = std::fs::remove_file(new_path);
                return Err(e);
            }
        };
        self.log.parts_mut()?.1.set_root(&new_root);
        let scrubbed = self.log.backend().reclaim()?;
        Ok(RootRotation { new_root_key_file: shown, keks: rw.keks, signing_key: rw.signing_key, wal_scrubbed: scrubbed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_eventlog::EventLog;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn reencrypt_drops_snapshots_sealed_with_old_deks_and_policy_is_validated() -> R {
        let d = tempfile::tempdir()?;
        let store = d.path().join("s.db");
        let store_s = store.to_str().ok_or("path")?;
        let key = d.path().join("k");
        let (mut p, init) = Platform::init(store_s, &key, "admin")?;
        let admin = p.authenticate(Some(&init.admin.token), "test")?;
        let line = r#"{"tenant":"acme","category":"runs","kind":"run_started","data":{"run_id":"r1"}}"#;
        p.ingest(&admin, &mut line.as_bytes(), &crate::IngestOptions::default(), &mut |_| {})?;

        // A snapshot sealed with acme's DEK v1, written through a second handle on the store.
        let root = RootKey::load(&key)?;
        let mut keys_log = EventLog::open(store_s)?;
        keys_log.unlock(&root)?;
        let mut tx_log = EventLog::open(store_s)?;
        tx_log.unlock(&root)?;
        {
            let (backend, _) = tx_log.parts_mut()?;
            let mut tx = backend.begin()?;
            custos_projections::snapshot::save(&keys_log, tx.as_mut(), "acme", "budget", 1, &json!({"spent": 5}))?;
            tx.commit()?;
        }
        assert!(custos_projections::snapshot::load::<Value>(p.log(), "acme", "budget")?.is_some());

        let res = p.keys_reencrypt(&admin, Some("acme"), LifecycleOpts::default(), &mut |_, _, _| {})?;
        assert_eq!(res[0].snapshots_dropped, 1);
        assert_eq!(res[0].destroyed_versions, vec![1]);
        assert!(p.log().backend().snapshot("acme", "budget")?.is_none());

        assert!(matches!(p.keys_policy_set(&admin, 0), Err(PlatformError::Input(_))));
        assert_eq!(p.keys_policy()?.rotation_days, DEFAULT_ROTATION_DAYS);
        assert_eq!(p.keys_policy_set(&admin, 30)?.rotation_days, 30);
        assert!(!p.keys_status()?.rotation_overdue);
        Ok(())
    }

    /// A long-lived handle (the server's writer) must follow key changes made by other
    /// processes: new DEKs go under the KEK active now, a retired KEK is never used again,
    /// and a KEK it cannot open (root rotated elsewhere) stops appends with a clear error.
    #[test]
    fn a_long_lived_handle_follows_rotation_and_retirement_by_another_process() -> R {
        let d = tempfile::tempdir()?;
        let store = d.path().join("s.db");
        let store_s = store.to_str().ok_or("path")?;
        let key = d.path().join("k");
        let (mut server, init) = Platform::init(store_s, &key, "admin")?;
        let admin = server.authenticate(Some(&init.admin.token), "test")?;
        let ingest = |p: &mut Platform, tenant: &str| -> Result<(), PlatformError> {
            let line = format!(r#"{{"tenant":"{tenant}","category":"runs","kind":"run_started","data":{{"run_id":"r1"}}}}"#);
            p.ingest(&admin, &mut line.as_bytes(), &crate::IngestOptions::default(), &mut |_| {}).map(|_| ())
        };
        ingest(&mut server, "before")?;
        let kek_of = |p: &Platform, tenant: &str| -> Result<String, custos_eventlog::LogError> {
            Ok(p.log().backend().deks(Some(tenant))?.into_iter().map(|r| r.kek_id).next().unwrap_or_default())
        };
        assert_eq!(kek_of(&server, "before")?, "key-001");

        let mut cli = Platform::open(store_s, &key)?;
        cli.keys_rotate(&admin)?;
        ingest(&mut server, "after-rotate")?;
        assert_eq!(kek_of(&server, "after-rotate")?, "key-002", "the writer picked up the new active KEK");

        cli.keys_rewrap(&admin, LifecycleOpts::default(), &mut |_, _| {})?;
        assert!(cli.keys_retire(&admin, "key-001")?.retired);
        ingest(&mut server, "after-retire")?;
        ingest(&mut server, "before")?;
        assert_eq!(kek_of(&server, "after-retire")?, "key-002");
        let rep =
            Platform::open(store_s, &key)?.verify(&custos_eventlog::VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
        assert!(rep.ok, "a fresh process decrypts everything the long-lived one wrote");

        // Root rotated elsewhere, then a new KEK under the new root: the old process refuses to append.
        let new_root = d.path().join("k2");
        cli.keys_rotate_root(&admin, &new_root, LifecycleOpts::default())?;
        let mut cli2 = Platform::open(store_s, &new_root)?;
        cli2.keys_rotate(&admin)?;
        let err = ingest(&mut server, "stale-root").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("root key was rotated") && err.contains("restart"), "{err}");
        Ok(())
    }
}
