//! Guards cost budgets end to end: exact dollar parsing, allow/throttle/deny with exit 4,
//! recorded governance events, RBAC, exact report totals and once-only anomalies, rebuild.

use custos_domain::{format_ts, now_micros};
use custos_tests::{line_at, Store, TestResult};
use serde_json::{json, Value};

const DAY: i64 = 86_400_000_000;

fn cost(tenant: &str, at: i64, provider: &str, model: &str, usd_micros: i64) -> String {
    line_at(
        tenant,
        "costs",
        "cost_recorded",
        &format_ts(at),
        json!({"run_id": "r", "provider": provider, "model": model, "tokens_in": 10, "tokens_out": 5, "usd_micros": usd_micros}),
    )
}

fn check(s: &Store, tenant: &str, usd: &str) -> custos_tests::Run {
    s.run(&["--json", "budget", "check", "--tenant", tenant, "--usd", usd])
}

#[test]
fn budget_check_allows_throttles_and_denies_with_exit_4_and_records_events() -> TestResult {
    let s = Store::new();
    s.run(&["budget", "set", "--tenant", "acme-corp", "--daily", "0.01", "--monthly", "1"]).expect(0);
    let r = s.run(&[
        "--json",
        "cost",
        "record",
        "--tenant",
        "acme-corp",
        "--run",
        "r1",
        "--provider",
        "openai",
        "--model",
        "gpt-4o",
        "--tokens-in",
        "100",
        "--tokens-out",
        "50",
        "--usd",
        "0.0021",
    ]);
    r.expect(0);
    assert_eq!(r.json()["usd_micros"], 2100);

    let allow = check(&s, "acme-corp", "0.0058");
    allow.expect(0);
    assert_eq!(allow.json()["decision"], "allow");
    assert_eq!(allow.json()["projected_daily_usd_micros"], 7900);

    // 2100 + 5900 = 8000 = exactly 80 % of 10000: throttle.
    let thr = check(&s, "acme-corp", "0.0059");
    thr.expect(0);
    assert_eq!(thr.json()["decision"], "throttle");

    // 2100 + 7900 = 10000 = exactly 100 %: deny.
    let deny = check(&s, "acme-corp", "0.0079");
    deny.expect(4);
    assert_eq!(deny.json()["decision"], "deny");

    let deny = s.run(&["budget", "check", "--tenant", "acme-corp", "--usd", "0.0129"]);
    deny.expect(4);
    assert!(
        deny.stderr.contains("budget exceeded: projected $0.015000 exceeds daily budget $0.010000 for tenant acme-corp"),
        "{}",
        deny.stderr
    );

    let j = check(&s, "acme-corp", "0.0129").json();
    for k in
        ["decision", "tenant", "usd_micros", "projected_daily_usd_micros", "daily_budget_usd_micros", "monthly_budget_usd_micros", "reason"]
    {
        assert!(j.get(k).is_some(), "missing {k}: {j}");
    }
    assert_eq!(j["daily_budget_usd_micros"], 10_000);
    assert_eq!(j["monthly_budget_usd_micros"], 1_000_000);

    let throttled = s.system_events("budget_throttled");
    let denied = s.system_events("budget_denied");
    assert_eq!(throttled.len(), 1);
    assert_eq!(denied.len(), 3);
    assert_eq!(denied[0]["data"]["tenant"], "acme-corp");
    assert_eq!(denied[0]["data"]["decision"], "deny");
    assert_eq!(denied[0]["category"], "governance");
    // An allow records nothing.
    assert_eq!(s.system_events("budget_allowed").len(), 0);
    Ok(())
}

