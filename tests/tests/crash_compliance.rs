//! Guards crash safety of deletion, retention and bulk ingest: SIGKILL at random
//! points on tiny copies of one template store, until at least 50 kills landed while
//! a command was running; afterwards the store always verifies and each operation
//! happened completely or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use custos_tests::{custos, line, line_at, Store};
use serde_json::json;

struct Copy {
    _dir: tempfile::TempDir,
    db: PathBuf,
    key: PathBuf,
    token: PathBuf,
}

fn copy_of(t: &Store) -> Copy {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("s.db");
    std::fs::copy(&t.db, &db).unwrap_or_else(|e| panic!("{e}"));
    let wal = PathBuf::from(format!("{}-wal", t.db.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", db.display())).unwrap_or_else(|e| panic!("{e}"));
    }
    let key = dir.path().join("k");
    std::fs::copy(&t.key, &key).unwrap_or_else(|e| panic!("{e}"));
    let token = dir.path().join("t");
    std::fs::copy(&t.admin, &token).unwrap_or_else(|e| panic!("{e}"));
    Copy { _dir: dir, db, key, token }
}

fn cmd(c: &Copy, args: &[&str]) -> std::process::Command {
    let mut k = custos();
    k.env("CUSTOS_STORE", &c.db).env("CUSTOS_ROOT_KEY_FILE", &c.key).env("CUSTOS_TOKEN_FILE", &c.token).args(args);
    k
}

/// How a run under [`run_and_kill`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The command exited by itself (before the kill point, or just before the signal).
    Finished,
    /// The SIGKILL landed: the process was still running and died of the signal.
    Killed,
}

/// Runs `args` (stdin from `input`), SIGKILLs it after `after` unless it finished.
fn run_and_kill(c: &Copy, args: &[&str], input: Option<&Path>, after: Duration) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    let mut k = cmd(c, args);
    k.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if let Some(i) = input {
        k.stdin(std::fs::File::open(i).unwrap_or_else(|e| panic!("{e}")));
    }
    let mut child = k.spawn().unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    while t0.elapsed() < after {
        if let Ok(Some(_)) = child.try_wait() {
            return Ended::Finished;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill(); // SIGKILL on Unix
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    // The exit status, not the timing, tells whether the signal landed: the process may
    // have exited on its own between the last poll and the kill.
    if status.signal() == Some(SIGKILL) {
        Ended::Killed
    } else {
        Ended::Finished
    }
}

/// SIGKILL's number (9 on every Unix), spelled out to avoid a libc dependency.
const SIGKILL: i32 = 9;

fn verify_ok(c: &Copy) {
    let out = cmd(c, &["--json", "verify"]).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "store does not verify after SIGKILL: {}", String::from_utf8_lossy(&out.stdout));
}

