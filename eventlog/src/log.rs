//! [`EventLog`]: the append-only log over a [`Backend`], with its keys.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use custos_crypto::{canonical, commitment, random_bytes, Aead, RootKey, SigningKey};
use custos_domain::{now_micros, Clearance, NewEvent, TenantId, Timestamp, MAX_FUTURE_SKEW_MICROS};
use serde::Serialize;
use serde_json::json;

use crate::backend::*;
use crate::event::{decrypt_raw, decrypt_record, DekLookup, Event, RawEvent};
use crate::keyring::{kek_id, Keyring, SIGNING_AAD};
use crate::postgres::{is_postgres_url, PostgresBackend};
use crate::record::{link, Header, GENESIS, GLOBAL_CHAIN_PREFIX, SALT_LEN, TENANT_CHAIN_PREFIX};
use crate::sqlite::SqliteBackend;
use crate::LogError;

/// NIST SP 800-38D bounds random 96-bit nonces to 2^32 seals per key; custos stops at 2^31.
pub const DEFAULT_MAX_SEALS: u64 = 1 << 31;

/// Seals per DEK: [`DEFAULT_MAX_SEALS`], or lower when the test-only `CUSTOS_MAX_SEALS_PER_DEK`
/// is set (it can only lower the bound, never raise it, so it cannot weaken nonce safety).
pub fn max_seals_from_env() -> u64 {
    std::env::var("CUSTOS_MAX_SEALS_PER_DEK")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|n| n.clamp(1, DEFAULT_MAX_SEALS))
        .unwrap_or(DEFAULT_MAX_SEALS)
}

/// An event and who is appending it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The event.
    pub event: NewEvent,
    /// Actor name, stored inside the encrypted body and the commitment.
    pub actor: String,
}

/// What an append answers: enough for a client to later check `verify --expect SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// Events appended.
    pub appended: u64,
    /// First global_seq appended (0 when nothing was).
    pub first_seq: u64,
    /// Last global_seq appended (the log size after the append).
    pub last_seq: u64,
    /// Distinct tenants touched.
    pub tenants: u64,
    /// Global chain head after the append, hex.
    pub global_head: String,
}

/// The result of [`EventLog::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when every check passed.
    pub ok: bool,
    /// Records checked.
    pub events: u64,
    /// Distinct tenant streams.
    pub tenants: u64,
    /// Bodies decrypted and checked against their commitment.
    pub bodies_checked: u64,
    /// Records whose body was purged (each covered by a purge event).
    pub purged: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// First bad global_seq, when not ok.
    pub first_bad_seq: Option<u64>,
    /// What failed.
    pub error: Option<String>,
}

/// What `verify` should check beyond the chains.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Decrypt every body and check its commitment.
    pub with_keys: bool,
    /// Receipts to check: the global chain at SEQ must equal HASH.
    pub expect: Vec<(u64, [u8; 32])>,
}

/// A signed checkpoint as shown to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedCheckpoint {
    /// Log size.
    pub size: u64,
    /// Global head, hex.
    pub global_head: String,
    /// Signing time (RFC 3339).
    pub signed_at: String,
    /// Public key, hex.
    pub public_key: String,
    /// Signature, hex.
    pub signature: String,
}

/// The bytes an Ed25519 checkpoint signature covers: canonical JSON of
/// `{"format":"custos.checkpoint.v1","global_head":HEX,"signed_at":µs,"size":N}` plus,
/// for a tenant bundle, `"tenant":T,"tenant_head":HEX,"tenant_size":N`.
pub fn checkpoint_message(size: u64, head: &[u8; 32], signed_at: Timestamp, tenant: Option<(&str, u64, &[u8; 32])>) -> Vec<u8> {
    let mut v = json!({
        "format": "custos.checkpoint.v1",
        "size": size,
        "global_head": hex::encode(head),
        "signed_at": signed_at,
    });
    if let Some((t, n, h)) = tenant {
        v["tenant"] = json!(t);
        v["tenant_size"] = json!(n);
        v["tenant_head"] = json!(hex::encode(h));
    }
    canonical::to_vec(&v)
}

