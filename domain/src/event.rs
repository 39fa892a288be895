use serde::Deserialize;
use serde_json::Value;

use crate::{kinds, parse_ts, Category, Clearance, DomainError, TenantId, Timestamp, MAX_FUTURE_SKEW_MICROS};

/// An event before the log has given it sequence numbers, a time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stream it belongs to.
    pub tenant: TenantId,
    /// Retention class and export file.
    pub category: Category,
    /// Event kind (`run_completed`, ...).
    pub kind: String,
    /// When it happened (defaults to the log's clock at append).
    pub occurred_at: Option<Timestamp>,
    /// Optional classification label.
    pub label: Option<Clearance>,
    /// Payload.
    pub data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    tenant: String,
    category: String,
    kind: String,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    label: Option<String>,
    data: Value,
}

/// Parses and validates one ingest line `{"tenant","category","kind","occurred_at"?,"label"?,"data"}`.
///
/// `now` is the caller's clock, used to reject times more than
/// [`MAX_FUTURE_SKEW_MICROS`] in the future.
pub fn parse_event_line(line: &str, now: Timestamp) -> Result<NewEvent, DomainError> {
    let l: Line = serde_json::from_str(line).map_err(|e| DomainError::BadEvent(e.to_string()))?;
    let tenant = TenantId::parse(&l.tenant)?;
    let category: Category = l.category.parse()?;
    kinds::validate_ingest(category, &l.kind, &l.data)?;
    let occurred_at = match l.occurred_at {
        Some(s) => {
            let t = parse_ts(&s)?;
            if t > now.saturating_add(MAX_FUTURE_SKEW_MICROS) {
                return Err(DomainError::FutureTime(s));
            }
            Some(t)
        }
        None => None,
    };
    let label = l.label.as_deref().map(str::parse).transpose()?;
    Ok(NewEvent { tenant, category, kind: l.kind, occurred_at, label, data: l.data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::now_micros;

    #[test]
    fn parses_and_rejects() {
        let now = now_micros();
        let e = parse_event_line(r#"{"tenant":"acme","category":"queue","kind":"job","data":{"x":1}}"#, now);
        assert!(e.is_ok_and(|e| e.tenant.as_str() == "acme" && e.occurred_at.is_none()));
        let cases = [
            "not json",
            r#"{"tenant":"Acme","category":"queue","kind":"job","data":{}}"#,
            r#"{"tenant":"acme","category":"nope","kind":"job","data":{}}"#,
            r#"{"tenant":"acme","category":"queue","kind":"job","occurred_at":"2999-01-01T00:00:00Z","data":{}}"#,
            r#"{"tenant":"acme","category":"costs","kind":"cost_recorded","data":{"run_id":1}}"#,
            r#"{"tenant":"_system","category":"queue","kind":"job","data":{}}"#,
            r#"{"tenant":"acme","category":"queue","kind":"job","data":{},"extra":1}"#,
        ];
        for c in cases {
            assert!(parse_event_line(c, now).is_err(), "{c}");
        }
    }
}
