//! Streaming bundle writer: every file is hashed while it is written, lines go out as
//! records are read, so memory stays bounded whatever the tenant's size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use custos_crypto::Sha256;
use custos_domain::{format_ts, Category, Clearance, Timestamp};
use custos_eventlog::record::Header;
use serde_json::Value;

use super::*;
use crate::classify::Policy;

/// What an export was asked to do (recorded in the manifest).
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Tenant.
    pub tenant: String,
    /// Who exports.
    pub exporter: Exporter,
    /// Denial policy.
    pub policy: Policy,
    /// Deny unlabeled items.
    pub require_labels: bool,
    /// Redact PII in exported data.
    pub redact_pii: bool,
    /// Tenant default label.
    pub default_label: Clearance,
    /// occurred_at ≥ (µs).
    pub since: Option<Timestamp>,
    /// occurred_at < (µs).
    pub until: Option<Timestamp>,
    /// Export time (µs).
    pub exported_at: Timestamp,
}

struct HFile {
    w: BufWriter<File>,
    h: Sha256,
    n: u64,
}

impl HFile {
    fn create(path: &Path) -> Result<Self, BundleError> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| io(p.display(), e))?;
        }
        let f = File::create(path).map_err(|e| io(path.display(), e))?;
        Ok(Self { w: BufWriter::with_capacity(256 << 10, f), h: Sha256::new(), n: 0 })
    }
    fn finish(mut self) -> std::io::Result<FileEntry> {
        self.w.flush()?;
        self.w.get_ref().sync_all()?;
        Ok(FileEntry { sha256: hex::encode(self.h.finish()), size: self.n })
    }
}

impl Write for HFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.w.write(buf)?;
        self.h.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// Streams an artifact's content into the bundle file it is given.
pub type ContentWriter<'a> = dyn FnMut(&mut dyn Write) -> Result<u64, BundleError> + 'a;

/// An artifact as the exporter decided it.
#[derive(Debug, Clone)]
pub struct ArtifactEntry {
    /// Index line (its `status`/`path` are filled by the writer).
    pub line: ArtifactLine,
}

/// What [`BundleWriter::finish`] produced.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Directory or `.tar.gz` written.
    pub path: PathBuf,
    /// SHA-256 of manifest.json, hex.
    pub manifest_sha256: String,
    /// The manifest.
    pub manifest: Manifest,
}

/// Writes one bundle into a staging directory beside the destination, then moves it
/// into place (directory) or packs it (`.tar.gz`); nothing appears at the destination
/// unless the whole bundle was written.
pub struct BundleWriter {
    out: PathBuf,
    archive: bool,
    staging: tempfile::TempDir,
    settings: ExportSettings,
    chain: HFile,
    cats: BTreeMap<&'static str, HFile>,
    audit: csv::Writer<HFile>,
    index: Option<HFile>,
    files: BTreeMap<String, FileEntry>,
    counts: BTreeMap<String, u64>,
    size: u64,
    head: [u8; 32],
    line: Vec<u8>,
}

fn summary(data: Option<&Value>, status: Status) -> String {
    match (status, data) {
        (Status::Denied, _) => return "[denied by clearance]".into(),
        (Status::Purged, _) => return "[purged]".into(),
        (Status::OutOfRange, _) => return "[outside the exported time range]".into(),
        (_, None) => return "[withheld by policy]".into(),
        _ => {}
    }
    let mut s = String::new();
    if let Some(Value::Object(m)) = data {
        for (k, v) in m.iter().take(6) {
            let v = match v {
                Value::String(x) => x.clone(),
                Value::Number(_) | Value::Bool(_) | Value::Null => v.to_string(),
                _ => continue,
            };
            if !s.is_empty() {
                s.push_str("; ");
            }
            s.push_str(&format!("{k}={v}"));
        }
    }
    if s.chars().count() > 160 {
        s = s.chars().take(157).collect::<String>() + "...";
    }
    s
}

