//! The PostgreSQL backend: the same tables, columns, records and hashes as the SQLite
//! backend (BYTEA for blobs, BIGINT for integers), selected by a `postgres://` or
//! `postgresql://` store location.
//!
//! Appends from any number of processes or servers are serialized by a
//! transaction-scoped advisory lock taken as the first statement of every write
//! transaction; the chain head is read only after it is held. Isolation levels
//! alone are never trusted for the chain head: two REPEATABLE READ writers would
//! both see the same head and fork the chain (one would fail on the primary key,
//! but only by luck of the schema). The lock is released by COMMIT or ROLLBACK, so
//! a crashed writer can never leave it held.
//!
//! Connections carry no TLS: custos connects to a PostgreSQL on the same host
//! (Unix socket or loopback). TLS for a remote server is future work (docs/SCALING.md).
//!
//! ## Adding a `Backend` / `Tx` method
//! 1. write the SQLite version in `sqlite.rs`;
//! 2. here, add the same method to `impl Backend for PostgresBackend` (reads: wrap
//!    the statement in `self.with(|c| ...)`) or to `impl Tx for PgTx` (writes:
//!    `self.exec(SQL, &[..])` for a statement prepared once per connection — SQL must
//!    be a `&'static str` — or `self.tx` directly for rare ones); translate `?N` placeholders to `$N`, `INSERT OR REPLACE` to
//!    `INSERT .. ON CONFLICT (pk) DO UPDATE`, integers to `i64` (`as i64` on the way
//!    in, `u64::try_from`/`as u64` on the way out), blobs to `&[u8]`/`Vec<u8>`;
//! 3. a new table or column is a new entry in BOTH `MIGRATIONS` lists (the compile-time
//!    assertion below fails the build until they have the same length);
//! 4. run `cargo test -p custos-tests --test postgres`.

use std::cell::RefCell;
use std::collections::HashMap;

use custos_domain::{Category, Clearance, TenantId, Tier, Timestamp};
use postgres::types::ToSql;
use postgres::{Client, GenericClient, IsolationLevel, NoTls, Row};

use crate::backend::*;
use crate::record::Header;
use crate::LogError;

/// Schema versions, applied in order inside one transaction. Index i migrates from
/// version i to i+1. Mirrors `sqlite::MIGRATIONS` entry for entry.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    global_seq   BIGINT PRIMARY KEY,
    tenant       TEXT   NOT NULL,
    tenant_seq   BIGINT NOT NULL,
    category     BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    occurred_at  BIGINT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    label        BIGINT NOT NULL DEFAULT 0,
    commitment   BYTEA  NOT NULL,
    dek_version  BIGINT NOT NULL,
    nonce        BYTEA,
    body         BYTEA,
    tenant_chain BYTEA  NOT NULL,
    global_chain BYTEA  NOT NULL,
    purged_by    BIGINT,
    UNIQUE (tenant, tenant_seq)
);
-- Ciphertext does not compress; do not let TOAST try.
ALTER TABLE events ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE tenant_heads (
    tenant     TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    chain      BYTEA  NOT NULL,
    deleted_at BIGINT
);
CREATE TABLE keks (
    key_id     TEXT PRIMARY KEY,
    wrapped    BYTEA,
    status     TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE deks (
    tenant     TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    kek_id     TEXT   NOT NULL,
    wrapped    BYTEA  NOT NULL,
    seals      BIGINT NOT NULL DEFAULT 0,
    active     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, version)
);
CREATE TABLE signing_key (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    public_key BYTEA  NOT NULL,
    wrapped    BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE checkpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size       BIGINT NOT NULL,
    head       BYTEA  NOT NULL,
    signed_at  BIGINT NOT NULL,
    public_key BYTEA  NOT NULL,
    signature  BYTEA  NOT NULL
);
CREATE TABLE actors (
    name        TEXT PRIMARY KEY,
    role        TEXT   NOT NULL,
    clearance   TEXT   NOT NULL,
    token_hash  BYTEA  NOT NULL UNIQUE,
    disabled    BIGINT NOT NULL DEFAULT 0,
    created_seq BIGINT NOT NULL
);
CREATE TABLE snapshots (
    tenant      TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    covers_seq  BIGINT NOT NULL,
    dek_version BIGINT NOT NULL,
    nonce       BYTEA  NOT NULL,
    body        BYTEA  NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#,
    // 2: artifacts (chunked, each chunk sealed with the tenant's DEK) and per-tenant settings.
    r#"
CREATE TABLE artifacts (
    id          TEXT PRIMARY KEY,
    tenant      TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    sha256      BYTEA  NOT NULL,
    label       TEXT,
    dek_version BIGINT NOT NULL,
    chunk_size  BIGINT NOT NULL,
    chunks      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    stored_seq  BIGINT NOT NULL
);
CREATE INDEX artifacts_tenant ON artifacts (tenant, created_at);
CREATE TABLE artifact_chunks (
    artifact_id TEXT   NOT NULL,
    idx         BIGINT NOT NULL,
    nonce       BYTEA  NOT NULL,
    body        BYTEA  NOT NULL,
    PRIMARY KEY (artifact_id, idx)
);
-- Ciphertext does not compress; do not let TOAST try.
ALTER TABLE artifact_chunks ALTER COLUMN body SET STORAGE EXTERNAL;
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
ALTER TABLE artifacts ADD COLUMN tier_changed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE artifacts ADD COLUMN age_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE artifacts ADD COLUMN purged_at BIGINT;
UPDATE artifacts SET tier_changed_at = created_at, age_from = created_at;
"#,
];

// A migration added to one backend and not the other fails the build here.
const _: () = assert!(MIGRATIONS.len() as i64 == crate::sqlite::SCHEMA_VERSION, "postgres::MIGRATIONS must mirror sqlite::MIGRATIONS");

/// The schema version this binary writes (same numbering as SQLite).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Key of the transaction-scoped advisory lock that serializes writers
/// ("custos" in ASCII, then 1). Advisory locks are per database: two custos stores in
/// different schemas of one database share it, which only costs them parallelism.
pub const WRITE_LOCK_KEY: i64 = 0x6375_7374_6f73_0001;

/// Tables a custos store owns (in the connection's current schema).
pub const TABLES: &[&str] = &[
    "schema_version",
    "events",
    "tenant_heads",
    "keks",
    "deks",
    "signing_key",
    "checkpoints",
    "actors",
    "snapshots",
    "artifacts",
    "artifact_chunks",
    "tenant_settings",
];

