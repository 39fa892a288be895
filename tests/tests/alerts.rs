//! Guards `custos alerts` end to end: a healthy store exits 0, each alert fires on a store
//! built to trip it (and only it) with exit 10, thresholds are recorded and change the
//! evaluation, RBAC, the webhook POST (a loopback listener) and its failure (exit 1), the
//! config-file defaults, and the gauges on `/metrics`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use custos_domain::{format_ts, now_micros};
use custos_tests::{line_at, Run, Store, TestResult};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// A store whose retention just ran: nothing fires.
fn healthy() -> Store {
    let s = Store::new();
    s.run(&["retention", "run", "--yes"]).expect(0);
    s
}

fn alerts(s: &Store, extra: &[&str]) -> Run {
    let mut args = vec!["--json", "alerts"];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn firing(r: &Run) -> Vec<String> {
    let j = r.json();
    let mut v: Vec<String> = j["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["firing"] == true)
        .filter_map(|a| a["name"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

fn alert(r: &Run, name: &str) -> Value {
    r.json()["alerts"].as_array().into_iter().flatten().find(|a| a["name"] == name).cloned().unwrap_or(Value::Null)
}

fn at(offset: i64) -> String {
    format_ts(now_micros() + offset)
}

fn run_line(tenant: &str, status: &str, redactions: u64) -> String {
    line_at(
        tenant,
        "runs",
        "run_completed",
        &at(-HOUR),
        json!({"run_id": format!("r-{status}-{redactions}-{}", now_micros()), "workflow": "w", "status": status, "provider": "openai",
               "model": "gpt-4o", "tokens_in": 1, "tokens_out": 1, "duration_ms": 5, "redactions": redactions}),
    )
}

fn cost(s: &Store, tenant: &str, run: &str, usd: &str) {
    s.run(&[
        "cost",
        "record",
        "--tenant",
        tenant,
        "--run",
        run,
        "--provider",
        "openai",
        "--model",
        "gpt-4o",
        "--tokens-in",
        "1",
        "--tokens-out",
        "1",
        "--usd",
        usd,
    ])
    .expect(0);
}

#[test]
fn healthy_store_exits_0_and_reports_every_alert() -> TestResult {
    let s = healthy();
    s.ingest(&[run_line("acme", "ok", 0), run_line("acme", "ok", 0)].join("\n"));
    let r = alerts(&s, &[]);
    r.expect(0);
    let j = r.json();
    assert_eq!(j["firing"], 0, "{j}");
    let names: Vec<&str> = j["alerts"].as_array().into_iter().flatten().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "redacted_rate",
            "avg_cost_per_run",
            "failure_rate",
            "budget_utilisation",
            "checkpoint_pending",
            "checkpoint_expiring",
            "key_rotation_overdue",
            "retention_overdue",
            "hold_review_overdue"
        ]
    );
    for a in j["alerts"].as_array().into_iter().flatten() {
        for k in ["name", "firing", "value", "threshold", "unit", "detail"] {
            assert!(a.get(k).is_some(), "missing {k}: {a}");
        }
    }
    assert_eq!(alert(&r, "failure_rate")["value"], 0.0);
    // Human output exits 0 too and names every alert.
    let h = s.run(&["alerts"]);
    h.expect(0);
    assert!(h.stdout.contains("0 firing") && h.stdout.contains("hold_review_overdue"), "{}", h.stdout);
    Ok(())
}

#[test]
fn redacted_rate_fires_above_ten_percent() -> TestResult {
    let s = healthy();
    s.ingest(&[run_line("acme", "ok", 2), run_line("acme", "ok", 0)].join("\n"));
    let r = alerts(&s, &[]);
    r.expect(10);
    assert_eq!(firing(&r), ["redacted_rate"]);
    assert_eq!(alert(&r, "redacted_rate")["value"], 0.5);
    // Outside the window it no longer counts.
    alerts(&s, &["--since", "30m"]).expect(0);
    Ok(())
}

#[test]
fn failure_rate_fires_and_human_output_lists_firing_first() -> TestResult {
    let s = healthy();
    s.ingest(&[run_line("acme", "failed", 0), run_line("acme", "ok", 0), run_line("globex", "ok", 0)].join("\n"));
    let r = alerts(&s, &[]);
    r.expect(10);
    assert_eq!(firing(&r), ["failure_rate"]);
    // Per tenant: globex alone has no failures.
    alerts(&s, &["--tenant", "globex"]).expect(0);
    let h = s.run(&["alerts"]);
    h.expect(10);
    let first = h.stdout.lines().nth(1).unwrap_or_default();
    assert!(first.starts_with("FIRING") && first.contains("failure_rate"), "{}", h.stdout);
    assert!(h.stderr.contains("1 alert(s) firing"), "{}", h.stderr);
    Ok(())
}

#[test]
fn average_cost_per_run_fires_above_the_threshold_and_alerts_set_changes_it() -> TestResult {
    let s = healthy();
    cost(&s, "acme", "r1", "0.02");
    cost(&s, "acme", "r2", "0.0");
    // $0.02 over 2 runs = exactly $0.01: not above.
    alerts(&s, &[]).expect(0);
    cost(&s, "acme", "r2", "0.000001");
    let r = alerts(&s, &[]);
    r.expect(10);
    assert_eq!(firing(&r), ["avg_cost_per_run"]);
    s.run(&["alerts", "set", "avg_cost_per_run", "0.05"]).expect(0);
    alerts(&s, &[]).expect(0);
    Ok(())
}

#[test]
fn budget_utilisation_fires_at_the_soft_threshold() -> TestResult {
    let s = healthy();
    s.run(&["alerts", "set", "avg_cost_per_run", "100"]).expect(0);
    s.run(&["budget", "set", "--tenant", "acme", "--daily", "1"]).expect(0);
    cost(&s, "acme", "r1", "0.79");
    alerts(&s, &[]).expect(0);
    cost(&s, "acme", "r2", "0.01");
    let r = alerts(&s, &[]);
    r.expect(10);
    assert_eq!(firing(&r), ["budget_utilisation"]);
    let a = alert(&r, "budget_utilisation");
    assert!(a["detail"].as_str().unwrap_or_default().contains("acme daily"), "{a}");
    assert_eq!(a["threshold"], 0.8);
    Ok(())
}

#[test]
fn old_pending_checkpoint_fires_after_48_hours() -> TestResult {
    let s = healthy();
    s.run(&["alerts", "set", "retention_overdue", "8760"]).expect(0);
    s.run(&["approvals", "create", "--tenant", "acme", "--dag-run", "d", "--prompt", "p", "--id", "cp-old"]).expect(0);
    alerts(&s, &["--at", &at(47 * HOUR)]).expect(0);
    let r = alerts(&s, &["--at", &at(49 * HOUR)]);
    r.expect(10);
    assert_eq!(firing(&r), ["checkpoint_pending"]);
    let d = alert(&r, "checkpoint_pending")["detail"].as_str().unwrap_or_default().to_string();
    assert!(d.contains("cp-old") && d.contains("acme"), "{d}");
    // Decided checkpoints are not pending.
    s.run(&["approvals", "approve", "cp-old"]).expect(0);
    alerts(&s, &["--at", &at(49 * HOUR)]).expect(0);
    Ok(())
}

#[test]
fn checkpoint_expiring_within_6_hours_fires() -> TestResult {
    let s = healthy();
    s.run(&["approvals", "create", "--tenant", "acme", "--dag-run", "d", "--prompt", "p", "--id", "cp-soon", "--expires-in", "7h"])
        .expect(0);
    alerts(&s, &[]).expect(0);
    let r = alerts(&s, &["--at", &at(2 * HOUR)]);
    r.expect(10);
    assert_eq!(firing(&r), ["checkpoint_expiring"]);
    assert!(alert(&r, "checkpoint_expiring")["detail"].as_str().unwrap_or_default().contains("cp-soon"));
    // Past its expiry it is no longer pending: nothing to warn about.
    alerts(&s, &["--at", &at(8 * HOUR)]).expect(0);
    Ok(())
}

#[test]
fn key_rotation_overdue_fires_past_the_policy() -> TestResult {
    let s = healthy();
    s.run(&["alerts", "set", "retention_overdue", "8760"]).expect(0);
    alerts(&s, &["--at", &at(89 * DAY)]).expect(0);
    let r = alerts(&s, &["--at", &at(91 * DAY)]);
    r.expect(10);
    assert_eq!(firing(&r), ["key_rotation_overdue"]);
    let a = alert(&r, "key_rotation_overdue");
    assert_eq!(a["threshold"], 90.0);
    assert!(a["detail"].as_str().unwrap_or_default().contains("key-001"), "{a}");
    // Rotating makes it healthy again.
    s.run(&["keys", "rotate"]).expect(0);
    alerts(&s, &["--at", &at(89 * DAY)]).expect(0);
    Ok(())
}

#[test]
fn retention_never_run_or_older_than_26_hours_fires() -> TestResult {
    let s = Store::new();
    let r = alerts(&s, &[]);
    r.expect(10);
    assert_eq!(firing(&r), ["retention_overdue"]);
    assert!(alert(&r, "retention_overdue")["value"].is_null());
    s.run(&["retention", "run", "--yes"]).expect(0);
    alerts(&s, &[]).expect(0);
    alerts(&s, &["--at", &at(25 * HOUR)]).expect(0);
    let r = alerts(&s, &["--at", &at(27 * HOUR)]);
    r.expect(10);
    assert_eq!(firing(&r), ["retention_overdue"]);
    // A dry run is not a run.
    s.run(&["retention", "run", "--dry-run"]).expect(0);
    alerts(&s, &["--at", &at(27 * HOUR)]).expect(10);
    Ok(())
}

#[test]
fn hold_past_its_review_date_fires_and_holds_show_the_date() -> TestResult {
    let s = healthy();
    s.run(&["alerts", "set", "retention_overdue", "8760"]).expect(0);
    s.ingest(&run_line("acme", "ok", 0));
    let review = at(DAY);
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "matter 7", "--id", "CASE-1", "--review-by", &review]).expect(0);
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "no date", "--id", "CASE-2"]).expect(0);
    let holds = s.run(&["--json", "compliance", "holds"]).json();
    let h1 = holds["holds"].as_array().into_iter().flatten().find(|h| h["hold_id"] == "CASE-1").cloned().unwrap_or_default();
    assert!(h1["review_by"].is_string(), "{holds}");
    let h2 = holds["holds"].as_array().into_iter().flatten().find(|h| h["hold_id"] == "CASE-2").cloned().unwrap_or_default();
    assert!(h2["review_by"].is_null(), "{holds}");
    assert!(s.run(&["compliance", "holds"]).stdout.contains("REVIEW BY"));

    alerts(&s, &["--at", &at(DAY - HOUR)]).expect(0);
    let r = alerts(&s, &["--at", &at(2 * DAY)]);
    r.expect(10);
    assert_eq!(firing(&r), ["hold_review_overdue"]);
    let d = alert(&r, "hold_review_overdue")["detail"].as_str().unwrap_or_default().to_string();
    assert!(d.contains("CASE-1") && !d.contains("CASE-2"), "{d}");
    s.run(&["compliance", "release", "--tenant", "acme", "--hold", "CASE-1"]).expect(0);
    alerts(&s, &["--at", &at(2 * DAY)]).expect(0);

    // A review date in the past or unparsable is refused.
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "x", "--review-by", "2020-01-01"]).expect(1);
    s.run(&["compliance", "hold", "--tenant", "acme", "--reason", "x", "--review-by", "soon"]).expect(1);
    Ok(())
}

