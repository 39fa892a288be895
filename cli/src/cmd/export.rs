//! `custos compliance export` / `verify-bundle`, the quickstart export step and
//! `custos bench --suite export`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use custos_domain::{now_micros, parse_ts};
use custos_platform::{sample, verify_bundle_path, EventFilter, ExportOptions, IngestOptions, Platform, PlatformError, Principal};
use serde_json::{json, Value};

use super::Ctx;
use crate::args::BenchArgs;
use crate::Exit;

/// `compliance export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Tenant to export.
    #[arg(long)]
    pub tenant: String,
    /// Destination directory (must not exist); with --archive, the .tar.gz file (".tar.gz" is appended if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Write one .tar.gz instead of a directory.
    #[arg(long)]
    pub archive: bool,
    /// What happens to items above your clearance: deny (omit, count) or redact (keep the header, mark redacted).
    #[arg(long, default_value = "deny")]
    pub policy: String,
    /// Treat unlabeled events and artifacts as denied instead of giving them the tenant's default label.
    #[arg(long)]
    pub require_labels: bool,
    /// Redact PII and secrets in exported data (such lines are marked redacted and lose their salt).
    #[arg(long)]
    pub redact_pii: bool,
    /// Redaction strategy for --redact-pii: label, mask or partial.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Custom redaction rules for --redact-pii.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Only events that occurred at or after (RFC 3339 or YYYY-MM-DD); the chain stays complete.
    #[arg(long)]
    pub since: Option<String>,
    /// Only events that occurred before.
    #[arg(long)]
    pub until: Option<String>,
}

/// `compliance verify-bundle`.
#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// Bundle directory or .tar.gz.
    pub path: PathBuf,
    /// The operator's Ed25519 public key: 64 hex digits, or a file holding them (`custos keys public`).
    /// Without it the key inside the manifest is used, which proves consistency but not who signed.
    #[arg(long)]
    pub public_key: Option<String>,
    /// An earlier bundle (directory, .tar.gz or manifest.json) this one must extend.
    #[arg(long)]
    pub previous: Option<PathBuf>,
}

fn parse_key(s: &str) -> Result<Vec<u8>, PlatformError> {
    let from_hex = |t: &str| hex::decode(t.trim()).ok().filter(|k| k.len() == 32);
    if let Some(k) = from_hex(s) {
        return Ok(k);
    }
    let bytes = std::fs::read(s)
        .map_err(|e| PlatformError::Input(format!("--public-key {s:?} is neither 64 hex digits nor a readable file: {e}")))?;
    if let Some(k) = std::str::from_utf8(&bytes).ok().and_then(|t| {
        // Accept the plain hex of `keys public` or its --json form.
        from_hex(t).or_else(|| serde_json::from_str::<Value>(t).ok().and_then(|v| v["public_key"].as_str().and_then(from_hex)))
    }) {
        return Ok(k);
    }
    if bytes.len() == 32 {
        return Ok(bytes);
    }
    Err(PlatformError::Input(format!("{s} does not hold an Ed25519 public key (64 hex digits)")))
}

pub(crate) fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    let policy = a.policy.parse().map_err(PlatformError::Input)?;
    let since = a.since.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?;
    let until = a.until.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?;
    let redact_pii = if a.redact_pii { Some(super::redact::redactor(a.strategy.as_deref(), a.rules.as_ref())?) } else { None };
    let mut out = a.out.clone();
    if a.archive && !out.to_string_lossy().ends_with(".tar.gz") {
        let mut s = out.into_os_string();
        s.push(".tar.gz");
        out = s.into();
    }
    let opts = ExportOptions {
        tenant: a.tenant.clone(),
        out,
        archive: a.archive,
        policy,
        require_labels: a.require_labels,
        redact_pii,
        since,
        until,
    };
    let (mut p, who) = ctx.authorized("compliance export", Some(&a.tenant))?;
    let pb = ctx.out.progress(Some(0), "export (records)");
    let res = p.export(&who, &opts, &mut |n, total| {
        if pb.length() != Some(total) {
            pb.set_length(total);
        }
        pb.set_position(n);
    })?;
    pb.finish_and_clear();
    ctx.out.emit(&res, || {
        let counts: Vec<String> = res.counts.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "exported tenant {} to {}\n  {} items; {}\n  manifest sha256 {} (recorded as export_created, seq {})\n  verify offline: custos compliance verify-bundle {} --public-key <key from `custos keys public`>\n",
            res.tenant,
            res.export_path,
            res.total_items,
            counts.join(", "),
            res.manifest_sha256,
            res.recorded_seq,
            res.export_path
        )
    })
}

