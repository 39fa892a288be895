use custos_domain::kinds::{ActorAdded, ActorDisabled};
use custos_domain::{Category, Clearance, NewEvent, Role, TenantId};
use custos_eventlog::backend::ActorRow;
use custos_eventlog::{Pending, Query};
use custos_projections::{ActorsView, Projection};
use serde::Serialize;

use crate::{Platform, PlatformError, Principal};

/// A newly created actor, with its token shown once.
#[derive(Debug, Serialize)]
pub struct NewActor {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Clearance.
    pub clearance: Clearance,
    /// The API token. Printed once; custos stores only its SHA-256.
    pub token: String,
}

/// An actor as listed (never with its token or token hash).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ActorInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Clearance.
    pub clearance: String,
    /// Disabled?
    pub disabled: bool,
}

fn check_name(name: &str) -> Result<(), PlatformError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'@')
        && !name.starts_with('<');
    if ok {
        Ok(())
    } else {
        Err(PlatformError::Input(format!("invalid actor name {name:?}: use 1-64 characters of letters, digits, '-', '_', '.', '@'")))
    }
}

impl Platform {
    /// Creates an actor: `actor_added` event and actor row in one transaction.
    pub(crate) fn create_actor(&mut self, name: &str, role: Role, clearance: Clearance, by: &str) -> Result<NewActor, PlatformError> {
        check_name(name)?;
        if self.log.backend().actors()?.iter().any(|a| a.name == name) {
            return Err(PlatformError::Input(format!("actor {name} already exists; pick another name")));
        }
        let token = custos_crypto::new_token()?;
        let hash = token.hash();
        let data = serde_json::to_value(ActorAdded { name: name.into(), role, clearance, token_sha256: hex::encode(hash) })
            .map_err(|e| PlatformError::Input(e.to_string()))?;
        let ev = NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: "actor_added".into(),
            occurred_at: None,
            label: None,
            data,
        };
        let mut a = self.log.appender()?;
        let seqs = a.push(&[Pending { event: ev, actor: by.into() }])?;
        let seq = seqs.first().copied().unwrap_or(0);
        a.tx().put_actor(&ActorRow {
            name: name.into(),
            role: role.to_string(),
            clearance: clearance.to_string(),
            token_hash: hash,
            disabled: false,
            created_seq: seq,
        })?;
        a.commit()?;
        Ok(NewActor { name: name.into(), role, clearance, token: token.expose().to_string() })
    }

    /// `custos actors add` (Admin).
    pub fn actors_add(&mut self, p: &Principal, name: &str, role: Role, clearance: Clearance) -> Result<NewActor, PlatformError> {
        self.create_actor(name, role, clearance, &p.name)
    }

    /// `custos actors list`.
    pub fn actors_list(&self) -> Result<Vec<ActorInfo>, PlatformError> {
        Ok(self
            .log
            .backend()
            .actors()?
            .into_iter()
            .map(|a| ActorInfo { name: a.name, role: a.role, clearance: a.clearance, disabled: a.disabled })
            .collect())
    }

    /// `custos actors disable NAME`. Refuses to disable the last enabled Admin.
    pub fn actors_disable(&mut self, p: &Principal, name: &str) -> Result<ActorInfo, PlatformError> {
        let all = self.log.backend().actors()?;
        let Some(row) = all.iter().find(|a| a.name == name).cloned() else {
            return Err(PlatformError::NotFound(format!("no actor named {name}; see `custos actors list`")));
        };
        if row.disabled {
            return Ok(ActorInfo { name: row.name, role: row.role, clearance: row.clearance, disabled: true });
        }
        let admins = all.iter().filter(|a| a.role == "Admin" && !a.disabled).count();
        if row.role == "Admin" && admins <= 1 {
            return Err(PlatformError::Input(format!("{name} is the last enabled Admin; add another Admin before disabling it")));
        }
        let data = serde_json::to_value(ActorDisabled { name: name.into() }).map_err(|e| PlatformError::Input(e.to_string()))?;
        let ev = NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: "actor_disabled".into(),
            occurred_at: None,
            label: None,
            data,
        };
        let mut a = self.log.appender()?;
        a.push(&[Pending { event: ev, actor: p.name.clone() }])?;
        let mut updated = row.clone();
        updated.disabled = true;
        a.tx().put_actor(&updated)?;
        a.commit()?;
        Ok(ActorInfo { name: row.name, role: row.role, clearance: row.clearance, disabled: true })
    }

    /// Folds the actors projection from `_system` and rewrites the actors table to match.
    /// Returns (actors, whether the table had drifted from the log).
    pub fn rebuild_actors(&mut self) -> Result<(usize, bool), PlatformError> {
        let mut view = ActorsView::default();
        self.log.read(&Query { tenant: Some(custos_domain::SYSTEM_TENANT.into()), ..Default::default() }, &mut |e| {
            view.apply(&e);
            Ok(true)
        })?;
        let mut rows = vec![];
        for a in view.actors.values() {
            let mut h = [0u8; 32];
            hex::decode_to_slice(&a.token_sha256, &mut h)
                .map_err(|_| PlatformError::Integrity(format!("actor {} has a malformed token hash", a.name)))?;
            rows.push(ActorRow {
                name: a.name.clone(),
                role: a.role.to_string(),
                clearance: a.clearance.to_string(),
                token_hash: h,
                disabled: a.disabled,
                created_seq: a.created_seq,
            });
        }
        let mut before = self.log.backend().actors()?;
        // The table lists by creation, the view by name: compare in one order.
        before.sort_by(|a, b| a.name.cmp(&b.name));
        let drifted = before != rows;
        if drifted {
            let (backend, _) = self.log.parts_mut()?;
            let mut tx = backend.begin()?;
            for r in &before {
                if !rows.iter().any(|x| x.name == r.name) {
                    // An actor row the log does not justify is removed by disabling it for good.
                    let mut r = r.clone();
                    r.disabled = true;
                    tx.put_actor(&r)?;
                }
            }
            for r in &rows {
                tx.put_actor(r)?;
            }
            tx.commit()?;
        }
        Ok((rows.len(), drifted))
    }
}