/// Tables that can hold destroyed key material or purged/deleted ciphertext as dead
/// tuples; `reclaim` rewrites them (`VACUUM FULL`).
const RECLAIM_TABLES: &str = "deks, keks, signing_key, events, snapshots, tenant_heads, artifacts, artifact_chunks, tenant_settings";

/// Rows fetched per round trip by `scan` (bounds its memory for any log size).
const SCAN_BATCH: i32 = 1000;

/// Whether a store location names a PostgreSQL database rather than an SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The location with any password replaced by `***`, for messages and `Debug`.
pub fn redact(location: &str) -> String {
    if !is_postgres_url(location) {
        return location.to_string();
    }
    let mut out = location.to_string();
    // userinfo password: scheme://user:PASSWORD@host
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..].find(['/', '?']).map(|i| start + i).unwrap_or(out.len());
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    // query parameter: ?password=... or &password=...
    for key in ["?password=", "&password="] {
        if let Some(p) = out.find(key).map(|i| i + key.len()) {
            let end = out[p..].find('&').map(|i| p + i).unwrap_or(out.len());
            out.replace_range(p..end, "***");
        }
    }
    out
}

impl From<postgres::Error> for LogError {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return LogError::Locked(crate::sqlite::busy_timeout_ms());
        }
        LogError::Storage(e.to_string())
    }
}

/// The PostgreSQL backend.
pub struct PostgresBackend {
    /// Short reads and the write transaction.
    client: RefCell<Client>,
    /// Connection reserved for streaming scans (taken while a scan runs; a nested
    /// scan opens its own), so a scan callback may call any other read.
    scanner: RefCell<Option<Client>>,
    config: postgres::Config,
    location: String,
    /// Statements of the write path, prepared once per connection (a `&str` query
    /// costs an extra round trip to prepare every time).
    stmts: HashMap<&'static str, postgres::Statement>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresBackend({})", redact(&self.location))
    }
}

fn connect(config: &postgres::Config) -> Result<Client, LogError> {
    let mut c = config.connect(NoTls)?;
    // The advisory lock waits at most as long as SQLite's busy timeout.
    c.batch_execute(&format!("SET lock_timeout = '{}ms'", crate::sqlite::busy_timeout_ms()))?;
    Ok(c)
}

fn table_exists(c: &mut impl GenericClient, name: &str) -> Result<bool, LogError> {
    let r = c.query_one("SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL", &[&name])?;
    Ok(r.try_get(0)?)
}

impl PostgresBackend {
    fn connect_to(location: &str) -> Result<(postgres::Config, Client), LogError> {
        let mut config: postgres::Config =
            location.parse().map_err(|e| LogError::Storage(format!("invalid PostgreSQL URL {}: {e}", redact(location))))?;
        if config.get_password().is_none() {
            // libpq's variable, so a password never has to appear in a URL or a process list.
            if let Ok(p) = std::env::var("PGPASSWORD") {
                config.password(p);
            }
        }
        let client =
            connect(&config).map_err(|e| LogError::Storage(format!("cannot connect to PostgreSQL store {}: {e}", redact(location))))?;
        Ok((config, client))
    }