pub(crate) fn verify(ctx: &Ctx, a: VerifyBundleArgs) -> anyhow::Result<()> {
    // Deliberately no ctx.open(): verification needs no store and no root key.
    let key = a.public_key.as_deref().map(parse_key).transpose()?;
    let (rep, err) = verify_bundle_path(&a.path, key.as_deref(), a.previous.as_deref());
    if let Some(e @ (PlatformError::Io(_) | PlatformError::Input(_))) = &err {
        if rep.key_source.is_none() {
            return Err(PlatformError::Input(e.to_string()).into());
        }
    }
    ctx.out.emit(&rep, || {
        let src = match rep.key_source {
            Some(custos_compliance::bundle::KeySource::Argument) => "the key given with --public-key",
            _ => "the key inside the manifest (pass --public-key to check who signed)",
        };
        if rep.ok {
            let mut s = format!(
                "OK: bundle of tenant {} verified against {src}\n  signature and signed checkpoint valid; {} files hashed\n  chain of {} records from genesis to head {}\n  {} commitments recomputed; {} redacted, {} denied, {} purged, {} out of range; {} artifacts hashed\n",
                rep.tenant, rep.files_checked, rep.chain_size, rep.tenant_head, rep.commitments_checked, rep.redacted, rep.denied, rep.purged, rep.out_of_range, rep.artifacts_checked
            );
            if let Some(pv) = &rep.previous {
                s += &format!("  extends the earlier bundle at tenant_seq {} ({})\n", pv.tenant_size, pv.tenant_head);
            }
            s
        } else {
            format!("FAILED ({}): {}\n", rep.failed_check.clone().unwrap_or_else(|| "bundle".into()), rep.error.clone().unwrap_or_default())
        }
    })?;
    match err {
        None => Ok(()),
        Some(e) => Err(Exit(5, e.to_string()).into()),
    }
}

/// Quickstart step: export one tenant and verify the bundle offline.
pub fn quickstart_step(p: &mut Platform, admin: &Principal, dir: &Path, say: &dyn Fn(&str)) -> anyhow::Result<Value> {
    say("\n== 5. export and verify offline: a signed bundle of acme-corp an auditor can check without the store");
    let out = dir.join("bundle-acme-corp");
    let opts = ExportOptions {
        tenant: "acme-corp".into(),
        out: out.clone(),
        archive: false,
        policy: Default::default(),
        require_labels: false,
        redact_pii: None,
        since: None,
        until: None,
    };
    let res = p.export(admin, &opts, &mut |_, _| {})?;
    let pk = hex::decode(p.public_key()?).map_err(|e| PlatformError::Input(e.to_string()))?;
    let (rep, err) = verify_bundle_path(&out, Some(&pk), None);
    if let Some(e) = err {
        return Err(e.into());
    }
    say(&format!(
        "   exported {} items to {} (manifest sha256 {})\n   verify-bundle: OK ({} chain records, {} commitments recomputed)\n   custos compliance verify-bundle {} --public-key {}",
        res.total_items,
        res.export_path,
        res.manifest_sha256,
        rep.chain_size,
        rep.commitments_checked,
        res.export_path,
        hex::encode(&pk)
    ));
    // One object for `quickstart --json`: the export result with its offline check inside.
    let mut v = serde_json::to_value(&res)?;
    v["verify_bundle"] = serde_json::to_value(&rep)?;
    Ok(v)
}

fn rate(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}

/// Resets VmHWM so the next peak measured is of the next phase only (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => n += dir_bytes(&e.path()),
                _ => n += e.metadata().map(|m| m.len()).unwrap_or(0),
            }
        }
    }
    n
}

