//! Server mode, capability endpoints: budgets (allow/throttle/deny, deny under a
//! freeze), approvals, legal hold vs deletion, retention, export bundles that verify
//! offline, status and alerts, the auth matrix of every endpoint, and bad input
//! refused with nothing appended. Through a real `custos serve` on loopback.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use custos_tests::{line, Store};
use serde_json::{json, Value};

/// A running `custos serve` child, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(store: &Store, extra: &[&str]) -> Self {
        let (child, addr, _) = store.serve(extra);
        Self { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    agent: ureq::Agent,
    srv: Server,
}

impl Client {
    fn new(store: &Store) -> Self {
        Self::with(store, &[])
    }

    /// A client of a server started with extra `custos serve` arguments.
    fn with(store: &Store, extra: &[&str]) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self { agent, srv: Server::start(store, extra) }
    }

    /// (status, content-type, body bytes).
    fn raw(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String, Vec<u8>) {
        let mut b = ureq::http::Request::builder().method(method).uri(self.srv.url(path));
        if let Some(t) = token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        let text = body.map(Value::to_string).unwrap_or_default();
        if body.is_some() {
            b = b.header("Content-Type", "application/json");
        }
        let r = b.body(text).unwrap_or_else(|e| panic!("{e}"));
        let res = self.agent.run(r).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = res.into_body().with_config().limit(256 * 1024 * 1024).read_to_vec().unwrap_or_else(|e| panic!("{e}"));
        (status, ct, bytes)
    }

    /// (status, JSON body).
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let (s, _, b) = self.raw(method, path, Some(token), body.as_ref());
        let v = serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", String::from_utf8_lossy(&b)));
        (s, v)
    }

    fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, token, body);
        assert_eq!(s, 200, "{method} {path}: {v}");
        v
    }
}

fn tok(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{e}")).trim().to_string()
}

fn seed(store: &Store, tenant: &str, n: usize) {
    let lines: Vec<String> =
        (0..n).map(|i| line(tenant, "queue", "job_enqueued", json!({"job_id": format!("j{i}"), "note": "hello"}))).collect();
    store.ingest(&(lines.join("\n") + "\n"));
}

#[test]
fn budget_check_allow_throttle_deny_and_deny_under_freeze() {
    let store = Store::new();
    let op = tok(&store.actor("otto", "Operator", "Internal"));
    let admin = tok(&store.admin);
    store.run(&["budget", "set", "--tenant", "acme", "--daily", "1.00"]).expect(0);
    let c = Client::new(&store);

    let check = |usd: Value| c.ok("POST", "/v1/budget/check", &op, Some(json!({"tenant": "acme", "usd": usd})));
    assert_eq!(check(json!("0.01"))["decision"], "allow");
    assert_eq!(check(json!(0.85))["decision"], "throttle", "a JSON number is parsed like --usd");
    // A deny is an answer, not an error: 200 with decision deny (the CLI exits 4).
    let d = check(json!("2.00"));
    assert_eq!((d["decision"].as_str(), d["usd_micros"].as_i64()), (Some("deny"), Some(2_000_000)), "{d}");
    // Same JSON as the CLI's --json.
    let cli = store.run_as(&store.dir.path().join("otto.token"), &["--json", "budget", "check", "--tenant", "acme", "--usd", "2.00"]);
    cli.expect(4);
    let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(&cli.json()), keys(&d));

    // An emergency freeze denies whatever the spend; unfreeze lifts it.
    let f = c.ok("POST", "/v1/freeze", &admin, Some(json!({"reason": "INC-1 runaway agent"})));
    assert_eq!(f["already_frozen"], false, "{f}");
    let d = check(json!("0.000001"));
    assert_eq!(d["decision"], "deny", "{d}");
    assert_eq!(c.ok("GET", "/v1/freezes", &admin, None).as_array().map(Vec::len), Some(1));
    c.ok("POST", "/v1/unfreeze", &admin, Some(json!({})));
    assert_eq!(check(json!("0.000001"))["decision"], "allow");

    // Cost record → budget show and cost report see it.
    let r = c.ok(
        "POST",
        "/v1/costs",
        &op,
        Some(json!({"tenant": "acme", "run": "r1", "provider": "openai", "model": "gpt", "tokens_in": 10, "usd": "0.25"})),
    );
    assert_eq!(r["usd_micros"], 250_000, "{r}");
    let s = c.ok("GET", "/v1/budget?tenant=acme", &op, None);
    assert_eq!(s["tenants"][0]["today_usd_micros"], 250_000, "{s}");
    let rep = c.ok("GET", "/v1/costs/report?days=7&tenant=acme", &op, None);
    assert_eq!(rep["total_usd_micros"], 250_000, "{rep}");
}

