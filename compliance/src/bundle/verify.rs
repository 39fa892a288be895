//! Offline bundle verification: needs the bundle and, optionally, the public key;
//! never a store, never a root key.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use custos_crypto::{canonical, commitment, verify_signature, Sha256};
use custos_eventlog::checkpoint_message;
use custos_eventlog::record::{link, GENESIS, TENANT_CHAIN_PREFIX};
use serde::Serialize;
use serde_json::json;

use super::writer::list_files;
use super::*;

/// Which key the signature was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// `--public-key` (independent of the bundle: proves who signed).
    Argument,
    /// The key inside the manifest (proves only internal consistency).
    Manifest,
}

/// Result of the `--previous` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviousCheck {
    /// Tenant chain size of the earlier bundle.
    pub tenant_size: u64,
    /// Its tenant head.
    pub tenant_head: String,
    /// Whether the earlier manifest's signature was checked (it is when its manifest.sig is available).
    pub signature_checked: bool,
}

/// What verify-bundle reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// All checks passed.
    pub ok: bool,
    /// Path checked.
    pub bundle: String,
    /// Tenant.
    pub tenant: String,
    /// `argument` or `manifest`.
    pub key_source: Option<KeySource>,
    /// Public key used, hex.
    pub public_key: String,
    /// Tenant chain records checked (genesis to head).
    pub chain_size: u64,
    /// Tenant head, hex.
    pub tenant_head: String,
    /// Category lines checked against chain.jsonl.
    pub lines_checked: u64,
    /// Commitments recomputed from plaintext.
    pub commitments_checked: u64,
    /// Lines marked redacted (not checkable against their commitment).
    pub redacted: u64,
    /// Records denied by policy deny.
    pub denied: u64,
    /// Purged records.
    pub purged: u64,
    /// Records outside the time range.
    pub out_of_range: u64,
    /// Artifact contents hashed.
    pub artifacts_checked: u64,
    /// Files hashed.
    pub files_checked: u64,
    /// `--previous` result.
    pub previous: Option<PreviousCheck>,
    /// Which check failed.
    pub failed_check: Option<String>,
    /// What failed.
    pub error: Option<String>,
}

fn hex32(s: &str, what: &'static str) -> Result<[u8; 32], BundleError> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(s, &mut b).map_err(|_| invalid(what, format!("{s:?} is not 32 bytes of hex")))?;
    Ok(b)
}

/// Extracts a `.tar.gz` bundle into `dest`, refusing anything but plain relative files and directories.
fn extract(archive: &Path, dest: &Path) -> Result<(), BundleError> {
    let f = File::open(archive).map_err(|e| io(archive.display(), e))?;
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(f)));
    let mut seen = BTreeSet::new();
    for e in t.entries().map_err(|e| invalid("archive", e.to_string()))? {
        let mut e = e.map_err(|e| invalid("archive", e.to_string()))?;
        let p = e.path().map_err(|e| invalid("archive", e.to_string()))?.into_owned();
        if p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(invalid("archive", format!("entry {} is not a plain relative path", p.display())));
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(dest.join(&p)).map_err(|e| io(p.display(), e))?;
            }
            tar::EntryType::Regular => {
                if !seen.insert(p.clone()) {
                    return Err(invalid("archive", format!("entry {} appears twice", p.display())));
                }
                let to = dest.join(&p);
                if let Some(d) = to.parent() {
                    std::fs::create_dir_all(d).map_err(|e| io(d.display(), e))?;
                }
                let mut o = File::create(&to).map_err(|e| io(to.display(), e))?;
                std::io::copy(&mut e, &mut o).map_err(|e| invalid("archive", e.to_string()))?;
            }
            other => return Err(invalid("archive", format!("entry {} has type {other:?}; only files are allowed", p.display()))),
        }
    }
    // The tar reader stops at the end-of-archive marker; reading the gzip stream to its
    // end makes the decoder check its CRC, so a flipped byte in padding no hash covers
    // is still reported as a damaged archive instead of passing silently.
    let mut rest = t.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| invalid("archive", format!("damaged gzip stream: {e}")))?;
    Ok(())
}

