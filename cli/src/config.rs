//! `custos.toml`: where the store, root key and token are, and defaults an operator
//! would otherwise repeat on every command.
//!
//! Precedence is flag, then environment, then file, then built-in default — the order
//! of how deliberately a value was chosen for this one invocation. The file is found
//! via `--config`, `CUSTOS_CONFIG`, then `./custos.toml`. Relative paths in the file
//! are relative to the file, so a config works the same from any directory. The file
//! never holds a secret: it names the token *file*, and `config show` never prints a
//! token or a PostgreSQL password.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;
use custos_platform::{Defaults, PlatformError};
use serde::{Deserialize, Serialize};

/// The file's schema; unknown keys are refused so that a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Store: SQLite path or `postgres://` URL.
    pub store: Option<String>,
    /// Root key file.
    pub root_key_file: Option<PathBuf>,
    /// Token file.
    pub token_file: Option<PathBuf>,
    /// `[keys]`.
    #[serde(default)]
    pub keys: KeysSection,
    /// `[alerts]`: threshold name = value (as `custos alerts set NAME VALUE` takes it),
    /// used while the log has no `alert_threshold_set` for that name.
    #[serde(default)]
    pub alerts: BTreeMap<String, toml::Value>,
}

/// `[keys]` defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// KEK rotation period while no `keys policy` was recorded.
    pub rotation_days: Option<u32>,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Source {
    /// A command-line flag.
    Flag(String),
    /// An environment variable.
    Env(String),
    /// The config file.
    File(String),
    /// Derived from another setting (root key file from the store path).
    Derived(String),
    /// Built in.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(s) => write!(f, "flag {s}"),
            Source::Env(s) => write!(f, "env {s}"),
            Source::File(s) => write!(f, "file {s}"),
            Source::Derived(s) => write!(f, "derived from {s}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One effective setting, for `config show`.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// Name as in the file (`keys.rotation_days`, `alerts.failure_rate`).
    pub name: String,
    /// Printable value (never a secret).
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// The settings every command runs with.
#[derive(Debug)]
pub struct Effective {
    /// The config file read, if any, and how it was found.
    pub file: Option<(PathBuf, Source)>,
    /// Store location.
    pub store: String,
    /// Root key file.
    pub root_key: PathBuf,
    /// Token file, if any.
    pub token_file: Option<PathBuf>,
    /// Platform defaults.
    pub defaults: Defaults,
    /// Every setting with its source.
    pub settings: Vec<Setting>,
}

/// How a global arg was given: flag or env (clap knows), else None.
fn given(m: &ArgMatches, id: &str, flag: &str, env: &str) -> Option<Source> {
    match m.value_source(id) {
        Some(ValueSource::CommandLine) => Some(Source::Flag(flag.into())),
        Some(ValueSource::EnvVariable) => Some(Source::Env(env.into())),
        _ => None,
    }
}

/// Finds and parses the config file. `explicit` is `--config`/`CUSTOS_CONFIG`, which must
/// exist; `./custos.toml` is read only if present.
fn load(m: &ArgMatches, explicit: Option<&Path>) -> Result<Option<(PathBuf, Source, FileConfig)>, PlatformError> {
    let (path, source) = match explicit {
        Some(p) => (p.to_path_buf(), given(m, "config", "--config", "CUSTOS_CONFIG").unwrap_or(Source::Default)),
        None => {
            let p = PathBuf::from("custos.toml");
            if !p.exists() {
                return Ok(None);
            }
            (p, Source::Default)
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        PlatformError::Input(format!("cannot read config file {} ({e}); fix the path given by {source} or remove it", path.display()))
    })?;
    let cfg: FileConfig = toml::from_str(&text).map_err(|e| PlatformError::Input(format!("config file {}: {e}", path.display())))?;
    if let Some(d) = cfg.keys.rotation_days {
        if !(1..=3650).contains(&d) {
            return Err(PlatformError::Input(format!(
                "config file {}: keys.rotation_days = {d} is out of range; give 1 to 3650",
                path.display()
            )));
        }
    }
    alert_thresholds(&path, &cfg)?;
    Ok(Some((path, source, cfg)))
}

/// `[alerts]` in stored units, each value checked as `alerts set` checks it.
fn alert_thresholds(path: &Path, cfg: &FileConfig) -> Result<BTreeMap<String, i64>, PlatformError> {
    let mut out = BTreeMap::new();
    for (name, v) in &cfg.alerts {
        let text = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => other.to_string(),
        };
        let n = custos_domain::alerts::parse_threshold(name, &text)
            .map_err(|e| PlatformError::Input(format!("config file {}: alerts.{name}: {e}", path.display())))?;
        out.insert(name.clone(), n);
    }
    Ok(out)
}

/// Relative paths in the file are relative to the file's directory.
fn beside(file: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    file.parent().map(|d| d.join(p)).unwrap_or_else(|| p.to_path_buf())
}

/// Store values that are paths get resolved beside the file; URLs stay as they are.
fn store_beside(file: &Path, store: &str) -> String {
    if store.contains("://") {
        store.to_string()
    } else {
        beside(file, Path::new(store)).display().to_string()
    }
}

/// Resolves flag > env > file > default for every global setting.
pub fn resolve(m: &ArgMatches, g: &crate::args::Global) -> Result<Effective, PlatformError> {
    let loaded = load(m, g.config.as_deref())?;
    let file_src = |p: &Path| Source::File(p.display().to_string());
    let mut settings = vec![];

    let (store, store_src) = match (given(m, "store", "--store", "CUSTOS_STORE"), &loaded) {
        (Some(s), _) => (g.store.clone(), s),
        (None, Some((p, _, c))) if c.store.is_some() => (store_beside(p, c.store.as_deref().unwrap_or_default()), file_src(p)),
        _ => (g.store.clone(), Source::Default),
    };
    settings.push(Setting { name: "store".into(), value: custos_eventlog::postgres::redact(&store), source: store_src });

    let (root_key, key_src) = match (given(m, "root_key_file", "--root-key-file", "CUSTOS_ROOT_KEY_FILE"), &g.root_key_file, &loaded) {
        (Some(s), Some(k), _) => (k.clone(), s),
        (_, _, Some((p, _, FileConfig { root_key_file: Some(k), .. }))) => (beside(p, k), file_src(p)),
        _ => (custos_platform::default_root_key_file(&store), Source::Derived("store".into())),
    };
    settings.push(Setting { name: "root_key_file".into(), value: root_key.display().to_string(), source: key_src });

    let (token_file, token_src) = match (given(m, "token_file", "--token-file", "CUSTOS_TOKEN_FILE"), &g.token_file, &loaded) {
        (Some(s), Some(t), _) => (Some(t.clone()), s),
        (_, _, Some((p, _, FileConfig { token_file: Some(t), .. }))) => (Some(beside(p, t)), file_src(p)),
        _ if std::env::var_os("CUSTOS_TOKEN").is_some() => (None, Source::Env("CUSTOS_TOKEN".into())),
        _ => (None, Source::Default),
    };
    let token_value = match (&token_file, &token_src) {
        (Some(t), _) => t.display().to_string(),
        (None, Source::Env(_)) => "(token from CUSTOS_TOKEN; value not shown)".into(),
        _ => "(none: commands that need a role will be refused)".into(),
    };
    settings.push(Setting { name: "token_file".into(), value: token_value, source: token_src });

    let mut defaults = Defaults::default();
    let rot_src = match &loaded {
        Some((p, _, FileConfig { keys: KeysSection { rotation_days: Some(d) }, .. })) => {
            defaults.rotation_days = *d;
            file_src(p)
        }
        _ => Source::Default,
    };
    settings.push(Setting { name: "keys.rotation_days".into(), value: defaults.rotation_days.to_string(), source: rot_src });

    if let Some((p, _, c)) = &loaded {
        defaults.alerts = alert_thresholds(p, c)?;
    }
    for spec in custos_domain::alerts::THRESHOLDS {
        let (v, source) = match (defaults.alerts.get(spec.name), &loaded) {
            (Some(v), Some((p, _, _))) => (*v, file_src(p)),
            _ => (spec.default, Source::Default),
        };
        settings.push(Setting { name: format!("alerts.{}", spec.name), value: spec.unit.format(v), source });
    }

    let file = loaded.map(|(p, s, _)| (p, s));
    Ok(Effective { file, store, root_key, token_file, defaults, settings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn parse(args: &[&str]) -> (ArgMatches, crate::args::Global) {
        let m = crate::args::Cli::command().try_get_matches_from(args).unwrap_or_else(|e| panic!("{e}"));
        let cli = crate::args::Cli::from_arg_matches(&m).unwrap_or_else(|e| panic!("{e}"));
        (m, cli.global)
    }

    #[test]
    fn relative_paths_resolve_beside_the_file_and_urls_stay() {
        let f = Path::new("/etc/custos/custos.toml");
        assert_eq!(beside(f, Path::new("root.key")), PathBuf::from("/etc/custos/root.key"));
        assert_eq!(beside(f, Path::new("/abs/root.key")), PathBuf::from("/abs/root.key"));
        assert_eq!(store_beside(f, "postgres:///custos?host=/run"), "postgres:///custos?host=/run");
        assert_eq!(store_beside(f, "data/custos.db"), "/etc/custos/data/custos.db");
    }

    #[test]
    fn file_fills_what_flags_leave_and_flags_win() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "store = \"s.db\"\nroot_key_file = \"k.key\"\n[keys]\nrotation_days = 30\n").unwrap_or_else(|e| panic!("{e}"));
        let c = cfg.to_str().unwrap_or_default();
        let (m, g) = parse(&["custos", "--config", c, "whoami"]);
        let e = resolve(&m, &g).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.store, dir.path().join("s.db").display().to_string());
        assert_eq!(e.root_key, dir.path().join("k.key"));
        assert_eq!(e.defaults.rotation_days, 30);
        assert!(e.defaults.alerts.is_empty());
        assert!(matches!(e.settings[0].source, Source::File(_)));

        let (m, g) = parse(&["custos", "--config", c, "whoami", "--store", "/x.db"]);
        let e = resolve(&m, &g).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.store, "/x.db");
        assert_eq!(e.settings[0].source, Source::Flag("--store".into()));
        assert_eq!(e.root_key, dir.path().join("k.key"), "the file still supplies what the flags leave");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfg = dir.path().join("c.toml");
        let c = cfg.to_str().unwrap_or_default();
        for (text, wanted) in [
            ("stor = \"x\"\n", "unknown field"),
            ("[keys]\nrotation_days = 0\n", "out of range"),
            ("[alerts]\nfailure_rate = 1.5\n", "alerts.failure_rate"),
            ("[alerts]\nno_such_alert = 1\n", "unknown alert threshold"),
        ] {
            std::fs::write(&cfg, text).unwrap_or_else(|e| panic!("{e}"));
            let (m, g) = parse(&["custos", "--config", c, "whoami"]);
            let err = resolve(&m, &g).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(wanted) && err.contains("c.toml"), "{text:?}: {err}");
        }
        let (m, g) = parse(&["custos", "--config", "/nonexistent/custos.toml", "whoami"]);
        assert!(resolve(&m, &g).is_err(), "an explicit config file must exist");
    }
}
