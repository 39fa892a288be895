//! The embedded SQLite backend: WAL, `synchronous=FULL`, `secure_delete=ON`,
//! schema version in `PRAGMA user_version`, and the one write lock SQLite gives
//! (`BEGIN IMMEDIATE` with a busy timeout) serializing appends across processes.

use std::path::{Path, PathBuf};

use custos_domain::{Category, Clearance, TenantId, Tier, Timestamp};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::backend::*;
use crate::record::Header;
use crate::LogError;

/// Schema versions, applied in order. Index i migrates from user_version i to i+1.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    global_seq   INTEGER PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    tenant_seq   INTEGER NOT NULL,
    category     INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    label        INTEGER NOT NULL DEFAULT 0,
    commitment   BLOB    NOT NULL,
    dek_version  INTEGER NOT NULL,
    nonce        BLOB,
    body         BLOB,
    tenant_chain BLOB    NOT NULL,
    global_chain BLOB    NOT NULL,
    purged_by    INTEGER,
    UNIQUE (tenant, tenant_seq)
);
CREATE TABLE tenant_heads (
    tenant     TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    chain      BLOB    NOT NULL,
    deleted_at INTEGER
);
CREATE TABLE keks (
    key_id     TEXT PRIMARY KEY,
    wrapped    BLOB,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE deks (
    tenant     TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    kek_id     TEXT    NOT NULL,
    wrapped    BLOB    NOT NULL,
    seals      INTEGER NOT NULL DEFAULT 0,
    active     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, version)
);
CREATE TABLE signing_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    public_key BLOB    NOT NULL,
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    size       INTEGER NOT NULL,
    head       BLOB    NOT NULL,
    signed_at  INTEGER NOT NULL,
    public_key BLOB    NOT NULL,
    signature  BLOB    NOT NULL
);
CREATE TABLE actors (
    name        TEXT PRIMARY KEY,
    role        TEXT    NOT NULL,
    clearance   TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL UNIQUE,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_seq INTEGER NOT NULL
);
CREATE TABLE snapshots (
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    covers_seq  INTEGER NOT NULL,
    dek_version INTEGER NOT NULL,
    nonce       BLOB    NOT NULL,
    body        BLOB    NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#,
    // 2: artifacts (chunked, each chunk sealed with the tenant's DEK) and per-tenant settings.
    r#"
CREATE TABLE artifacts (
    id          TEXT PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    sha256      BLOB    NOT NULL,
    label       TEXT,
    dek_version INTEGER NOT NULL,
    chunk_size  INTEGER NOT NULL,
    chunks      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    stored_seq  INTEGER NOT NULL
);
CREATE INDEX artifacts_tenant ON artifacts (tenant, created_at);
CREATE TABLE artifact_chunks (
    artifact_id TEXT    NOT NULL,
    idx         INTEGER NOT NULL,
    nonce       BLOB    NOT NULL,
    body        BLOB    NOT NULL,
    PRIMARY KEY (artifact_id, idx)
);
CREATE TABLE tenant_settings (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#,
    // 3: artifact storage tiers (issue 8). Existing artifacts start hot, their age
    // clock at the time they were stored.
    r#"
ALTER TABLE artifacts ADD COLUMN tier TEXT NOT NULL DEFAULT 'hot';
ALTER TABLE artifacts ADD COLUMN tier_changed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artifacts ADD COLUMN age_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artifacts ADD COLUMN purged_at INTEGER;
UPDATE artifacts SET tier_changed_at = created_at, age_from = created_at;
"#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Busy timeout for the write lock, from `CUSTOS_BUSY_TIMEOUT_MS` (default 30 s).
pub fn busy_timeout_ms() -> u64 {
    std::env::var("CUSTOS_BUSY_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000)
}

/// The SQLite backend.
pub struct SqliteBackend {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteBackend({})", self.path.display())
    }
}

impl SqliteBackend {
    // Connections are opened with SQLITE_OPEN_NO_MUTEX: a rusqlite `Connection` is `Send`
    // but not `Sync`, so SQLite's per-call mutex only costs (12% of a scan, measured).

    /// Creates a new store file; refuses if one exists.
    pub fn create(path: &Path) -> Result<Self, LogError> {
        if path.exists() {
            return Err(LogError::Exists(path.display().to_string()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut b = Self::configure(conn, path)?;
        b.migrate()?;
        Ok(b)
    }

    /// Opens an existing store, migrating its schema forward if needed.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        if !path.is_file() {
            return Err(LogError::NotFound(path.display().to_string()));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        let mut b = Self::configure(conn, path)?;
        b.migrate()?;
        Ok(b)
    }

    fn configure(conn: Connection, path: &Path) -> Result<Self, LogError> {
        conn.busy_timeout(std::time::Duration::from_millis(busy_timeout_ms()))?;
        let not_db = |e: rusqlite::Error| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                LogError::Schema(format!("{} is not a custos store (not an SQLite database)", path.display()))
            }
            e => LogError::from(e),
        };
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(not_db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LogError::Storage(format!("cannot enable WAL on {} (journal_mode={mode})", path.display())));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; PRAGMA foreign_keys=OFF;")?;
        Ok(Self { conn, path: path.to_path_buf() })
    }

    fn migrate(&mut self) -> Result<(), LogError> {
        let v: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(LogError::Schema(format!(
                "{} has schema version {v}, newer than this custos understands ({SCHEMA_VERSION}); upgrade custos",
                self.path.display()
            )));
        }
        if v == 0 {
            let tables: i64 = self.conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables > 0 {
                return Err(LogError::Schema(format!("{} is an SQLite database but not a custos store", self.path.display())));
            }
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(v as usize) {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Direct access for maintenance (backup, checkpointing the WAL). Not for log writes.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Truncates the WAL so freed pages holding destroyed material leave it.
    pub fn checkpoint_wal(&self) -> Result<(), LogError> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

const RECORD_COLS: &str = "global_seq, tenant, tenant_seq, category, kind, occurred_at, recorded_at, label, commitment, dek_version, nonce, body, tenant_chain, global_chain, purged_by";

fn blob32(r: &Row, i: usize) -> rusqlite::Result<[u8; 32]> {
    // Borrowed straight from SQLite's row buffer: no allocation on the hot scan path.
    let v =
        r.get_ref(i)?.as_blob().map_err(|_| rusqlite::Error::InvalidColumnType(i, "32-byte blob".into(), rusqlite::types::Type::Blob))?;
    v.try_into().map_err(|_| rusqlite::Error::InvalidColumnType(i, "32-byte blob".into(), rusqlite::types::Type::Blob))
}

fn bad_col(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(i, what.into(), rusqlite::types::Type::Integer)
}

fn label_code(l: Option<Clearance>) -> i64 {
    l.map(|c| c as i64 + 1).unwrap_or(0)
}

fn label_from(code: i64) -> Option<Clearance> {
    usize::try_from(code).ok().and_then(|c| c.checked_sub(1)).and_then(|c| Clearance::ALL.get(c).copied())
}

fn row_to_record(r: &Row) -> rusqlite::Result<StoredRecord> {
    row_to_record_with(r, true)
}

/// [`row_to_record`]; without `chains` the chain columns are not read (zeros instead).
fn row_to_record_with(r: &Row, chains: bool) -> rusqlite::Result<StoredRecord> {
    // Text and small blobs are borrowed from SQLite's row buffer and copied once into
    // their final form: this decode is the reading thread's whole cost in a scan.
    let tenant = r.get_ref(1)?.as_str().map_err(|_| bad_col(1, "tenant id"))?;
    let cat: i64 = r.get(3)?;
    let label: i64 = r.get(7)?;
    let nonce = r.get_ref(10)?.as_blob_or_null().map_err(|_| bad_col(10, "12-byte nonce"))?;
    Ok(StoredRecord {
        header: Header {
            global_seq: r.get::<_, i64>(0)? as u64,
            tenant: TenantId::parse_any(tenant).map_err(|_| bad_col(1, "tenant id"))?,
            tenant_seq: r.get::<_, i64>(2)? as u64,
            category: u8::try_from(cat).ok().and_then(Category::from_code).ok_or_else(|| bad_col(3, "category code"))?,
            kind: r.get(4)?,
            occurred_at: r.get(5)?,
            recorded_at: r.get(6)?,
            label: if label == 0 { None } else { Some(label_from(label).ok_or_else(|| bad_col(7, "label code"))?) },
            commitment: blob32(r, 8)?,
        },
        dek_version: r.get::<_, i64>(9)? as u32,
        nonce: match nonce {
            Some(n) => Some(n.try_into().map_err(|_| bad_col(10, "12-byte nonce"))?),
            None => None,
        },
        body: r.get(11)?,
        tenant_chain: if chains { blob32(r, 12)? } else { [0; 32] },
        global_chain: if chains { blob32(r, 13)? } else { [0; 32] },
        purged_by: r.get::<_, Option<i64>>(14)?.map(|v| v as u64),
    })
}

const ARTIFACT_COLS: &str =
    "id, tenant, name, size, sha256, label, dek_version, chunk_size, chunks, created_at, stored_seq, tier, tier_changed_at, age_from, purged_at";

fn row_to_artifact(r: &Row) -> rusqlite::Result<ArtifactRow> {
    let label: Option<String> = r.get(5)?;
    Ok(ArtifactRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        name: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        sha256: blob32(r, 4)?,
        label: match label {
            Some(l) => Some(l.parse().map_err(|_| bad_col(5, "label name"))?),
            None => None,
        },
        dek_version: r.get::<_, i64>(6)? as u32,
        chunk_size: r.get::<_, i64>(7)? as u64,
        chunks: r.get::<_, i64>(8)? as u64,
        created_at: r.get(9)?,
        stored_seq: r.get::<_, i64>(10)? as u64,
        tier: r.get::<_, String>(11)?.parse().map_err(|_| bad_col(11, "tier name"))?,
        tier_changed_at: r.get(12)?,
        age_from: r.get(13)?,
        purged_at: r.get(14)?,
    })
}

fn artifact_chunk_of(conn: &Connection, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
    Ok(conn
        .prepare_cached("SELECT artifact_id, idx, nonce, body FROM artifact_chunks WHERE artifact_id = ?1 AND idx = ?2")?
        .query_row(params![id, index as i64], |r| {
            let n: Vec<u8> = r.get(2)?;
            Ok(ArtifactChunk {
                artifact_id: r.get(0)?,
                index: r.get::<_, i64>(1)? as u64,
                nonce: n.as_slice().try_into().map_err(|_| bad_col(2, "12-byte nonce"))?,
                body: r.get(3)?,
            })
        })
        .optional()?)
}

fn artifacts_of(conn: &Connection, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError> {
    let rows = match tenant {
        Some(t) => {
            let mut st = conn.prepare(&format!("SELECT {ARTIFACT_COLS} FROM artifacts WHERE tenant = ?1 ORDER BY created_at, id"))?;
            let v = st.query_map([t], row_to_artifact)?.collect::<Result<Vec<_>, _>>()?;
            v
        }
        None => {
            let mut st = conn.prepare(&format!("SELECT {ARTIFACT_COLS} FROM artifacts ORDER BY tenant, created_at, id"))?;
            let v = st.query_map([], row_to_artifact)?.collect::<Result<Vec<_>, _>>()?;
            v
        }
    };
    Ok(rows)
}

fn row_to_dek(r: &Row) -> rusqlite::Result<DekRow> {
    Ok(DekRow {
        tenant: r.get(0)?,
        version: r.get::<_, i64>(1)? as u32,
        kek_id: r.get(2)?,
        wrapped: r.get(3)?,
        seals: r.get::<_, i64>(4)? as u64,
        active: r.get::<_, i64>(5)? != 0,
        created_at: r.get(6)?,
    })
}

fn row_to_actor(r: &Row) -> rusqlite::Result<ActorRow> {
    Ok(ActorRow {
        name: r.get(0)?,
        role: r.get(1)?,
        clearance: r.get(2)?,
        token_hash: blob32(r, 3)?,
        disabled: r.get::<_, i64>(4)? != 0,
        created_seq: r.get::<_, i64>(5)? as u64,
    })
}

fn head_of(conn: &Connection) -> Result<Head, LogError> {
    let h = conn
        .query_row("SELECT global_seq, global_chain FROM events ORDER BY global_seq DESC LIMIT 1", [], |r| {
            Ok(Head { size: r.get::<_, i64>(0)? as u64, chain: blob32(r, 1)? })
        })
        .optional()?;
    Ok(h.unwrap_or_default())
}

fn count_live_in(conn: &Connection, tenant: &str, category: Option<Category>, before: Option<Timestamp>) -> Result<u64, LogError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM events WHERE tenant = ?1 AND body IS NOT NULL
             AND (?2 IS NULL OR category = ?2) AND (?3 IS NULL OR occurred_at < ?3)",
        )?
        .query_row(params![tenant, category.map(|c| i64::from(c.code())), before], |r| r.get(0))?;
    Ok(n as u64)
}

fn body_counts(conn: &Connection, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
    let mut st = conn.prepare_cached(
        "SELECT dek_version, count(*) FROM events WHERE tenant = ?1 AND body IS NOT NULL GROUP BY dek_version ORDER BY dek_version",
    )?;
    let rows = st.query_map([tenant], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn tenant_head_of(conn: &Connection, tenant: &str) -> Result<Option<TenantHead>, LogError> {
    Ok(conn
        .prepare_cached("SELECT tenant, last_seq, chain, deleted_at FROM tenant_heads WHERE tenant = ?1")?
        .query_row([tenant], |r| {
            Ok(TenantHead { tenant: r.get(0)?, last_seq: r.get::<_, i64>(1)? as u64, chain: blob32(r, 2)?, deleted_at: r.get(3)? })
        })
        .optional()?)
}

fn snapshot_of(conn: &Connection, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError> {
    Ok(conn
        .query_row(
            "SELECT tenant, name, covers_seq, dek_version, nonce, body FROM snapshots WHERE tenant = ?1 AND name = ?2",
            [tenant, name],
            |r| {
                let n: Vec<u8> = r.get(4)?;
                Ok(SnapshotRow {
                    tenant: r.get(0)?,
                    name: r.get(1)?,
                    covers_seq: r.get::<_, i64>(2)? as u64,
                    dek_version: r.get::<_, i64>(3)? as u32,
                    nonce: n.as_slice().try_into().map_err(|_| bad_col(4, "12-byte nonce"))?,
                    body: r.get(5)?,
                })
            },
        )
        .optional()?)
}

fn scan_conn(conn: &Connection, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError> {
    // A header-only scan (verify without keys) does not copy bodies out of SQLite: an
    // empty blob stands for "present", NULL for "purged". The 12-byte nonce is read as
    // it is (a constant literal and a borrowed nonce cost less than building blobs per row).
    let mut cols = RECORD_COLS.to_string();
    if q.headers_only {
        cols = cols.replace(" body,", " CASE WHEN body IS NULL THEN NULL ELSE x'' END,");
    }
    if q.skip_chains {
        cols = cols.replace(" tenant_chain, global_chain,", " NULL, NULL,");
    }
    let mut sql = format!("SELECT {cols} FROM events WHERE 1=1");
    let mut args: Vec<rusqlite::types::Value> = vec![];
    let mut push = |cond: &str, v: rusqlite::types::Value, sql: &mut String| {
        args.push(v);
        sql.push_str(&format!(" AND {cond} ?{}", args.len()));
    };
    if let Some(t) = &q.tenant {
        push("tenant =", t.clone().into(), &mut sql);
    }
    if let Some(c) = q.category {
        push("category =", i64::from(c.code()).into(), &mut sql);
    }
    if let Some(k) = &q.kind {
        push("kind =", k.clone().into(), &mut sql);
    }
    if let Some(s) = q.since {
        push("occurred_at >=", s.into(), &mut sql);
    }
    if let Some(u) = q.until {
        push("occurred_at <", u.into(), &mut sql);
    }
    if let Some(s) = q.from_seq {
        push("global_seq >=", (s as i64).into(), &mut sql);
    }
    if let Some(s) = q.after_tenant_seq {
        push("tenant_seq >", (s as i64).into(), &mut sql);
    }
    sql.push_str(" ORDER BY global_seq");
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let rec = row_to_record_with(r, !q.skip_chains)
            .map_err(|e| LogError::integrity(r.get::<_, i64>(0).unwrap_or(0) as u64, e.to_string()))?;
        if !f(rec)? {
            break;
        }
    }
    Ok(())
}

impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn begin(&mut self) -> Result<Box<dyn Tx + '_>, LogError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(Box::new(SqliteTx { tx }))
    }

    fn head(&self) -> Result<Head, LogError> {
        head_of(&self.conn)
    }

    fn scan(&self, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError> {
        scan_conn(&self.conn, q, f)
    }

    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, LogError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {RECORD_COLS} FROM events WHERE global_seq = ?1"), [seq as i64], row_to_record)
            .optional()?)
    }

    fn tenant_heads(&self) -> Result<Vec<TenantHead>, LogError> {
        let mut st = self.conn.prepare("SELECT tenant, last_seq, chain, deleted_at FROM tenant_heads ORDER BY tenant")?;
        let rows = st.query_map([], |r| {
            Ok(TenantHead { tenant: r.get(0)?, last_seq: r.get::<_, i64>(1)? as u64, chain: blob32(r, 2)?, deleted_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn keks(&self) -> Result<Vec<KekRow>, LogError> {
        let mut st = self.conn.prepare("SELECT key_id, wrapped, status, created_at FROM keks ORDER BY key_id")?;
        let rows = st.query_map([], |r| Ok(KekRow { key_id: r.get(0)?, wrapped: r.get(1)?, status: r.get(2)?, created_at: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn deks(&self, tenant: Option<&str>) -> Result<Vec<DekRow>, LogError> {
        let cols = "SELECT tenant, version, kek_id, wrapped, seals, active, created_at FROM deks";
        let rows = match tenant {
            Some(t) => {
                let mut st = self.conn.prepare(&format!("{cols} WHERE tenant = ?1 ORDER BY version"))?;
                let v = st.query_map([t], row_to_dek)?.collect::<Result<Vec<_>, _>>()?;
                v
            }
            None => {
                let mut st = self.conn.prepare(&format!("{cols} ORDER BY tenant, version"))?;
                let v = st.query_map([], row_to_dek)?.collect::<Result<Vec<_>, _>>()?;
                v
            }
        };
        Ok(rows)
    }

    fn signing_key(&self) -> Result<Option<SigningRow>, LogError> {
        Ok(self
            .conn
            .query_row("SELECT public_key, wrapped, created_at FROM signing_key WHERE id = 1", [], |r| {
                Ok(SigningRow { public_key: r.get(0)?, wrapped: r.get(1)?, created_at: r.get(2)? })
            })
            .optional()?)
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRow>, LogError> {
        let mut st = self.conn.prepare("SELECT size, head, signed_at, public_key, signature FROM checkpoints ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(CheckpointRow {
                size: r.get::<_, i64>(0)? as u64,
                head: blob32(r, 1)?,
                signed_at: r.get(2)?,
                public_key: r.get(3)?,
                signature: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn actor_by_token(&self, hash: &[u8; 32]) -> Result<Option<ActorRow>, LogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, role, clearance, token_hash, disabled, created_seq FROM actors WHERE token_hash = ?1",
                [hash.as_slice()],
                row_to_actor,
            )
            .optional()?)
    }

    fn actors(&self) -> Result<Vec<ActorRow>, LogError> {
        let mut st =
            self.conn.prepare("SELECT name, role, clearance, token_hash, disabled, created_seq FROM actors ORDER BY created_seq")?;
        let rows = st.query_map([], row_to_actor)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn snapshot(&self, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError> {
        snapshot_of(&self.conn, tenant, name)
    }

    fn count_live(&self, tenant: &str, category: Option<Category>, before: Option<Timestamp>) -> Result<u64, LogError> {
        count_live_in(&self.conn, tenant, category, before)
    }

    fn count_snapshots(&self, tenant: &str) -> Result<u64, LogError> {
        Ok(self.conn.query_row("SELECT count(*) FROM snapshots WHERE tenant = ?1", [tenant], |r| r.get::<_, i64>(0))? as u64)
    }

    fn backup_to(&self, dest: &Path) -> Result<(), LogError> {
        if dest.exists() {
            return Err(LogError::Exists(dest.display().to_string()));
        }
        let mut dst = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        {
            let b = rusqlite::backup::Backup::new(&self.conn, &mut dst)?;
            // All pages in one step: the copy is taken under one read transaction, so it is a
            // consistent snapshot even while other processes append (WAL readers never block
            // writers), and it never restarts because the source changed.
            loop {
                match b.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => continue,
                    rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        }
        // A self-contained single file: no -wal beside the copy.
        dst.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))?;
        dst.close().map_err(|(_, e)| LogError::from(e))?;
        Ok(())
    }

    fn reclaim(&self) -> Result<bool, LogError> {
        // (busy, wal frames, checkpointed frames); busy = 1 when a reader pinned old frames.
        let busy: i64 = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    fn artifact(&self, id: &str) -> Result<Option<ArtifactRow>, LogError> {
        Ok(self.conn.query_row(&format!("SELECT {ARTIFACT_COLS} FROM artifacts WHERE id = ?1"), [id], row_to_artifact).optional()?)
    }

    fn artifacts(&self, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError> {
        artifacts_of(&self.conn, tenant)
    }

    fn artifact_chunk(&self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
        artifact_chunk_of(&self.conn, id, index)
    }

    fn tenant_setting(&self, tenant: &str, name: &str) -> Result<Option<String>, LogError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM tenant_settings WHERE tenant = ?1 AND name = ?2", [tenant, name], |r| r.get(0))
            .optional()?)
    }

    fn size_bytes(&self) -> Result<u64, LogError> {
        let main = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        Ok(main + std::fs::metadata(PathBuf::from(wal)).map(|m| m.len()).unwrap_or(0))
    }

    fn body_counts_by_dek(&self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
        body_counts(&self.conn, tenant)
    }

    fn detach_checkpoints(&mut self) -> Result<Option<Box<dyn crate::Checkpointer>>, LogError> {
        self.wal_checkpointer(WAL_BOUND_FRAMES).map(Some)
    }
}

impl SqliteBackend {
    /// [`Backend::detach_checkpoints`] with an explicit bound: past `max_frames` WAL
    /// frames, a fully copied WAL is truncated (waiting for the writer once).
    pub fn wal_checkpointer(&mut self, max_frames: i64) -> Result<Box<dyn crate::Checkpointer>, LogError> {
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_millis(busy_timeout_ms()))?;
        // Same durability as the writer: a checkpoint fsyncs the WAL before copying it.
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")?;
        self.conn.execute_batch("PRAGMA wal_autocheckpoint=0")?;
        Ok(Box::new(WalCheckpointer { conn, max_frames }))
    }
}

/// Frames (pages) the WAL may hold before the checkpointer stops being polite: about
/// 64 MiB with 4 KiB pages. SQLite's own automatic checkpoint runs at 1000.
const WAL_BOUND_FRAMES: i64 = 16_384;

/// Checkpoints the WAL of a store on its own connection (see [`crate::Checkpointer`]).
struct WalCheckpointer {
    conn: Connection,
    max_frames: i64,
}

impl crate::Checkpointer for WalCheckpointer {
    fn step(&mut self) -> Result<bool, LogError> {
        // PASSIVE copies frames no reader still needs and never waits for the writer.
        let (_busy, log, done): (i64, i64, i64) =
            self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if log > self.max_frames && done >= log {
            // Fully copied but still long (the writer never paused between commits long
            // enough for the WAL to restart): TRUNCATE waits for the writer once and
            // resets the file, so the WAL stays bounded under a sustained load.
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(done >= log)
    }
}

struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl Tx for SqliteTx<'_> {
    fn head(&mut self) -> Result<Head, LogError> {
        head_of(&self.tx)
    }

    fn tenant_head(&mut self, tenant: &str) -> Result<Option<TenantHead>, LogError> {
        tenant_head_of(&self.tx, tenant)
    }

    fn insert(&mut self, recs: &[StoredRecord]) -> Result<(), LogError> {
        let mut st = self.tx.prepare_cached(&format!(
            "INSERT INTO events ({RECORD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ))?;
        for r in recs {
            let h = &r.header;
            st.execute(params![
                h.global_seq as i64,
                h.tenant.as_str(),
                h.tenant_seq as i64,
                i64::from(h.category.code()),
                h.kind,
                h.occurred_at,
                h.recorded_at,
                label_code(h.label),
                &h.commitment[..],
                i64::from(r.dek_version),
                r.nonce.as_ref().map(|n| &n[..]),
                r.body.as_deref(),
                &r.tenant_chain[..],
                &r.global_chain[..],
                r.purged_by.map(|v| v as i64),
            ])?;
        }
        Ok(())
    }

    fn set_tenant_head(&mut self, h: &TenantHead) -> Result<(), LogError> {
        self.tx
            .prepare_cached(
                "INSERT INTO tenant_heads (tenant, last_seq, chain, deleted_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(tenant) DO UPDATE SET last_seq = excluded.last_seq, chain = excluded.chain, deleted_at = excluded.deleted_at",
            )?
            .execute(params![h.tenant, h.last_seq as i64, &h.chain[..], h.deleted_at])?;
        Ok(())
    }

    fn active_dek(&mut self, tenant: &str) -> Result<Option<DekRow>, LogError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT tenant, version, kek_id, wrapped, seals, active, created_at FROM deks WHERE tenant = ?1 AND active = 1",
            )?
            .query_row([tenant], row_to_dek)
            .optional()?)
    }

    fn put_dek(&mut self, d: &DekRow) -> Result<(), LogError> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO deks (tenant, version, kek_id, wrapped, seals, active, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![d.tenant, i64::from(d.version), d.kek_id, d.wrapped, d.seals as i64, i64::from(d.active), d.created_at])?;
        Ok(())
    }

    fn add_seals(&mut self, tenant: &str, version: u32, n: u64) -> Result<(), LogError> {
        self.tx.prepare_cached("UPDATE deks SET seals = seals + ?3 WHERE tenant = ?1 AND version = ?2")?.execute(params![
            tenant,
            i64::from(version),
            n as i64
        ])?;
        Ok(())
    }

    fn delete_deks(&mut self, tenant: &str, version: Option<u32>) -> Result<u64, LogError> {
        let n = match version {
            Some(v) => self.tx.execute("DELETE FROM deks WHERE tenant = ?1 AND version = ?2", params![tenant, i64::from(v)])?,
            None => self.tx.execute("DELETE FROM deks WHERE tenant = ?1", [tenant])?,
        };
        Ok(n as u64)
    }

    fn put_kek(&mut self, k: &KekRow) -> Result<(), LogError> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO keks (key_id, wrapped, status, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![k.key_id, k.wrapped, k.status, k.created_at],
            )
            .map(|_| ())
            .map_err(Into::into)
    }

    fn put_signing_key(&mut self, s: &SigningRow) -> Result<(), LogError> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO signing_key (id, public_key, wrapped, created_at) VALUES (1, ?1, ?2, ?3)",
                params![s.public_key, s.wrapped, s.created_at],
            )
            .map(|_| ())
            .map_err(Into::into)
    }

    fn put_checkpoint(&mut self, c: &CheckpointRow) -> Result<(), LogError> {
        self.tx
            .execute(
                "INSERT INTO checkpoints (size, head, signed_at, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.size as i64, &c.head[..], c.signed_at, c.public_key, c.signature],
            )
            .map(|_| ())
            .map_err(Into::into)
    }

    fn put_actor(&mut self, a: &ActorRow) -> Result<(), LogError> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO actors (name, role, clearance, token_hash, disabled, created_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.name, a.role, a.clearance, &a.token_hash[..], i64::from(a.disabled), a.created_seq as i64],
            )
            .map(|_| ())
            .map_err(Into::into)
    }

    fn put_snapshot(&mut self, s: &SnapshotRow) -> Result<(), LogError> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO snapshots (tenant, name, covers_seq, dek_version, nonce, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![s.tenant, s.name, s.covers_seq as i64, i64::from(s.dek_version), &s.nonce[..], s.body])?;
        Ok(())
    }

    fn delete_snapshots(&mut self, tenant: &str) -> Result<u64, LogError> {
        Ok(self.tx.execute("DELETE FROM snapshots WHERE tenant = ?1", [tenant])? as u64)
    }

    fn count_live(&mut self, tenant: &str, category: Option<Category>, before: Option<Timestamp>) -> Result<u64, LogError> {
        count_live_in(&self.tx, tenant, category, before)
    }

    fn purge_before_cutoffs(
        &mut self,
        tenant: &str,
        cutoffs: &[(Category, Timestamp)],
        purged_by: Option<u64>,
    ) -> Result<Vec<(Category, u64)>, LogError> {
        let mut out: Vec<(Category, u64)> = cutoffs.iter().map(|(c, _)| (*c, 0)).collect();
        if cutoffs.is_empty() {
            return Ok(out);
        }
        // One pass over the tenant (its index), each row compared with its category's cutoff.
        let mut case = String::from("CASE category");
        for (i, _) in cutoffs.iter().enumerate() {
            case.push_str(&format!(" WHEN ?{} THEN ?{}", 3 + 2 * i, 4 + 2 * i));
        }
        case.push_str(" ELSE -9223372036854775808 END");
        let mut args: Vec<rusqlite::types::Value> = vec![tenant.to_string().into(), purged_by.map(|p| p as i64).into()];
        for (c, t) in cutoffs {
            args.push(i64::from(c.code()).into());
            args.push((*t).into());
        }
        let sql = match purged_by {
            Some(_) => format!(
                "UPDATE events SET body = NULL, nonce = NULL, purged_by = ?2 WHERE tenant = ?1 AND body IS NOT NULL AND occurred_at < {case} RETURNING category"
            ),
            None => format!("SELECT category FROM events WHERE tenant = ?1 AND ?2 IS NULL AND body IS NOT NULL AND occurred_at < {case}"),
        };
        let mut st = self.tx.prepare_cached(&sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let code: i64 = r.get(0)?;
            if let Some(slot) = out.iter_mut().find(|(c, _)| i64::from(c.code()) == code) {
                slot.1 += 1;
            }
        }
        Ok(out)
    }

    fn purge_bodies(&mut self, seqs: &[u64], purged_by: u64) -> Result<u64, LogError> {
        let mut st = self
            .tx
            .prepare_cached("UPDATE events SET body = NULL, nonce = NULL, purged_by = ?2 WHERE global_seq = ?1 AND body IS NOT NULL")?;
        let mut n = 0;
        for s in seqs {
            n += st.execute(params![*s as i64, purged_by as i64])? as u64;
        }
        Ok(n)
    }

    fn replace_body(&mut self, seq: u64, dek_version: u32, nonce: &[u8; 12], body: &[u8]) -> Result<(), LogError> {
        self.tx
            .prepare_cached("UPDATE events SET dek_version = ?2, nonce = ?3, body = ?4 WHERE global_seq = ?1 AND body IS NOT NULL")?
            .execute(params![seq as i64, i64::from(dek_version), &nonce[..], body])?;
        Ok(())
    }

    fn keks(&mut self) -> Result<Vec<KekRow>, LogError> {
        let mut st = self.tx.prepare_cached("SELECT key_id, wrapped, status, created_at FROM keks ORDER BY key_id")?;
        let rows = st.query_map([], |r| Ok(KekRow { key_id: r.get(0)?, wrapped: r.get(1)?, status: r.get(2)?, created_at: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn deks_not_wrapped_by(&mut self, kek_id: &str, limit: u64) -> Result<Vec<DekRow>, LogError> {
        let mut st = self.tx.prepare_cached(
            "SELECT tenant, version, kek_id, wrapped, seals, active, created_at FROM deks WHERE kek_id != ?1 ORDER BY tenant, version LIMIT ?2",
        )?;
        let rows = st.query_map(params![kek_id, limit.min(i64::MAX as u64) as i64], row_to_dek)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn count_deks_wrapped_by(&mut self, kek_id: &str) -> Result<u64, LogError> {
        let n: i64 = self.tx.prepare_cached("SELECT count(*) FROM deks WHERE kek_id = ?1")?.query_row([kek_id], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn set_dek_wrapping(&mut self, tenant: &str, version: u32, kek_id: &str, wrapped: &[u8]) -> Result<(), LogError> {
        self.tx.prepare_cached("UPDATE deks SET kek_id = ?3, wrapped = ?4 WHERE tenant = ?1 AND version = ?2")?.execute(params![
            tenant,
            i64::from(version),
            kek_id,
            wrapped
        ])?;
        Ok(())
    }

    fn put_artifact_chunk(&mut self, c: &ArtifactChunk) -> Result<(), LogError> {
        self.tx.prepare_cached("INSERT INTO artifact_chunks (artifact_id, idx, nonce, body) VALUES (?1, ?2, ?3, ?4)")?.execute(params![
            c.artifact_id,
            c.index as i64,
            &c.nonce[..],
            c.body
        ])?;
        Ok(())
    }

    fn body_counts_by_dek(&mut self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
        body_counts(&self.tx, tenant)
    }

    fn artifact_counts_by_dek(&mut self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
        let mut st = self.tx.prepare_cached(
            "SELECT dek_version, count(*) FROM artifacts WHERE tenant = ?1 AND purged_at IS NULL GROUP BY dek_version ORDER BY dek_version",
        )?;
        let rows = st.query_map([tenant], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn bodies_below_dek(&mut self, tenant: &str, below: u32, after: u64, limit: u64) -> Result<Vec<StoredRecord>, LogError> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {RECORD_COLS} FROM events WHERE tenant = ?1 AND tenant_seq > ?2 AND dek_version < ?3 AND body IS NOT NULL \
             ORDER BY tenant_seq LIMIT ?4"
        ))?;
        let rows = st.query_map(
            params![tenant, after.min(i64::MAX as u64) as i64, i64::from(below), limit.min(i64::MAX as u64) as i64],
            row_to_record,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn scan(&mut self, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError> {
        scan_conn(&self.tx, q, f)
    }

    fn deks(&mut self, tenant: &str) -> Result<Vec<DekRow>, LogError> {
        let mut st = self.tx.prepare_cached(
            "SELECT tenant, version, kek_id, wrapped, seals, active, created_at FROM deks WHERE tenant = ?1 ORDER BY version",
        )?;
        let v = st.query_map([tenant], row_to_dek)?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    fn snapshot(&mut self, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError> {
        snapshot_of(&self.tx, tenant, name)
    }

    fn put_artifact(&mut self, a: &ArtifactRow) -> Result<(), LogError> {
        self.tx.execute(
            &format!("INSERT INTO artifacts ({ARTIFACT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
            params![
                a.id,
                a.tenant,
                a.name,
                a.size as i64,
                &a.sha256[..],
                a.label.map(Clearance::as_str),
                i64::from(a.dek_version),
                a.chunk_size as i64,
                a.chunks as i64,
                a.created_at,
                a.stored_seq as i64,
                a.tier.as_str(),
                a.tier_changed_at,
                a.age_from,
                a.purged_at
            ],
        )?;
        Ok(())
    }

    fn set_artifact_label(&mut self, id: &str, label: Option<Clearance>) -> Result<u64, LogError> {
        Ok(self.tx.execute("UPDATE artifacts SET label = ?2 WHERE id = ?1", params![id, label.map(Clearance::as_str)])? as u64)
    }

    fn artifact_chunk(&mut self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
        artifact_chunk_of(&self.tx, id, index)
    }

    fn replace_artifact_chunk(&mut self, c: &ArtifactChunk) -> Result<u64, LogError> {
        Ok(self
            .tx
            .prepare_cached("UPDATE artifact_chunks SET nonce = ?3, body = ?4 WHERE artifact_id = ?1 AND idx = ?2")?
            .execute(params![c.artifact_id, c.index as i64, &c.nonce[..], c.body])? as u64)
    }

    fn set_artifact_dek(&mut self, id: &str, version: u32) -> Result<u64, LogError> {
        Ok(self.tx.execute("UPDATE artifacts SET dek_version = ?2 WHERE id = ?1", params![id, i64::from(version)])? as u64)
    }

    fn artifacts(&mut self, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError> {
        artifacts_of(&self.tx, tenant)
    }

    fn set_artifact_tier(&mut self, id: &str, tier: Tier, at: Timestamp, reset_age: bool) -> Result<u64, LogError> {
        Ok(self.tx.execute(
            "UPDATE artifacts SET tier = ?2, tier_changed_at = ?3, age_from = CASE WHEN ?4 THEN ?3 ELSE age_from END
             WHERE id = ?1 AND purged_at IS NULL",
            params![id, tier.as_str(), at, reset_age],
        )? as u64)
    }

    fn purge_artifact(&mut self, id: &str, at: Timestamp) -> Result<u64, LogError> {
        // secure_delete zeroes the freed pages; the caller truncates the WAL after commit.
        self.tx.execute("DELETE FROM artifact_chunks WHERE artifact_id = ?1", [id])?;
        Ok(self.tx.execute("UPDATE artifacts SET purged_at = ?2 WHERE id = ?1 AND purged_at IS NULL", params![id, at])? as u64)
    }

    fn delete_artifacts(&mut self, tenant: &str) -> Result<u64, LogError> {
        self.tx.execute("DELETE FROM artifact_chunks WHERE artifact_id IN (SELECT id FROM artifacts WHERE tenant = ?1)", [tenant])?;
        Ok(self.tx.execute("DELETE FROM artifacts WHERE tenant = ?1", [tenant])? as u64)
    }

    fn set_tenant_setting(&mut self, tenant: &str, name: &str, value: &str) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO tenant_settings (tenant, name, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(tenant, name) DO UPDATE SET value = excluded.value",
            params![tenant, name, value],
        )?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), LogError> {
        self.tx.commit().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store made by a binary before migration 3 (artifact tiers) opens with its
    /// artifacts hot, their age clock at the time they were stored.
    #[test]
    fn version_2_store_migrates_artifacts_to_hot() -> Result<(), LogError> {
        let dir = tempfile::tempdir().map_err(|e| LogError::Storage(e.to_string()))?;
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path)?;
            for sql in &MIGRATIONS[..2] {
                conn.execute_batch(sql)?;
            }
            conn.pragma_update(None, "user_version", 2i64)?;
            conn.execute(
                "INSERT INTO artifacts (id, tenant, name, size, sha256, label, dek_version, chunk_size, chunks, created_at, stored_seq)
                 VALUES ('art_1', 'acme', 'a.txt', 3, ?1, NULL, 1, 1048576, 1, 1700000000000000, 7)",
                [&[0u8; 32][..]],
            )?;
        }
        let b = SqliteBackend::open(&path)?;
        let v: i64 = b.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(v, SCHEMA_VERSION);
        let a = b.artifact("art_1")?.ok_or(LogError::NotFound("art_1".into()))?;
        assert_eq!(a.tier, Tier::Hot);
        assert_eq!(a.tier_changed_at, 1_700_000_000_000_000);
        assert_eq!(a.age_from, 1_700_000_000_000_000);
        assert_eq!(a.purged_at, None);
        Ok(())
    }
}
