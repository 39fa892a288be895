use custos_domain::{format_ts, now_micros};
use custos_eventlog::keyring::kek_id;
use serde::Serialize;
use serde_json::json;

use crate::{Platform, PlatformError, Principal};

/// A KEK version as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KekInfo {
    /// `key-001`, ...
    pub key_id: String,
    /// Algorithm.
    pub alg: String,
    /// `active`, `decrypt-only` or `retired`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    /// Whole days since creation.
    pub age_days: i64,
    /// DEKs it wraps.
    pub wraps_deks: u64,
}

impl Platform {
    /// Every KEK version.
    pub fn keys_list(&self) -> Result<Vec<KekInfo>, PlatformError> {
        let deks = self.log.backend().deks(None)?;
        let now = now_micros();
        Ok(self
            .log
            .backend()
            .keks()?
            .into_iter()
            .map(|k| KekInfo {
                wraps_deks: deks.iter().filter(|d| d.kek_id == k.key_id).count() as u64,
                key_id: k.key_id,
                alg: "AES256-GCM".into(),
                status: k.status,
                created_at: format_ts(k.created_at),
                age_days: (now - k.created_at) / 86_400_000_000,
            })
            .collect())
    }

    /// The active KEK.
    pub fn keys_active(&self) -> Result<KekInfo, PlatformError> {
        self.keys_list()?
            .into_iter()
            .find(|k| k.status == "active")
            .ok_or_else(|| PlatformError::Integrity("the store has no active key-encryption key".into()))
    }

    /// The Ed25519 public key auditors verify checkpoints and bundles with (hex).
    pub fn public_key(&self) -> Result<String, PlatformError> {
        let s = self.log.backend().signing_key()?.ok_or_else(|| PlatformError::Integrity("the store has no signing key".into()))?;
        Ok(hex::encode(s.public_key))
    }

    /// New active KEK; the previous one becomes decrypt-only. One transaction with its `key_rotated` event.
    pub fn keys_rotate(&mut self, p: &Principal) -> Result<KekInfo, PlatformError> {
        let rows = self.log.backend().keks()?;
        let next = rows.iter().filter_map(|k| k.key_id.strip_prefix("key-")?.parse::<u32>().ok()).max().unwrap_or(0) + 1;
        let id = kek_id(next);
        let previous = rows.iter().find(|k| k.status == "active").map(|k| k.key_id.clone());
        let now = now_micros();
        let (_, keys) = self.log.parts_mut()?;
        let new_row = keys.new_kek(&id, now, true)?;
        let data = json!({"key_id": id, "alg": "AES256-GCM", "previous": previous});
        let ev = custos_domain::NewEvent {
            tenant: custos_domain::TenantId::system(),
            category: custos_domain::Category::Governance,
            kind: "key_rotated".into(),
            occurred_at: None,
            label: None,
            data,
        };
        let mut a = self.log.appender()?;
        a.push(&[custos_eventlog::Pending { event: ev, actor: p.name.clone() }])?;
        for mut r in rows.into_iter().filter(|k| k.status == "active") {
            r.status = "decrypt-only".into();
            a.tx().put_kek(&r)?;
        }
        a.tx().put_kek(&new_row)?;
        a.commit()?;
        Ok(KekInfo {
            key_id: id,
            alg: "AES256-GCM".into(),
            status: "active".into(),
            created_at: format_ts(now),
            age_days: 0,
            wraps_deks: 0,
        })
    }
}
