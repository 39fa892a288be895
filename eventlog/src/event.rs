//! Events as read back: [`Event`] with `data` parsed into a `serde_json::Value` tree (for
//! projections that look inside), and [`RawEvent`] with the decrypted canonical bytes kept
//! as they are (for readers that only re-emit them: `events list`, HTTP listings).
//!
//! A stored body is `salt ‖ canonical {"actor":…,"data":…}` (FORMAT §3), and canonical
//! JSON is exactly what `serde_json` prints for a parsed value (sorted keys, compact, the
//! same escapes). So the stored text of `data` *is* its JSON output: re-emitting it
//! verbatim gives the same line as parsing and printing it, without building a tree.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use custos_crypto::Aead;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::backend::StoredRecord;
use crate::record::{split_body, Header, SALT_LEN};
use crate::LogError;

/// A decrypted (or purged) event as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The hashed header.
    pub header: Header,
    /// Actor (None when the body is purged or undecryptable).
    pub actor: Option<String>,
    /// Payload (None when the body is purged or undecryptable).
    pub data: Option<Value>,
    /// Salt of the commitment (exported in bundles).
    pub salt: Option<[u8; SALT_LEN]>,
    /// Global seq of the purge event, when purged.
    pub purged_by: Option<u64>,
}

impl Event {
    /// JSON form used by `events list` / `events show` (one JSONL line).
    pub fn to_json(&self) -> Value {
        let h = &self.header;
        let mut v = json!({
            "global_seq": h.global_seq,
            "tenant": h.tenant.as_str(),
            "tenant_seq": h.tenant_seq,
            "category": h.category.as_str(),
            "kind": h.kind,
            "occurred_at": custos_domain::format_ts(h.occurred_at),
            "recorded_at": custos_domain::format_ts(h.recorded_at),
            "commitment": hex::encode(h.commitment),
            "actor": self.actor,
            "data": self.data,
        });
        if let Some(l) = h.label {
            v["label"] = json!(l.as_str());
        }
        if let Some(p) = self.purged_by {
            v["purged_by"] = json!(p);
        }
        v
    }
}

/// A decrypted body kept as text: where the actor and data texts sit inside it.
#[derive(Debug, Clone, PartialEq)]
struct Opened {
    /// The commitment's salt.
    salt: [u8; SALT_LEN],
    /// `canonical {"actor":…,"data":…}`, validated UTF-8 once.
    canon: String,
    /// The actor's JSON text (a quoted string); None for `null`.
    actor: Option<Range<usize>>,
    /// The data's JSON text; None for `null` or absent.
    data: Option<Range<usize>>,
}

/// An event whose decrypted `data` is kept as its canonical JSON text, not parsed.
///
/// One allocation per event (the body buffer, decrypted in place); the header's
/// tenant and kind are the only other owned parts.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The hashed header.
    pub header: Header,
    /// Global seq of the purge event, when purged.
    pub purged_by: Option<u64>,
    opened: Option<Opened>,
}

impl RawEvent {
    /// True when the body was decrypted (false when purged or withheld).
    pub fn has_body(&self) -> bool {
        self.opened.is_some()
    }

    /// Drops the decrypted body: the header stays, actor and data read as `null`.
    pub fn withhold(&mut self) {
        self.opened = None;
    }

    /// Salt of the commitment.
    pub fn salt(&self) -> Option<&[u8; SALT_LEN]> {
        self.opened.as_ref().map(|o| &o.salt)
    }

    /// The data's canonical JSON text (`null` when absent); None when there is no body.
    pub fn data_json(&self) -> Option<&str> {
        let o = self.opened.as_ref()?;
        Some(o.data.as_ref().map_or("null", |r| text(&o.canon, r)))
    }

    /// The actor's JSON text (a quoted, escaped string), when there is one.
    pub fn actor_json(&self) -> Option<&str> {
        let o = self.opened.as_ref()?;
        o.actor.as_ref().map(|r| text(&o.canon, r))
    }