#[test]
fn tenant_default_and_global_budgets_apply() -> TestResult {
    let s = Store::new();
    s.run(&["budget", "set", "--tenant-default", "--daily", "1"]).expect(0);
    s.run(&["budget", "set", "--global", "--daily", "1.5"]).expect(0);
    s.run(&["budget", "set", "--tenant", "big", "--daily", "100"]).expect(0);
    let now = now_micros();
    s.ingest(&[cost("small", now, "openai", "gpt", 700_000), cost("big", now, "anthropic", "claude", 700_000)].join("\n"));
    // small: 0.7 + 0.3 = 1.0 of its default $1 → deny on the tenant-default budget.
    let r = check(&s, "small", "0.3");
    r.expect(4);
    assert_eq!(r.json()["daily_budget_usd_micros"], 1_000_000);
    assert_eq!(r.json()["limit"]["scope"], "tenant");
    // big has its own $100, but global 1.4 + 0.1 = 1.5 → deny on the global budget.
    let r = check(&s, "big", "0.1");
    r.expect(4);
    assert_eq!(r.json()["limit"]["scope"], "global");
    assert_eq!(r.json()["projected_global_daily_usd_micros"], 1_500_000);
    // The global budget is everyone's spend: the message names the global budget and no tenant.
    assert!(r.stderr.contains("budget exceeded: projected $1.500000 exceeds the global daily budget $1.500000"), "{}", r.stderr);
    assert!(!r.stderr.contains("for tenant") && !r.stderr.contains("$1.500000 global"), "{}", r.stderr);
    // 1.4 + 0.01 = 1.41 ≥ 80 % of the global 1.5 (big's own $100 is far off) → global throttle.
    let r = s.run(&["budget", "check", "--tenant", "big", "--usd", "0.01"]);
    r.expect(0);
    assert_eq!(r.stdout.trim(), "throttle: projected $1.410000 is at or above 80% of the global daily budget $1.500000", "{}", r.stderr);
    let show = s.run(&["--json", "budget", "show"]);
    show.expect(0);
    let j = show.json();
    assert_eq!(j["global"]["daily_usd_micros"], 1_500_000);
    assert_eq!(j["tenant_default"]["daily_usd_micros"], 1_000_000);
    assert_eq!(j["global_today_usd_micros"], 1_400_000);
    Ok(())
}

#[test]
fn thresholds_are_recorded_and_parsed_exactly() -> TestResult {
    let s = Store::new();
    s.run(&["budget", "set", "--tenant", "t1", "--daily", "1"]).expect(0);
    let r = s.run(&["--json", "budget", "thresholds", "--soft", "0.5", "--hard", "90%"]);
    r.expect(0);
    assert_eq!(r.json(), json!({"soft_permille": 500, "hard_permille": 900}));
    assert_eq!(check(&s, "t1", "0.499999").json()["decision"], "allow");
    assert_eq!(check(&s, "t1", "0.5").json()["decision"], "throttle");
    check(&s, "t1", "0.9").expect(4);
    assert_eq!(s.system_events("budget_thresholds_set").len(), 1);
    for (soft, hard) in [("0.8001", "1"), ("0.9", "0.8"), ("abc", "1"), ("0", "1")] {
        let r = s.run(&["budget", "thresholds", "--soft", soft, "--hard", hard]);
        r.expect(1);
    }
    // Dollars: at most 6 decimals, no floats, no negatives.
    for bad in ["0.0000015", "1e-3", "-1", "abc"] {
        let flag = format!("--usd={bad}");
        s.run(&["budget", "check", "--tenant", "t1", &flag]).expect(1);
        s.run(&["cost", "record", "--tenant", "t1", "--run", "r", "--provider", "p", "--model", "m", &flag]).expect(1);
    }
    let r = s.run(&["--json", "cost", "record", "--tenant", "t1", "--run", "r", "--provider", "p", "--model", "m", "--usd", "0.000001"]);
    r.expect(0);
    assert_eq!(r.json()["usd_micros"], 1);
    s.run(&["budget", "set", "--tenant", "t1"]).expect(1);
    s.run(&["budget", "set", "--daily", "1"]).expect(64);
    Ok(())
}

#[test]
fn budget_rbac_is_enforced_and_denials_recorded() -> TestResult {
    let s = Store::new();
    let viewer = s.actor("vera", "Viewer", "Internal");
    let op = s.actor("otto", "Operator", "Internal");
    s.run_as(&viewer, &["budget", "check", "--tenant", "t1", "--usd", "1"]).expect(2);
    s.run_as(&viewer, &["cost", "record", "--tenant", "t1", "--run", "r", "--provider", "p", "--model", "m", "--usd", "1"]).expect(2);
    s.run_as(&op, &["budget", "set", "--tenant", "t1", "--daily", "1"]).expect(2);
    s.run_as(&op, &["budget", "thresholds", "--soft", "0.5", "--hard", "1"]).expect(2);
    s.run_as(&viewer, &["budget", "show"]).expect(0);
    s.run_as(&viewer, &["cost", "report"]).expect(0);
    s.run_as(&op, &["budget", "check", "--tenant", "t1", "--usd", "1"]).expect(0);
    let denied = s.system_events("access_denied");
    let actions: Vec<&str> = denied.iter().filter_map(|e| e["data"]["action"].as_str()).collect();
    assert_eq!(actions, ["budget check", "cost record", "budget set", "budget thresholds"]);
    assert_eq!(s.system_events("budget_set").len(), 0, "a denied budget set records nothing else");
    Ok(())
}