#[test]
fn approvals_create_approve_and_a_second_decision_conflicts() {
    let store = Store::new();
    let op = tok(&store.actor("otto", "Operator", "Internal"));
    let viewer = tok(&store.actor("vera", "Viewer", "Internal"));
    let c = Client::new(&store);
    let cp = c.ok(
        "POST",
        "/v1/approvals",
        &op,
        Some(json!({"tenant": "acme", "dag_run": "run-1", "prompt": "Ship it?", "id": "cp-1", "expires_in": "1h"})),
    );
    assert_eq!((cp["checkpoint_id"].as_str(), cp["status"].as_str()), (Some("cp-1"), Some("pending")), "{cp}");
    let (s, v) = c.call("POST", "/v1/approvals", &op, Some(json!({"tenant": "acme", "dag_run": "r", "prompt": "p", "id": "cp-1"})));
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "a taken id: {v}");
    let l = c.ok("GET", "/v1/approvals?tenant=acme&status=pending", &viewer, None);
    assert_eq!(l["checkpoints"].as_array().map(Vec::len), Some(1), "{l}");

    // The checkpoint's own required role (Operator) is enforced: a Viewer is refused and recorded.
    let before = store.system_events("access_denied").len();
    let (s, v) = c.call("POST", "/v1/approvals/cp-1/approve", &viewer, Some(json!({})));
    assert_eq!(s, 403, "{v}");
    assert_eq!(store.system_events("access_denied").len(), before + 1);

    let a = c.ok("POST", "/v1/approvals/cp-1/approve", &op, Some(json!({"kv": {"signoff": "yes"}})));
    assert_eq!((a["status"].as_str(), a["decided_by"].as_str()), (Some("approved"), Some("otto")), "{a}");
    assert_eq!(a["kv"]["signoff"], "yes");
    let (s, v) = c.call("POST", "/v1/approvals/cp-1/reject", &op, Some(json!({"reason": "second thoughts"})));
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    assert_eq!(c.ok("GET", "/v1/approvals/cp-1", &viewer, None)["status"], "approved");
    let (s, v) = c.call("GET", "/v1/approvals/nope", &viewer, None);
    assert_eq!(s, 404, "{v}");
    let e = c.ok("POST", "/v1/approvals/expire", &op, None);
    assert_eq!(e["expired"], 0, "{e}");
}

#[test]
fn hold_blocks_deletion_until_released() {
    let store = Store::new();
    seed(&store, "held", 3);
    let comp = tok(&store.actor("cora", "Compliance", "Restricted"));
    let auditor = tok(&store.actor("aude", "Auditor", "Internal"));
    let c = Client::new(&store);

    let h = c.ok("POST", "/v1/holds", &comp, Some(json!({"tenant": "held", "reason": "litigation", "id": "CASE-1"})));
    assert_eq!(h["hold_id"], "CASE-1", "{h}");
    let l = c.ok("GET", "/v1/holds?tenant=held", &auditor, None);
    assert_eq!((l["count"].as_u64(), l["holds"][0]["hold_id"].as_str()), (Some(1), Some("CASE-1")), "{l}");

    let (s, v) = c.call("POST", "/v1/tenants/held/delete", &comp, Some(json!({})));
    assert_eq!((s, v["error"].as_str()), (409, Some("legal_hold")), "{v}");
    assert_eq!(store.system_events("deletion_blocked").len(), 1, "the blocked attempt is recorded");
    assert!(store.system_events("tenant_deleted").is_empty());
    let r = store.run(&["events", "list", "--tenant", "held"]);
    r.expect(0);
    assert_eq!(r.jsonl().iter().filter(|e| e["data"]["note"] == "hello").count(), 3, "nothing deleted");

    let r = c.ok("POST", "/v1/holds/release", &comp, Some(json!({"tenant": "held", "hold": "CASE-1"})));
    assert_eq!(r["hold_ids"], json!(["CASE-1"]), "{r}");
    let d = c.ok("POST", "/v1/tenants/held/delete", &comp, Some(json!({"dry_run": true})));
    assert_eq!(d["dry_run"], true, "{d}");
    assert!(store.system_events("tenant_deleted").is_empty(), "a dry run deletes nothing");
    let d = c.ok("POST", "/v1/tenants/held/delete", &comp, None);
    assert_eq!((d["dry_run"].as_bool(), d["tenant"].as_str()), (Some(false), Some("held")), "{d}");
    assert_eq!(store.system_events("tenant_deleted").len(), 1);
    store.run(&["verify"]).expect(0);

    // Retention: a dry run and the policy list.
    let rr = c.ok("POST", "/v1/retention/run", &comp, Some(json!({"dry_run": true})));
    assert_eq!(rr["dry_run"], true, "{rr}");
    assert!(store.system_events("retention_enforced").is_empty(), "a dry run records nothing");
    let p = c.ok("GET", "/v1/retention/policies", &auditor, None);
    assert_eq!(p["count"].as_u64(), p["policies"].as_array().map(|a| a.len() as u64), "{p}");
}

