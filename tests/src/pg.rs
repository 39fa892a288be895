//! A throwaway PostgreSQL for the tests: `initdb` + `pg_ctl` in a temp dir, listening
//! only on a Unix socket in that dir (no TCP), started once per test binary, one fresh
//! database per test.
//!
//! PostgreSQL refuses to run as root and CI runs as root: then the data dir is owned
//! by the `postgres` system user and initdb/pg_ctl run through `runuser -u postgres --`.
//! A watchdog process stops the server (`pg_ctl stop -m immediate`) and removes the
//! dir as soon as the test process is gone, however it ended, so no server outlives
//! the test run.
//!
//! Missing binaries: [`server`] prints `SKIPPING PostgreSQL tests: initdb not found`
//! and returns None, except with `CI=true`, where it panics (CI must run them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Superuser created by initdb (trust auth on the socket).
pub const USER: &str = "custos";

/// A running throwaway server.
#[derive(Debug)]
pub struct PgServer {
    /// Temp dir holding `data/`, the socket and `server.log`.
    pub dir: PathBuf,
    /// Directory of the PostgreSQL binaries used.
    pub bin: PathBuf,
    next_db: AtomicU32,
}

/// Where `initdb` lives: PATH first, then the newest `/usr/lib/postgresql/*/bin`.
/// Returns the directory (symlinks resolved, so `pg_ctl` finds its `postgres`).
pub fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file());
    let found = on_path.or_else(|| {
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let p = e.path().join("bin").join("initdb");
                p.is_file().then_some((v, p))
            })
            .collect();
        dirs.sort();
        dirs.pop().map(|(_, p)| p)
    })?;
    let real = std::fs::canonicalize(&found).unwrap_or(found);
    let dir = real.parent()?.to_path_buf();
    dir.join("pg_ctl").is_file().then_some(dir)
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn id_of(flag: &str, user: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, user]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// `prog args...`, as the postgres user when we are root.
fn pg_cmd(bin: &Path, prog: &str) -> Command {
    let exe = bin.join(prog);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run_ok(mut c: Command, what: &str, log: Option<&Path>) -> Result<(), String> {
    let o = c.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if o.status.success() {
        return Ok(());
    }
    let log = log.and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
    Err(format!("{what} failed ({}):\n{}{}\n{log}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// Settings for a throwaway server.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Durable commits (fsync). Tests turn it off for speed; benchmarks keep it on.
    pub durable: bool,
}

impl PgServer {
    /// initdb + start, in a new temp dir. The server is stopped when this process exits.
    pub fn start(bin: &Path, settings: Settings) -> Result<Self, String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "custos-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let data = dir.join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        // Only the server's user may reach the socket (trust auth): mode 0700 on both.
        for d in [&dir, &data] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        }
        if is_root() {
            // The postgres user must own the data dir and be able to create its socket
            // and log in the temp dir; root reaches both anyway.
            let (uid, gid) = match (id_of("-u", "postgres"), id_of("-g", "postgres")) {
                (Some(u), Some(g)) => (u, g),
                _ => return Err("running as root but there is no `postgres` system user to run PostgreSQL as".into()),
            };
            for d in [&dir, &data] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", d.display()))?;
            }
        }
        let server = Self { dir: dir.clone(), bin: bin.to_path_buf(), next_db: AtomicU32::new(0) };
        // Arm the watchdog before anything can be left running.
        server.watchdog()?;
        let mut init = pg_cmd(bin, "initdb");
        init.arg("-D").arg(&data).args(["-U", USER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
        run_ok(init, "initdb", None)?;
        let log = dir.join("server.log");
        let mut opts =
            format!("-c listen_addresses='' -c unix_socket_directories='{}' -c max_connections=200 -c shared_buffers=64MB", dir.display());
        if !settings.durable {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut start = pg_cmd(bin, "pg_ctl");
        start.arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "-t", "60", "-o", &opts, "start"]);
        start.stdout(Stdio::null()).stderr(Stdio::piped());
        run_ok(start, "pg_ctl start", Some(&log))?;
        Ok(server)
    }

    /// A process that outlives nothing: once this process is gone it stops the
    /// server and removes the temp dir.
    fn watchdog(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let as_pg = if is_root() { "runuser -u postgres -- " } else { "" };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {as_pg}'{ctl}' -D '{data}' stop -m immediate -w >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            ctl = pg_ctl.display(),
            data = data.display(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| format!("cannot start the PostgreSQL watchdog: {e}"))
    }

    /// `postgres://` URL of database `db` over the socket.
    pub fn url(&self, db: &str) -> String {
        format!("postgres:///{db}?host={}&user={USER}", self.dir.display())
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn fresh_db(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        let mut c = self.client("postgres");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// A client connected to database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap_or_else(|e| panic!("connect to test PostgreSQL: {e}"))
    }

    /// Stops the server now (tests that need it gone; the watchdog also does it).
    pub fn stop(&self) {
        let mut c = pg_cmd(&self.bin, "pg_ctl");
        c.arg("-D").arg(self.dir.join("data")).args(["stop", "-m", "immediate", "-w"]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();

/// The shared server of this test binary, started on first use. None (after a loud
/// message on stderr) when PostgreSQL is not installed and `CI` is not `true`.
pub fn server() -> Option<&'static PgServer> {
    SERVER
        .get_or_init(|| {
            let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
            let Some(bin) = find_bin_dir() else {
                if ci {
                    panic!("PostgreSQL binaries (initdb, pg_ctl) not found and CI=true: install postgresql (.ci/run does)");
                }
                eprintln!("\n*** SKIPPING PostgreSQL tests: initdb not found (install postgresql to run them) ***\n");
                return None;
            };
            match PgServer::start(&bin, Settings { durable: false }) {
                Ok(s) => Some(s),
                Err(e) => panic!("cannot start a throwaway PostgreSQL from {}: {e}", bin.display()),
            }
        })
        .as_ref()
}
