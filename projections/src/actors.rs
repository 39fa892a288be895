use std::collections::BTreeMap;

use custos_domain::kinds::{ActorAdded, ActorDisabled};
use custos_domain::{Clearance, Role};
use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::Projection;

/// One actor as the log describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorState {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Clearance.
    pub clearance: Clearance,
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// Disabled actors cannot authenticate.
    pub disabled: bool,
    /// Seq of the `actor_added` event.
    pub created_seq: u64,
}

/// Actors folded from `actor_added` / `actor_disabled` in `_system`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorsView {
    /// By name.
    pub actors: BTreeMap<String, ActorState>,
}

impl Projection for ActorsView {
    fn apply(&mut self, ev: &Event) {
        if !ev.header.tenant.is_system() {
            return;
        }
        let Some(data) = &ev.data else { return };
        match ev.header.kind.as_str() {
            "actor_added" => {
                if let Ok(a) = serde_json::from_value::<ActorAdded>(data.clone()) {
                    self.actors.insert(
                        a.name.clone(),
                        ActorState {
                            name: a.name,
                            role: a.role,
                            clearance: a.clearance,
                            token_sha256: a.token_sha256,
                            disabled: false,
                            created_seq: ev.header.global_seq,
                        },
                    );
                }
            }
            "actor_disabled" => {
                if let Ok(a) = serde_json::from_value::<ActorDisabled>(data.clone()) {
                    if let Some(s) = self.actors.get_mut(&a.name) {
                        s.disabled = true;
                    }
                }
            }
            _ => {}
        }
    }
}