struct TenantState {
    last_seq: u64,
    chain: [u8; 32],
    dek_version: u32,
    dek: Arc<Aead>,
    dek_seals: u64,
    new_seals: u64,
}

/// An open write transaction on the log. Push batches, then [`Appender::commit`].
/// Dropped without commit, nothing is appended.
pub struct Appender<'a> {
    tx: Box<dyn Tx + 'a>,
    keys: &'a Keyring,
    max_seals: u64,
    head: Head,
    tenants: HashMap<TenantId, TenantState>,
    first_seq: u64,
    appended: u64,
    rand: Vec<u8>,
    plain: Vec<u8>,
    recs: Vec<StoredRecord>,
}

/// An event whose committed body is already built: `salt ‖ canonical {actor, data}` and
/// its commitment. Preparing needs no sequence numbers and no keys, so it can run on
/// another thread while the writer seals and inserts the previous batch.
#[derive(Debug, Clone)]
pub struct Prepared {
    tenant: TenantId,
    category: custos_domain::Category,
    kind: String,
    occurred_at: Option<Timestamp>,
    label: Option<Clearance>,
    plain: Vec<u8>,
    commitment: [u8; 32],
}

impl Prepared {
    /// The tenant the event is for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// Builds committed bodies for a batch; one `getrandom` call fills every salt.
pub fn prepare(batch: Vec<Pending>) -> Result<Vec<Prepared>, LogError> {
    let mut salts = vec![0u8; batch.len() * SALT_LEN];
    random_bytes(&mut salts)?;
    Ok(batch
        .into_iter()
        .zip(salts.chunks_exact(SALT_LEN))
        .map(|(p, salt)| {
            // Room for the AEAD tag too: the body is sealed in place later.
            let mut plain =
                Vec::with_capacity(SALT_LEN + 64 + custos_crypto::TAG_LEN + p.event.data.as_object().map_or(64, |o| o.len() * 48));
            plain.extend_from_slice(salt);
            canonical::write_actor_data(&p.actor, &p.event.data, &mut plain);
            let mut s = [0u8; SALT_LEN];
            s.copy_from_slice(salt);
            let commitment = commitment(&s, &plain[SALT_LEN..]);
            let e = p.event;
            Prepared { tenant: e.tenant, category: e.category, kind: e.kind, occurred_at: e.occurred_at, label: e.label, plain, commitment }
        })
        .collect())
}

impl<'a> Appender<'a> {
    /// Appends a batch inside the open transaction; returns the global seqs given.
    pub fn push(&mut self, batch: &[Pending]) -> Result<Vec<u64>, LogError> {
        self.push_prepared_owned(prepare(batch.to_vec())?)
    }

    /// Seals, chains and inserts prepared events inside the open transaction. The batch
    /// is only read (the server retries a request on its own after a failed group), so
    /// each body is copied once; [`Appender::push_prepared_owned`] seals in place.
    pub fn push_prepared(&mut self, batch: &[Prepared]) -> Result<Vec<u64>, LogError> {
        self.push_each(batch.len(), batch.iter().map(std::borrow::Cow::Borrowed))
    }

    /// [`Appender::push_prepared`] for a batch nobody needs afterwards (`ingest`): the
    /// bodies are sealed where they are, without a copy per event.
    pub fn push_prepared_owned(&mut self, batch: Vec<Prepared>) -> Result<Vec<u64>, LogError> {
        self.push_each(batch.len(), batch.into_iter().map(std::borrow::Cow::Owned))
    }

