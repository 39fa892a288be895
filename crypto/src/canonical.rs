//! Canonical JSON, the byte string that commitments are computed over.
//!
//! Rules (specified with test vectors in `docs/FORMAT.md`): UTF-8; object keys
//! sorted by their UTF-8 bytes; no whitespace outside strings; strings escaped
//! exactly as `serde_json` escapes them; numbers exactly as `serde_json` prints
//! them. It does not depend on `serde_json`'s map ordering feature flags.

use serde_json::Value;

/// Appends the canonical encoding of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                if let Some(x) = m.get(k) {
                    write(x, out);
                }
            }
            out.push(b'}');
        }
    }
}

/// Canonical encoding of `v` as a fresh buffer.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// Appends the canonical encoding of `{"actor": actor, "data": data}` — the
/// committed body — without building (or cloning into) an intermediate object.
/// Equal to `write(&json!({"actor": actor, "data": data}))` because "actor" < "data".
pub fn write_actor_data(actor: &str, data: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"actor\":");
    write_str(actor, out);
    out.extend_from_slice(b",\"data\":");
    write(data, out);
    out.push(b'}');
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is the specification; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn vectors() {
        // These vectors are repeated in docs/FORMAT.md; change both together.
        let cases = [
            (json!({"b": 1, "a": [true, null, "x"]}), r#"{"a":[true,null,"x"],"b":1}"#),
            (
                json!({"actor": "admin", "data": {"usd_micros": 2100, "model": "gpt-4o"}}),
                r#"{"actor":"admin","data":{"model":"gpt-4o","usd_micros":2100}}"#,
            ),
            (json!({"é": "\u{1}\"\\", "Z": 1.5, "a": -0}), r#"{"Z":1.5,"a":0,"é":"\u0001\"\\"}"#),
            (json!([]), "[]"),
            (json!({}), "{}"),
        ];
        for (v, want) in cases {
            assert_eq!(String::from_utf8(to_vec(&v)).unwrap_or_default(), want);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn actor_data_shortcut_equals_the_object(actor in ".{0,12}", v in arb_json()) {
            let mut fast = vec![];
            write_actor_data(&actor, &v, &mut fast);
            prop_assert_eq!(fast, to_vec(&json!({"actor": actor, "data": v})));
        }

        #[test]
        fn canonical_is_stable_parseable_and_idempotent(v in arb_json()) {
            let c = to_vec(&v);
            let back: Value = serde_json::from_slice(&c).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(to_vec(&back), c);
        }
    }
}