    /// Parses the kept text into an [`Event`].
    pub fn into_event(self) -> Result<Event, LogError> {
        let seq = self.header.global_seq;
        let bad = |e: serde_json::Error| LogError::integrity(seq, format!("body is not JSON: {e}"));
        let (actor, data, salt) = match &self.opened {
            None => (None, None, None),
            Some(o) => {
                let actor = o.actor.as_ref().map(|r| serde_json::from_str::<String>(text(&o.canon, r))).transpose().map_err(bad)?;
                let data = o.data.as_ref().map_or(Ok(Value::Null), |r| serde_json::from_str(text(&o.canon, r))).map_err(bad)?;
                (actor, Some(data), Some(o.salt))
            }
        };
        Ok(Event { header: self.header, actor, data, salt, purged_by: self.purged_by })
    }

    /// Writes the `events list` line of this event (without the newline): byte for byte
    /// what `serde_json::to_writer(w, &event.to_json())` writes for the parsed event.
    pub fn write_json(&self, w: &mut dyn Write) -> io::Result<()> {
        let h = &self.header;
        let mut hexbuf = [0u8; 64];
        // Encoding 32 bytes into 64 cannot fail; fall back to an empty field rather than panic.
        let commitment = hex::encode_to_slice(h.commitment, &mut hexbuf).ok().and_then(|_| std::str::from_utf8(&hexbuf).ok()).unwrap_or("");
        // Keys in sorted order, as a serde_json map prints them.
        w.write_all(b"{\"actor\":")?;
        w.write_all(self.actor_json().unwrap_or("null").as_bytes())?;
        write!(w, ",\"category\":\"{}\",\"commitment\":\"{commitment}\",\"data\":", h.category.as_str())?;
        w.write_all(self.data_json().unwrap_or("null").as_bytes())?;
        write!(w, ",\"global_seq\":{},\"kind\":", h.global_seq)?;
        string(w, &h.kind)?;
        if let Some(l) = h.label {
            write!(w, ",\"label\":\"{}\"", l.as_str())?;
        }
        write!(w, ",\"occurred_at\":\"{}\"", custos_domain::format_ts(h.occurred_at))?;
        if let Some(p) = self.purged_by {
            write!(w, ",\"purged_by\":{p}")?;
        }
        write!(w, ",\"recorded_at\":\"{}\",\"tenant\":", custos_domain::format_ts(h.recorded_at))?;
        string(w, h.tenant.as_str())?;
        write!(w, ",\"tenant_seq\":{}}}", h.tenant_seq)
    }
}

fn string(w: &mut dyn Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(w, s).map_err(io::Error::other)
}

fn text<'a>(canon: &'a str, r: &Range<usize>) -> &'a str {
    // Ranges are cut at JSON token boundaries, so they are always on char boundaries.
    canon.get(r.clone()).unwrap_or("null")
}

/// Finds the AEAD key of a tenant's DEK version.
pub(crate) type DekLookup<'a> = dyn FnMut(&str, u32) -> Result<Option<Arc<Aead>>, LogError> + 'a;

/// Decrypts a stored record's body in place; None when it is purged.
fn open_body(rec: &mut StoredRecord, dek_of: &mut DekLookup<'_>) -> Result<Option<Vec<u8>>, LogError> {
    let seq = rec.header.global_seq;
    let (Some(nonce), Some(mut body)) = (rec.nonce, rec.body.take()) else {
        return Ok(None);
    };
    let dek = dek_of(rec.header.tenant.as_str(), rec.dek_version)?
        .ok_or_else(|| LogError::integrity(seq, format!("DEK v{} of {} is missing", rec.dek_version, rec.header.tenant)))?;
    let mut aad = Vec::with_capacity(160);
    rec.header.aad_into(rec.dek_version, &mut aad);
    custos_crypto::open_in_place(&dek, &nonce, &aad, &mut body)
        .map_err(|_| LogError::integrity(seq, "body does not decrypt under its header"))?;
    if body.len() < SALT_LEN {
        return Err(LogError::integrity(seq, "body too short"));
    }
    Ok(Some(body))
}

