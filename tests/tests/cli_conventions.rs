//! Guards the CLI conventions operators rely on: destructive commands ask for typed
//! confirmation (driven on a real pseudo-terminal here), refuse without a terminal
//! unless `--yes`; `custos.toml` with flag > env > file > default precedence and
//! `config show`; shell completions and man pages generated from the clap definitions.

use std::io::{Read, Write};
use std::path::Path;

use custos_tests::{custos, line, Store};
use serde_json::{json, Value};

fn seeded() -> Store {
    let s = Store::new();
    let lines: Vec<String> = (0..5).map(|i| line("acme", "runs", "job_done", json!({"i": i}))).collect();
    s.ingest(&(lines.join("\n") + "\n"));
    s
}

fn acme_events(s: &Store) -> usize {
    let r = s.run(&["events", "list", "--tenant", "acme"]);
    r.expect(0);
    r.jsonl().len()
}

#[test]
fn destructive_commands_refuse_without_a_terminal_unless_yes() {
    let s = seeded();
    let new_root = s.dir.path().join("new-root.key");
    let nr = new_root.to_str().unwrap_or_default();
    for args in [
        vec!["compliance", "delete", "--tenant", "acme"],
        vec!["retention", "run"],
        vec!["keys", "retire", "key-001"],
        vec!["keys", "rotate-root", "--new-root-key-file", nr],
    ] {
        let r = s.run(&args);
        r.expect(1);
        assert!(r.stderr.contains("--yes") && r.stderr.contains("not a terminal"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("nothing was changed"), "{}", r.stderr);
    }
    assert_eq!(acme_events(&s), 5, "refused delete changed nothing");
    assert!(!new_root.exists(), "refused rotate-root wrote no key file");
    assert!(s.system_events("tenant_deleted").is_empty());
    assert!(s.system_events("retention_enforced").is_empty());

    // Dry runs destroy nothing, so they never ask.
    s.run(&["compliance", "delete", "--tenant", "acme", "--dry-run"]).expect(0);
    s.run(&["retention", "run", "--dry-run"]).expect(0);

    // Role is checked before confirmation: an Auditor is denied (2), not prompted.
    let aud = s.actor("aud", "auditor", "restricted");
    s.run_as(&aud, &["compliance", "delete", "--tenant", "acme"]).expect(2);

    // --yes works anywhere on the line, and -y is its short form.
    s.run(&["--yes", "retention", "run"]).expect(0);
    assert_eq!(s.system_events("retention_enforced").len(), 1, "a confirmed run is recorded");
    s.run(&["compliance", "delete", "--tenant", "acme", "-y"]).expect(0);
    assert_eq!(s.system_events("tenant_deleted").len(), 1);
}

/// Runs custos on a fresh pseudo-terminal (stdin, stdout and stderr), typing `typed`.
fn on_pty(s: &Store, args: &[&str], typed: &str) -> (i32, String) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap_or_else(|e| panic!("openpt: {e}"));
    grantpt(&master).unwrap_or_else(|e| panic!("grantpt: {e}"));
    unlockpt(&master).unwrap_or_else(|e| panic!("unlockpt: {e}"));
    let name = ptsname(&master, Vec::new()).unwrap_or_else(|e| panic!("ptsname: {e}"));
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(Path::new(name.to_str().unwrap_or_default()))
        .unwrap_or_else(|e| panic!("open pty slave: {e}"));
    let clone = || slave.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let mut child = s
        .cmd()
        .env("CUSTOS_TOKEN_FILE", &s.admin)
        .args(args)
        .stdin(clone())
        .stdout(clone())
        .stderr(clone())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    drop(slave);
    let mut m = std::fs::File::from(master);
    // The line discipline buffers what is typed until custos reads it.
    m.write_all(typed.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut reader = m.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Linux returns EIO once every slave descriptor is closed: that is the end.
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&buf).into_owned()
    });
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    let text = out.join().unwrap_or_else(|_| panic!("pty reader panicked"));
    (status.code().unwrap_or(-1), text)
}

#[test]
fn a_terminal_must_type_the_tenant_id_to_delete() {
    let s = seeded();
    let (code, out) = on_pty(&s, &["compliance", "delete", "--tenant", "acme"], "acm\n");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Type the tenant id `acme`"), "the prompt names what to type: {out}");
    assert!(out.contains("did not match"), "{out}");
    assert!(s.system_events("tenant_deleted").is_empty(), "a mistyped confirmation deletes nothing");

    let (code, out) = on_pty(&s, &["compliance", "delete", "--tenant", "acme"], "acme\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deleted acme"), "{out}");
    assert_eq!(s.system_events("tenant_deleted").len(), 1);

    // A key id for keys retire: key-001 after a rotation is decrypt-only and unused once rewrapped.
    s.run(&["keys", "rotate"]).expect(0);
    s.run(&["keys", "rewrap"]).expect(0);
    let (code, out) = on_pty(&s, &["keys", "retire", "key-001"], "key-001\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Type the key id `key-001`") && out.contains("retired key-001"), "{out}");
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
}

fn settings(r: &custos_tests::Run) -> Value {
    r.expect(0);
    let v = r.json();
    let mut m = serde_json::Map::new();
    for s in v["settings"].as_array().cloned().unwrap_or_default() {
        m.insert(s["name"].as_str().unwrap_or_default().to_string(), s);
    }
    Value::Object(m)
}

