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

/// Drops every other body of the raw table (what a retention run purging half does) in
/// one transaction with `secure_delete=ON`. Returns (rows changed, seconds).
pub fn raw_purge_half(path: &Path) -> Result<(u64, f64), LogError> {
    let mut c = Connection::open(path)?;
    c.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")?;
    let t0 = Instant::now();
    let tx = c.transaction()?;
    let n = tx.execute("UPDATE raw SET body = NULL, nonce = NULL, purged_by = 1 WHERE body IS NOT NULL AND occurred_at % 2 = 0", [])?;
    tx.commit()?;
    Ok((n as u64, t0.elapsed().as_secs_f64()))
}

/// Drops every remaining body of one tenant of the raw table, then truncates the WAL
/// (what a deletion does minus keys and events). Returns (rows changed, seconds).
pub fn raw_purge_tenant(path: &Path, tenant: &str) -> Result<(u64, f64), LogError> {
    let mut c = Connection::open(path)?;
    c.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")?;
    let t0 = Instant::now();
    let tx = c.transaction()?;
    let n = tx.execute("UPDATE raw SET body = NULL, nonce = NULL, purged_by = 1 WHERE tenant = ?1 AND body IS NOT NULL", [tenant])?;
    tx.commit()?;
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok((n as u64, t0.elapsed().as_secs_f64()))
}

/// Copies a database with the online backup API (no compression). Returns (bytes, seconds).
pub fn raw_backup(src: &Path, dest: &Path) -> Result<(u64, f64), LogError> {
    let c = Connection::open(src)?;
    let mut d = Connection::open(dest)?;
    let t0 = Instant::now();
    {
        let b = rusqlite::backup::Backup::new(&c, &mut d)?;
        while b.step(-1)? != rusqlite::backup::StepResult::Done {}
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0), secs))
}

/// Rewrites the body and nonce of every row of the raw table (made by [`raw_insert`]) by
/// primary key, `batch` rows per transaction — the storage half of a re-encryption.
/// Returns (rows, seconds).
pub fn raw_update(path: &Path, batch: u64) -> Result<(u64, f64), LogError> {
    let mut c = Connection::open(path)?;
    c.execute_batch("PRAGMA synchronous=FULL;")?;
    let n: i64 = c.query_row("SELECT count(*) FROM raw", [], |r| r.get(0))?;
    let len: i64 = c.query_row("SELECT coalesce(max(length(body)), 0) FROM raw", [], |r| r.get(0))?;
    let body = vec![0xa5u8; len as usize];
    let nonce = [2u8; 12];
    let t0 = Instant::now();
    let mut seq = 1i64;
    while seq <= n {
        let tx = c.transaction()?;
        {
            let mut st = tx.prepare_cached("UPDATE raw SET dek_version = 2, nonce = ?2, body = ?3 WHERE seq = ?1")?;
            let end = (seq + batch.max(1) as i64).min(n + 1);
            for s in seq..end {
                st.execute(params![s, &nonce[..], &body[..]])?;
            }
            seq = end;
        }
        tx.commit()?;
    }
    Ok((n as u64, t0.elapsed().as_secs_f64()))
}
