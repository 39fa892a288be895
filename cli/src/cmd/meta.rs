//! Commands about custos itself: effective config, shell completions, man pages.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use serde_json::json;

use super::Ctx;
use crate::args::Cli;
use crate::config::Effective;

/// `config show`: works without a store, so it can diagnose a wrong `store` setting.
pub fn config_show(ctx: &Ctx, e: &Effective) -> anyhow::Result<()> {
    let file = e.file.as_ref().map(|(p, s)| json!({"path": p.display().to_string(), "found_via": s}));
    let v = json!({"config_file": file, "settings": e.settings});
    ctx.out.emit(&v, || {
        let mut s = match &e.file {
            Some((p, src)) => format!(
                "config file: {} ({})\n",
                p.display(),
                if *src == crate::config::Source::Default { "./custos.toml".to_string() } else { src.to_string() }
            ),
            None => "config file: none (looked for ./custos.toml; set one with --config or CUSTOS_CONFIG)\n".into(),
        };
        s += &format!("{:<20} {:<50} {}\n", "SETTING", "VALUE", "SOURCE");
        for x in &e.settings {
            s += &format!("{:<20} {:<50} {}\n", x.name, x.value, x.source);
        }
        s
    })
}

/// `completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Generated into memory: clap_complete panics when its writer fails (`| head`).
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "custos", &mut buf);
    to_stdout(&buf)
}

/// Writes all of `bytes`; a closed pipe (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// `man [--out-dir DIR]`.
pub fn man(ctx: &Ctx, out_dir: Option<&Path>) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match out_dir {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf).context("rendering the man page")?;
            to_stdout(&buf)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing man pages into {}", dir.display()))?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.ends_with(".1"))
                .collect();
            pages.sort();
            ctx.out.emit(&json!({"dir": dir.display().to_string(), "pages": pages}), || {
                format!("wrote {} man pages into {} (try `man -l {}/custos.1`)\n", pages.len(), dir.display(), dir.display())
            })?;
        }
    }
    Ok(())
}
