//! The clap definitions: parsed here, validated into platform calls in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// custos — encrypted, hash-chained audit log for LLM-workflow platforms.
#[derive(Debug, Parser)]
#[command(name = "custos", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Store location: an SQLite file path, or a `postgres://` URL (e.g.
    /// `postgres:///custos?host=/run/postgresql`; password via PGPASSWORD).
    #[arg(long, global = true, env = "CUSTOS_STORE", default_value = "custos.db")]
    pub store: String,
    /// Root key file (default: STORE.key). Keep it outside backups of the store.
    #[arg(long, global = true, env = "CUSTOS_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// File holding your API token (otherwise CUSTOS_TOKEN is read).
    #[arg(long, global = true, env = "CUSTOS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors (and JSON when --json).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More logging (-v info, -vv debug, -vvv trace), to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Config file (default: ./custos.toml if present). Flags override the environment,
    /// which overrides the file.
    #[arg(long, global = true, env = "CUSTOS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Confirm a destructive command (compliance delete, keys retire, keys rotate-root,
    /// retention run) without the typed prompt: for scripts and cron.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store, its root key, signing key, first KEK and the first Admin (prints its token once).
    Init(InitArgs),
    /// Append JSONL events from FILE or stdin in one all-or-nothing transaction (Operator+).
    Ingest(IngestArgs),
    /// Read decrypted events.
    #[command(subcommand)]
    Events(EventsCmd),
    /// Verify the whole log: chains, entry hashes, checkpoints, receipts and (with keys) every body (Auditor+).
    Verify(VerifyArgs),
    /// Sign and store the current log head (Operator+).
    Checkpoint,
    /// Key-encryption keys and the signing key.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// People and services that may act on the store.
    #[command(subcommand)]
    Actors(ActorsCmd),
    /// Show who the token belongs to.
    Whoami,
    /// The incident screen: active freezes first, then store size and head, last checkpoint,
    /// legal holds, pending approvals, key ages, last retention run and backup (Auditor+).
    Status,
    /// Emergency freeze: every budget check (of --tenant, or of all tenants) answers deny
    /// until `unfreeze` (Admin); `freeze status` lists active freezes (Auditor+).
    Freeze(crate::cmd::freeze::FreezeArgs),
    /// Lift the global freeze, or --tenant's (Admin). Exit 1 when that scope is not frozen.
    Unfreeze(crate::cmd::freeze::UnfreezeArgs),
    /// Recompute projections from the log and repair any drift (Auditor+).
    Rebuild,
    /// A guided tour on a fresh store: ingest a sample workload, read, verify.
    Quickstart(QuickstartArgs),
    /// Measure throughput against the machine's physical limits (writes a temp store).
    Bench(BenchArgs),
    /// Legal holds and tenant deletion (crypto-shredding).
    #[command(subcommand)]
    Compliance(crate::cmd::holds::ComplianceCmd),
    /// Retention policies and enforcement.
    #[command(subcommand)]
    Retention(crate::cmd::holds::RetentionCmd),
    /// Write a consistent, compressed online copy of the store (Compliance+). The root key is never in it.
    Backup(crate::cmd::holds::BackupArgs),
    /// Restore a backup into a new store at --store (refuses to overwrite).
    Restore(crate::cmd::holds::RestoreArgs),
    /// Costs of runs: record and report.
    #[command(subcommand)]
    Cost(crate::cmd::budgets::CostCmd),
    /// Cost budgets: set, show, pre-flight check, thresholds.
    #[command(subcommand)]
    Budget(crate::cmd::budgets::BudgetCmd),
    /// Approval checkpoints of paused DAG runs.
    #[command(subcommand)]
    Approvals(crate::cmd::approvals::ApprovalsCmd),
    /// Encrypted artifacts with classification labels.
    #[command(subcommand)]
    Artifacts(crate::cmd::artifacts::ArtifactsCmd),
    /// Artifact storage tiers (hot, warm, cold) by age: run, policy, summary.
    #[command(subcommand)]
    Lifecycle(crate::cmd::lifecycle::LifecycleCmd),
    /// Redact PII and secrets in text (FILE or stdin); needs no store.
    Redact(crate::cmd::redact::RedactArgs),
    /// Threshold alerts: evaluate (exit 10 when any fires), set and list thresholds.
    Alerts(crate::cmd::alerts::AlertsArgs),
    /// Server mode: the HTTP(S) API on --listen (see docs/API.md); stops on SIGTERM/SIGINT.
    Serve(crate::cmd::serve::ServeArgs),
    /// The effective settings (custos.toml, environment, flags).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Print a shell completion script (e.g. `custos completions bash > /etc/bash_completion.d/custos`).
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into --out-dir.
    Man {
        /// Write custos.1 and custos-<command>.1 pages here instead of printing custos.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print each effective setting and where it came from (flag, env, file, default); never a secret.
    Show,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the first Admin actor.
    #[arg(long, default_value = "admin")]
    pub admin: String,
}