#[test]
fn export_streams_a_bundle_that_verifies_offline() {
    let store = Store::new();
    seed(&store, "acme", 5);
    let auditor = tok(&store.actor("aude", "Auditor", "Restricted"));
    let c = Client::new(&store);
    let (s, ct, bytes) = c.raw("GET", "/v1/export/acme", Some(&auditor), None);
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, "application/gzip");
    assert_eq!(bytes.get(..2), Some(&[0x1f, 0x8b][..]), "gzip magic");
    let created = store.system_events("export_created");
    assert_eq!(created.len(), 1, "the export is recorded");

    let pk = store.run(&["--json", "keys", "public"]).json()["public_key"].as_str().unwrap_or_default().to_string();
    let arch = store.dir.path().join("acme.tar.gz");
    std::fs::write(&arch, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let verify = |p: &Path| store.cmd().args(["--json", "compliance", "verify-bundle"]).arg(p).args(["--public-key", &pk]).output();
    let out = verify(&arch).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Unpacked, the directory verifies too.
    let dir = store.dir.path().join("unpacked");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let st = std::process::Command::new("tar").arg("-xzf").arg(&arch).arg("-C").arg(&dir).status();
    assert!(st.is_ok_and(|s| s.success()), "tar -xzf");
    let root = find_manifest(&dir).unwrap_or_else(|| panic!("no manifest.json in the archive"));
    let out = verify(&root).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rep["ok"].as_bool(), rep["tenant"].as_str()), (Some(true), Some("acme")), "{rep}");

    // A tampered record in the unpacked bundle fails. (A flipped byte of the .tar.gz
    // can land in tar padding that no hash covers, so the test edits signed content.)
    let events = root.join("events");
    let file = std::fs::read_dir(&events)
        .unwrap_or_else(|e| panic!("{}: {e}", events.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .unwrap_or_else(|| panic!("no non-empty events file"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, text.replacen("hello", "jello", 1)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!verify(&root).unwrap_or_else(|e| panic!("{e}")).status.success(), "an edited record must fail verification");

    let (s, _, b) = c.raw("GET", "/v1/export/nosuch", Some(&auditor), None);
    assert!(s == 404 || s == 422, "{s} {}", String::from_utf8_lossy(&b));
}

fn find_manifest(dir: &Path) -> Option<PathBuf> {
    if dir.join("manifest.json").is_file() {
        return Some(dir.to_path_buf());
    }
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).find_map(|p| find_manifest(&p))
}

#[test]
fn status_and_alerts_answer_the_cli_json() {
    let store = Store::new();
    seed(&store, "acme", 2);
    let auditor = tok(&store.actor("aude", "Auditor", "Internal"));
    let c = Client::new(&store);
    let s = c.ok("GET", "/v1/status", &auditor, None);
    let cli = store.run(&["--json", "status"]);
    cli.expect(0);
    let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(&s), keys(&cli.json()));
    assert_eq!(s["freezes"], json!([]), "{s}");

    let a = c.ok("GET", "/v1/alerts?since=1d&tenant=acme", &auditor, None);
    let cli = store.run(&["--json", "alerts", "--since", "1d", "--tenant", "acme"]);
    assert_eq!(a["firing"], cli.json()["firing"], "{a}");
    assert!(a["firing"].is_u64(), "{a}");
    assert_eq!(keys(&a), keys(&cli.json()));
}

