//! `custos quickstart`: the README's main job, a guided tour on a fresh store.

use std::io::Write;

use custos_domain::now_micros;
use custos_eventlog::VerifyOptions;
use custos_platform::{sample, EventFilter, IngestOptions, Platform, PlatformError};
use serde_json::json;

use super::Ctx;
use crate::args::QuickstartArgs;

pub fn run(ctx: &Ctx, a: QuickstartArgs) -> anyhow::Result<()> {
    let dir = match a.dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| PlatformError::Input(format!("cannot create {}: {e}", d.display())))?;
            d
        }
        None => tempfile::Builder::new().prefix("custos-quickstart-").tempdir()?.keep(),
    };
    let store = dir.join("custos.db").display().to_string();
    let key = dir.join("custos.db.key");
    let token_file = dir.join("admin.token");
    let out = ctx.out;
    // Steps come from several modules; number their "== " headers here, in tour order.
    let step = std::cell::Cell::new(0u32);
    let say = |s: &str| {
        if out.json || out.quiet {
            return;
        }
        let (lead, rest) = s.split_at(s.len() - s.trim_start_matches('\n').len());
        match rest.strip_prefix("== ") {
            Some(h) if !h.starts_with("next") => {
                let title = h.split_once(". ").filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit())).map_or(h, |(_, t)| t);
                step.set(step.get() + 1);
                println!("{lead}== {}. {title}", step.get());
            }
            _ => println!("{s}"),
        }
    };

    say(&format!("== 1. init: a new store in {}", dir.display()));
    let (mut p, init) = Platform::init(&store, &key, "admin")?;
    write_secret(&token_file, &init.admin.token)?;
    say(&format!(
        "   store {store}\n   root key {} (0600: losing it loses the data)\n   admin token saved to {}",
        key.display(),
        token_file.display()
    ));
    let admin = p.authenticate(Some(&init.admin.token), "quickstart")?;

    say("\n== 2. ingest: 30 days of runs, costs, approvals and queue traffic for 3 tenants");
    let lines = sample::quickstart_workload(now_micros(), 30).join("\n");
    let receipt = p.ingest(&admin, &mut lines.as_bytes(), &IngestOptions::default(), &mut |_| {})?;
    say(&format!(
        "   appended {} events (seq {}..{}); receipt {}:{}",
        receipt.appended, receipt.first_seq, receipt.last_seq, receipt.last_seq, receipt.global_head
    ));

    say("\n== 3. read: the three latest cost events of acme-corp, decrypted");
    let mut shown = vec![];
    p.events(&EventFilter { tenant: Some("acme-corp".into()), kind: Some("cost_recorded".into()), ..Default::default() }, &mut |e| {
        let mut line = vec![];
        // Writing into a Vec cannot fail.
        if e.write_json(&mut line).is_ok() {
            shown.push(String::from_utf8_lossy(&line).into_owned());
        }
        Ok(true)
    })?;
    for e in shown.iter().rev().take(3) {
        say(&format!("   {e}"));
    }

    say("\n== 4. checkpoint and verify: every chain link, entry hash and body commitment");
    let cp = p.log_mut().checkpoint().map_err(PlatformError::from)?;
    let rep =
        p.verify(&VerifyOptions { with_keys: true, expect: vec![(receipt.last_seq, parse_head(&receipt.global_head)?)] }, &mut |_| {})?;
    say(&format!(
        "   signed checkpoint at size {}; verify: {} ({} events, {} bodies checked, {} streams)",
        cp.size,
        if rep.ok { "OK" } else { "FAILED" },
        rep.events,
        rep.bodies_checked,
        rep.tenants
    ));
    if !rep.ok {
        return Err(PlatformError::Integrity(rep.error.unwrap_or_default()).into());
    }

    super::holds::quickstart_step(&mut p, &admin, &say)?;
    super::keys_lifecycle::quickstart_step(&mut p, &admin, &say)?;
    super::budgets::quickstart_step(&mut p, &admin, &say)?;
    let export = super::export::quickstart_step(&mut p, &admin, &dir, &say)?;
    super::freeze::quickstart_step(&mut p, &admin, &say)?;
    super::alerts::quickstart_step(&mut p, &say)?;

    // The tour ends where an incident starts: the one screen to read first.
    say("\n== 9. status: freezes first, then store, checkpoint, holds, approvals, keys, retention, backup (custos status)");
    let st = p.status()?;
    for l in super::status::human(&st).lines() {
        say(&format!("   {l}"));
    }

    let env = format!(
        "export CUSTOS_STORE={store}\nexport CUSTOS_ROOT_KEY_FILE={}\nexport CUSTOS_TOKEN_FILE={}",
        key.display(),
        token_file.display()
    );
    say(&format!(
        "\n== next: try these\n{env}\ncustos whoami\ncustos events list --tenant globex --category costs --limit 5\n\
         custos verify --expect {}:{}\ncustos status\ncustos alerts\ncustos lifecycle summary\ncustos keys list\ncustos actors add auditor-1 --role Auditor --clearance Confidential\n",
        receipt.last_seq, receipt.global_head
    ));
    if out.json {
        let v = json!({
            "dir": dir.display().to_string(),
            "store": store,
            "root_key_file": key.display().to_string(),
            "token_file": token_file.display().to_string(),
            "ingest": receipt,
            "checkpoint": cp,
            "verify": rep,
            "export": export,
        });
        let mut o = std::io::stdout().lock();
        serde_json::to_writer(&mut o, &v)?;
        writeln!(o)?;
    }
    Ok(())
}

fn parse_head(h: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out)?;
    Ok(out)
}

fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| PlatformError::Input(format!("cannot create {}: {e}", path.display())))?;
    writeln!(f, "{text}")?;
    Ok(())
}