#[test]
fn alerts_set_records_validates_and_needs_compliance() -> TestResult {
    let s = healthy();
    s.ingest(&[run_line("acme", "failed", 0), run_line("acme", "ok", 0), run_line("acme", "ok", 0), run_line("acme", "ok", 0)].join("\n"));
    alerts(&s, &[]).expect(10);
    let set = s.run(&["--json", "alerts", "set", "failure_rate", "30%"]);
    set.expect(0);
    assert_eq!(set.json()["source"], "recorded");
    assert_eq!(set.json()["value"], 0.3);
    alerts(&s, &[]).expect(0);
    let ev = s.system_events("alert_threshold_set");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["name"], "failure_rate");
    assert_eq!(ev[0]["data"]["value"], "0.3");
    assert_eq!(ev[0]["data"]["previous"], "0.2");

    let th = s.run(&["--json", "alerts", "thresholds"]).json();
    let rows = th["thresholds"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 6);
    let src = |n: &str| rows.iter().find(|r| r["name"] == n).map(|r| r["source"].clone()).unwrap_or_default();
    assert_eq!(src("failure_rate"), "recorded");
    assert_eq!(src("redacted_rate"), "default");

    for (name, value) in
        [("nope", "1"), ("failure_rate", "1.5"), ("failure_rate", "abc"), ("checkpoint_pending", "0"), ("avg_cost_per_run", "-1")]
    {
        let r = s.run(&["alerts", "set", name, value]);
        r.expect(1);
        assert!(r.stderr.contains(name), "{name}={value}: {}", r.stderr);
    }
    assert_eq!(s.system_events("alert_threshold_set").len(), 1, "refused values record nothing");

    let auditor = s.actor("audra", "Auditor", "Internal");
    let viewer = s.actor("vic", "Viewer", "Internal");
    s.run_as(&auditor, &["alerts", "set", "failure_rate", "0.9"]).expect(2);
    s.run_as(&auditor, &["alerts"]).expect(0);
    s.run_as(&auditor, &["alerts", "thresholds"]).expect(0);
    s.run_as(&viewer, &["alerts"]).expect(2);
    let denied = s.system_events("access_denied");
    assert!(denied.iter().any(|d| d["data"]["action"] == "alerts set" && d["data"]["actor"] == "audra"), "{denied:?}");
    // Ingest cannot forge a threshold.
    let forged = line_at("acme", "governance", "alert_threshold_set", &at(0), json!({"name": "failure_rate", "value": "1"}));
    s.run_stdin(&["ingest", "-"], &forged).expect(1);
    Ok(())
}