    fn push_each<'p>(&mut self, len: usize, batch: impl Iterator<Item = std::borrow::Cow<'p, Prepared>>) -> Result<Vec<u64>, LogError> {
        let now = now_micros();
        self.rand.resize(len * 12, 0);
        random_bytes(&mut self.rand)?;
        self.recs.clear();
        let mut seqs = Vec::with_capacity(len);
        let mut aad = std::mem::take(&mut self.plain);
        for (i, ev) in batch.enumerate() {
            let ev = match ev {
                std::borrow::Cow::Owned(p) => p,
                // Sized for the tag, so sealing in place does not grow the copy again.
                std::borrow::Cow::Borrowed(p) => {
                    let mut plain = Vec::with_capacity(p.plain.len() + custos_crypto::TAG_LEN);
                    plain.extend_from_slice(&p.plain);
                    Prepared { tenant: p.tenant.clone(), kind: p.kind.clone(), plain, ..*p }
                }
            };
            let occurred_at = ev.occurred_at.unwrap_or(now);
            if occurred_at > now.saturating_add(MAX_FUTURE_SKEW_MICROS) {
                return Err(LogError::Conflict(format!("occurred_at of a {} event is in the future", ev.kind)));
            }
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&self.rand[i * 12..(i + 1) * 12]);
            let global_seq = self.head.size + 1;
            let st = self.tenant_state(&ev.tenant, now, 1)?;
            let header = Header {
                global_seq,
                tenant: ev.tenant,
                tenant_seq: st.last_seq + 1,
                category: ev.category,
                kind: ev.kind,
                occurred_at,
                recorded_at: now,
                label: ev.label,
                commitment: ev.commitment,
            };
            let mut body = ev.plain;
            body.reserve_exact(custos_crypto::TAG_LEN);
            header.aad_into(st.dek_version, &mut aad);
            custos_crypto::seal_in_place(&st.dek, &nonce, &aad, &mut body)?;
            let entry = header.entry_hash();
            st.chain = link(TENANT_CHAIN_PREFIX, &st.chain, &entry);
            st.last_seq += 1;
            st.new_seals += 1;
            let dek_version = st.dek_version;
            let tenant_chain = st.chain;
            self.head.chain = link(GLOBAL_CHAIN_PREFIX, &self.head.chain, &entry);
            self.head.size += 1;
            seqs.push(self.head.size);
            self.recs.push(StoredRecord {
                header,
                dek_version,
                nonce: Some(nonce),
                body: Some(body),
                tenant_chain,
                global_chain: self.head.chain,
                purged_by: None,
            });
        }
        self.plain = aad;
        self.tx.insert(&self.recs)?;
        if self.first_seq == 0 {
            self.first_seq = seqs.first().copied().unwrap_or(0);
        }
        self.appended += seqs.len() as u64;
        self.recs.clear();
        Ok(seqs)
    }

    /// The tenant's state with an active DEK that can take `incoming` more seals without
    /// passing `max_seals` (rolling over to a new version first if it cannot). Callers
    /// guarantee `incoming <= max_seals`, else no version could take them.
    fn tenant_state(&mut self, tenant: &TenantId, now: Timestamp, incoming: u64) -> Result<&mut TenantState, LogError> {
        if !self.tenants.contains_key(tenant) {
            let h = self.tx.tenant_head(tenant.as_str())?;
            if let Some(h) = &h {
                if h.deleted_at.is_some() {
                    return Err(LogError::TenantDeleted(tenant.to_string()));
                }
            }
            let (dek_version, dek, dek_seals) = match self.tx.active_dek(tenant.as_str())? {
                Some(row) => (row.version, self.keys.dek_from_row(&row)?, row.seals),
                None => {
                    let (row, aead) = self.keys.new_dek(tenant.as_str(), 1, now)?;
                    self.tx.put_dek(&row)?;
                    (1, aead, 0)
                }
            };
            let (last_seq, chain) = h.map(|h| (h.last_seq, h.chain)).unwrap_or((0, GENESIS));
            self.tenants.insert(tenant.clone(), TenantState { last_seq, chain, dek_version, dek, dek_seals, new_seals: 0 });
        }
        let max = self.max_seals;
        let st = self.tenants.get_mut(tenant).ok_or_else(|| LogError::Storage("tenant state vanished".into()))?;
        // Checked with the seals about to be made, not after them: the bound is a hard stop
        // (nonce-collision budget of random 96-bit nonces), so no DEK may ever pass it, even
        // by one multi-chunk artifact. For a single event (`incoming == 1`) this is the same
        // as rolling over once the DEK is full.
        if st.dek_seals + st.new_seals + incoming > max {
            // Retire this DEK for sealing; a fresh version takes over (old one stays for reading).
            self.tx.add_seals(tenant.as_str(), st.dek_version, st.new_seals)?;
            let old = self.tx.active_dek(tenant.as_str())?;
            if let Some(mut o) = old {
                o.active = false;
                self.tx.put_dek(&o)?;
            }
            let (row, aead) = self.keys.new_dek(tenant.as_str(), st.dek_version + 1, now)?;
            self.tx.put_dek(&row)?;
            st.dek_version = row.version;
            st.dek = aead;
            st.dek_seals = 0;
            st.new_seals = 0;
        }
        Ok(st)
    }

    /// The tenant's active DEK (made if the tenant has none yet) for sealing `seals` blobs
    /// outside the event table (artifact chunks); the seals count against the DEK's bound.
    ///
    /// If the active DEK cannot take `seals` more without passing the bound, a new DEK
    /// version takes over first, so the whole blob is sealed under one version that stays
    /// within the bound. A blob that alone needs more seals than the bound is refused
    /// rather than allowed as an exception: the bound is a security limit, not a soft
    /// quota, and at the real bound (2^31 chunks of 1 MiB, i.e. 2 PiB) no such blob can
    /// exist; only a test-lowered bound can trigger this.
    pub fn dek_for(&mut self, tenant: &TenantId, seals: u64) -> Result<(u32, Arc<Aead>), LogError> {
        if seals > self.max_seals {
            return Err(LogError::Conflict(format!(
                "this artifact needs {seals} seals but one DEK may make at most {}; it cannot be sealed under a single DEK",
                self.max_seals
            )));
        }
        let st = self.tenant_state(tenant, now_micros(), seals)?;
        st.new_seals += seals;
        Ok((st.dek_version, st.dek.clone()))
    }

    /// The transaction, for writes that must commit atomically with the events
    /// (projection rows, purges, key rows).
    pub fn tx(&mut self) -> &mut dyn Tx {
        self.tx.as_mut()
    }

    /// The keys the appender seals with (key lifecycle operations make DEKs inside its transaction).
    pub fn keys(&self) -> &'a Keyring {
        self.keys
    }

    /// The keyring and the transaction together (sealing snapshots inside the transaction).
    pub fn parts(&mut self) -> (&Keyring, &mut dyn Tx) {
        (self.keys, self.tx.as_mut())
    }

    /// Streams decrypted events matching `q` as seen **inside** this transaction, i.e.
    /// under the write lock: state read here cannot change before `commit`. Records are
    /// buffered first (callers read short tails), then opened.
    pub fn read(&mut self, q: &Query, f: &mut dyn FnMut(Event) -> Result<bool, LogError>) -> Result<(), LogError> {
        let q = q.for_decrypting();
        let mut recs = vec![];
        self.tx.scan(&q, &mut |r| {
            recs.push(r);
            Ok(true)
        })?;
        let keys = self.keys;
        let tx = self.tx.as_mut();
        let mut lookup = |t: &str, v: u32| -> Result<Option<Arc<Aead>>, LogError> {
            match tx.deks(t)?.into_iter().find(|d| d.version == v) {
                Some(row) => keys.dek_from_row(&row).map(Some),
                None => Ok(None),
            }
        };
        for r in recs {
            if !f(decrypt_record(r, &mut lookup)?)? {
                break;
            }
        }
        Ok(())
    }

    /// Head inside the transaction.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Writes tenant heads and seal counts, then commits durably.
    pub fn commit(mut self) -> Result<Receipt, LogError> {
        for (t, st) in &self.tenants {
            self.tx.set_tenant_head(&TenantHead { tenant: t.to_string(), last_seq: st.last_seq, chain: st.chain, deleted_at: None })?;
            if st.new_seals > 0 {
                self.tx.add_seals(t.as_str(), st.dek_version, st.new_seals)?;
            }
        }
        let receipt = Receipt {
            appended: self.appended,
            first_seq: self.first_seq,
            last_seq: self.head.size,
            tenants: self.tenants.len() as u64,
            global_head: hex::encode(self.head.chain),
        };
        self.tx.commit()?;
        Ok(receipt)
    }
}