/// A bundle opened for reading: a directory (extracted into a temp dir when it was an archive).
struct Opened {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

fn open(path: &Path) -> Result<Opened, BundleError> {
    if path.is_dir() {
        return Ok(Opened { dir: path.to_path_buf(), _tmp: None });
    }
    if !path.is_file() {
        return Err(BundleError::Io(format!("no bundle at {} (give a bundle directory or .tar.gz)", path.display())));
    }
    let tmp = tempfile::Builder::new().prefix("custos-verify-").tempdir().map_err(|e| io("temp dir", e))?;
    extract(path, tmp.path())?;
    Ok(Opened { dir: tmp.path().to_path_buf(), _tmp: Some(tmp) })
}

/// manifest.json bytes, parsed, and manifest.sig if present.
type ManifestParts = (Vec<u8>, Manifest, Option<Vec<u8>>);

fn read_manifest(dir: &Path) -> Result<ManifestParts, BundleError> {
    let bytes = std::fs::read(dir.join(MANIFEST)).map_err(|e| invalid("manifest", format!("cannot read {MANIFEST}: {e}")))?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| invalid("manifest", format!("{MANIFEST} is malformed: {e}")))?;
    if m.format != BUNDLE_FORMAT {
        return Err(invalid("manifest", format!("format {:?} is not {BUNDLE_FORMAT}", m.format)));
    }
    let sig = match std::fs::read_to_string(dir.join(MANIFEST_SIG)) {
        Ok(s) => Some(hex::decode(s.trim()).map_err(|_| invalid("signature", format!("{MANIFEST_SIG} is not hex")))?),
        Err(_) => None,
    };
    Ok((bytes, m, sig))
}

fn check_signatures(bytes: &[u8], m: &Manifest, sig: Option<&[u8]>, key: &[u8]) -> Result<(), BundleError> {
    let sig = sig.ok_or_else(|| invalid("signature", format!("{MANIFEST_SIG} is missing")))?;
    verify_signature(key, bytes, sig)
        .map_err(|_| invalid("signature", "manifest.sig is not a valid Ed25519 signature of manifest.json under the public key"))?;
    let cp = &m.checkpoint;
    let msg = checkpoint_message(
        cp.size,
        &hex32(&cp.global_head, "checkpoint")?,
        cp.signed_at,
        Some((&cp.tenant, cp.tenant_size, &hex32(&cp.tenant_head, "checkpoint")?)),
    );
    let csig = hex::decode(&cp.signature).map_err(|_| invalid("checkpoint", "signature is not hex"))?;
    verify_signature(key, &msg, &csig).map_err(|_| invalid("checkpoint", "checkpoint signature does not verify under the public key"))?;
    if cp.tenant != m.tenant || cp.tenant_size != m.tenant_chain.size || cp.tenant_head != m.tenant_chain.head {
        return Err(invalid("checkpoint", "the signed checkpoint's tenant head differs from the manifest's tenant_chain"));
    }
    Ok(())
}