/// `custos bench --suite export`: export of one large tenant and verify-bundle of it, beside
/// the decrypting scan of the same tenant in the same run, with peak RSS of each phase.
pub fn bench(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    use super::bench::peak_rss_kib;
    let base = match &a.dir {
        Some(d) => tempfile::Builder::new().prefix("custos-bench-export-").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("custos-bench-export-").tempdir()?,
    };
    let n = a.events;
    ctx.out.note(&format!("generating {n} events of ~{} B for one tenant ...", a.payload));
    let input = base.path().join("events.jsonl");
    {
        let now = now_micros();
        let mut w = BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..n {
            writeln!(w, "{}", sample::bench_line(i, 1, a.payload, now))?;
        }
        w.flush()?;
    }
    let store = base.path().join("bench.db").display().to_string();
    let (mut p, init) = Platform::init(&store, &base.path().join("bench.key"), "admin")?;
    let admin = p.authenticate(Some(&init.admin.token), "bench")?;
    ctx.out.note("ingest ...");
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&input)?);
    p.ingest(&admin, &mut f, &IngestOptions::default(), &mut |_| {})?;

    ctx.out.note("decrypting scan of the tenant ...");
    reset_peak_rss();
    let t0 = Instant::now();
    let mut cnt = 0u64;
    p.events(&EventFilter { tenant: Some("t000".into()), ..Default::default() }, &mut |e| {
        cnt += u64::from(e.has_body());
        Ok(true)
    })?;
    let scan_s = t0.elapsed().as_secs_f64();
    let scan_rss = peak_rss_kib().unwrap_or(0);

    ctx.out.note("export ...");
    let out = base.path().join("bundle");
    let opts = ExportOptions {
        tenant: "t000".into(),
        out: out.clone(),
        archive: false,
        policy: Default::default(),
        require_labels: false,
        redact_pii: None,
        since: None,
        until: None,
    };
    reset_peak_rss();
    let t0 = Instant::now();
    let res = p.export(&admin, &opts, &mut |_, _| {})?;
    let export_s = t0.elapsed().as_secs_f64();
    let export_rss = peak_rss_kib().unwrap_or(0);
    let bundle_bytes = dir_bytes(&out);
    let pk = hex::decode(p.public_key()?)?;
    drop(p);

    ctx.out.note("verify-bundle ...");
    reset_peak_rss();
    let t0 = Instant::now();
    let (rep, err) = verify_bundle_path(&out, Some(&pk), None);
    let verify_s = t0.elapsed().as_secs_f64();
    let verify_rss = peak_rss_kib().unwrap_or(0);
    if let Some(e) = err {
        return Err(e.into());
    }
    let exported = res.total_items as f64;
    let mib = bundle_bytes as f64 / 1048576.0;
    let rows = vec![
        ("decrypting scan of the tenant (events list without printing)", rate(cnt as f64, scan_s), 0.0, scan_rss),
        ("compliance export (decrypt, write JSONL+chain+CSV, hash, sign)", rate(exported, export_s), rate(mib, export_s), export_rss),
        (
            "compliance verify-bundle (hash files, chain, every commitment)",
            rate(rep.chain_size as f64, verify_s),
            rate(mib, verify_s),
            verify_rss,
        ),
    ];
    let v = json!({
        "events": n, "payload_bytes": a.payload, "bundle_bytes": bundle_bytes,
        "results": rows.iter().map(|(k, ev, mb, rss)| json!({"what": k, "events_per_s": ev.round(), "mib_per_s": (mb * 10.0).round() / 10.0, "peak_rss_kib": rss})).collect::<Vec<Value>>(),
        "export_vs_scan": rate(exported, export_s) / rate(cnt as f64, scan_s).max(1.0),
    });
    ctx.out.emit(&v, || {
        let mut s = format!("custos bench --suite export: {n} events of ~{} B in one tenant; bundle {mib:.1} MiB\n\n", a.payload);
        s += &format!(
            "| {:<66} | {:>10} | {:>8} | {:>13} |\n|{}|{}|{}|{}|\n",
            "operation",
            "events/s",
            "MiB/s",
            "peak RSS MiB",
            "-".repeat(68),
            "-".repeat(12),
            "-".repeat(10),
            "-".repeat(15)
        );
        for (k, ev, mb, rss) in &rows {
            s += &format!("| {k:<66} | {ev:>10.0} | {mb:>8.1} | {:>13.1} |\n", *rss as f64 / 1024.0);
        }
        s += &format!("\nexport / decrypting scan: {:.0}%\n", 100.0 * rate(exported, export_s) / rate(cnt as f64, scan_s).max(1.0));
        s
    })
}