#[test]
fn config_file_precedence_flag_over_env_over_file_over_default() {
    let s = seeded();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("custos.toml");
    // Relative paths are resolved beside the file.
    std::fs::copy(&s.admin, dir.path().join("ops.token")).unwrap_or_else(|e| panic!("{e}"));
    write(
        &cfg,
        &format!(
            "store = {:?}\nroot_key_file = {:?}\ntoken_file = \"ops.token\"\n\n[keys]\nrotation_days = 30\n",
            s.location,
            s.key.display().to_string()
        ),
    );

    // The file alone is enough to run a command that needs store, key and token.
    let c = || {
        let mut c = custos();
        c.arg("--config").arg(&cfg);
        c
    };
    let who = c().args(["--json", "whoami"]).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));

    let out = |c: &mut std::process::Command| custos_tests::Run::capture(c);
    let shown = settings(&out(c().args(["--json", "config", "show"])));
    assert_eq!(shown["store"]["source"]["kind"], "file");
    assert_eq!(shown["token_file"]["value"], dir.path().join("ops.token").display().to_string());
    assert_eq!(shown["keys.rotation_days"]["value"], "30");
    assert_eq!(shown["root_key_file"]["source"]["kind"], "file");

    // env over file, flag over env.
    let shown = settings(&out(c().env("CUSTOS_STORE", "/env/custos.db").args(["--json", "config", "show"])));
    assert_eq!(shown["store"]["value"], "/env/custos.db");
    assert_eq!(shown["store"]["source"], json!({"kind": "env", "detail": "CUSTOS_STORE"}));
    let shown = settings(&out(c().env("CUSTOS_STORE", "/env/custos.db").args(["--json", "config", "show", "--store", "/flag.db"])));
    assert_eq!(shown["store"]["value"], "/flag.db");
    assert_eq!(shown["store"]["source"], json!({"kind": "flag", "detail": "--store"}));
    assert_eq!(shown["root_key_file"]["source"]["kind"], "file", "what the flags leave still comes from the file");

    // CUSTOS_CONFIG finds the file too; ./custos.toml is found from the working directory.
    let shown = settings(&out(custos().env("CUSTOS_CONFIG", &cfg).args(["--json", "config", "show"])));
    assert_eq!(shown["store"]["source"]["kind"], "file");
    let shown = settings(&out(custos().current_dir(dir.path()).args(["--json", "config", "show"])));
    assert_eq!(shown["keys.rotation_days"]["value"], "30");
    let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let shown = settings(&out(custos().current_dir(elsewhere.path()).args(["--json", "config", "show"])));
    assert_eq!(shown["store"]["source"]["kind"], "default");
    assert_eq!(shown["keys.rotation_days"]["value"], "90");

    // The file's default applies until the log records a policy; then the log wins.
    let st = out(c().args(["--json", "keys", "status"]));
    st.expect(0);
    assert_eq!(st.json()["rotation_days"], 30, "{}", st.stdout);
    s.run(&["keys", "policy", "--rotation-days", "45"]).expect(0);
    assert_eq!(out(c().args(["--json", "keys", "status"])).json()["rotation_days"], 45);

    // Never a secret: no token and no PostgreSQL password in the output.
    let token = std::fs::read_to_string(&s.admin).unwrap_or_default();
    let human = out(c().env("CUSTOS_STORE", "postgres://u:hunter2@db/custos").args(["config", "show"]));
    human.expect(0);
    assert!(!human.stdout.contains(token.trim()) && !human.stdout.contains("hunter2"), "{}", human.stdout);

    // A bad file is named, with the bad key; a missing explicit file is an error.
    write(&cfg, "stroe = \"x.db\"\n");
    let bad = out(c().args(["config", "show"]));
    bad.expect(1);
    assert!(bad.stderr.contains("custos.toml") && bad.stderr.contains("stroe"), "{}", bad.stderr);
    out(custos().args(["--config", "/nonexistent/custos.toml", "config", "show"])).expect(1);
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef custos"), ("fish", "complete -c custos")] {
        let r = custos_tests::Run::capture(custos().args(["completions", shell]));
        r.expect(0);
        assert!(r.stdout.contains(marker), "{shell}: {}", &r.stdout[..r.stdout.len().min(300)]);
        assert!(r.stdout.contains("verify-bundle") && r.stdout.contains("rotate-root"), "{shell} completes subcommands");
    }
    custos_tests::Run::capture(custos().args(["completions", "tcsh"])).expect(64);

    let man = custos_tests::Run::capture(custos().arg("man"));
    man.expect(0);
    assert!(man.stdout.contains(".TH custos 1") && man.stdout.contains("compliance"), "{}", &man.stdout[..200.min(man.stdout.len())]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pages = dir.path().join("man1");
    let r = custos_tests::Run::capture(custos().args(["--json", "man", "--out-dir"]).arg(&pages));
    r.expect(0);
    let listed = r.json()["pages"].as_array().map(Vec::len).unwrap_or(0);
    assert!(listed > 20, "one page per command: {}", r.stdout);
    let delete = std::fs::read_to_string(pages.join("custos-compliance-delete.1")).unwrap_or_else(|e| panic!("{e}"));
    assert!(delete.contains("\\-\\-yes") || delete.contains("yes"), "global --yes documented on the delete page");
}
