//! Shared harness for the end-to-end tests: a temp store created by the real
//! `custos init` (SQLite, or PostgreSQL on a throwaway server: [`pg`]), helpers to
//! run commands as a given actor and read their exit code, stdout JSON and stderr,
//! and the backend-agnostic scenarios both backends must pass ([`scenarios`]).
//!
//! The binary under test is `target/<profile>/custos`. `cargo test --workspace` builds it;
//! when running only this package, build it first: `cargo build -p custos-cli`.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// Result type of tests.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr as text.
    pub stderr: String,
}

impl Run {
    /// Runs `c` to completion, capturing its output.
    pub fn capture(c: &mut std::process::Command) -> Self {
        Self::from(c.output().unwrap_or_else(|e| panic!("{e}")))
    }

    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
    /// Stdout parsed as one JSON value (panics with the output if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
    /// Stdout as JSON lines.
    pub fn jsonl(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL ({e}): {l}")))
            .collect()
    }
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

pub mod pg;
pub mod scenarios;

/// Which storage backend a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in the temp dir.
    Sqlite,
    /// A fresh database on the test binary's throwaway PostgreSQL ([`pg::server`]).
    Postgres,
}

impl Backend {
    /// From `CUSTOS_TEST_BACKEND` (`sqlite` by default, or `postgres`).
    pub fn from_env() -> Self {
        match std::env::var("CUSTOS_TEST_BACKEND").as_deref() {
            Ok("postgres") | Ok("postgresql") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// A temp store made by `custos init`, with the admin's token saved in a file.
pub struct Store {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Backend of this store.
    pub backend: Backend,
    /// What `--store` / `CUSTOS_STORE` gets: the SQLite path or the PostgreSQL URL.
    pub location: String,
    /// SQLite store path (for PostgreSQL: an unused path in the temp dir).
    pub db: PathBuf,
    /// Root key file.
    pub key: PathBuf,
    /// Admin token file.
    pub admin: PathBuf,
}

/// A `custos` command with no inherited CUSTOS_* environment.
pub fn custos() -> std::process::Command {
    let mut c = std::process::Command::cargo_bin("custos").unwrap_or_else(|e| panic!("custos binary not built: {e}"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CUSTOS_") {
            c.env_remove(k);
        }
    }
    c
}

impl Store {
    /// `custos init` in a fresh temp dir, on the backend named by `CUSTOS_TEST_BACKEND`
    /// (SQLite by default). Panics if that is PostgreSQL and it is not installed.
    pub fn new() -> Self {
        Self::with_backend(Backend::from_env()).unwrap_or_else(|| panic!("CUSTOS_TEST_BACKEND=postgres but PostgreSQL is not installed"))
    }

    /// `custos init` on `backend`. None when it is PostgreSQL and the binaries are
    /// missing outside CI (the caller skips; [`pg::server`] already said so loudly).
    pub fn with_backend(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let db = dir.path().join("store.db");
        let location = match backend {
            Backend::Sqlite => db.display().to_string(),
            Backend::Postgres => pg::server()?.fresh_db(),
        };
        let key = dir.path().join("root.key");
        let out = custos()
            .args(["--json", "init", "--store"])
            .arg(&location)
            .arg("--root-key-file")
            .arg(&key)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let run = Run::from(out);
        run.expect(0);
        let token = run.json()["admin"]["token"].as_str().unwrap_or_default().to_string();
        let admin = dir.path().join("admin.token");
        std::fs::write(&admin, token).unwrap_or_else(|e| panic!("{e}"));
        Some(Self { dir, backend, location, db, key, admin })
    }

    /// A command bound to this store and its root key, without a token.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = custos();
        c.env("CUSTOS_STORE", &self.location).env("CUSTOS_ROOT_KEY_FILE", &self.key);
        c
    }

    /// A direct client on this store's PostgreSQL database (tamper tests). Panics on SQLite.
    pub fn pg_client(&self) -> postgres::Client {
        assert_eq!(self.backend, Backend::Postgres, "pg_client on an SQLite store");
        postgres::Client::connect(&self.location, postgres::NoTls).unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// Runs `args` as the actor whose token is in `token_file`.
    pub fn run_as(&self, token_file: &Path, args: &[&str]) -> Run {
        let out = self.cmd().env("CUSTOS_TOKEN_FILE", token_file).args(args).output().unwrap_or_else(|e| panic!("{e}"));
        Run::from(out)
    }

    /// Runs `args` as the admin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.admin, args)
    }

    /// Runs `args` as the admin with `stdin` piped in.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_stdin_as(&self.admin, args, stdin)
    }

    /// Runs `args` as an actor with `stdin` piped in.
    pub fn run_stdin_as(&self, token_file: &Path, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .cmd()
            .env("CUSTOS_TOKEN_FILE", token_file)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin.as_bytes());
        }
        Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Adds an actor with `role`/`clearance` and returns its token file.
    pub fn actor(&self, name: &str, role: &str, clearance: &str) -> PathBuf {
        let r = self.run(&["--json", "actors", "add", name, "--role", role, "--clearance", clearance]);
        r.expect(0);
        let p = self.dir.path().join(format!("{name}.token"));
        std::fs::write(&p, r.json()["token"].as_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    /// Starts `custos serve --listen 127.0.0.1:0 EXTRA…` on this store (stderr appended to
    /// `serve.log` in the store's dir) and waits for its first line. Returns the child,
    /// the address it listens on and whether that is HTTPS. The caller kills the child.
    pub fn serve(&self, extra: &[&str]) -> (std::process::Child, String, bool) {
        use std::io::BufRead;
        let log_path = self.dir.path().join("serve.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap_or_else(|e| panic!("{e}"));
        let mut child = self
            .cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn custos serve: {e}"));
        let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut first = String::new();
        std::io::BufReader::new(out).read_line(&mut first).unwrap_or_else(|e| panic!("{e}"));
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("unexpected first line {first:?}; server log:\n{log}")
            })
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        (child, addr, first.contains("https"))
    }

    /// Ingests JSONL as the admin, expecting success; returns the receipt.
    pub fn ingest(&self, jsonl: &str) -> Value {
        let r = self.run_stdin(&["--json", "ingest", "-"], jsonl);
        r.expect(0);
        r.json()
    }

    /// Number of events in the log (via `verify --json`).
    pub fn event_count(&self) -> u64 {
        let r = self.run(&["--json", "verify", "--no-keys"]);
        r.json()["events"].as_u64().unwrap_or(u64::MAX)
    }

    /// `_system` events of `kind`, decrypted.
    pub fn system_events(&self, kind: &str) -> Vec<Value> {
        let r = self.run(&["events", "list", "--tenant", "_system", "--kind", kind]);
        r.expect(0);
        r.jsonl()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// One JSONL event line.
pub fn line(tenant: &str, category: &str, kind: &str, data: Value) -> String {
    serde_json::json!({"tenant": tenant, "category": category, "kind": kind, "data": data}).to_string()
}

/// One JSONL event line with an explicit time.
pub fn line_at(tenant: &str, category: &str, kind: &str, occurred_at: &str, data: Value) -> String {
    serde_json::json!({"tenant": tenant, "category": category, "kind": kind, "occurred_at": occurred_at, "data": data}).to_string()
}

#[cfg(test)]
mod suite_registration {
    use std::path::Path;

    /// A file in tests/tests that cli/Cargo.toml does not list as a `[[test]]` would
    /// never run: `autotests = false` here, and Cargo does not discover files outside
    /// the package that declares them.
    #[test]
    fn every_end_to_end_file_is_a_test_target_of_the_cli_package() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(root.join("../cli/Cargo.toml")).unwrap_or_else(|e| panic!("cli/Cargo.toml: {e}"));
        let dir = std::fs::read_dir(root.join("tests")).unwrap_or_else(|e| panic!("tests/tests: {e}"));
        let mut files = 0;
        for entry in dir {
            let name = entry.unwrap_or_else(|e| panic!("{e}")).file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".rs") else { continue };
            files += 1;
            let wanted = format!("[[test]]\nname = \"{stem}\"\npath = \"../tests/tests/{name}\"");
            assert!(manifest.contains(&wanted), "tests/tests/{name} is not registered in cli/Cargo.toml; add:\n{wanted}");
        }
        assert!(files >= 14, "only {files} end-to-end files found");
    }
}