/// DEKs one thread of a long read has already resolved: the hot loop then neither locks
/// the shared keyring cache nor bounces its reference counts between cores.
/// Keyed with foldhash: tenant ids are not attacker-chosen here (they come from the
/// store), and SipHash showed in profiles of this loop.
#[derive(Default)]
struct LocalDeks(HashMap<String, Vec<(u32, Arc<Aead>)>, foldhash::fast::RandomState>);

impl LocalDeks {
    fn get(&self, tenant: &str, version: u32) -> Option<&Arc<Aead>> {
        self.0.get(tenant)?.iter().find(|(v, _)| *v == version).map(|(_, k)| k)
    }

    fn put(&mut self, tenant: &str, version: u32, key: Arc<Aead>) {
        self.0.entry(tenant.to_string()).or_default().push((version, key));
    }
}

/// The log: a backend plus, once unlocked, its keys.
pub struct EventLog {
    backend: Box<dyn Backend>,
    keys: Option<Keyring>,
    /// Seals per DEK before a new version is made (lowered in tests).
    pub max_seals: u64,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventLog({}, unlocked={})", self.backend.name(), self.keys.is_some())
    }
}

impl EventLog {
    /// Wraps a backend (locked: no keys yet).
    pub fn new(backend: Box<dyn Backend>) -> Self {
        Self { backend, keys: None, max_seals: max_seals_from_env() }
    }

