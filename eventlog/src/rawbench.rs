//! Physical limits for benchmarks: raw rusqlite (and PostgreSQL) insert and scan of rows shaped
//! like custos records, with the same pragmas, so `custos bench` can print its
//! own figures beside what SQLite alone does on the same machine in the same run.

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection};

use crate::LogError;

/// Inserts `n` rows with a `body_len`-byte body (plus the same clear columns and
/// the same unique index as `events`) in one transaction. Returns seconds taken.
pub fn raw_insert(path: &Path, n: u64, body_len: usize, tenants: u64) -> Result<f64, LogError> {
    let mut c = Connection::open(path)?;
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    c.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS raw (seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, tenant_seq INTEGER NOT NULL,
           category INTEGER, kind TEXT, occurred_at INTEGER, recorded_at INTEGER, label INTEGER, commitment BLOB,
           dek_version INTEGER, nonce BLOB, body BLOB, tenant_chain BLOB, global_chain BLOB, purged_by INTEGER,
           UNIQUE (tenant, tenant_seq));",
    )?;
    let body = vec![0x5au8; body_len];
    let h = [7u8; 32];
    let nonce = [1u8; 12];
    let names: Vec<String> = (0..tenants.max(1)).map(|t| format!("t{t:03}")).collect();
    let t0 = Instant::now();
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO raw VALUES (?1, ?2, ?3, 5, 'job_enqueued', ?4, ?4, 0, ?5, 1, ?6, ?7, ?5, ?5, NULL)")?;
        for i in 0..n {
            let t = i % tenants.max(1);
            st.execute(params![i as i64 + 1, names[t as usize], (i / tenants.max(1)) as i64 + 1, i as i64, &h[..], &nonce[..], &body[..]])?;
        }
    }
    tx.commit()?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Scans every row of the raw table touching each body. Returns (rows, seconds).
pub fn raw_scan(path: &Path) -> Result<(u64, f64), LogError> {
    let c = Connection::open(path)?;
    let t0 = Instant::now();
    let mut st = c.prepare("SELECT seq, tenant, tenant_seq, commitment, nonce, body, global_chain FROM raw ORDER BY seq")?;
    let mut rows = st.query([])?;
    let mut n = 0u64;
    let mut sum = 0u64;
    while let Some(r) = rows.next()? {
        let b: Vec<u8> = r.get(5)?;
        sum = sum.wrapping_add(b.len() as u64);
        n += 1;
    }
    std::hint::black_box(sum);
    Ok((n, t0.elapsed().as_secs_f64()))
}

/// A scratch schema for a PostgreSQL benchmark: created in the URL's database, and the
/// URL rewritten so every connection uses it (`options=-c search_path=...`).
/// Returns (scratch URL, schema name); drop it with [`pg_drop_scratch`].
pub fn pg_scratch(url: &str) -> Result<(String, String), LogError> {
    let schema = format!(
        "custos_bench_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_micros()).unwrap_or(0)
    );
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok((format!("{url}{sep}options=-c%20search_path%3D{schema}"), schema))
}

/// Drops a scratch schema made by [`pg_scratch`] and everything in it.
pub fn pg_drop_scratch(url: &str, schema: &str) -> Result<(), LogError> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
    Ok(())
}

/// The PostgreSQL baseline: `n` rows shaped like `events` (same columns, primary key and
/// unique index) inserted in one transaction, 4096 rows per multi-row `INSERT .. SELECT
/// unnest(...)` (the statement custos uses). Returns seconds taken.
pub fn pg_raw_insert(url: &str, n: u64, body_len: usize, tenants: u64) -> Result<f64, LogError> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    c.batch_execute(
        "CREATE TABLE raw (seq BIGINT PRIMARY KEY, tenant TEXT NOT NULL, tenant_seq BIGINT NOT NULL, category BIGINT, kind TEXT,
           occurred_at BIGINT, recorded_at BIGINT, label BIGINT, commitment BYTEA, dek_version BIGINT, nonce BYTEA, body BYTEA,
           tenant_chain BYTEA, global_chain BYTEA, purged_by BIGINT, UNIQUE (tenant, tenant_seq));
         ALTER TABLE raw ALTER COLUMN body SET STORAGE EXTERNAL;",
    )?;
    let t = tenants.max(1);
    let body = vec![0x5au8; body_len];
    let h = [7u8; 32];
    let nonce = [1u8; 12];
    let names: Vec<String> = (0..t).map(|i| format!("t{i:03}")).collect();
    let t0 = Instant::now();
    let mut tx = c.transaction()?;
    let st = tx.prepare(
        "INSERT INTO raw SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[],
         $7::bigint[], $8::bigint[], $9::bytea[], $10::bigint[], $11::bytea[], $12::bytea[], $13::bytea[], $14::bytea[], $15::bigint[])",
    )?;
    let mut i = 0u64;
    while i < n {
        let m = (n - i).min(4096);
        let seq: Vec<i64> = (i..i + m).map(|s| s as i64 + 1).collect();
        let ten: Vec<&str> = (i..i + m).map(|s| names[(s % t) as usize].as_str()).collect();
        let tseq: Vec<i64> = (i..i + m).map(|s| (s / t) as i64 + 1).collect();
        let cat = vec![5i64; m as usize];
        let kind = vec!["job_enqueued"; m as usize];
        let times: Vec<i64> = (i..i + m).map(|s| s as i64).collect();
        let label = vec![0i64; m as usize];
        let hs = vec![&h[..]; m as usize];
        let dek = vec![1i64; m as usize];
        let nonces = vec![Some(&nonce[..]); m as usize];
        let bodies = vec![Some(&body[..]); m as usize];
        let purged: Vec<Option<i64>> = vec![None; m as usize];
        tx.execute(&st, &[&seq, &ten, &tseq, &cat, &kind, &times, &times, &label, &hs, &dek, &nonces, &bodies, &hs, &hs, &purged])?;
        i += m;
    }
    tx.commit()?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Streams every row of the raw table (1000 per round trip) touching each body.
/// Returns (rows, seconds).
pub fn pg_raw_scan(url: &str) -> Result<(u64, f64), LogError> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    let t0 = Instant::now();
    let mut tx = c.transaction()?;
    let portal = tx.bind("SELECT seq, tenant, tenant_seq, commitment, nonce, body, global_chain FROM raw ORDER BY seq", &[])?;
    let (mut n, mut sum) = (0u64, 0u64);
    loop {
        let rows = tx.query_portal(&portal, 1000)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let b: Vec<u8> = r.try_get(5)?;
            sum = sum.wrapping_add(b.len() as u64);
            n += 1;
        }
    }
    tx.commit()?;
    std::hint::black_box(sum);
    Ok((n, t0.elapsed().as_secs_f64()))
}