fn q(c: &Copy, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(&c.db).unwrap_or_else(|e| panic!("{e}"));
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn template() -> Store {
    let s = Store::new();
    let mut lines = vec![];
    for t in ["t1", "t2", "t3"] {
        for i in 0..150 {
            lines.push(line_at(t, if i % 2 == 0 { "dlq" } else { "runs" }, "e", "2025-01-01T00:00:00Z", json!({"i": i})));
            lines.push(line(t, "queue", "recent", json!({"i": i})));
        }
    }
    s.ingest(&lines.join("\n"));
    s
}

/// Time an uninterrupted run takes, to spread kill points over it.
fn duration_of(t: &Store, args: &[&str], input: Option<&Path>) -> Duration {
    let c = copy_of(t);
    let t0 = Instant::now();
    assert_eq!(run_and_kill(&c, args, input, Duration::from_secs(60)), Ended::Finished);
    t0.elapsed()
}

#[test]
fn sigkill_during_delete_retention_and_ingest_is_all_or_nothing() {
    let t = template();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7) | 1;
    eprintln!("crash loop seed {seed}");
    let mut rng = Rng(seed);
    let mut outcomes = [0u32; 2];

    let del = ["compliance", "delete", "--yes", "--tenant", "t2"];
    let del_span = duration_of(&t, &del, None).as_micros() as u64 * 12 / 10;

    let ret = ["retention", "run", "--yes", "--as-of", "2026-01-01T00:00:00Z"];
    let full = {
        let c = copy_of(&t);
        assert_eq!(run_and_kill(&c, &ret, None, Duration::from_secs(60)), Ended::Finished);
        q(&c, "SELECT count(*) FROM events WHERE body IS NULL")
    };
    assert_eq!(full, 450, "dlq (30 d) and runs (90 d) of 2025 are purged");
    let ret_span = duration_of(&t, &ret, None).as_micros() as u64 * 12 / 10;

    let input = t.dir.path().join("big.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap_or_else(|e| panic!("{e}")));
        for i in 0..4000 {
            let _ = writeln!(f, "{}", line(&format!("n{}", i % 7), "custom", "bulk", json!({"i": i, "pad": "z".repeat(64)})));
        }
    }
    let base = q(&copy_of(&t), "SELECT count(*) FROM events");
    let ing = ["ingest", "-"];
    let ing_span = duration_of(&t, &ing, Some(&input)).as_micros() as u64 * 12 / 10;

    // The issue asks for at least 50 kills that really interrupt a command. Kill points are
    // spread over the whole run (and a bit past it), so some runs finish first; keep going,
    // round-robin over the three operations, until enough kills landed, within a bound so a
    // machine where commands outrun the kill fails clearly instead of looping forever.
    const MIN_LANDED: u32 = 50;
    const MAX_ATTEMPTS: u32 = 200;
    let mut landed = [0u32; 3];
    let mut attempts = 0u32;
    while landed.iter().sum::<u32>() < MIN_LANDED && attempts < MAX_ATTEMPTS {
        let op = (attempts % 3) as usize;
        attempts += 1;
        let c = copy_of(&t);
        let ended = match op {
            0 => {
                let ended = run_and_kill(&c, &del, None, Duration::from_micros(rng.below(del_span)));
                verify_ok(&c);
                let deleted = q(&c, "SELECT count(*) FROM tenant_heads WHERE tenant='t2' AND deleted_at IS NOT NULL");
                let deks = q(&c, "SELECT count(*) FROM deks WHERE tenant='t2'");
                let live = q(&c, "SELECT count(*) FROM events WHERE tenant='t2' AND body IS NOT NULL");
                let ev = q(&c, "SELECT count(*) FROM events WHERE tenant='_system' AND kind='tenant_deleted'");
                if deleted == 1 {
                    assert_eq!((deks, live, ev), (0, 0, 1), "partial deletion");
                } else {
                    assert_eq!(ended, Ended::Killed, "a finished deletion must be visible");
                    assert_eq!((deks, live, ev), (1, 300, 0), "partial deletion");
                }
                outcomes[deleted as usize] += 1;
                ended
            }
            1 => {
                let ended = run_and_kill(&c, &ret, None, Duration::from_micros(rng.below(ret_span)));
                verify_ok(&c);
                let runs = q(&c, "SELECT count(*) FROM events WHERE tenant='_system' AND kind='retention_enforced'");
                let purged = q(&c, "SELECT count(*) FROM events WHERE body IS NULL");
                match runs {
                    0 => {
                        assert_eq!(ended, Ended::Killed, "a finished retention run must be visible");
                        assert_eq!(purged, 0, "purge without its retention_enforced event")
                    }
                    1 => assert_eq!(purged, full, "partial retention run"),
                    n => panic!("{n} retention runs"),
                }
                outcomes[runs as usize] += 1;
                ended
            }
            _ => {
                let ended = run_and_kill(&c, &ing, Some(&input), Duration::from_micros(rng.below(ing_span)));
                verify_ok(&c);
                let n = q(&c, "SELECT count(*) FROM events");
                assert!(n == base || n == base + 4000, "partial ingest: {n} events (base {base})");
                if n == base {
                    assert_eq!(ended, Ended::Killed, "a finished ingest must be visible");
                }
                outcomes[usize::from(n != base)] += 1;
                ended
            }
        };
        if ended == Ended::Killed {
            landed[op] += 1;
        }
    }
    eprintln!("landed kills (delete, retention, ingest): {landed:?} in {attempts} attempts");
    let total: u32 = landed.iter().sum();
    assert!(total >= MIN_LANDED, "only {total} of {attempts} SIGKILLs landed while a command ran (need {MIN_LANDED}): {landed:?}");
    assert!(landed.iter().all(|n| *n > 0), "every operation must be interrupted at least once: {landed:?}");
    // Over 50 landed kills both outcomes are expected; if timing makes one side empty the
    // test still proved atomicity, so this is only reported.
    eprintln!("not-applied / applied outcomes: {outcomes:?}");
}
