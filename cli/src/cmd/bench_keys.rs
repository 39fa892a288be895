//! `custos bench --suite keys`: re-encryption of one large tenant next to raw AES-GCM
//! open+seal and raw SQLite body updates measured in the same run, and rewrap of
//! 10,000 tenants' DEKs next to raw unwrap+wrap.

use std::io::{BufWriter, Write};
use std::time::Instant;

use custos_crypto::{open_in_place, seal_in_place, Aead, SecretKey};
use custos_domain::now_micros;
use custos_eventlog::keyring::dek_aad;
use custos_eventlog::rawbench;
use custos_platform::{sample, IngestOptions, LifecycleOpts, Platform};
use serde_json::{json, Value};

use super::bench::rate;
use super::Ctx;
use crate::args::BenchArgs;

/// DEKs rewrapped by the rewrap half of the suite.
const REWRAP_TENANTS: u64 = 10_000;

fn write_input(path: &std::path::Path, n: u64, tenants: u64, payload: usize) -> anyhow::Result<()> {
    let now = now_micros();
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        writeln!(w, "{}", sample::bench_line(i, tenants, payload, now))?;
    }
    w.flush()?;
    Ok(())
}

pub fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    let base = match &a.dir {
        Some(d) => tempfile::Builder::new().prefix("custos-bench-keys-").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("custos-bench-keys-").tempdir()?,
    };
    let n = a.events;
    let note = |s: &str| ctx.out.note(s);
    let mut rows: Vec<(String, f64, String)> = vec![];
    let opts = LifecycleOpts::default();

    // 1. Re-encryption of one tenant holding every event.
    note(&format!("generating {n} events of ~{} B for one tenant ...", a.payload));
    let input = base.path().join("events.jsonl");
    write_input(&input, n, 1, a.payload)?;
    let store = base.path().join("keys.db").display().to_string();
    let (mut p, init) = Platform::init(&store, &base.path().join("keys.key"), "admin")?;
    let admin = p.authenticate(Some(&init.admin.token), "bench")?;
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&input)?);
    p.ingest(&admin, &mut f, &IngestOptions::default(), &mut |_| {})?;
    let mut body_len = 0usize;
    p.log().backend().scan(&custos_eventlog::Query { tenant: Some("t000".into()), limit: Some(1), ..Default::default() }, &mut |r| {
        body_len = r.body.map(|b| b.len()).unwrap_or(0);
        Ok(false)
    })?;
    note("reencrypt ...");
    let res = p.keys_reencrypt(&admin, Some("t000"), opts, &mut |_, _, _| {})?;
    let re = res.first().map(|r| (r.reencrypted, r.seconds)).unwrap_or((0, 0.0));
    let re_rate = rate(re.0, re.1);
    rows.push((format!("custos keys reencrypt (1 tenant, batches of {})", opts.batch), re_rate, "events/s".into()));
    drop(p);

    note("raw baselines ...");
    let aead_old = Aead::new(&SecretKey::generate()?)?;
    let aead_new = Aead::new(&SecretKey::generate()?)?;
    let plain = vec![0x41u8; body_len.saturating_sub(16)];
    let mut sealed = plain.clone();
    seal_in_place(&aead_old, &[3u8; 12], b"aad", &mut sealed)?;
    let m = n.min(1_000_000);
    let t0 = Instant::now();
    for i in 0..m {
        let mut b = sealed.clone();
        open_in_place(&aead_old, &[3u8; 12], b"aad", &mut b)?;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        seal_in_place(&aead_new, &nonce, b"aad", &mut b)?;
        std::hint::black_box(&b);
    }
    let crypto_rate = rate(m, t0.elapsed().as_secs_f64());
    rows.push(("raw AES-256-GCM open + seal (ring), same body size".into(), crypto_rate, "ops/s".into()));
    let raw = base.path().join("raw.db");
    rawbench::raw_insert(&raw, n, body_len, 1)?;
    let (un, us) = rawbench::raw_update(&raw, opts.batch)?;
    let update_rate = rate(un, us);
    rows.push((format!("raw rusqlite UPDATE of body+nonce by key, {} per transaction", opts.batch), update_rate, "rows/s".into()));
    let limit = 1.0 / (1.0 / crypto_rate + 1.0 / update_rate);

    // 2. Rewrap of 10,000 tenants' DEKs.
    note(&format!("rewrap: {REWRAP_TENANTS} tenants ..."));
    let input2 = base.path().join("tenants.jsonl");
    write_input(&input2, REWRAP_TENANTS, REWRAP_TENANTS, 200)?;
    let store2 = base.path().join("rewrap.db").display().to_string();
    let (mut p2, init2) = Platform::init(&store2, &base.path().join("rewrap.key"), "admin")?;
    let admin2 = p2.authenticate(Some(&init2.admin.token), "bench")?;
    let mut f2 = std::io::BufReader::new(std::fs::File::open(&input2)?);
    p2.ingest(&admin2, &mut f2, &IngestOptions::default(), &mut |_| {})?;
    p2.keys_rotate(&admin2)?;
    let t0 = Instant::now();
    let rw = p2.keys_rewrap(&admin2, opts, &mut |_, _| {})?;
    let rw_s = t0.elapsed().as_secs_f64();
    rows.push((
        format!("custos keys rewrap ({} DEKs, batches of {})", rw.rewrapped, opts.batch),
        rate(rw.rewrapped, rw_s),
        "DEKs/s".into(),
    ));
    let kek_a = SecretKey::generate()?;
    let kek_b = SecretKey::generate()?;
    let dek = SecretKey::generate()?;
    let aad = dek_aad("t0001", 1);
    let w = kek_a.wrap(&dek, &aad)?;
    let t0 = Instant::now();
    for _ in 0..REWRAP_TENANTS {
        let k = kek_a.unwrap_key(&w, &aad, "bench")?;
        std::hint::black_box(kek_b.wrap(&k, &aad)?);
    }
    rows.push(("raw unwrap + wrap of a 32-byte DEK (ring)".into(), rate(REWRAP_TENANTS, t0.elapsed().as_secs_f64()), "ops/s".into()));

    let v = json!({
        "events": n, "payload_bytes": a.payload, "stored_body_bytes": body_len, "rewrap_deks": rw.rewrapped,
        "results": rows.iter().map(|(k, r, u)| json!({"what": k, "rate": r.round(), "unit": u})).collect::<Vec<Value>>(),
        "ratios": {"reencrypt_vs_raw_open_seal_plus_update": re_rate / limit},
    });
    ctx.out.emit(&v, || {
        let mut s = format!(
            "custos bench --suite keys: {n} events in one tenant ({body_len} B sealed bodies); rewrap of {} DEKs\n\n",
            rw.rewrapped
        );
        s += &format!(
            "| {:<72} | {:>12} | {:<8} |\n|{}|{}|{}|\n",
            "operation",
            "rate",
            "unit",
            "-".repeat(74),
            "-".repeat(14),
            "-".repeat(10)
        );
        for (k, r, u) in &rows {
            s += &format!("| {k:<72} | {r:>12.0} | {u:<8} |\n");
        }
        s += &format!("\nreencrypt / (raw open+seal ⊕ raw update)  {:.0}%\n", 100.0 * re_rate / limit);
        s
    })
}