    /// Opens the store at `location`: a `postgres://` / `postgresql://` URL selects
    /// PostgreSQL, anything else is an SQLite file path.
    pub fn open(location: &str) -> Result<Self, LogError> {
        if is_postgres_url(location) {
            return Ok(Self::new(Box::new(PostgresBackend::open(location)?)));
        }
        Ok(Self::new(Box::new(SqliteBackend::open(Path::new(location))?)))
    }

    /// Whether a store already exists at `location` (SQLite: the file exists;
    /// PostgreSQL: the schema holds a custos store). Connection errors are errors.
    pub fn exists(location: &str) -> Result<bool, LogError> {
        if is_postgres_url(location) {
            return PostgresBackend::exists(location);
        }
        Ok(Path::new(location).exists())
    }

    /// Creates a store and its first keys: KEK `key-001` and the signing key.
    /// Refuses when a store already exists at `location` ([`LogError::Exists`]).
    pub fn create(location: &str, root: &RootKey) -> Result<Self, LogError> {
        let backend: Box<dyn Backend> = if is_postgres_url(location) {
            Box::new(PostgresBackend::create(location)?)
        } else {
            Box::new(SqliteBackend::create(Path::new(location))?)
        };
        let mut log = Self::new(backend);
        let now = now_micros();
        let mut keys = Keyring::unlock(root, log.backend.as_ref())?;
        let kek = keys.new_kek(&kek_id(1), now, true)?;
        let sk = SigningKey::generate()?;
        let signing = SigningRow {
            public_key: sk.public_key().to_vec(),
            wrapped: root.key().seal_blob(sk.expose_pkcs8(), SIGNING_AAD)?,
            created_at: now,
        };
        keys.set_signing(sk);
        let mut tx = log.backend.begin()?;
        tx.put_kek(&kek)?;
        tx.put_signing_key(&signing)?;
        tx.commit()?;
        log.keys = Some(keys);
        Ok(log)
    }

    /// Unwraps the store's keys with the root key.
    pub fn unlock(&mut self, root: &RootKey) -> Result<(), LogError> {
        self.keys = Some(Keyring::unlock(root, self.backend.as_ref())?);
        Ok(())
    }

    /// See [`Backend::detach_checkpoints`]: for long-lived writers such as the server.
    pub fn detach_checkpoints(&mut self) -> Result<Option<Box<dyn crate::Checkpointer>>, LogError> {
        self.backend.detach_checkpoints()
    }

    /// The backend, for reads.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The keyring (errors if locked).
    pub fn keys(&self) -> Result<&Keyring, LogError> {
        self.keys.as_ref().ok_or(LogError::Locked2)
    }

    /// Mutable access to keys and backend together (key lifecycle operations).
    pub fn parts_mut(&mut self) -> Result<(&mut dyn Backend, &mut Keyring), LogError> {
        let k = self.keys.as_mut().ok_or(LogError::Locked2)?;
        Ok((self.backend.as_mut(), k))
    }