#[test]
fn config_file_supplies_defaults_and_recorded_values_win() -> TestResult {
    let s = healthy();
    s.ingest(&[run_line("acme", "failed", 0), run_line("acme", "ok", 0)].join("\n"));
    let cfg = s.dir.path().join("custos.toml");
    std::fs::write(&cfg, "[alerts]\nfailure_rate = 0.6\ncheckpoint_pending = \"12h\"\n")?;
    let c = cfg.to_str().unwrap_or_default();
    s.run(&["--config", c, "alerts"]).expect(0);
    let th = s.run(&["--json", "--config", c, "alerts", "thresholds"]).json();
    let row = th["thresholds"].as_array().into_iter().flatten().find(|r| r["name"] == "failure_rate").cloned().unwrap_or_default();
    assert_eq!(row["source"], "config_file");
    let show = s.run(&["--config", c, "config", "show"]);
    assert!(show.stdout.contains("alerts.failure_rate") && show.stdout.contains("alerts.checkpoint_pending"), "{}", show.stdout);
    s.run(&["alerts", "set", "failure_rate", "0.1"]).expect(0);
    s.run(&["--config", c, "alerts"]).expect(10);
    std::fs::write(&cfg, "[alerts]\nfailure_rate = 2\n")?;
    let bad = s.run(&["--config", c, "alerts"]);
    bad.expect(1);
    assert!(bad.stderr.contains("alerts.failure_rate"), "{}", bad.stderr);
    Ok(())
}