fn hash_file(p: &Path) -> Result<FileEntry, BundleError> {
    let mut f = File::open(p).map_err(|e| io(p.display(), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| io(p.display(), e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok(FileEntry { sha256: hex::encode(h.finish()), size: n })
}

/// Streams non-empty lines of a bundle file, with 1-based line numbers.
fn lines(dir: &Path, rel: &str, f: &mut dyn FnMut(u64, &str) -> Result<(), BundleError>) -> Result<(), BundleError> {
    let file = File::open(dir.join(rel)).map_err(|e| invalid("files", format!("cannot read {rel}: {e}")))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut s = String::new();
    let mut n = 0;
    loop {
        s.clear();
        if r.read_line(&mut s).map_err(|e| invalid("files", format!("{rel}: {e}")))? == 0 {
            return Ok(());
        }
        n += 1;
        let t = s.trim_end_matches('\n');
        if t.is_empty() {
            return Err(invalid("lines", format!("{rel} line {n} is empty")));
        }
        f(n, t)?;
    }
}

/// Pull-style reader of one bundle file's non-empty lines (see [`lines`]), remembering
/// the last tenant_seq taken from it.
struct LineReader {
    rel: String,
    r: BufReader<File>,
    n: u64,
    last: u64,
}

impl LineReader {
    fn open(dir: &Path, rel: &str) -> Result<Self, BundleError> {
        let file = File::open(dir.join(rel)).map_err(|e| invalid("files", format!("cannot read {rel}: {e}")))?;
        Ok(Self { rel: rel.to_string(), r: BufReader::with_capacity(1 << 16, file), n: 0, last: 0 })
    }

    /// The next line (1-based number, text without the newline), or None at the end.
    fn next(&mut self) -> Result<Option<(u64, String)>, BundleError> {
        let mut s = String::new();
        if self.r.read_line(&mut s).map_err(|e| invalid("files", format!("{}: {e}", self.rel)))? == 0 {
            return Ok(None);
        }
        self.n += 1;
        let t = s.trim_end_matches('\n');
        if t.is_empty() {
            return Err(invalid("lines", format!("{} line {} is empty", self.rel, self.n)));
        }
        Ok(Some((self.n, t.to_string())))
    }
}

/// Loads `--previous`: a bundle directory, a `.tar.gz`, or a manifest.json (its signature is
/// checked when a `manifest.sig` lies beside it).
fn load_previous(p: &Path, key: &[u8]) -> Result<(Manifest, bool), BundleError> {
    let (bytes, m, sig) = if p.is_dir() || p.extension().is_some_and(|e| e == "gz") {
        let o = open(p)?;
        read_manifest(&o.dir)?
    } else {
        let bytes = std::fs::read(p).map_err(|e| io(p.display(), e))?;
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| invalid("previous", format!("{} is not a manifest: {e}", p.display())))?;
        let sig_path = p.with_file_name(MANIFEST_SIG);
        let sig = std::fs::read_to_string(sig_path).ok().and_then(|s| hex::decode(s.trim()).ok());
        (bytes, m, sig)
    };
    let checked = sig.is_some();
    if let Some(sig) = sig {
        check_signatures(&bytes, &m, Some(&sig), key).map_err(|e| invalid("previous", format!("the earlier manifest: {e}")))?;
    }
    Ok((m, checked))
}

/// Verifies a bundle (directory or `.tar.gz`). `Err(Invalid)` names the failed check;
/// the report is filled as far as verification got.
pub fn verify_bundle(
    path: &Path,
    public_key: Option<&[u8]>,
    previous: Option<&Path>,
    report: &mut VerifyReport,
) -> Result<(), BundleError> {
    report.bundle = path.display().to_string();
    let opened = open(path)?;
    let dir = opened.dir.as_path();
    let (bytes, m, sig) = read_manifest(dir)?;
    report.tenant = m.tenant.clone();

    // 1. Signatures.
    let key = match public_key {
        Some(k) => {
            report.key_source = Some(KeySource::Argument);
            k.to_vec()
        }
        None => {
            report.key_source = Some(KeySource::Manifest);
            hex::decode(&m.public_key).map_err(|_| invalid("signature", "manifest public_key is not hex"))?
        }
    };
    report.public_key = hex::encode(&key);
    check_signatures(&bytes, &m, sig.as_deref(), &key)?;

    // 2. Files: exactly the listed ones, each with its digest.
    let present: BTreeSet<String> =
        list_files(dir).map_err(|e| io(dir.display(), e))?.into_iter().filter(|f| f != MANIFEST && f != MANIFEST_SIG).collect();
    let listed: BTreeSet<String> = m.files.keys().cloned().collect();
    if let Some(extra) = present.difference(&listed).next() {
        return Err(invalid("files", format!("{extra} is in the bundle but not listed in the manifest")));
    }
    if let Some(missing) = listed.difference(&present).next() {
        return Err(invalid("files", format!("{missing} is listed in the manifest but missing")));
    }
    for (rel, want) in &m.files {
        let got = hash_file(&dir.join(rel))?;
        if &got != want {
            return Err(invalid("files", format!("{rel} does not match its SHA-256/size in the manifest")));
        }
        report.files_checked += 1;
    }

    // 3. --previous, loaded first so the chain pass can check the earlier head in stride.
    let prev = previous.map(|p| load_previous(p, &key)).transpose()?;
    if let Some((pm, _)) = &prev {
        if pm.tenant != m.tenant {
            return Err(invalid("previous", format!("earlier bundle is of tenant {}, this one of {}", pm.tenant, m.tenant)));
        }
        if pm.tenant_chain.size > m.tenant_chain.size || pm.checkpoint.size > m.checkpoint.size {
            return Err(invalid(
                "previous",
                format!(
                    "rollback: the earlier bundle covers {} records (log size {}), this one only {} (log size {})",
                    pm.tenant_chain.size, pm.checkpoint.size, m.tenant_chain.size, m.checkpoint.size
                ),
            ));
        }
        if pm.tenant_chain.size == 0 && pm.tenant_chain.head != hex::encode(GENESIS) {
            return Err(invalid("previous", "earlier bundle has size 0 but a non-genesis head"));
        }
    }

    // 4. Chain from genesis to the signed head.
    // Nothing per record is kept: step 5 walks chain.jsonl again beside the category
    // files, so memory stays bounded whatever the tenant's size.
    let mut size = 0u64;
    let mut redacted_policy = 0u64;
    let mut chain = GENESIS;
    let mut last_global = 0u64;
    lines(dir, CHAIN, &mut |n, t| {
        let cl: ChainLine = serde_json::from_str(t).map_err(|e| invalid("chain", format!("line {n}: {e}")))?;
        let h = cl.header.to_header().map_err(|e| invalid("chain", format!("line {n}: {e}")))?;
        if cl.header.tenant != m.tenant {
            return Err(invalid("chain", format!("line {n} belongs to tenant {}, not {}", cl.header.tenant, m.tenant)));
        }
        if h.tenant_seq != n {
            return Err(invalid("chain", format!("line {n} has tenant_seq {} (records missing, duplicated or reordered)", h.tenant_seq)));
        }
        if h.global_seq <= last_global {
            return Err(invalid("chain", format!("line {n}: global_seq {} does not increase", h.global_seq)));
        }
        last_global = h.global_seq;
        let entry = h.entry_hash();
        if hex::encode(entry) != cl.entry_hash {
            return Err(invalid("chain", format!("line {n}: entry_hash does not match the header")));
        }
        chain = link(TENANT_CHAIN_PREFIX, &chain, &entry);
        if hex::encode(chain) != cl.tenant_chain {
            return Err(invalid("chain", format!("line {n}: tenant_chain does not follow from the previous link")));
        }
        if cl.redacted != (cl.status == Status::Redacted) || (cl.status == Status::Redacted) != cl.redaction.is_some() {
            return Err(invalid("chain", format!("line {n}: status, redacted and redaction disagree")));
        }
        if let Some((pm, _)) = &prev {
            if pm.tenant_chain.size == n && pm.tenant_chain.head != cl.tenant_chain {
                return Err(invalid(
                    "previous",
                    format!(
                        "fork: at tenant_seq {n} the earlier bundle's head is {}, this chain has {}",
                        pm.tenant_chain.head, cl.tenant_chain
                    ),
                ));
            }
        }
        match cl.status {
            Status::Denied => report.denied += 1,
            Status::Purged => report.purged += 1,
            Status::OutOfRange => report.out_of_range += 1,
            _ => {}
        }
        if cl.redaction == Some(Redaction::Policy) {
            redacted_policy += 1;
        }
        size = n;
        Ok(())
    })?;
    if size != m.tenant_chain.size || hex::encode(chain) != m.tenant_chain.head {
        return Err(invalid(
            "chain",
            format!(
                "chain.jsonl ends at {size} with head {}, the signed head is {} at {}",
                hex::encode(chain),
                m.tenant_chain.head,
                m.tenant_chain.size
            ),
        ));
    }
    report.chain_size = size;
    report.tenant_head = m.tenant_chain.head.clone();
    if let Some((pm, checked)) = &prev {
        report.previous = Some(PreviousCheck {
            tenant_size: pm.tenant_chain.size,
            tenant_head: pm.tenant_chain.head.clone(),
            signature_checked: *checked,
        });
    }

    // 5. Category lines: each matches its chain record; commitments recomputed. A second
    // pass over chain.jsonl (already verified above) pulls, for every record the bundle
    // carries, the next line of its category's file: each file must hold exactly those
    // records, in order. One open reader per category; memory does not grow with size.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut files: BTreeMap<String, (String, LineReader)> = BTreeMap::new();
    for rel in m.files.keys().filter(|f| f.starts_with("events/")) {
        let cat = rel.strip_prefix("events/").and_then(|f| f.strip_suffix(".jsonl")).unwrap_or_default().to_string();
        if cat.parse::<custos_domain::Category>().is_err() {
            return Err(invalid("files", format!("{rel} is not a category file")));
        }
        files.insert(cat, (rel.clone(), LineReader::open(dir, rel)?));
    }
    lines(dir, CHAIN, &mut |n, t| {
        let cl: ChainLine = serde_json::from_str(t).map_err(|e| invalid("chain", format!("line {n}: {e}")))?;
        if !matches!(cl.status, Status::Exported | Status::Redacted) {
            return Ok(());
        }
        let missing =
            || invalid("completeness", format!("tenant_seq {n} is marked {:?} in chain.jsonl but its line is missing", cl.status));
        let (rel, reader) = files.get_mut(&cl.header.category).ok_or_else(missing)?;
        let Some((ln, text)) = reader.next()? else { return Err(missing()) };
        let at = || format!("{rel} line {ln}");
        let el: EventLine = serde_json::from_str(&text).map_err(|e| invalid("lines", format!("{}: {e}", at())))?;
        let h = el.header.to_header().map_err(|e| invalid("lines", format!("{}: {e}", at())))?;
        if el.header.category != cl.header.category {
            return Err(invalid("lines", format!("{}: category {} in the {} file", at(), el.header.category, cl.header.category)));
        }
        if h.tenant_seq <= reader.last {
            return Err(invalid("lines", format!("{}: tenant_seq {} is out of order", at(), h.tenant_seq)));
        }
        reader.last = h.tenant_seq;
        if h.tenant_seq > size {
            return Err(invalid("completeness", format!("{}: tenant_seq {} is not in chain.jsonl", at(), h.tenant_seq)));
        }
        if h.tenant_seq > n {
            return Err(missing());
        }
        if h.tenant_seq < n {
            return Err(invalid(
                "completeness",
                format!("{}: a line for tenant_seq {}, which chain.jsonl does not mark exported or redacted", at(), h.tenant_seq),
            ));
        }
        if hex32(&cl.entry_hash, "chain")? != h.entry_hash() {
            return Err(invalid("lines", format!("{}: header differs from chain.jsonl at tenant_seq {}", at(), h.tenant_seq)));
        }
        match (cl.status, el.redacted) {
            (Status::Exported, false) => {
                let salt = el.salt.as_deref().ok_or_else(|| invalid("commitment", format!("{}: salt missing", at())))?;
                let mut s = [0u8; 16];
                hex::decode_to_slice(salt, &mut s).map_err(|_| invalid("commitment", format!("{}: salt is not 16 bytes of hex", at())))?;
                let actor = el.actor.clone().ok_or_else(|| invalid("commitment", format!("{}: actor missing", at())))?;
                let body = canonical::to_vec(&json!({"actor": actor, "data": el.data.clone().unwrap_or(serde_json::Value::Null)}));
                if commitment(&s, &body) != h.commitment {
                    return Err(invalid(
                        "commitment",
                        format!("{}: SHA-256(salt ‖ canonical {{actor, data}}) differs from the commitment (seq {})", at(), h.global_seq),
                    ));
                }
                report.commitments_checked += 1;
            }
            (Status::Redacted, true) if el.redaction == cl.redaction => {
                if el.salt.is_some() {
                    return Err(invalid("lines", format!("{}: a redacted line must not carry its salt", at())));
                }
                report.redacted += 1;
            }
            (st, _) => {
                return Err(invalid(
                    "completeness",
                    format!(
                        "{}: line (redacted={}) contradicts chain.jsonl status {st:?} at tenant_seq {}",
                        at(),
                        el.redacted,
                        h.tenant_seq
                    ),
                ))
            }
        }
        report.lines_checked += 1;
        let category = cl.header.category.parse::<custos_domain::Category>().map_err(|e| invalid("lines", format!("{}: {e}", at())))?;
        *counts.entry(count_key(category).to_string()).or_default() += 1;
        Ok(())
    })?;
    for (rel, reader) in files.values_mut() {
        if let Some((ln, text)) = reader.next()? {
            let seq = serde_json::from_str::<EventLine>(&text).ok().map(|el| el.header.tenant_seq);
            return Err(invalid(
                "completeness",
                match seq {
                    Some(q) if q > size => format!("{rel} line {ln}: tenant_seq {q} is not in chain.jsonl"),
                    Some(q) => {
                        format!("{rel} line {ln}: tenant_seq {q} appears twice or is not marked exported or redacted in chain.jsonl")
                    }
                    None => format!("{rel} line {ln}: a line beyond the records chain.jsonl marks for this file"),
                },
            ));
        }
    }

    // 6. Artifacts: index lines and contents.
    let mut art_exported = 0u64;
    let mut art_redacted = 0u64;
    let mut art_purged = 0u64;
    let mut referenced = BTreeSet::new();
    if m.files.contains_key(ARTIFACT_INDEX) {
        lines(dir, ARTIFACT_INDEX, &mut |n, t| {
            let a: ArtifactLine = serde_json::from_str(t).map_err(|e| invalid("artifacts", format!("index line {n}: {e}")))?;
            match (a.status.as_str(), &a.path) {
                ("exported", Some(p)) => {
                    let fe = m.files.get(p).ok_or_else(|| invalid("artifacts", format!("{p} is not in the bundle")))?;
                    if fe.sha256 != a.sha256 || fe.size != a.size {
                        return Err(invalid("artifacts", format!("{p} does not match the SHA-256/size of artifact {}", a.artifact_id)));
                    }
                    referenced.insert(p.clone());
                    art_exported += 1;
                    report.artifacts_checked += 1;
                }
                ("redacted", None) => art_redacted += 1,
                ("purged", None) => art_purged += 1,
                _ => return Err(invalid("artifacts", format!("index line {n}: bad status/path"))),
            }
            Ok(())
        })?;
    }
    if let Some(f) = m.files.keys().find(|f| f.starts_with("artifacts/") && f.as_str() != ARTIFACT_INDEX && !referenced.contains(*f)) {
        return Err(invalid("artifacts", format!("{f} is not referenced by the artifact index")));
    }

    // 7. Counts.
    let mut want = counts;
    want.insert("chain".into(), size);
    want.insert("events_denied".into(), report.denied + redacted_policy);
    want.insert("events_redacted".into(), report.redacted);
    want.insert("events_purged".into(), report.purged);
    want.insert("events_out_of_range".into(), report.out_of_range);
    want.insert("artifacts".into(), art_exported);
    want.insert("artifacts_redacted".into(), art_redacted);
    want.insert("artifacts_purged".into(), art_purged);
    for (k, v) in &m.counts {
        if k == "artifacts_denied" {
            if *v < art_redacted {
                return Err(invalid("counts", format!("artifacts_denied is {v} but {art_redacted} artifacts are withheld in the index")));
            }
            continue;
        }
        let w = want.get(k).copied().unwrap_or(0);
        if *v != w {
            return Err(invalid("counts", format!("manifest counts.{k} is {v}, the bundle holds {w}")));
        }
    }
    for (k, w) in &want {
        if *w > 0 && !m.counts.contains_key(k) {
            return Err(invalid("counts", format!("manifest lacks counts.{k} ({w})")));
        }
    }
    let total: u64 = want.iter().filter(|(k, _)| count_key_category(k).is_some()).map(|(_, v)| *v).sum::<u64>() + art_exported;
    if m.total_items != total {
        return Err(invalid("counts", format!("total_items is {}, the bundle holds {total}", m.total_items)));
    }
    report.ok = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&[u8], tar::EntryType)]) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".tar.gz").tempfile().unwrap_or_else(|e| panic!("{e}"));
        let gz = flate2::write::GzEncoder::new(f.reopen().unwrap_or_else(|e| panic!("{e}")), flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        for (name, ty) in entries {
            let mut h = tar::Header::new_old();
            // Raw name bytes: tar::Header::set_path refuses `..`, an attacker's tool would not.
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_entry_type(*ty);
            h.set_size(if *ty == tar::EntryType::Regular { 2 } else { 0 });
            h.set_mode(0o644);
            h.set_cksum();
            let data: &[u8] = if *ty == tar::EntryType::Regular { b"{}" } else { b"" };
            t.append(&h, data).unwrap_or_else(|e| panic!("{e}"));
        }
        t.into_inner().and_then(|g| g.finish()).unwrap_or_else(|e| panic!("{e}"));
        f
    }

    #[test]
    fn hostile_archives_are_refused() {
        for (entries, what) in [
            (vec![(&b"../evil"[..], tar::EntryType::Regular)], "parent path"),
            (vec![(&b"/etc/evil"[..], tar::EntryType::Regular)], "absolute path"),
            (vec![(&b"manifest.json"[..], tar::EntryType::Symlink)], "symlink"),
            (vec![(&b"a"[..], tar::EntryType::Regular), (&b"a"[..], tar::EntryType::Regular)], "duplicate"),
        ] {
            let f = archive(&entries);
            let mut rep = VerifyReport::default();
            match verify_bundle(f.path(), None, None, &mut rep) {
                Err(BundleError::Invalid { check: "archive", .. }) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        let f = archive(&[(&b"chain.jsonl"[..], tar::EntryType::Regular)]);
        let mut rep = VerifyReport::default();
        assert!(matches!(verify_bundle(f.path(), None, None, &mut rep), Err(BundleError::Invalid { check: "manifest", .. })));
    }
}
