//! `backup` and `restore`: a consistent online copy of the store, gzip-compressed.
//!
//! The copy is taken by the backend ([`custos_eventlog::Backend::backup_to`], the SQLite
//! online backup API) into a temp file beside the output, compressed into `FILE.tmp`,
//! synced, then renamed to `FILE`: a crash never leaves a half-written backup under the
//! final name. The gzip header carries the comment [`BACKUP_MAGIC`] so `restore` can
//! tell a custos backup from any other gzip file. The root key is never in the store,
//! so it is never in a backup: keep it apart (DESIGN §4, §7).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use custos_domain::{format_ts, now_micros};
use custos_eventlog::{EventLog, VerifyOptions};
use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};
use serde::Serialize;
use serde_json::json;

use crate::{Platform, PlatformError, Principal};

/// Gzip header comment that marks a custos backup (format version 1).
pub const BACKUP_MAGIC: &[u8] = b"custos-backup v1";

/// The answer of `backup`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupInfo {
    /// The backup file.
    pub file: String,
    /// Its size (compressed), bytes.
    pub bytes: u64,
    /// Size of the database copy before compression, bytes.
    pub store_bytes: u64,
    /// SHA-256 of the backup file, hex.
    pub sha256: String,
    /// Log size (events) in the copy.
    pub events: u64,
    /// Global chain head of the copy, hex.
    pub global_head: String,
    /// When the copy was taken (RFC 3339).
    pub taken_at: String,
}

/// The answer of `restore`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreInfo {
    /// The backup read.
    pub file: String,
    /// The new store.
    pub store: String,
    /// Events in it.
    pub events: u64,
    /// Global chain head, hex.
    pub global_head: String,
    /// Header-level verification of the restored store (chains, checkpoints, purge coverage).
    pub verified: bool,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> PlatformError {
    PlatformError::Io(format!("{what} {}: {e}", p.display()))
}

fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn sync_dir(p: &Path) {
    if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(f) = File::open(d) {
            let _ = f.sync_all();
        }
    }
}