/// A one-shot HTTP listener on loopback: answers `status` and hands back the request.
fn listener(status: &str) -> (String, mpsc::Receiver<(String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{}/hook", l.local_addr().unwrap_or_else(|e| panic!("{e}")));
    let (tx, rx) = mpsc::channel();
    let status = status.to_string();
    std::thread::spawn(move || {
        let Ok((mut sock, _)) = l.accept() else { return };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
        let mut r = BufReader::new(sock.try_clone().unwrap_or_else(|e| panic!("{e}")));
        let mut head = String::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0u8; len];
        let _ = r.read_exact(&mut body);
        let _ = sock.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        let _ = tx.send((head, String::from_utf8_lossy(&body).into_owned()));
    });
    (url, rx)
}

#[test]
fn webhook_receives_the_json_report_when_something_fires() -> TestResult {
    let s = Store::new(); // retention never ran: one alert fires
    let (url, rx) = listener("200 OK");
    let r = alerts(&s, &["--webhook", &url]);
    r.expect(10);
    let (head, body) = rx.recv_timeout(Duration::from_secs(10))?;
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let j: Value = serde_json::from_str(&body)?;
    assert_eq!(j["firing"], 1);
    assert_eq!(j, r.json(), "the webhook gets the printed report");

    // Nothing firing: nothing is posted (the listener would hand back a request).
    s.run(&["retention", "run", "--yes"]).expect(0);
    let (url, rx) = listener("200 OK");
    alerts(&s, &["--webhook", &url]).expect(0);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    Ok(())
}