impl BundleWriter {
    /// Starts a bundle for `out` (a directory, or with `archive` a `.tar.gz` file). Refuses an existing destination.
    pub fn create(out: &Path, archive: bool, settings: ExportSettings) -> Result<Self, BundleError> {
        if out.exists() {
            return Err(BundleError::Io(format!("{} already exists; choose a new --out path", out.display())));
        }
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| io(parent.display(), e))?;
        let staging = tempfile::Builder::new().prefix(".custos-export-").tempdir_in(&parent).map_err(|e| io(parent.display(), e))?;
        let chain = HFile::create(&staging.path().join(CHAIN))?;
        let mut audit = csv::Writer::from_writer(HFile::create(&staging.path().join(AUDIT_CSV))?);
        audit
            .write_record(["seq", "tenant_seq", "time", "category", "kind", "actor", "label", "status", "summary"])
            .map_err(|e| io(AUDIT_CSV, e))?;
        Ok(Self {
            out: out.to_path_buf(),
            archive,
            staging,
            settings,
            chain,
            cats: BTreeMap::new(),
            audit,
            index: None,
            files: BTreeMap::new(),
            counts: BTreeMap::new(),
            size: 0,
            head: custos_eventlog::record::GENESIS,
            line: Vec::with_capacity(1024),
        })
    }

    /// Adds `n` to a manifest count.
    pub fn count(&mut self, key: &str, n: u64) {
        *self.counts.entry(key.to_string()).or_default() += n;
    }

    /// Records one record of the tenant chain (call for every tenant_seq, in order), and
    /// its category line when `event` is given (status exported or redacted).
    pub fn record(
        &mut self,
        h: &Header,
        tenant_chain: &[u8; 32],
        status: Status,
        redaction: Option<Redaction>,
        purged_by: Option<u64>,
        event: Option<&EventLine>,
    ) -> Result<(), BundleError> {
        let cl = ChainLine {
            header: LineHeader::from_header(h),
            entry_hash: hex::encode(h.entry_hash()),
            tenant_chain: hex::encode(tenant_chain),
            status,
            redacted: status == Status::Redacted,
            redaction,
            purged_by,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &cl).map_err(|e| io(CHAIN, e))?;
        self.line.push(b'\n');
        self.chain.write_all(&self.line).map_err(|e| io(CHAIN, e))?;
        self.size = h.tenant_seq;
        self.head = *tenant_chain;
        match status {
            Status::Denied => self.count("events_denied", 1),
            Status::Purged => self.count("events_purged", 1),
            Status::OutOfRange => self.count("events_out_of_range", 1),
            Status::Redacted => {
                self.count("events_redacted", 1);
                if redaction == Some(Redaction::Policy) {
                    self.count("events_denied", 1);
                }
            }
            Status::Exported => {}
        }
        if let Some(ev) = event {
            let cat = h.category.as_str();
            if !self.cats.contains_key(cat) {
                let f = HFile::create(&self.staging.path().join(category_file(h.category)))?;
                self.cats.insert(cat, f);
            }
            self.line.clear();
            serde_json::to_writer(&mut self.line, ev).map_err(|e| io(category_file(h.category), e))?;
            self.line.push(b'\n');
            if let Some(f) = self.cats.get_mut(cat) {
                f.write_all(&self.line).map_err(|e| io(category_file(h.category), e))?;
            }
            self.count(count_key(h.category), 1);
        }
        let actor = event.and_then(|e| e.actor.clone()).unwrap_or_default();
        let st = serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        self.audit
            .write_record([
                h.global_seq.to_string(),
                h.tenant_seq.to_string(),
                format_ts(h.occurred_at),
                h.category.as_str().to_string(),
                h.kind.clone(),
                actor,
                custos_eventlog::record::label_str(h.label).to_string(),
                st,
                summary(event.and_then(|e| e.data.as_ref()), status),
            ])
            .map_err(|e| io(AUDIT_CSV, e))?;
        Ok(())
    }

    /// Adds an artifact: with `content`, its bytes are streamed into `artifacts/<id>` and the
    /// written size and SHA-256 must match the index line; without, only the index line (policy redact).
    pub fn artifact(&mut self, mut line: ArtifactLine, content: Option<&mut ContentWriter<'_>>) -> Result<(), BundleError> {
        match content {
            Some(write) => {
                let rel = format!("artifacts/{}", line.artifact_id);
                let mut f = HFile::create(&self.staging.path().join(&rel))?;
                write(&mut f)?;
                let fe = f.finish().map_err(|e| io(&rel, e))?;
                if fe.sha256 != line.sha256 || fe.size != line.size {
                    return Err(invalid("artifact", format!("{} does not match its recorded SHA-256/size", line.artifact_id)));
                }
                self.files.insert(rel.clone(), fe);
                line.status = "exported".into();
                line.path = Some(rel);
                self.count("artifacts", 1);
            }
            None => {
                line.status = "redacted".into();
                line.path = None;
                self.count("artifacts_redacted", 1);
            }
        }
        self.index_line(&line)
    }

    /// Adds an artifact whose content lifecycle purged: an index line with its metadata and
    /// SHA-256 (status `purged`, no path), counted as `artifacts_purged`.
    pub fn purged_artifact(&mut self, mut line: ArtifactLine, purged_at: i64) -> Result<(), BundleError> {
        line.status = "purged".into();
        line.path = None;
        line.purged_at = Some(purged_at);
        self.count("artifacts_purged", 1);
        self.index_line(&line)
    }

    fn index_line(&mut self, line: &ArtifactLine) -> Result<(), BundleError> {
        if self.index.is_none() {
            self.index = Some(HFile::create(&self.staging.path().join(ARTIFACT_INDEX))?);
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).map_err(|e| io(ARTIFACT_INDEX, e))?;
        self.line.push(b'\n');
        if let Some(f) = self.index.as_mut() {
            f.write_all(&self.line).map_err(|e| io(ARTIFACT_INDEX, e))?;
        }
        Ok(())
    }

    /// Tenant chain size and head written so far.
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.size, self.head)
    }

    /// Writes the manifest and its signature, then moves the bundle into place.
    /// `sign` signs bytes with the store's Ed25519 key.
    pub fn finish(
        mut self,
        checkpoint: BundleCheckpoint,
        public_key: &[u8],
        sign: &dyn Fn(&[u8]) -> Vec<u8>,
    ) -> Result<Finished, BundleError> {
        let fe = self.chain.finish().map_err(|e| io(CHAIN, e))?;
        self.files.insert(CHAIN.into(), fe);
        let audit = self.audit.into_inner().map_err(|e| io(AUDIT_CSV, e.error()))?;
        self.files.insert(AUDIT_CSV.into(), audit.finish().map_err(|e| io(AUDIT_CSV, e))?);
        for (cat, f) in std::mem::take(&mut self.cats) {
            let c: Category = cat.parse().map_err(|e: custos_domain::DomainError| io(cat, e))?;
            let name = category_file(c);
            let fe = f.finish().map_err(|e| io(&name, e))?;
            self.files.insert(name, fe);
        }
        if let Some(f) = self.index.take() {
            self.files.insert(ARTIFACT_INDEX.into(), f.finish().map_err(|e| io(ARTIFACT_INDEX, e))?);
        }
        for k in ["artifacts", "artifacts_denied", "events_denied", "events_redacted", "events_purged", "events_out_of_range"] {
            self.counts.entry(k.into()).or_default();
        }
        let total_items =
            self.counts.iter().filter(|(k, _)| count_key_category(k).is_some() || k.as_str() == "artifacts").map(|(_, v)| *v).sum();
        self.counts.insert("chain".into(), self.size);
        let s = &self.settings;
        let manifest = Manifest {
            format: BUNDLE_FORMAT.into(),
            tenant: s.tenant.clone(),
            exported_at: s.exported_at,
            exported_at_utc: format_ts(s.exported_at),
            exporter: s.exporter.clone(),
            policy: s.policy.as_str().into(),
            require_labels: s.require_labels,
            redact_pii: s.redact_pii,
            default_label: s.default_label.as_str().into(),
            since: s.since,
            until: s.until,
            counts: self.counts.clone(),
            total_items,
            tenant_chain: ChainHead { size: self.size, head: hex::encode(self.head) },
            checkpoint,
            public_key: hex::encode(public_key),
            files: self.files.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| io(MANIFEST, e))?;
        bytes.push(b'\n');
        let dir = self.staging.path();
        std::fs::write(dir.join(MANIFEST), &bytes).map_err(|e| io(MANIFEST, e))?;
        std::fs::write(dir.join(MANIFEST_SIG), format!("{}\n", hex::encode(sign(&bytes)))).map_err(|e| io(MANIFEST_SIG, e))?;
        let manifest_sha256 = hex::encode(custos_crypto::sha256(&bytes));
        if self.archive {
            pack(dir, &self.out)?;
        } else {
            let kept = self.staging.keep();
            std::fs::rename(&kept, &self.out).map_err(|e| {
                let _ = std::fs::remove_dir_all(&kept);
                io(self.out.display(), e)
            })?;
        }
        Ok(Finished { path: self.out, manifest_sha256, manifest })
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        if e.file_type()?.is_dir() {
            walk(&e.path(), &r, out)?;
        } else {
            out.push(r);
        }
    }
    Ok(())
}

/// Relative paths of every regular file under `dir` (sorted, `/`-separated).
pub(crate) fn list_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut v = vec![];
    walk(dir, "", &mut v)?;
    Ok(v)
}

/// Packs `dir` into `out` (.tar.gz, entries relative to the bundle root), via a temp file renamed into place.
fn pack(dir: &Path, out: &Path) -> Result<(), BundleError> {
    let tmp = out.with_extension("partial");
    let res = (|| -> std::io::Result<()> {
        let f = File::create(&tmp)?;
        let gz = flate2::write::GzEncoder::new(BufWriter::new(f), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        for rel in list_files(dir)? {
            tar.append_path_with_name(dir.join(&rel), &rel)?;
        }
        let gz = tar.into_inner()?;
        let w = gz.finish()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(out.display(), e)
    })
}