/// The server applies the config file's defaults as the CLI does: a `[alerts]` value
/// the log has not recorded is the threshold `/v1/alerts` evaluates with.
#[test]
fn the_server_applies_config_file_defaults() {
    let store = Store::new();
    let cfg = store.dir.path().join("custos.toml");
    std::fs::write(&cfg, "[alerts]\nfailure_rate = 0.9\n").unwrap_or_else(|e| panic!("{e}"));
    let auditor = tok(&store.actor("aude", "Auditor", "Internal"));
    let threshold = |c: &Client| {
        let a = c.ok("GET", "/v1/alerts", &auditor, None);
        a["alerts"].as_array().into_iter().flatten().find(|r| r["name"] == "failure_rate").map(|r| r["threshold"].clone())
    };
    assert_eq!(threshold(&Client::new(&store)), Some(json!(0.2)), "built-in default without a file");
    assert_eq!(threshold(&Client::with(&store, &["--config", cfg.to_str().unwrap_or_default()])), Some(json!(0.9)));
}

/// Every new endpoint: no token 401, the role just below its minimum 403, both recorded.
#[test]
fn auth_matrix_of_every_capability_endpoint() {
    let store = Store::new();
    let tokens: Vec<(&str, String)> = [("Viewer", "vera"), ("Operator", "otto"), ("Auditor", "aude"), ("Compliance", "cora")]
        .iter()
        .map(|(role, name)| (*role, tok(&store.actor(name, role, "Internal"))))
        .collect();
    let below = |min: &str| -> Option<(&str, &str)> {
        let order = ["Viewer", "Operator", "Auditor", "Compliance", "Admin"];
        let i = order.iter().position(|r| *r == min)?;
        let r = *order.get(i.checked_sub(1)?)?;
        tokens.iter().find(|(role, _)| *role == r).map(|(role, t)| (*role, t.as_str()))
    };
    let c = Client::new(&store);
    // (method, path, action, minimum role)
    let endpoints: &[(&str, &str, &str, &str)] = &[
        ("GET", "/v1/budget", "budget show", "Viewer"),
        ("POST", "/v1/budget/check", "budget check", "Operator"),
        ("POST", "/v1/costs", "cost record", "Operator"),
        ("GET", "/v1/costs/report", "cost report", "Viewer"),
        ("GET", "/v1/approvals", "approvals list", "Viewer"),
        ("POST", "/v1/approvals", "approvals create", "Operator"),
        ("GET", "/v1/approvals/x", "approvals show", "Viewer"),
        ("POST", "/v1/approvals/x/approve", "approvals approve", "Viewer"),
        ("POST", "/v1/approvals/x/reject", "approvals reject", "Viewer"),
        ("POST", "/v1/approvals/expire", "approvals expire", "Operator"),
        ("GET", "/v1/holds", "compliance holds", "Auditor"),
        ("POST", "/v1/holds", "compliance hold", "Compliance"),
        ("POST", "/v1/holds/release", "compliance release", "Compliance"),
        ("POST", "/v1/tenants/acme/delete", "compliance delete", "Compliance"),
        ("POST", "/v1/retention/run", "retention run", "Compliance"),
        ("GET", "/v1/retention/policies", "retention policy list", "Viewer"),
        ("GET", "/v1/export/acme", "compliance export", "Auditor"),
        ("POST", "/v1/freeze", "freeze", "Admin"),
        ("POST", "/v1/unfreeze", "unfreeze", "Admin"),
        ("GET", "/v1/freezes", "freeze status", "Auditor"),
        ("GET", "/v1/status", "status", "Auditor"),
        ("GET", "/v1/alerts", "alerts", "Auditor"),
    ];
    let before = store.system_events("access_denied").len();
    let mut want_actions = vec![];
    for (m, p, action, min) in endpoints {
        let body = (*m == "POST").then(|| json!({}));
        let (s, _, b) = c.raw(m, p, None, body.as_ref());
        assert_eq!(s, 401, "{m} {p} without a token: {}", String::from_utf8_lossy(&b));
        want_actions.push((action.to_string(), "<no token>".to_string()));
        if let Some((role, t)) = below(min) {
            let (s, v) = c.call(m, p, t, body.clone());
            assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")), "{m} {p} as {role}: {v}");
            let name = match role {
                "Viewer" => "vera",
                "Operator" => "otto",
                "Auditor" => "aude",
                _ => "cora",
            };
            want_actions.push((action.to_string(), name.to_string()));
        }
    }
    let denials = store.system_events("access_denied");
    let got: Vec<(String, String)> = denials[before..]
        .iter()
        .map(|e| (e["data"]["action"].as_str().unwrap_or("").to_string(), e["data"]["actor"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(got, want_actions, "every 401 and 403 is recorded with its action");
}

/// Missing fields, wrong types, unknown fields and bad tenants: 422 `bad_input` naming
/// the field, and not one event appended.
#[test]
fn bad_input_is_422_and_appends_nothing() {
    let store = Store::new();
    seed(&store, "acme", 1);
    let admin = tok(&store.admin);
    let c = Client::new(&store);
    let before = store.event_count();
    let cases: &[(&str, &str, Option<Value>, &str)] = &[
        ("POST", "/v1/budget/check", Some(json!({"usd": "1"})), "tenant"),
        ("POST", "/v1/budget/check", Some(json!({"tenant": "acme"})), "usd"),
        ("POST", "/v1/budget/check", Some(json!({"tenant": "acme", "usd": true})), "usd"),
        ("POST", "/v1/budget/check", Some(json!({"tenant": "acme", "usd": "lots"})), "usd"),
        ("POST", "/v1/budget/check", Some(json!({"tenant": "acme", "usd": 1e-9})), "usd"),
        ("POST", "/v1/budget/check", Some(json!({"tenant": "Not A Tenant!", "usd": "1"})), "tenant"),
        ("POST", "/v1/budget/check", Some(json!(["acme"])), "object"),
        (
            "POST",
            "/v1/costs",
            Some(json!({"tenant": "acme", "run": "r", "provider": "p", "model": "m", "usd": "1", "tokens_in": -1})),
            "tokens_in",
        ),
        ("GET", "/v1/costs/report?days=0", None, "days"),
        ("POST", "/v1/approvals", Some(json!({"tenant": "acme", "dag_run": "r", "prompt": "p", "role": "King"})), "role"),
        ("POST", "/v1/approvals", Some(json!({"tenant": "acme", "prompt": "p"})), "dag_run"),
        ("GET", "/v1/approvals?status=done", None, "status"),
        ("POST", "/v1/approvals/x/reject", Some(json!({"reason": 3})), "reason"),
        ("POST", "/v1/holds", Some(json!({"tenant": "acme"})), "reason"),
        ("POST", "/v1/holds", Some(json!({"tenant": "acme", "reason": 5})), "reason"),
        ("POST", "/v1/holds", Some(json!({"tenant": "acme", "reason": "r", "review_by": "someday"})), "review_by"),
        ("POST", "/v1/holds", Some(json!({"tenant": "../etc", "reason": "r"})), "tenant"),
        ("POST", "/v1/holds/release", Some(json!({"tenant": "acme"})), "hold"),
        ("POST", "/v1/tenants/acme/delete", Some(json!({"dryrun": true})), "dryrun"),
        ("POST", "/v1/tenants/acme/delete", Some(json!({"dry_run": "yes"})), "dry_run"),
        ("POST", "/v1/retention/run", Some(json!({"as_of": "yesterday-ish"})), "as_of"),
        ("POST", "/v1/freeze", Some(json!({})), "reason"),
        ("POST", "/v1/freeze", Some(json!({"reason": "x", "tenant": 7})), "tenant"),
        ("GET", "/v1/alerts?since=forever", None, "since"),
        ("GET", "/v1/export/acme?policy=shred", None, "policy"),
    ];
    for (m, p, body, field) in cases {
        let (s, v) = c.call(m, p, &admin, body.clone());
        assert_eq!((s, v["error"].as_str()), (422, Some("bad_input")), "{m} {p} {body:?}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.to_lowercase().contains(field), "{m} {p}: detail should name {field}: {detail}");
    }
    assert_eq!(store.event_count(), before, "a refused request appends nothing");
}
