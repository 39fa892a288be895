//! Append bodies: a JSON array of events (`application/json`) or one event per
//! line (`application/x-ndjson`). Every event is checked with the same rules as
//! `custos ingest` ([`custos_domain::parse_event_line`]) before anything is
//! queued, so a request is all-or-nothing and a bad one never reaches the log.

use custos_domain::{now_micros, parse_event_line, NewEvent};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// The accepted body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `[{event}, ...]`.
    JsonArray,
    /// `{event}\n{event}\n...`.
    Ndjson,
}

impl Format {
    /// From a Content-Type header value (parameters such as `charset` are ignored).
    pub fn from_content_type(ct: Option<&str>) -> Result<Self, ApiError> {
        let essence = ct.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Ok(Format::JsonArray),
            "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => Ok(Format::Ndjson),
            _ => Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type {:?} is not accepted: send a JSON array as application/json or one event per line as application/x-ndjson",
                    ct.unwrap_or("")
                ),
            )),
        }
    }
}

/// Parses and validates every event of `body`; the first bad one rejects all,
/// naming its 0-based array index or 1-based line.
pub fn parse(body: &[u8], format: Format) -> Result<Vec<NewEvent>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_event(format!("the body is not UTF-8: {e}")))?;
    let now = now_micros();
    match format {
        Format::JsonArray => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                ApiError::bad_event(format!(
                    "the body must be a JSON array of events ({e}); send one event per line as application/x-ndjson instead if you prefer"
                ))
            })?;
            items
                .iter()
                .enumerate()
                .map(|(i, raw)| {
                    parse_event_line(raw.get(), now)
                        .map_err(|e| ApiError { index: Some(i as u64), ..ApiError::bad_event(format!("event at index {i}: {e}")) })
                })
                .collect()
        }
        Format::Ndjson => {
            let mut out = vec![];
            for (i, l) in text.split('\n').enumerate() {
                let t = l.trim();
                if t.is_empty() {
                    continue;
                }
                let line = i as u64 + 1;
                let ev = parse_event_line(t, now)
                    .map_err(|e| ApiError { line: Some(line), ..ApiError::bad_event(format!("line {line}: {e}")) })?;
                out.push(ev);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"tenant":"acme","category":"queue","kind":"job","data":{"x":1}}"#;

    #[test]
    fn json_array_and_ndjson() {
        let arr = format!("[{GOOD},{GOOD}]");
        assert_eq!(parse(arr.as_bytes(), Format::JsonArray).map(|v| v.len()).ok(), Some(2));
        let nd = format!("{GOOD}\n\n{GOOD}\r\n{GOOD}\n");
        assert_eq!(parse(nd.as_bytes(), Format::Ndjson).map(|v| v.len()).ok(), Some(3));
        assert_eq!(parse(b"[]", Format::JsonArray).map(|v| v.len()).ok(), Some(0));
    }

    #[test]
    fn bad_input_names_its_position() {
        let bad = r#"{"tenant":"acme","category":"nope","kind":"job","data":{}}"#;
        let e = parse(format!("[{GOOD},{bad}]").as_bytes(), Format::JsonArray).err();
        assert_eq!(e.as_ref().map(|e| (e.status.as_u16(), e.index)), Some((422, Some(1))));
        let e = parse(format!("{GOOD}\n{GOOD}\n{bad}\n").as_bytes(), Format::Ndjson).err();
        assert_eq!(e.as_ref().map(|e| (e.status.as_u16(), e.line)), Some((422, Some(3))));
        for body in ["{", "{}", "[1]", r#"{"tenant":"acme"}"#, "[{\"tenant\":5}]"] {
            assert_eq!(parse(body.as_bytes(), Format::JsonArray).err().map(|e| e.status.as_u16()), Some(422), "{body}");
        }
        assert_eq!(parse(&[0xff, 0xfe], Format::Ndjson).err().map(|e| e.status.as_u16()), Some(422));
    }

    #[test]
    fn content_types() {
        assert_eq!(Format::from_content_type(Some("application/json; charset=utf-8")).ok(), Some(Format::JsonArray));
        assert_eq!(Format::from_content_type(Some("application/x-ndjson")).ok(), Some(Format::Ndjson));
        assert_eq!(Format::from_content_type(Some("text/plain")).err().map(|e| e.status.as_u16()), Some(415));
        assert_eq!(Format::from_content_type(None).err().map(|e| e.status.as_u16()), Some(415));
    }
}