/// Opens a stored record with a DEK lookup `(tenant, version) -> key`, parsing `data`.
pub(crate) fn decrypt_record(mut rec: StoredRecord, dek_of: &mut DekLookup<'_>) -> Result<Event, LogError> {
    let seq = rec.header.global_seq;
    let Some(body) = open_body(&mut rec, dek_of)? else {
        return Ok(Event { header: rec.header, actor: None, data: None, salt: None, purged_by: rec.purged_by });
    };
    let (salt, canon) = split_body(&body).ok_or_else(|| LogError::integrity(seq, "body too short"))?;
    // A typed outer struct: no map for the envelope, no copy of the actor.
    #[derive(serde::Deserialize)]
    struct Body {
        actor: Option<String>,
        // Present in every body custos writes; `null` data stays `Some(Null)`.
        #[serde(default)]
        data: Value,
    }
    let b: Body = serde_json::from_slice(canon).map_err(|e| LogError::integrity(seq, format!("body is not JSON: {e}")))?;
    Ok(Event { header: rec.header, actor: b.actor, data: Some(b.data), salt: Some(*salt), purged_by: rec.purged_by })
}

/// Opens a stored record, keeping `data` as its canonical text (validated, not parsed
/// into a tree).
pub(crate) fn decrypt_raw(mut rec: StoredRecord, dek_of: &mut DekLookup<'_>) -> Result<RawEvent, LogError> {
    let seq = rec.header.global_seq;
    let Some(mut plain) = open_body(&mut rec, dek_of)? else {
        return Ok(RawEvent { header: rec.header, purged_by: rec.purged_by, opened: None });
    };
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(plain.get(..SALT_LEN).unwrap_or_default());
    plain.drain(..SALT_LEN);
    // One UTF-8 check here; the envelope parse below and every later read rely on it.
    let canon = String::from_utf8(plain).map_err(|_| LogError::integrity(seq, "body is not UTF-8"))?;
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        actor: Option<&'a RawValue>,
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
    }
    let b: Body<'_> = serde_json::from_str(&canon).map_err(|e| LogError::integrity(seq, format!("body is not JSON: {e}")))?;
    if b.actor.is_some_and(|a| !a.get().starts_with('"')) {
        return Err(LogError::integrity(seq, "body actor is not a string"));
    }
    // Where each borrowed text starts inside `canon` (both point into it).
    let base = canon.as_ptr() as usize;
    let range = |r: &RawValue| {
        let start = r.get().as_ptr() as usize - base;
        start..start + r.get().len()
    };
    let actor = b.actor.map(range);
    let data = b.data.map(range);
    Ok(RawEvent { header: rec.header, purged_by: rec.purged_by, opened: Some(Opened { salt, canon, actor, data }) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_crypto::{canonical, open_in_place, seal_in_place, SecretKey};
    use custos_domain::{Category, Clearance, TenantId};
    use proptest::prelude::*;

    fn sealed(key: &Aead, header: &Header, actor: &str, data: &Value, purged: bool) -> StoredRecord {
        let mut plain = vec![9u8; SALT_LEN];
        canonical::write_actor_data(actor, data, &mut plain);
        let nonce = [5u8; 12];
        let mut body = plain;
        seal_in_place(key, &nonce, &header.aad(1), &mut body).unwrap_or_default();
        StoredRecord {
            header: header.clone(),
            dek_version: 1,
            nonce: (!purged).then_some(nonce),
            body: (!purged).then_some(body),
            tenant_chain: [0; 32],
            global_chain: [0; 32],
            purged_by: purged.then_some(99),
        }
    }

    fn test_key() -> Arc<Aead> {
        Arc::new(Aead::new(&SecretKey::generate().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}")))
    }

    fn header(kind: &str, label: Option<Clearance>) -> Header {
        Header {
            global_seq: 42,
            tenant: TenantId::parse_any("acme-corp").unwrap_or_else(|e| panic!("{e}")),
            tenant_seq: 7,
            category: Category::Runs,
            kind: kind.into(),
            occurred_at: 1_700_000_000_123_456,
            recorded_at: 1_700_000_001_000_000,
            label,
            commitment: [0xab; 32],
        }
    }

    fn both(key: &Arc<Aead>, rec: StoredRecord) -> (Event, RawEvent) {
        let k = key.clone();
        let mut look = |_: &str, _: u32| Ok(Some(k.clone()));
        let parsed = decrypt_record(rec.clone(), &mut look).unwrap_or_else(|e| panic!("{e}"));
        let raw = decrypt_raw(rec, &mut look).unwrap_or_else(|e| panic!("{e}"));
        (parsed, raw)
    }

    fn line(raw: &RawEvent) -> String {
        let mut v = vec![];
        raw.write_json(&mut v).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(v).unwrap_or_default()
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e12f64..1e12).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn raw_line_is_the_parsed_line(data in json_value(), actor in ".{0,10}", kind in "[a-z_]{1,12}", labelled in any::<bool>()) {
            let key = test_key();
            let h = header(&kind, labelled.then_some(Clearance::Confidential));
            let (parsed, raw) = both(&key, sealed(&key, &h, &actor, &data, false));
            // The raw text is what was committed to, token for token.
            let committed = String::from_utf8(canonical::to_vec(&data)).unwrap_or_default();
            prop_assert_eq!(raw.data_json(), Some(committed.as_str()));
            if has_float(&data) {
                // serde_json parses decimal floats inexactly (no `float_roundtrip`), so a
                // parsed-and-reprinted float may differ in its last digit: the raw line
                // keeps the stored token instead. Every other field is the same.
                let mut a: Value = serde_json::from_str(&line(&raw)).unwrap_or_default();
                let mut b = parsed.to_json();
                a["data"] = Value::Null;
                b["data"] = Value::Null;
                prop_assert_eq!(a, b);
            } else {
                prop_assert_eq!(line(&raw), serde_json::to_string(&parsed.to_json()).unwrap_or_default());
                prop_assert_eq!(parsed.data.as_ref(), Some(&data));
            }
            prop_assert_eq!(parsed.actor.as_deref(), Some(actor.as_str()));
            prop_assert_eq!(raw.salt(), Some(&[9u8; SALT_LEN]));
            prop_assert_eq!(raw.clone().into_event().unwrap_or_else(|e| panic!("{e}")), parsed);
        }
    }

    fn has_float(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_f64(),
            Value::Array(a) => a.iter().any(has_float),
            Value::Object(m) => m.values().any(has_float),
            _ => false,
        }
    }

    #[test]
    fn purged_and_withheld_events_print_null_body() {
        let key = test_key();
        let h = header("run_completed", None);
        let (parsed, raw) = both(&key, sealed(&key, &h, "ops", &json!({"a": 1}), true));
        assert!(!raw.has_body());
        assert_eq!(line(&raw), serde_json::to_string(&parsed.to_json()).unwrap_or_default());
        assert!(line(&raw).contains("\"purged_by\":99"));

        let (mut parsed, mut raw) = both(&key, sealed(&key, &h, "ops \"quoted\"\n", &json!({"a": "é\u{1}"}), false));
        assert_eq!(line(&raw), serde_json::to_string(&parsed.to_json()).unwrap_or_default());
        raw.withhold();
        parsed.actor = None;
        parsed.data = None;
        assert_eq!(line(&raw), serde_json::to_string(&parsed.to_json()).unwrap_or_default());
        assert!(line(&raw).contains("\"actor\":null") && line(&raw).contains("\"data\":null"));
    }

    #[test]
    fn a_body_that_is_not_the_envelope_is_an_integrity_error() {
        let key = test_key();
        let h = header("run_completed", None);
        for bad in [&b"not json"[..], br#"{"actor":5,"data":{}}"#, br#"{"actor":"a","data":{"#] {
            let mut body = vec![1u8; SALT_LEN];
            body.extend_from_slice(bad);
            let nonce = [1u8; 12];
            seal_in_place(&key, &nonce, &h.aad(1), &mut body).unwrap_or_default();
            let mut check = body.clone();
            assert!(open_in_place(&key, &nonce, &h.aad(1), &mut check).is_ok());
            let rec = StoredRecord {
                header: h.clone(),
                dek_version: 1,
                nonce: Some(nonce),
                body: Some(body),
                tenant_chain: [0; 32],
                global_chain: [0; 32],
                purged_by: None,
            };
            let k = key.clone();
            let r = decrypt_raw(rec, &mut |_, _| Ok(Some(k.clone())));
            assert!(matches!(r, Err(LogError::Integrity { seq: 42, .. })), "{bad:?}: {r:?}");
        }
    }
}