#[test]
fn webhook_failure_prints_the_report_then_exits_1_naming_the_url() -> TestResult {
    let s = Store::new();
    // A port nobody listens on (bound, then released).
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let r = Run::capture(s.cmd().env("CUSTOS_TOKEN_FILE", &s.admin).env("CUSTOS_ALERT_WEBHOOK", &url).args(["--json", "alerts"]));
    r.expect(1);
    assert_eq!(r.json()["firing"], 1, "the report is printed anyway");
    assert!(r.stderr.contains(&url), "{}", r.stderr);

    // A receiver that answers 500 is a failed delivery too.
    let (url, rx) = listener("500 Internal Server Error");
    let r = alerts(&s, &["--webhook", &url]);
    r.expect(1);
    assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok());
    assert!(r.stderr.contains(&url), "{}", r.stderr);

    for bad in ["ftp://example.com/x", "hooks.example.com", "file:///etc/passwd"] {
        let r = alerts(&s, &["--webhook", bad]);
        r.expect(1);
        assert!(r.stderr.contains("http(s)"), "{bad}: {}", r.stderr);
    }
    Ok(())
}

#[test]
fn bad_window_and_time_are_errors() -> TestResult {
    let s = healthy();
    s.run(&["alerts", "--since", "7x"]).expect(1);
    s.run(&["alerts", "--at", "tomorrow"]).expect(1);
    s.run(&["alerts", "--tenant", "Bad Tenant"]).expect(1);
    Ok(())
}

#[test]
fn metrics_export_alert_gauges() -> TestResult {
    let s = Store::new(); // retention never ran
    let log = std::fs::File::create(s.dir.path().join("serve.log"))?;
    let mut child = s.cmd().args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::from(log)).spawn()?;
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut first)?;
    }
    let addr = first.strip_prefix("listening on ").and_then(|r| r.split_whitespace().next()).unwrap_or_default().to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).timeout_global(Some(Duration::from_secs(60))).build().into();
    let text = agent.get(format!("http://{addr}/metrics")).call().and_then(|mut r| r.body_mut().read_to_string());
    let _ = child.kill();
    let _ = child.wait();
    let text = text?;
    assert!(text.contains("# TYPE custos_alert_firing gauge"), "{text}");
    assert!(text.contains("custos_alert_firing{alert=\"retention_overdue\"} 1\n"), "{text}");
    assert!(text.contains("custos_alert_firing{alert=\"failure_rate\"} 0\n"), "{text}");
    assert!(text.contains("custos_alert_value{alert=\"key_rotation_overdue\"} "), "{text}");
    assert!(text.contains("custos_alert_threshold{alert=\"retention_overdue\"} 26\n"), "{text}");
    assert!(text.contains("custos_appends_total"), "the existing metrics stay: {text}");
    Ok(())
}