fn all_amount_fields_are_integers(v: &Value, path: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k.ends_with("_usd_micros") {
                    assert!(x.is_i64() || x.is_null(), "{path}.{k} is not an integer: {x}");
                }
                all_amount_fields_are_integers(x, &format!("{path}.{k}"));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all_amount_fields_are_integers(x, path)),
        _ => assert!(!v.is_f64(), "{path} is a float: {v}"),
    }
}

#[test]
fn cost_report_totals_add_up_exactly_and_anomalies_are_recorded_once() -> TestResult {
    let s = Store::new();
    let now = now_micros();
    let mut lines = vec![];
    // 12 baseline days of ~$1 for acme, split over two providers with odd micro amounts.
    for d in 1..=12 {
        lines.push(cost("acme", now - d * DAY, "openai", "gpt-4o", 600_001 + d * 7));
        lines.push(cost("acme", now - d * DAY, "anthropic", "claude", 400_003));
        lines.push(cost("globex", now - d * DAY, "openai", "gpt-4o-mini", 123_457));
    }
    // Today: a $9 spike.
    lines.push(cost("acme", now, "openai", "gpt-4o", 9_000_000));
    s.ingest(&lines.join("\n"));

    let r = s.run(&["--json", "cost", "report", "--days", "30"]);
    r.expect(0);
    let j = r.json();
    all_amount_fields_are_integers(&j, "");
    let tenants = j["tenants"].as_array().cloned().unwrap_or_default();
    assert_eq!(tenants.len(), 2);
    let mut sum = 0i64;
    for t in &tenants {
        let tt = t["total_usd_micros"].as_i64().unwrap_or(-1);
        let by_provider: i64 =
            t["providers"].as_array().map(|a| a.iter().filter_map(|p| p["total_usd_micros"].as_i64()).sum()).unwrap_or(-1);
        let by_day: i64 = t["days"].as_array().map(|a| a.iter().filter_map(|p| p["total_usd_micros"].as_i64()).sum()).unwrap_or(-1);
        assert_eq!(tt, by_provider, "providers sum to the tenant total");
        assert_eq!(tt, by_day, "days sum to the tenant total");
        sum += tt;
    }
    assert_eq!(j["total_usd_micros"].as_i64(), Some(sum), "tenants sum to the global total");

    // Naive recomputation from `events list`.
    let ev = s.run(&["events", "list", "--kind", "cost_recorded"]);
    ev.expect(0);
    let naive: i64 = ev.jsonl().iter().filter_map(|e| e["data"]["usd_micros"].as_i64()).sum();
    assert_eq!(j["total_usd_micros"].as_i64(), Some(naive));

    let acme = tenants.iter().find(|t| t["tenant"] == "acme").cloned().unwrap_or_default();
    let anomalies = acme["anomalies"].as_array().cloned().unwrap_or_default();
    assert_eq!(anomalies.len(), 1, "{acme}");
    assert_eq!(anomalies[0]["spend_usd_micros"], 9_000_000);
    assert_eq!(j["anomalies_recorded"], 1);
    // A second report finds the same anomaly but records nothing new.
    let again = s.run(&["--json", "cost", "report"]).json();
    assert_eq!(again["anomalies_recorded"], 0);
    let recorded = s.run(&["events", "list", "--tenant", "acme", "--kind", "cost_anomaly"]);
    assert_eq!(recorded.jsonl().len(), 1);
    // Tenant filter and human form.
    let one = s.run(&["--json", "cost", "report", "--tenant", "globex", "--days", "7"]).json();
    assert_eq!(one["tenants"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(one["total_usd_micros"], 6 * 123_457);
    let human = s.run(&["cost", "report", "--tenant", "acme"]);
    human.expect(0);
    assert!(human.stdout.contains("Cost Anomaly"), "{}", human.stdout);
    Ok(())
}

#[test]
fn snapshots_are_encrypted_and_rebuild_reports_no_drift() -> TestResult {
    let s = Store::new();
    s.run(&[
        "cost",
        "record",
        "--tenant",
        "acme",
        "--run",
        "r1",
        "--provider",
        "zz-provider-marker",
        "--model",
        "zz-model-marker",
        "--usd",
        "1",
    ])
    .expect(0);
    s.run(&["budget", "set", "--tenant", "acme", "--daily", "5"]).expect(0);
    let r = s.run(&["--json", "rebuild"]);
    r.expect(0);
    let j = r.json();
    assert_eq!(j["governance"]["drift"], json!([]));
    assert!(j["governance"]["snapshots"].as_u64().unwrap_or(0) >= 2);
    let db = rusqlite::Connection::open(&s.db)?;
    let n: i64 = db.query_row("SELECT count(*) FROM snapshots WHERE tenant = 'acme' AND name = 'budgets'", [], |r| r.get(0))?;
    assert_eq!(n, 1);
    drop(db);
    let mut bytes = std::fs::read(&s.db)?;
    bytes.extend(std::fs::read(s.db.with_extension("db-wal")).unwrap_or_default());
    assert!(!bytes.windows(18).any(|w| w == b"zz-provider-marker"), "plaintext provider name found in the store");
    // Reads after rebuild still agree.
    let show = s.run(&["--json", "budget", "show", "--tenant", "acme"]).json();
    assert_eq!(show["tenants"][0]["today_usd_micros"], 1_000_000);
    assert_eq!(show["tenants"][0]["daily_budget_usd_micros"], 5_000_000);
    Ok(())
}

#[test]
fn a_read_after_a_long_ingest_rewrites_the_snapshot_so_reads_stay_bounded() -> TestResult {
    let s = Store::new();
    s.run(&["cost", "record", "--tenant", "acme", "--run", "r0", "--provider", "p", "--model", "m", "--usd", "0.5"]).expect(0);
    let covers = |s: &Store| -> Result<i64, rusqlite::Error> {
        let db = rusqlite::Connection::open(&s.db)?;
        db.query_row("SELECT covers_seq FROM snapshots WHERE tenant = 'acme' AND name = 'budgets'", [], |r| r.get(0))
    };
    assert_eq!(covers(&s)?, 1, "cost record writes the snapshot in its transaction");
    let now = now_micros();
    let lines: Vec<String> = (0..300).map(|i| cost("acme", now - i, "openai", "gpt", 1)).collect();
    s.ingest(&lines.join("\n"));
    assert_eq!(covers(&s)?, 1, "ingest does not touch snapshots");
    let j = s.run(&["--json", "budget", "show", "--tenant", "acme"]).json();
    assert_eq!(j["tenants"][0]["today_usd_micros"], 500_300);
    assert_eq!(covers(&s)?, 301, "a read that folded more than 256 events refreshed the snapshot");
    Ok(())
}

#[test]
fn quickstart_shows_a_throttle_a_deny_checkpoints_and_the_report() -> TestResult {
    let dir = tempfile::tempdir()?;
    let qs = dir.path().join("qs");
    let out = custos_tests::custos().args(["quickstart", "--dir"]).arg(&qs).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "→ throttle",
        "→ deny",
        "budget exceeded",
        "approved weekly-report",
        "conflict",
        "1 expired",
        "stale-request   expired",
        "cost report",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The report step breaks one tenant down: a provider/model line (provider, model,
    // amount, tokens) follows its header, and a per-day line follows the day header.
    let lines: Vec<&str> = text.lines().collect();
    let after = |header: &str| lines.iter().position(|l| l.contains(header)).and_then(|i| lines.get(i + 1)).copied().unwrap_or_default();
    let model = after("acme-corp by provider/model:");
    let cols: Vec<&str> = model.split_whitespace().collect();
    assert!(cols.len() >= 7 && cols[2].starts_with('$') && model.contains("tokens in"), "no provider/model line in:\n{text}");
    let day = after("acme-corp by day");
    assert!(day.trim_start().starts_with("20") && day.contains('$') && day.contains("cost events"), "no per-day line in:\n{text}");
    Ok(())
}