    /// Creates the custos schema in the URL's database (current schema); refuses if
    /// the schema already holds a custos store or a table with one of its names.
    pub fn create(location: &str) -> Result<Self, LogError> {
        let (config, mut client) = Self::connect_to(location)?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])?;
        if table_exists(&mut tx, "schema_version")? {
            return Err(LogError::Exists(redact(location)));
        }
        for t in TABLES {
            if table_exists(&mut tx, t)? {
                return Err(LogError::Schema(format!(
                    "{} already has a table named {t} that is not part of a custos store; use another database or schema",
                    redact(location)
                )));
            }
        }
        tx.batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL); INSERT INTO schema_version VALUES (0);")?;
        tx.commit()?;
        let b = Self {
            client: RefCell::new(client),
            scanner: RefCell::new(None),
            config,
            location: location.to_string(),
            stmts: HashMap::new(),
        };
        b.migrate()?;
        Ok(b)
    }

    /// Whether the URL's schema holds a custos store (or a table of the same name).
    /// Never changes anything.
    pub fn exists(location: &str) -> Result<bool, LogError> {
        let (_, mut client) = Self::connect_to(location)?;
        for t in ["schema_version", "events"] {
            if table_exists(&mut client, t)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Opens an existing store, migrating its schema forward if needed.
    pub fn open(location: &str) -> Result<Self, LogError> {
        let (config, mut client) = Self::connect_to(location)?;
        if !table_exists(&mut client, "schema_version")? {
            if table_exists(&mut client, "events")? {
                return Err(LogError::Schema(format!("{} has an events table but is not a custos store", redact(location))));
            }
            return Err(LogError::NotFound(redact(location)));
        }
        let b = Self {
            client: RefCell::new(client),
            scanner: RefCell::new(None),
            config,
            location: location.to_string(),
            stmts: HashMap::new(),
        };
        b.migrate()?;
        Ok(b)
    }

    fn migrate(&self) -> Result<(), LogError> {
        let mut c = self.client.borrow_mut();
        let v: i64 = c.query_one("SELECT version FROM schema_version", &[])?.try_get(0)?;
        if v == SCHEMA_VERSION {
            // The common case takes no lock, so opening never waits for a writer.
            return Ok(());
        }
        let mut tx = c.transaction()?;
        // Two processes opening an old store at once must not both migrate it.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])?;
        let v: i64 = tx.query_one("SELECT version FROM schema_version", &[])?.try_get(0)?;
        if v > SCHEMA_VERSION {
            return Err(LogError::Schema(format!(
                "{} has schema version {v}, newer than this custos understands ({SCHEMA_VERSION}); upgrade custos",
                redact(&self.location)
            )));
        }
        if v == SCHEMA_VERSION {
            return Ok(());
        }
        for sql in MIGRATIONS.iter().skip(usize::try_from(v).unwrap_or(0)) {
            tx.batch_execute(sql)?;
        }
        tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION])?;
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` on the main connection (short reads; never held across a callback).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, LogError>) -> Result<T, LogError> {
        let mut c =
            self.client.try_borrow_mut().map_err(|_| LogError::Storage("PostgreSQL connection is busy (re-entrant read)".into()))?;
        f(&mut c)
    }

    /// The store location with any password redacted.
    pub fn location(&self) -> String {
        redact(&self.location)
    }
}

const RECORD_COLS: &str = "global_seq, tenant, tenant_seq, category, kind, occurred_at, recorded_at, label, commitment, dek_version, nonce, body, tenant_chain, global_chain, purged_by";

fn bad(col: &str, what: &str) -> LogError {
    LogError::Storage(format!("column {col} does not hold {what}"))
}

fn u64_of(r: &Row, i: usize, col: &str) -> Result<u64, LogError> {
    u64::try_from(r.try_get::<_, i64>(i)?).map_err(|_| bad(col, "a non-negative integer"))
}

fn u32_of(r: &Row, i: usize, col: &str) -> Result<u32, LogError> {
    u32::try_from(r.try_get::<_, i64>(i)?).map_err(|_| bad(col, "a 32-bit version"))
}

fn blob32(r: &Row, i: usize, col: &str) -> Result<[u8; 32], LogError> {
    let v: Vec<u8> = r.try_get(i)?;
    v.as_slice().try_into().map_err(|_| bad(col, "32 bytes"))
}

fn label_code(l: Option<Clearance>) -> i64 {
    l.map(|c| c as i64 + 1).unwrap_or(0)
}

fn label_from(code: i64) -> Option<Clearance> {
    usize::try_from(code).ok().and_then(|c| c.checked_sub(1)).and_then(|c| Clearance::ALL.get(c).copied())
}

fn row_to_record(r: &Row) -> Result<StoredRecord, LogError> {
    let tenant: String = r.try_get(1)?;
    let cat: i64 = r.try_get(3)?;
    let label: i64 = r.try_get(7)?;
    let nonce: Option<Vec<u8>> = r.try_get(10)?;
    Ok(StoredRecord {
        header: Header {
            global_seq: u64_of(r, 0, "global_seq")?,
            tenant: TenantId::parse_any(&tenant).map_err(|_| bad("tenant", "a tenant id"))?,
            tenant_seq: u64_of(r, 2, "tenant_seq")?,
            category: u8::try_from(cat).ok().and_then(Category::from_code).ok_or_else(|| bad("category", "a category code"))?,
            kind: r.try_get(4)?,
            occurred_at: r.try_get(5)?,
            recorded_at: r.try_get(6)?,
            label: if label == 0 { None } else { Some(label_from(label).ok_or_else(|| bad("label", "a label code"))?) },
            commitment: blob32(r, 8, "commitment")?,
        },
        dek_version: u32_of(r, 9, "dek_version")?,
        nonce: match nonce {
            Some(n) => Some(n.as_slice().try_into().map_err(|_| bad("nonce", "12 bytes"))?),
            None => None,
        },
        body: r.try_get(11)?,
        tenant_chain: blob32(r, 12, "tenant_chain")?,
        global_chain: blob32(r, 13, "global_chain")?,
        purged_by: r.try_get::<_, Option<i64>>(14)?.map(|v| v as u64),
    })
}

const DEK_COLS: &str = "tenant, version, kek_id, wrapped, seals, active, created_at";

fn row_to_dek(r: &Row) -> Result<DekRow, LogError> {
    Ok(DekRow {
        tenant: r.try_get(0)?,
        version: u32_of(r, 1, "version")?,
        kek_id: r.try_get(2)?,
        wrapped: r.try_get(3)?,
        seals: u64_of(r, 4, "seals")?,
        active: r.try_get::<_, i64>(5)? != 0,
        created_at: r.try_get(6)?,
    })
}

const ACTOR_COLS: &str = "name, role, clearance, token_hash, disabled, created_seq";

fn row_to_actor(r: &Row) -> Result<ActorRow, LogError> {
    Ok(ActorRow {
        name: r.try_get(0)?,
        role: r.try_get(1)?,
        clearance: r.try_get(2)?,
        token_hash: blob32(r, 3, "token_hash")?,
        disabled: r.try_get::<_, i64>(4)? != 0,
        created_seq: u64_of(r, 5, "created_seq")?,
    })
}

fn row_to_tenant_head(r: &Row) -> Result<TenantHead, LogError> {
    Ok(TenantHead { tenant: r.try_get(0)?, last_seq: u64_of(r, 1, "last_seq")?, chain: blob32(r, 2, "chain")?, deleted_at: r.try_get(3)? })
}

fn head_of(c: &mut impl GenericClient) -> Result<Head, LogError> {
    match c.query_opt("SELECT global_seq, global_chain FROM events ORDER BY global_seq DESC LIMIT 1", &[])? {
        Some(r) => Ok(Head { size: u64_of(&r, 0, "global_seq")?, chain: blob32(&r, 1, "global_chain")? }),
        None => Ok(Head::default()),
    }
}

fn snapshot_of(c: &mut impl GenericClient, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError> {
    c.query_opt(
        "SELECT tenant, name, covers_seq, dek_version, nonce, body FROM snapshots WHERE tenant = $1 AND name = $2",
        &[&tenant, &name],
    )?
    .map(|r| {
        let n: Vec<u8> = r.try_get(4)?;
        Ok(SnapshotRow {
            tenant: r.try_get(0)?,
            name: r.try_get(1)?,
            covers_seq: u64_of(&r, 2, "covers_seq")?,
            dek_version: u32_of(&r, 3, "dek_version")?,
            nonce: n.as_slice().try_into().map_err(|_| bad("nonce", "12 bytes"))?,
            body: r.try_get(5)?,
        })
    })
    .transpose()
}

fn keks_of(c: &mut impl GenericClient) -> Result<Vec<KekRow>, LogError> {
    c.query("SELECT key_id, wrapped, status, created_at FROM keks ORDER BY key_id COLLATE \"C\"", &[])?
        .iter()
        .map(|r| Ok(KekRow { key_id: r.try_get(0)?, wrapped: r.try_get(1)?, status: r.try_get(2)?, created_at: r.try_get(3)? }))
        .collect()
}

fn count_live_in(c: &mut impl GenericClient, tenant: &str, category: Option<Category>, before: Option<Timestamp>) -> Result<u64, LogError> {
    let r = c.query_one(
        "SELECT count(*) FROM events WHERE tenant = $1 AND body IS NOT NULL
         AND ($2::bigint IS NULL OR category = $2) AND ($3::bigint IS NULL OR occurred_at < $3)",
        &[&tenant, &category.map(|c| i64::from(c.code())), &before],
    )?;
    u64_of(&r, 0, "count")
}

fn body_counts(c: &mut impl GenericClient, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
    c.query(
        "SELECT dek_version, count(*) FROM events WHERE tenant = $1 AND body IS NOT NULL GROUP BY dek_version ORDER BY dek_version",
        &[&tenant],
    )?
    .iter()
    .map(|r| Ok((u32_of(r, 0, "dek_version")?, u64_of(r, 1, "count")?)))
    .collect()
}

const ARTIFACT_COLS: &str =
    "id, tenant, name, size, sha256, label, dek_version, chunk_size, chunks, created_at, stored_seq, tier, tier_changed_at, age_from, purged_at";

fn row_to_artifact(r: &Row) -> Result<ArtifactRow, LogError> {
    let label: Option<String> = r.try_get(5)?;
    Ok(ArtifactRow {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        name: r.try_get(2)?,
        size: u64_of(r, 3, "size")?,
        sha256: blob32(r, 4, "sha256")?,
        label: match label {
            Some(l) => Some(l.parse().map_err(|_| bad("label", "a label name"))?),
            None => None,
        },
        dek_version: u32_of(r, 6, "dek_version")?,
        chunk_size: u64_of(r, 7, "chunk_size")?,
        chunks: u64_of(r, 8, "chunks")?,
        created_at: r.try_get(9)?,
        stored_seq: u64_of(r, 10, "stored_seq")?,
        tier: r.try_get::<_, String>(11)?.parse().map_err(|_| bad("tier", "hot, warm or cold"))?,
        tier_changed_at: r.try_get(12)?,
        age_from: r.try_get(13)?,
        purged_at: r.try_get(14)?,
    })
}

fn artifact_chunk_of(c: &mut impl GenericClient, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
    c.query_opt(
        "SELECT artifact_id, idx, nonce, body FROM artifact_chunks WHERE artifact_id = $1 AND idx = $2",
        &[&id, &(index.min(i64::MAX as u64) as i64)],
    )?
    .map(|r| {
        let n: Vec<u8> = r.try_get(2)?;
        Ok(ArtifactChunk {
            artifact_id: r.try_get(0)?,
            index: u64_of(&r, 1, "idx")?,
            nonce: n.as_slice().try_into().map_err(|_| bad("nonce", "12 bytes"))?,
            body: r.try_get(3)?,
        })
    })
    .transpose()
}

fn artifacts_of(c: &mut impl GenericClient, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError> {
    // COLLATE "C": byte order, as SQLite sorts text.
    let rows = match tenant {
        Some(t) => {
            c.query(&format!("SELECT {ARTIFACT_COLS} FROM artifacts WHERE tenant = $1 ORDER BY created_at, id COLLATE \"C\""), &[&t])?
        }
        None => {
            c.query(&format!("SELECT {ARTIFACT_COLS} FROM artifacts ORDER BY tenant COLLATE \"C\", created_at, id COLLATE \"C\""), &[])?
        }
    };
    rows.iter().map(row_to_artifact).collect()
}

/// The WHERE/ORDER/LIMIT of a scan and its parameters.
fn scan_sql(q: &Query) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut sql = format!("SELECT {RECORD_COLS} FROM events WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync>> = vec![];
    let mut push = |cond: &str, v: Box<dyn ToSql + Sync>, sql: &mut String| {
        args.push(v);
        sql.push_str(&format!(" AND {cond} ${}", args.len()));
    };
    if let Some(t) = &q.tenant {
        push("tenant =", Box::new(t.clone()), &mut sql);
    }
    if let Some(c) = q.category {
        push("category =", Box::new(i64::from(c.code())), &mut sql);
    }
    if let Some(k) = &q.kind {
        push("kind =", Box::new(k.clone()), &mut sql);
    }
    if let Some(s) = q.since {
        push("occurred_at >=", Box::new(s), &mut sql);
    }
    if let Some(u) = q.until {
        push("occurred_at <", Box::new(u), &mut sql);
    }
    if let Some(s) = q.from_seq {
        push("global_seq >=", Box::new(s as i64), &mut sql);
    }
    if let Some(s) = q.after_tenant_seq {
        push("tenant_seq >", Box::new(s as i64), &mut sql);
    }
    sql.push_str(" ORDER BY global_seq");
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    (sql, args)
}

impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn begin(&mut self) -> Result<Box<dyn Tx + '_>, LogError> {
        let Self { client, stmts, .. } = self;
        let mut tx = client.get_mut().transaction()?;
        // First statement of every write transaction: from here to COMMIT/ROLLBACK no
        // other custos writer on this database runs, so the head read next is the head
        // this transaction extends. READ COMMITTED (the default) makes each later
        // statement see everything committed before the lock was granted.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])?;
        Ok(Box::new(PgTx { tx, stmts }))
    }

    fn head(&self) -> Result<Head, LogError> {
        self.with(head_of)
    }

    fn scan(&self, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError> {
        let taken = self.scanner.try_borrow_mut().ok().and_then(|mut s| s.take());
        let mut conn = match taken {
            Some(c) if !c.is_closed() => c,
            _ => connect(&self.config)?,
        };
        let res = (|| {
            let (sql, args) = scan_sql(q);
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| b.as_ref()).collect();
            // One snapshot for the whole scan; rows arrive SCAN_BATCH at a time from a portal.
            let mut tx = conn.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let portal = tx.bind(sql.as_str(), &params)?;
            drain_portal(&mut tx, &portal, f)?;
            tx.commit()?;
            Ok(())
        })();
        if res.is_ok() {
            if let Ok(mut s) = self.scanner.try_borrow_mut() {
                if s.is_none() {
                    *s = Some(conn);
                }
            }
        }
        res
    }

    fn record(&self, seq: u64) -> Result<Option<StoredRecord>, LogError> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {RECORD_COLS} FROM events WHERE global_seq = $1"), &[&(seq as i64)])?
                .map(|r| row_to_record(&r))
                .transpose()
        })
    }

    fn tenant_heads(&self) -> Result<Vec<TenantHead>, LogError> {
        self.with(|c| {
            c.query("SELECT tenant, last_seq, chain, deleted_at FROM tenant_heads ORDER BY tenant", &[])?
                .iter()
                .map(row_to_tenant_head)
                .collect()
        })
    }

    fn keks(&self) -> Result<Vec<KekRow>, LogError> {
        self.with(keks_of)
    }

    fn deks(&self, tenant: Option<&str>) -> Result<Vec<DekRow>, LogError> {
        self.with(|c| {
            let rows = match tenant {
                Some(t) => c.query(&format!("SELECT {DEK_COLS} FROM deks WHERE tenant = $1 ORDER BY version"), &[&t])?,
                None => c.query(&format!("SELECT {DEK_COLS} FROM deks ORDER BY tenant, version"), &[])?,
            };
            rows.iter().map(row_to_dek).collect()
        })
    }

    fn signing_key(&self) -> Result<Option<SigningRow>, LogError> {
        self.with(|c| {
            c.query_opt("SELECT public_key, wrapped, created_at FROM signing_key WHERE id = 1", &[])?
                .map(|r| Ok(SigningRow { public_key: r.try_get(0)?, wrapped: r.try_get(1)?, created_at: r.try_get(2)? }))
                .transpose()
        })
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRow>, LogError> {
        self.with(|c| {
            c.query("SELECT size, head, signed_at, public_key, signature FROM checkpoints ORDER BY id", &[])?
                .iter()
                .map(|r| {
                    Ok(CheckpointRow {
                        size: u64_of(r, 0, "size")?,
                        head: blob32(r, 1, "head")?,
                        signed_at: r.try_get(2)?,
                        public_key: r.try_get(3)?,
                        signature: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    fn actor_by_token(&self, hash: &[u8; 32]) -> Result<Option<ActorRow>, LogError> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {ACTOR_COLS} FROM actors WHERE token_hash = $1"), &[&hash.as_slice()])?
                .map(|r| row_to_actor(&r))
                .transpose()
        })
    }

    fn actors(&self) -> Result<Vec<ActorRow>, LogError> {
        self.with(|c| c.query(&format!("SELECT {ACTOR_COLS} FROM actors ORDER BY created_seq"), &[])?.iter().map(row_to_actor).collect())
    }

    fn snapshot(&self, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError> {
        self.with(|c| snapshot_of(c, tenant, name))
    }

    fn size_bytes(&self) -> Result<u64, LogError> {
        self.with(|c| {
            // Heap + TOAST + indexes of custos's own tables (not the whole database).
            let r = c.query_one(
                "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(quote_ident(current_schema()) || '.' || quote_ident(t)))), 0)::BIGINT
                 FROM unnest($1::text[]) AS t",
                &[&TABLES],
            )?;
            Ok(u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0))
        })
    }

    fn count_live(&self, tenant: &str, category: Option<Category>, before: Option<Timestamp>) -> Result<u64, LogError> {
        self.with(|c| count_live_in(c, tenant, category, before))
    }

    fn count_snapshots(&self, tenant: &str) -> Result<u64, LogError> {
        self.with(|c| {
            let r = c.query_one("SELECT count(*) FROM snapshots WHERE tenant = $1", &[&tenant])?;
            u64_of(&r, 0, "count")
        })
    }

    fn backup_to(&self, _dest: &std::path::Path) -> Result<(), LogError> {
        // A file copy of one schema would miss what PostgreSQL already does better
        // (consistent online dumps, PITR from WAL archives); point at those instead.
        Err(LogError::Unsupported(format!(
            "custos backup writes SQLite files and is not supported on the PostgreSQL store {}; back it up with \
             `pg_dump --format=custom` (or base backups + WAL archiving) and restore with `pg_restore` (docs/OPERATIONS.md, PostgreSQL stores)",
            redact(&self.location)
        )))
    }

    fn reclaim(&self) -> Result<bool, LogError> {
        self.with(|c| {
            // VACUUM keeps a dead row version while any snapshot could still see it: its own
            // snapshot's xmin is the oldest transaction running in the whole cluster (any
            // database), and sessions of this database may hold older snapshots. So first
            // wait (up to the busy timeout) until every transaction that was running when
            // the shredding committed has ended and no other session of this database holds
            // a snapshot; otherwise the rewrite would copy the destroyed rows verbatim.
            let target: i64 = c.query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint", &[])?.try_get(0)?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(crate::sqlite::busy_timeout_ms());
            let clear = loop {
                let r = c.query_one(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $1,
                       (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                        AND backend_xmin IS NOT NULL)",
                    &[&target],
                )?;
                let (older_done, pinned): (bool, i64) = (r.try_get(0)?, r.try_get(1)?);
                if older_done && pinned == 0 {
                    break true;
                }
                if std::time::Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            // Rewrites the tables so dead tuples (deleted DEK wraps, retired KEKs, purged
            // bodies, dropped snapshots and artifact chunks) leave the data files. WAL,
            // archives and replicas keep old pages until they expire (docs/OPERATIONS.md).
            // VACUUM cannot run inside a transaction block, hence a bare statement.
            match c.batch_execute(&format!("VACUUM (FULL, ANALYZE) {RECLAIM_TABLES}")) {
                Ok(()) => Ok(clear),
                // Another session holds a table lock longer than the lock timeout: the
                // shredding itself is committed, only the rewrite has to be retried.
                Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn body_counts_by_dek(&self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
        self.with(|c| body_counts(c, tenant))
    }

    fn artifact(&self, id: &str) -> Result<Option<ArtifactRow>, LogError> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {ARTIFACT_COLS} FROM artifacts WHERE id = $1"), &[&id])?.map(|r| row_to_artifact(&r)).transpose()
        })
    }

    fn artifacts(&self, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError> {
        self.with(|c| artifacts_of(c, tenant))
    }

    fn artifact_chunk(&self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
        self.with(|c| artifact_chunk_of(c, id, index))
    }

    fn tenant_setting(&self, tenant: &str, name: &str) -> Result<Option<String>, LogError> {
        self.with(|c| {
            c.query_opt("SELECT value FROM tenant_settings WHERE tenant = $1 AND name = $2", &[&tenant, &name])?
                .map(|r| r.try_get(0).map_err(LogError::from))
                .transpose()
        })
    }
}

/// Feeds a portal's rows to `f`, SCAN_BATCH per round trip, until it is empty or `f` stops.
fn drain_portal(
    tx: &mut postgres::Transaction<'_>,
    portal: &postgres::Portal,
    f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    loop {
        let rows = tx.query_portal(portal, SCAN_BATCH)?;
        let n = rows.len();
        for r in rows {
            let rec = match row_to_record(&r) {
                Ok(rec) => rec,
                Err(e) => {
                    let seq = r.try_get::<_, i64>(0).map(|s| s as u64).unwrap_or(0);
                    return Err(LogError::integrity(seq, e.to_string()));
                }
            };
            if !f(rec)? {
                return Ok(());
            }
        }
        if n < SCAN_BATCH as usize {
            return Ok(());
        }
    }
}

struct PgTx<'c> {
    tx: postgres::Transaction<'c>,
    stmts: &'c mut HashMap<&'static str, postgres::Statement>,
}

impl PgTx<'_> {
    /// `sql` prepared once per connection.
    fn stmt(&mut self, sql: &'static str) -> Result<postgres::Statement, LogError> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }

    /// Executes a cached statement.
    fn exec(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, LogError> {
        let st = self.stmt(sql)?;
        Ok(self.tx.execute(&st, params)?)
    }
}

const INSERT_EVENTS: &str =
    "INSERT INTO events (global_seq, tenant, tenant_seq, category, kind, occurred_at, recorded_at, label, commitment,
     dek_version, nonce, body, tenant_chain, global_chain, purged_by)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],
     $9::bytea[], $10::bigint[], $11::bytea[], $12::bytea[], $13::bytea[], $14::bytea[], $15::bigint[])";

impl Tx for PgTx<'_> {
    fn head(&mut self) -> Result<Head, LogError> {
        head_of(&mut self.tx)
    }

    fn tenant_head(&mut self, tenant: &str) -> Result<Option<TenantHead>, LogError> {
        let st = self.stmt("SELECT tenant, last_seq, chain, deleted_at FROM tenant_heads WHERE tenant = $1")?;
        self.tx.query_opt(&st, &[&tenant])?.map(|r| row_to_tenant_head(&r)).transpose()
    }

    fn insert(&mut self, recs: &[StoredRecord]) -> Result<(), LogError> {
        if recs.is_empty() {
            return Ok(());
        }
        // One round trip per batch: every column as an array, zipped by unnest.
        let n = recs.len();
        let mut seq = Vec::with_capacity(n);
        let mut tenant = Vec::with_capacity(n);
        let mut tseq = Vec::with_capacity(n);
        let mut cat = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut occ = Vec::with_capacity(n);
        let mut rec_at = Vec::with_capacity(n);
        let mut label = Vec::with_capacity(n);
        let mut commit = Vec::with_capacity(n);
        let mut dekv = Vec::with_capacity(n);
        let mut nonce = Vec::with_capacity(n);
        let mut body = Vec::with_capacity(n);
        let mut tchain = Vec::with_capacity(n);
        let mut gchain = Vec::with_capacity(n);
        let mut purged = Vec::with_capacity(n);
        for r in recs {
            let h = &r.header;
            seq.push(h.global_seq as i64);
            tenant.push(h.tenant.as_str());
            tseq.push(h.tenant_seq as i64);
            cat.push(i64::from(h.category.code()));
            kind.push(h.kind.as_str());
            occ.push(h.occurred_at);
            rec_at.push(h.recorded_at);
            label.push(label_code(h.label));
            commit.push(&h.commitment[..]);
            dekv.push(i64::from(r.dek_version));
            nonce.push(r.nonce.as_ref().map(|n| &n[..]));
            body.push(r.body.as_deref());
            tchain.push(&r.tenant_chain[..]);
            gchain.push(&r.global_chain[..]);
            purged.push(r.purged_by.map(|v| v as i64));
        }
        self.exec(
            INSERT_EVENTS,
            &[&seq, &tenant, &tseq, &cat, &kind, &occ, &rec_at, &label, &commit, &dekv, &nonce, &body, &tchain, &gchain, &purged],
        )?;
        Ok(())
    }

    fn set_tenant_head(&mut self, h: &TenantHead) -> Result<(), LogError> {
        self.exec(
            "INSERT INTO tenant_heads (tenant, last_seq, chain, deleted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant) DO UPDATE SET last_seq = excluded.last_seq, chain = excluded.chain, deleted_at = excluded.deleted_at",
            &[&h.tenant, &(h.last_seq as i64), &&h.chain[..], &h.deleted_at],
        )?;
        Ok(())
    }

    fn active_dek(&mut self, tenant: &str) -> Result<Option<DekRow>, LogError> {
        self.tx
            .query_opt(&format!("SELECT {DEK_COLS} FROM deks WHERE tenant = $1 AND active = 1"), &[&tenant])?
            .map(|r| row_to_dek(&r))
            .transpose()
    }

    fn put_dek(&mut self, d: &DekRow) -> Result<(), LogError> {
        self.exec(
            "INSERT INTO deks (tenant, version, kek_id, wrapped, seals, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant, version) DO UPDATE SET kek_id = excluded.kek_id, wrapped = excluded.wrapped, seals = excluded.seals,
               active = excluded.active, created_at = excluded.created_at",
            &[&d.tenant, &i64::from(d.version), &d.kek_id, &d.wrapped, &(d.seals as i64), &i64::from(d.active), &d.created_at],
        )?;
        Ok(())
    }

    fn add_seals(&mut self, tenant: &str, version: u32, n: u64) -> Result<(), LogError> {
        self.tx.execute(
            "UPDATE deks SET seals = seals + $3 WHERE tenant = $1 AND version = $2",
            &[&tenant, &i64::from(version), &(n as i64)],
        )?;
        Ok(())
    }

    fn delete_deks(&mut self, tenant: &str, version: Option<u32>) -> Result<u64, LogError> {
        Ok(match version {
            Some(v) => self.tx.execute("DELETE FROM deks WHERE tenant = $1 AND version = $2", &[&tenant, &i64::from(v)])?,
            None => self.tx.execute("DELETE FROM deks WHERE tenant = $1", &[&tenant])?,
        })
    }

    fn put_kek(&mut self, k: &KekRow) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO keks (key_id, wrapped, status, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key_id) DO UPDATE SET wrapped = excluded.wrapped, status = excluded.status, created_at = excluded.created_at",
            &[&k.key_id, &k.wrapped, &k.status, &k.created_at],
        )?;
        Ok(())
    }

    fn put_signing_key(&mut self, s: &SigningRow) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO signing_key (id, public_key, wrapped, created_at) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, wrapped = excluded.wrapped, created_at = excluded.created_at",
            &[&s.public_key, &s.wrapped, &s.created_at],
        )?;
        Ok(())
    }

    fn put_checkpoint(&mut self, c: &CheckpointRow) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO checkpoints (size, head, signed_at, public_key, signature) VALUES ($1, $2, $3, $4, $5)",
            &[&(c.size as i64), &&c.head[..], &c.signed_at, &c.public_key, &c.signature],
        )?;
        Ok(())
    }

    fn put_actor(&mut self, a: &ActorRow) -> Result<(), LogError> {
        // SQLite's INSERT OR REPLACE drops every row conflicting on ANY unique column
        // (name or token_hash); do exactly that.
        self.tx.execute("DELETE FROM actors WHERE name = $1 OR token_hash = $2", &[&a.name, &&a.token_hash[..]])?;
        self.tx.execute(
            "INSERT INTO actors (name, role, clearance, token_hash, disabled, created_seq) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&a.name, &a.role, &a.clearance, &&a.token_hash[..], &i64::from(a.disabled), &(a.created_seq as i64)],
        )?;
        Ok(())
    }

    fn put_snapshot(&mut self, s: &SnapshotRow) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO snapshots (tenant, name, covers_seq, dek_version, nonce, body) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, name) DO UPDATE SET covers_seq = excluded.covers_seq, dek_version = excluded.dek_version,
               nonce = excluded.nonce, body = excluded.body",
            &[&s.tenant, &s.name, &(s.covers_seq as i64), &i64::from(s.dek_version), &&s.nonce[..], &s.body],
        )?;
        Ok(())
    }

    fn delete_snapshots(&mut self, tenant: &str) -> Result<u64, LogError> {
        Ok(self.tx.execute("DELETE FROM snapshots WHERE tenant = $1", &[&tenant])?)
    }

    fn purge_bodies(&mut self, seqs: &[u64], purged_by: u64) -> Result<u64, LogError> {
        let seqs: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
        Ok(self.tx.execute(
            "UPDATE events SET body = NULL, nonce = NULL, purged_by = $2 WHERE global_seq = ANY($1) AND body IS NOT NULL",
            &[&seqs, &(purged_by as i64)],
        )?)
    }

    fn replace_body(&mut self, seq: u64, dek_version: u32, nonce: &[u8; 12], body: &[u8]) -> Result<(), LogError> {
        self.tx.execute(
            "UPDATE events SET dek_version = $2, nonce = $3, body = $4 WHERE global_seq = $1 AND body IS NOT NULL",
            &[&(seq as i64), &i64::from(dek_version), &&nonce[..], &body],
        )?;
        Ok(())
    }

    fn count_live(&mut self, tenant: &str, category: Option<Category>, before: Option<Timestamp>) -> Result<u64, LogError> {
        count_live_in(&mut self.tx, tenant, category, before)
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
        let mut args: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(tenant.to_string())];
        if let Some(p) = purged_by {
            args.push(Box::new(p as i64));
        }
        // One pass over the tenant, each row compared with its category's cutoff
        // (categories not listed compare with NULL: never purged).
        let mut case = String::from("CASE category");
        for (c, t) in cutoffs {
            args.push(Box::new(i64::from(c.code())));
            args.push(Box::new(*t));
            case.push_str(&format!(" WHEN ${}::bigint THEN ${}::bigint", args.len() - 1, args.len()));
        }
        case.push_str(" ELSE NULL END");
        let sql = match purged_by {
            Some(_) => format!(
                "UPDATE events SET body = NULL, nonce = NULL, purged_by = $2 WHERE tenant = $1 AND body IS NOT NULL AND occurred_at < {case} RETURNING category"
            ),
            None => format!("SELECT category FROM events WHERE tenant = $1 AND body IS NOT NULL AND occurred_at < {case}"),
        };
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| b.as_ref()).collect();
        for r in self.tx.query(sql.as_str(), &params)? {
            let code: i64 = r.try_get(0)?;
            if let Some(slot) = out.iter_mut().find(|(c, _)| i64::from(c.code()) == code) {
                slot.1 += 1;
            }
        }
        Ok(out)
    }

    fn keks(&mut self) -> Result<Vec<KekRow>, LogError> {
        keks_of(&mut self.tx)
    }

    fn deks_not_wrapped_by(&mut self, kek_id: &str, limit: u64) -> Result<Vec<DekRow>, LogError> {
        self.tx
            .query(
                &format!("SELECT {DEK_COLS} FROM deks WHERE kek_id <> $1 ORDER BY tenant COLLATE \"C\", version LIMIT $2"),
                &[&kek_id, &(limit.min(i64::MAX as u64) as i64)],
            )?
            .iter()
            .map(row_to_dek)
            .collect()
    }

    fn count_deks_wrapped_by(&mut self, kek_id: &str) -> Result<u64, LogError> {
        let r = self.tx.query_one("SELECT count(*) FROM deks WHERE kek_id = $1", &[&kek_id])?;
        u64_of(&r, 0, "count")
    }

    fn set_dek_wrapping(&mut self, tenant: &str, version: u32, kek_id: &str, wrapped: &[u8]) -> Result<(), LogError> {
        self.exec(
            "UPDATE deks SET kek_id = $3, wrapped = $4 WHERE tenant = $1 AND version = $2",
            &[&tenant, &i64::from(version), &kek_id, &wrapped],
        )?;
        Ok(())
    }

    fn body_counts_by_dek(&mut self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
        body_counts(&mut self.tx, tenant)
    }

    fn artifact_counts_by_dek(&mut self, tenant: &str) -> Result<Vec<(u32, u64)>, LogError> {
        self.tx
            .query("SELECT dek_version, count(*) FROM artifacts WHERE tenant = $1 AND purged_at IS NULL GROUP BY dek_version ORDER BY dek_version", &[&tenant])?
            .iter()
            .map(|r| Ok((u32_of(r, 0, "dek_version")?, u64_of(r, 1, "count")?)))
            .collect()
    }

    fn bodies_below_dek(&mut self, tenant: &str, below: u32, after: u64, limit: u64) -> Result<Vec<StoredRecord>, LogError> {
        self.tx
            .query(
                &format!(
                    "SELECT {RECORD_COLS} FROM events WHERE tenant = $1 AND tenant_seq > $2 AND dek_version < $3 AND body IS NOT NULL
                     ORDER BY tenant_seq LIMIT $4"
                ),
                &[&tenant, &(after.min(i64::MAX as u64) as i64), &i64::from(below), &(limit.min(i64::MAX as u64) as i64)],
            )?
            .iter()
            .map(row_to_record)
            .collect()
    }

    fn scan(&mut self, q: &Query, f: &mut dyn FnMut(StoredRecord) -> Result<bool, LogError>) -> Result<(), LogError> {
        let (sql, args) = scan_sql(q);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| b.as_ref()).collect();
        // A portal inside the write transaction: sees its own writes, SCAN_BATCH rows per round trip.
        let portal = self.tx.bind(sql.as_str(), &params)?;
        drain_portal(&mut self.tx, &portal, f)
    }

    fn deks(&mut self, tenant: &str) -> Result<Vec<DekRow>, LogError> {
        self.tx
            .query(&format!("SELECT {DEK_COLS} FROM deks WHERE tenant = $1 ORDER BY version"), &[&tenant])?
            .iter()
            .map(row_to_dek)
            .collect()
    }

    fn snapshot(&mut self, tenant: &str, name: &str) -> Result<Option<SnapshotRow>, LogError> {
        snapshot_of(&mut self.tx, tenant, name)
    }

    fn put_artifact_chunk(&mut self, c: &ArtifactChunk) -> Result<(), LogError> {
        self.exec(
            "INSERT INTO artifact_chunks (artifact_id, idx, nonce, body) VALUES ($1, $2, $3, $4)",
            &[&c.artifact_id, &(c.index.min(i64::MAX as u64) as i64), &&c.nonce[..], &c.body],
        )?;
        Ok(())
    }

    fn put_artifact(&mut self, a: &ArtifactRow) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO artifacts (id, tenant, name, size, sha256, label, dek_version, chunk_size, chunks, created_at, stored_seq,
                                    tier, tier_changed_at, age_from, purged_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                &a.id,
                &a.tenant,
                &a.name,
                &(a.size as i64),
                &&a.sha256[..],
                &a.label.map(Clearance::as_str),
                &i64::from(a.dek_version),
                &(a.chunk_size as i64),
                &(a.chunks as i64),
                &a.created_at,
                &(a.stored_seq as i64),
                &a.tier.as_str(),
                &a.tier_changed_at,
                &a.age_from,
                &a.purged_at,
            ],
        )?;
        Ok(())
    }

    fn set_artifact_label(&mut self, id: &str, label: Option<Clearance>) -> Result<u64, LogError> {
        Ok(self.tx.execute("UPDATE artifacts SET label = $2 WHERE id = $1", &[&id, &label.map(Clearance::as_str)])?)
    }

    fn artifact_chunk(&mut self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
        artifact_chunk_of(&mut self.tx, id, index)
    }

    fn replace_artifact_chunk(&mut self, c: &ArtifactChunk) -> Result<u64, LogError> {
        self.exec(
            "UPDATE artifact_chunks SET nonce = $3, body = $4 WHERE artifact_id = $1 AND idx = $2",
            &[&c.artifact_id, &(c.index.min(i64::MAX as u64) as i64), &&c.nonce[..], &c.body],
        )
    }

    fn set_artifact_dek(&mut self, id: &str, version: u32) -> Result<u64, LogError> {
        Ok(self.tx.execute("UPDATE artifacts SET dek_version = $2 WHERE id = $1", &[&id, &i64::from(version)])?)
    }

    fn artifacts(&mut self, tenant: Option<&str>) -> Result<Vec<ArtifactRow>, LogError> {
        artifacts_of(&mut self.tx, tenant)
    }

    fn set_artifact_tier(&mut self, id: &str, tier: Tier, at: Timestamp, reset_age: bool) -> Result<u64, LogError> {
        Ok(self.tx.execute(
            "UPDATE artifacts SET tier = $2, tier_changed_at = $3, age_from = CASE WHEN $4 THEN $3 ELSE age_from END
             WHERE id = $1 AND purged_at IS NULL",
            &[&id, &tier.as_str(), &at, &reset_age],
        )?)
    }

    fn purge_artifact(&mut self, id: &str, at: Timestamp) -> Result<u64, LogError> {
        // Dead tuples leave the data files at the caller's `reclaim` (VACUUM FULL).
        self.tx.execute("DELETE FROM artifact_chunks WHERE artifact_id = $1", &[&id])?;
        Ok(self.tx.execute("UPDATE artifacts SET purged_at = $2 WHERE id = $1 AND purged_at IS NULL", &[&id, &at])?)
    }

    fn delete_artifacts(&mut self, tenant: &str) -> Result<u64, LogError> {
        self.tx.execute("DELETE FROM artifact_chunks WHERE artifact_id IN (SELECT id FROM artifacts WHERE tenant = $1)", &[&tenant])?;
        Ok(self.tx.execute("DELETE FROM artifacts WHERE tenant = $1", &[&tenant])?)
    }

    fn set_tenant_setting(&mut self, tenant: &str, name: &str, value: &str) -> Result<(), LogError> {
        self.tx.execute(
            "INSERT INTO tenant_settings (tenant, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, name) DO UPDATE SET value = excluded.value",
            &[&tenant, &name, &value],
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

    #[test]
    fn urls_select_postgres_and_paths_do_not() {
        assert!(is_postgres_url("postgres:///custos?host=/run/postgresql"));
        assert!(is_postgres_url("postgresql://u@localhost/db"));
        assert!(!is_postgres_url("/var/lib/custos/audit.db"));
        assert!(!is_postgres_url("postgres.db"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:hunter2@localhost:5432/db"), "postgres://u:***@localhost:5432/db");
        assert_eq!(redact("postgres://u:hunter2@/db?host=/tmp"), "postgres://u:***@/db?host=/tmp");
        assert_eq!(redact("postgres:///db?host=/tmp&password=hunter2&user=u"), "postgres:///db?host=/tmp&password=***&user=u");
        assert_eq!(redact("postgres://u@localhost/db"), "postgres://u@localhost/db");
        assert_eq!(redact("/tmp/a:b@c.db"), "/tmp/a:b@c.db");
    }
}
