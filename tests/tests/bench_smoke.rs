//! Guards the benchmark commands themselves: each suite runs end to end on a tiny
//! workload and reports every figure docs/PERFORMANCE.md quotes (the figures' values
//! are measured, not asserted — only that they exist and are sane).

use custos_tests::{custos, Run, TestResult};
use serde_json::Value;

fn rate_of(v: &Value, what: &str) -> f64 {
    v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["what"].as_str().is_some_and(|w| w.starts_with(what)))
        .map_or(0.0, |r| r["rate"].as_f64().unwrap_or(0.0))
}

#[test]
fn core_suite_reports_every_rate_and_ratio() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r =
        Run::capture(custos().args(["--json", "bench", "--suite", "core", "--events", "3000", "--tenants", "5", "--dir"]).arg(dir.path()));
    r.expect(0);
    let v = r.json();
    for what in [
        "custos ingest",
        "custos decrypting scan",
        "custos verify with keys",
        "custos verify without keys",
        "raw rusqlite insert",
        "raw rusqlite scan",
        "AES-256-GCM open",
        "SHA-256",
    ] {
        assert!(rate_of(&v, what) > 0.0, "no rate for {what}: {v}");
    }
    for ratio in ["ingest_vs_raw_insert", "decrypting_scan_vs_raw_scan_plus_open", "verify_without_keys_events_per_s"] {
        assert!(v["ratios"][ratio].as_f64().is_some_and(|x| x > 0.0), "{ratio}: {v}");
    }
    assert!(v["stored_body_bytes"].as_u64().is_some_and(|b| b > 400), "{v}");
    // The bench's temp stores are gone afterwards.
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn server_suite_measures_each_level_without_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = Run::capture(
        custos()
            .env("CUSTOS_BENCH_SECS", "0.3")
            .env("CUSTOS_BENCH_CLIENTS", "1,4")
            .env("CUSTOS_BENCH_EVENTS_PER_REQUEST", "2")
            .args(["--json", "bench", "--suite", "server", "--events", "2000", "--tenants", "3", "--dir"])
            .arg(dir.path()),
    );
    r.expect(0);
    let v = r.json();
    assert_eq!(v["backend"], "sqlite");
    let levels = v["levels"].as_array().cloned().unwrap_or_default();
    assert_eq!(levels.iter().map(|l| l["clients"].as_u64().unwrap_or(0)).collect::<Vec<_>>(), [1, 4]);
    for l in &levels {
        assert!(l["events"].as_u64().is_some_and(|e| e > 0) && l["errors"] == 0, "{l}");
        assert!(l["p99_ms"].as_f64().is_some_and(|p| p > 0.0) && l["mean_batch_events"].as_f64().is_some_and(|m| m >= 2.0), "{l}");
        assert_eq!(l["events"].as_u64(), l["requests"].as_u64().map(|r| r * 2), "{l}");
    }
    assert!(v["raw_insert_rows_per_s"].as_f64().is_some_and(|x| x > 0.0), "{v}");
    Ok(())
}
