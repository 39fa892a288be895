//! Settings that apply until the log records otherwise.

use std::collections::BTreeMap;

use crate::key_lifecycle::DEFAULT_ROTATION_DAYS;

/// Defaults an operator may change in `custos.toml`. Each is used only while the log
/// holds no recorded setting of its own (e.g. no `key_policy_set`), so two machines
/// with different config files still agree on anything that was ever recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// KEK rotation period in days when no `key_policy_set` was recorded.
    pub rotation_days: u32,
    /// Alert thresholds by name, in stored units (`custos_domain::alerts::parse_threshold`),
    /// used where no `alert_threshold_set` was recorded.
    pub alerts: BTreeMap<String, i64>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self { rotation_days: DEFAULT_ROTATION_DAYS, alerts: BTreeMap::new() }
    }
}