    /// Opens a write transaction for appends.
    pub fn appender(&mut self) -> Result<Appender<'_>, LogError> {
        let keys = self.keys.as_mut().ok_or(LogError::Locked2)?;
        let mut tx = self.backend.begin()?;
        // Under the write lock: key changes by other processes are seen before any DEK is made.
        if keys.sync_keks(&tx.keks()?)? {
            tracing::info!(active = ?keys.active_kek_id().ok(), "key-encryption keys changed in another process; reloaded");
        }
        let keys = &*keys;
        let head = tx.head()?;
        Ok(Appender {
            tx,
            keys,
            max_seals: self.max_seals,
            head,
            tenants: HashMap::new(),
            first_seq: 0,
            appended: 0,
            rand: vec![],
            plain: Vec::with_capacity(1024),
            recs: vec![],
        })
    }

    /// Appends one batch in one transaction.
    pub fn append(&mut self, batch: &[Pending]) -> Result<Receipt, LogError> {
        let mut a = self.appender()?;
        a.push(batch)?;
        a.commit()
    }

    /// Makes destroyed key material and purged bodies leave the live database files
    /// (see [`Backend::reclaim`]). Run after crypto-shredding. Returns false when a
    /// concurrent reader kept SQLite's WAL from being fully truncated.
    pub fn compact(&mut self) -> Result<bool, LogError> {
        self.backend.reclaim()
    }

    /// Size and head.
    pub fn head(&self) -> Result<Head, LogError> {
        self.backend.head()
    }

    /// Decrypts a stored record (purged records come back with no actor/data).
    pub fn open_record(&self, rec: StoredRecord) -> Result<Event, LogError> {
        let keys = self.keys()?;
        let backend = self.backend.as_ref();
        decrypt_record(rec, &mut |t, v| keys.dek(backend, t, v))
    }

    /// Streams decrypted events matching `q`, in order, with `data` parsed; the callback
    /// returns false to stop. See [`EventLog::read_raw`] for readers that only re-emit.
    pub fn read(&self, q: &Query, f: &mut dyn FnMut(Event) -> Result<bool, LogError>) -> Result<(), LogError> {
        self.read_with(q, decrypt_record, f)
    }

    /// Streams decrypted events matching `q` with `data` kept as its canonical JSON text
    /// (validated, not parsed): the fast path of `events list` and HTTP listings.
    pub fn read_raw(&self, q: &Query, f: &mut dyn FnMut(RawEvent) -> Result<bool, LogError>) -> Result<(), LogError> {
        self.read_with(q, decrypt_raw, f)
    }

    /// The read pipeline behind [`EventLog::read`] and [`EventLog::read_raw`].
    ///
    /// Long reads run in two stages on two cores: this thread steps SQLite (the backend
    /// is not `Sync`) and calls `f`; a scoped worker decrypts and decodes bodies. DEKs are
    /// resolved here before a record is handed over, so the worker never touches storage.
    /// Short reads (`limit` ≤ 256: tails, single events) stay on one thread.
    fn read_with<T: Send>(
        &self,
        q: &Query,
        decode: fn(StoredRecord, &mut DekLookup<'_>) -> Result<T, LogError>,
        f: &mut dyn FnMut(T) -> Result<bool, LogError>,
    ) -> Result<(), LogError> {
        const BATCH: usize = 256;
        let q = &q.for_decrypting();
        let keys = self.keys()?;
        let backend = self.backend.as_ref();
        if q.limit.is_some_and(|l| l <= BATCH as u64) {
            return backend.scan(q, &mut |rec| f(decode(rec, &mut |t, v| keys.dek(backend, t, v))?));
        }
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<Vec<StoredRecord>>(4);
            // Unbounded, yet bounded in practice: the worker is at most the input queue ahead.
            let (otx, orx) = mpsc::channel::<Result<Vec<T>, LogError>>();
            scope.spawn(move || {
                let mut local = LocalDeks::default();
                let mut lookup = |t: &str, v: u32| -> Result<Option<Arc<Aead>>, LogError> {
                    if let Some(k) = local.get(t, v) {
                        return Ok(Some(k.clone()));
                    }
                    let k = keys.cached(t, v);
                    if let Some(k) = &k {
                        local.put(t, v, k.clone());
                    }
                    Ok(k)
                };
                for batch in rx {
                    let out: Result<Vec<T>, LogError> = batch.into_iter().map(|rec| decode(rec, &mut lookup)).collect();
                    let failed = out.is_err();
                    if otx.send(out).is_err() || failed {
                        break;
                    }
                }
            });
            let mut stopped = false;
            let mut deliver = |r: Result<Vec<T>, LogError>, stopped: &mut bool| -> Result<(), LogError> {
                for e in r? {
                    if !*stopped && !f(e)? {
                        *stopped = true;
                    }
                }
                Ok(())
            };
            let mut batch = Vec::with_capacity(BATCH);
            let mut loaded = LocalDeks::default();
            backend.scan(q, &mut |rec| {
                let (t, v) = (rec.header.tenant.as_str(), rec.dek_version);
                if rec.body.is_some() && loaded.get(t, v).is_none() {
                    // Load (and cache) a DEK the worker has not seen; a missing one is reported by the worker.
                    if let Some(k) = keys.dek(backend, t, v)? {
                        loaded.put(t, v, k);
                    }
                }
                batch.push(rec);
                if batch.len() == BATCH {
                    if tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
                        return Ok(false);
                    }
                    while let Ok(r) = orx.try_recv() {
                        deliver(r, &mut stopped)?;
                    }
                }
                Ok(!stopped)
            })?;
            if !batch.is_empty() && !stopped {
                let _ = tx.send(batch);
            }
            drop(tx);
            for r in orx {
                if stopped {
                    break;
                }
                deliver(r, &mut stopped)?;
            }
            Ok(())
        })
    }

    /// One event by global seq.
    pub fn event(&self, seq: u64) -> Result<Option<Event>, LogError> {
        self.backend.record(seq)?.map(|r| self.open_record(r)).transpose()
    }

    /// Signs and stores the current head.
    pub fn checkpoint(&mut self) -> Result<SignedCheckpoint, LogError> {
        let keys = self.keys.as_ref().ok_or(LogError::Locked2)?;
        let sk = keys.signing()?;
        let mut tx = self.backend.begin()?;
        let head = tx.head()?;
        let now = now_micros();
        let sig = sk.sign(&checkpoint_message(head.size, &head.chain, now, None));
        let row = CheckpointRow {
            size: head.size,
            head: head.chain,
            signed_at: now,
            public_key: sk.public_key().to_vec(),
            signature: sig.to_vec(),
        };
        tx.put_checkpoint(&row)?;
        tx.commit()?;
        Ok(SignedCheckpoint {
            size: row.size,
            global_head: hex::encode(row.head),
            signed_at: custos_domain::format_ts(now),
            public_key: hex::encode(&row.public_key),
            signature: hex::encode(&row.signature),
        })
    }

    /// Recomputes everything: seq continuity, entry hashes, both chains, tenant heads,
    /// purge coverage, checkpoint signatures, receipts and — with keys — every body's
    /// decryption and commitment. Stops at the first failure.
    pub fn verify(&self, opts: &VerifyOptions, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, LogError> {
        let mut rep = VerifyReport::default();
        match crate::verify::run(self, opts, &mut rep, progress) {
            Ok(()) => rep.ok = true,
            Err(LogError::Integrity { seq, detail }) => {
                rep.first_bad_seq = (seq > 0).then_some(seq);
                rep.error = Some(detail);
            }
            Err(e) => return Err(e),
        }
        Ok(rep)
    }

    /// Per-tenant record counts by category (header-only scan).
    pub fn counts(&self, tenant: Option<&str>) -> Result<BTreeMap<String, BTreeMap<String, u64>>, LogError> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let q = Query { tenant: tenant.map(str::to_string), ..Default::default() };
        self.backend.scan(&q, &mut |r| {
            *out.entry(r.header.tenant.to_string()).or_default().entry(r.header.category.to_string()).or_default() += 1;
            Ok(true)
        })?;
        Ok(out)
    }
}

/// Clearance check helper shared by read paths: may `clearance` see something labelled `label`?
pub fn cleared(clearance: Clearance, label: Option<Clearance>, default: Clearance) -> bool {
    clearance >= label.unwrap_or(default)
}