/// `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// JSONL file, or `-` for stdin.
    #[arg(default_value = "-")]
    pub file: String,
    /// Redact PII and secrets in the string fields of `data` before events are sealed.
    #[arg(long)]
    pub redact: bool,
    /// Redaction strategy with --redact: label, mask or partial.
    #[arg(long, requires = "redact")]
    pub strategy: Option<String>,
    /// Custom redaction rules file with --redact (JSON; format in docs/OPERATIONS.md, "Redaction").
    #[arg(long, requires = "redact")]
    pub rules: Option<PathBuf>,
}

/// `events ...`.
#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// Decrypted events as JSONL (header fields, actor, data).
    List(ListArgs),
    /// One event by global sequence number.
    Show {
        /// Global sequence number.
        seq: u64,
    },
}

/// Filters of `events list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// occurred_at at or after (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// occurred_at before (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<String>,
    /// At most N events.
    #[arg(long)]
    pub limit: Option<u64>,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check chains and signatures only, without decrypting bodies (no root key needed).
    #[arg(long)]
    pub no_keys: bool,
    /// A kept receipt SEQ:HASH (last_seq:global_head from ingest); repeatable.
    #[arg(long, value_name = "SEQ:HASH")]
    pub expect: Vec<String>,
}

/// `keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Every KEK version with status, age and how many DEKs it wraps.
    List,
    /// The active KEK.
    Active,
    /// Make a new active KEK; older ones stay decrypt-only (Admin).
    Rotate,
    /// The Ed25519 public key auditors verify checkpoints and bundles with.
    Public,
    /// Rotation policy, active key age, whether rotation is overdue, pending rewraps (Admin).
    Status {
        /// Set the rotation policy first, exactly as `keys policy --rotation-days N` does
        /// (recorded as `key_policy_set`; 1..=3650; default 90).
        #[arg(long)]
        rotation_days: Option<u32>,
    },
    /// Show or set the rotation policy (recorded as `key_policy_set`) (Admin).
    Policy {
        /// Rotate the active KEK every N days (1..=3650; default 90).
        #[arg(long)]
        rotation_days: Option<u32>,
    },
    /// Re-wrap every DEK under the active KEK without touching event bodies; idempotent (Admin).
    Rewrap,
    /// Destroy a decrypt-only KEK that no DEK uses any more (Admin).
    Retire {
        /// Key id, e.g. key-001.
        key_id: String,
    },
    /// New DEK version for a tenant and re-encrypt its bodies; crash-safe, resumable (Admin).
    Reencrypt(ReencryptArgs),
    /// Generate a new root key and re-wrap every KEK and the signing key under it (Admin).
    RotateRoot {
        /// Where to create the new root key (mode 0600; must not exist).
        #[arg(long, value_name = "PATH")]
        new_root_key_file: PathBuf,
    },
}

/// `keys reencrypt`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReencryptArgs {
    /// The tenant to re-encrypt.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Every live tenant, `_system` included.
    #[arg(long)]
    pub all: bool,
}

/// `actors ...`.
#[derive(Debug, Subcommand)]
pub enum ActorsCmd {
    /// Add an actor and print its token once (Admin).
    Add {
        /// Unique name.
        name: String,
        /// Viewer, Operator, Auditor, Compliance or Admin.
        #[arg(long)]
        role: String,
        /// Public, Internal, Confidential or Restricted.
        #[arg(long, default_value = "Internal")]
        clearance: String,
    },
    /// List actors (never their tokens) (Admin).
    List,
    /// Disable an actor; its token stops working (Admin).
    Disable {
        /// Actor name.
        name: String,
    },
}

/// `quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Directory for the tour's store (a new temp dir by default; it is kept).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark: `core` (ingest, scan, verify vs raw limits); capability issues add theirs.
    #[arg(long, default_value = "core")]
    pub suite: String,
    /// Events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Tenants they are spread over.
    #[arg(long, default_value_t = 100)]
    pub tenants: u64,
    /// Approximate JSON size of each event's data, bytes.
    #[arg(long, default_value_t = 512)]
    pub payload: usize,
    /// Where to put the temp store (default: system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