impl Platform {
    /// Writes a consistent, compressed copy of the store to `out` (refuses to overwrite),
    /// then records `backup_created` in `_system`.
    pub fn backup(&mut self, p: &Principal, out: &Path) -> Result<BackupInfo, PlatformError> {
        if out.exists() {
            return Err(PlatformError::Input(format!(
                "{} already exists; refusing to overwrite a backup (choose another --out)",
                out.display()
            )));
        }
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let work =
            tempfile::Builder::new().prefix(".custos-backup-").tempdir_in(dir).map_err(|e| io("cannot create a temp dir in", dir, e))?;
        let copy = work.path().join("store.db");
        let taken_at = now_micros();
        self.log.backend().backup_to(&copy)?;
        let store_bytes = std::fs::metadata(&copy).map_err(|e| io("cannot stat", &copy, e))?.len();
        let (events, head) = {
            let l = EventLog::open(&copy.display().to_string())?;
            let h = l.head()?;
            (h.size, hex::encode(h.chain))
        };

        let tmp = sibling(out, ".tmp");
        let res = (|| -> Result<String, PlatformError> {
            let f = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
            let mut gz = GzBuilder::new().comment(BACKUP_MAGIC).filename("custos.db").write(BufWriter::new(f), Compression::fast());
            let mut src = BufReader::new(File::open(&copy).map_err(|e| io("cannot read", &copy, e))?);
            std::io::copy(&mut src, &mut gz).map_err(|e| io("cannot write", &tmp, e))?;
            let w = gz.finish().map_err(|e| io("cannot write", &tmp, e))?;
            let f = w.into_inner().map_err(|e| io("cannot write", &tmp, e.into_error()))?;
            f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
            // Hashed in chunks: a backup can be far larger than memory.
            let mut f = File::open(&tmp).map_err(|e| io("cannot read", &tmp, e))?;
            let mut h = custos_crypto::Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(|e| io("cannot read", &tmp, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(hex::encode(h.finish()))
        })();
        let sha = match res {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, out).map_err(|e| io("cannot rename into", out, e))?;
        sync_dir(out);
        let bytes = std::fs::metadata(out).map_err(|e| io("cannot stat", out, e))?.len();
        let info = BackupInfo {
            file: out.display().to_string(),
            bytes,
            store_bytes,
            sha256: sha,
            events,
            global_head: head,
            taken_at: format_ts(taken_at),
        };
        let data = json!({"file": info.file, "bytes": bytes, "sha256": info.sha256, "events": events, "global_head": info.global_head});
        self.append_system("backup_created", data, &p.name)?;
        Ok(info)
    }
}

/// Restores a backup made by [`Platform::backup`] into a new store at `store`.
/// Refuses to overwrite; rejects files that are not custos backups or are truncated;
/// checks the chains of the restored copy before moving it into place.
pub fn restore(file: &Path, store: &str) -> Result<RestoreInfo, PlatformError> {
    if custos_eventlog::postgres::is_postgres_url(store) {
        // A backup is an SQLite file; a PostgreSQL store is restored with its own tools.
        return Err(PlatformError::Input(format!(
            "custos restore creates SQLite stores and cannot restore into the PostgreSQL store {}; restore a PostgreSQL store \
             with `pg_restore` from a `pg_dump` (docs/OPERATIONS.md, PostgreSQL stores), or give --store a new file path",
            custos_eventlog::postgres::redact(store)
        )));
    }
    let dest = Path::new(store);
    if dest.exists() || sibling(dest, "-wal").exists() {
        return Err(PlatformError::Input(format!("{store} already exists; restore only creates new stores (choose another --store)")));
    }
    let f = File::open(file).map_err(|e| io("cannot open backup", file, e))?;
    let mut dec = GzDecoder::new(BufReader::new(f));
    let not_backup =
        || PlatformError::Input(format!("{} is not a custos backup (expected a gzip file written by `custos backup`)", file.display()));
    match dec.header() {
        Some(h) if h.comment() == Some(BACKUP_MAGIC) => {}
        _ => return Err(not_backup()),
    }
    let tmp = sibling(dest, ".restore-tmp");
    let cleanup = |p: &Path| {
        for s in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(sibling(p, s));
        }
    };
    cleanup(&tmp);
    let res = (|| -> Result<RestoreInfo, PlatformError> {
        let mut out = BufWriter::new(File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?);
        std::io::copy(&mut dec, &mut out).map_err(|e| {
            PlatformError::Input(format!(
                "{} is truncated or corrupt ({e}); nothing was restored — use another copy of the backup",
                file.display()
            ))
        })?;
        let f = out.into_inner().map_err(|e| io("cannot write", &tmp, e.into_error()))?;
        f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
        drop(f);
        let log = EventLog::open(&tmp.display().to_string())
            .map_err(|e| PlatformError::Input(format!("{} does not hold a custos store ({e}); nothing was restored", file.display())))?;
        let rep = log.verify(&VerifyOptions::default(), &mut |_| {})?;
        if !rep.ok {
            return Err(PlatformError::Integrity(format!(
                "the store in {} fails verification at seq {}: {}; nothing was restored",
                file.display(),
                rep.first_bad_seq.unwrap_or(0),
                rep.error.unwrap_or_default()
            )));
        }
        let h = log.head()?;
        Ok(RestoreInfo {
            file: file.display().to_string(),
            store: store.to_string(),
            events: h.size,
            global_head: hex::encode(h.chain),
            verified: true,
        })
    })();
    match res {
        Ok(info) => {
            // Only a verified copy takes the final name; the store's -wal was merged when the log closed.
            std::fs::rename(&tmp, dest).map_err(|e| io("cannot rename into", dest, e))?;
            cleanup(&tmp);
            sync_dir(dest);
            Ok(info)
        }
        Err(e) => {
            cleanup(&tmp);
            Err(e)
        }
    }
}
