//! The record format: clear header, hashed fields, AAD and chain links (docs/FORMAT.md §2–§4).

use custos_crypto::{sha256, Sha256};
use custos_domain::{Category, Clearance, TenantId, Timestamp};

/// Domain-separation prefix of an entry hash (RFC 6962 leaf prefix).
pub const ENTRY_PREFIX: u8 = 0x00;
/// Domain-separation prefix of a tenant chain link.
pub const TENANT_CHAIN_PREFIX: u8 = 0x02;
/// Domain-separation prefix of a global chain link.
pub const GLOBAL_CHAIN_PREFIX: u8 = 0x03;
/// Format tag hashed into every entry; bumping it is a format change.
pub const RECORD_FORMAT: &[u8] = b"custos.record.v1";
/// Format tag of the AEAD additional data.
pub const AAD_FORMAT: &[u8] = b"custos.aad.v1";
/// The chain value before a stream's first record.
pub const GENESIS: [u8; 32] = [0u8; 32];
/// Salt length inside every body.
pub const SALT_LEN: usize = 16;

/// The clear, hashed part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Position in the whole log, from 1, without gaps.
    pub global_seq: u64,
    /// Stream.
    pub tenant: TenantId,
    /// Position in the tenant's stream, from 1, without gaps.
    pub tenant_seq: u64,
    /// Category.
    pub category: Category,
    /// Kind.
    pub kind: String,
    /// When it happened (µs since epoch, UTC).
    pub occurred_at: Timestamp,
    /// When the log recorded it (log clock).
    pub recorded_at: Timestamp,
    /// Optional classification label.
    pub label: Option<Clearance>,
    /// SHA-256(salt ‖ canonical {actor, data}).
    pub commitment: [u8; 32],
}

fn lp(put: &mut impl FnMut(&[u8]), b: &[u8]) {
    // Lengths are u32 big-endian; every field is far below 4 GiB (kinds ≤ 64 B, tenants ≤ 63 B).
    put(&(b.len() as u32).to_be_bytes());
    put(b);
}

/// Bytes gathered on the stack so a short input is hashed in one call: feeding SHA-256
/// twenty small pieces cost more than the compression itself on the verify path.
struct StackBuf<const N: usize> {
    b: [u8; N],
    n: usize,
    overflow: bool,
}

impl<const N: usize> StackBuf<N> {
    fn new() -> Self {
        Self { b: [0; N], n: 0, overflow: false }
    }

    fn put(&mut self, x: &[u8]) {
        match self.b.get_mut(self.n..self.n + x.len()) {
            Some(d) => {
                d.copy_from_slice(x);
                self.n += x.len();
            }
            None => self.overflow = true,
        }
    }

    /// The bytes, unless they did not fit.
    fn bytes(&self) -> Option<&[u8]> {
        (!self.overflow).then(|| self.b.get(..self.n)).flatten()
    }
}

fn lp_vec(v: &mut Vec<u8>, b: &[u8]) {
    v.extend_from_slice(&(b.len() as u32).to_be_bytes());
    v.extend_from_slice(b);
}

/// The label as hashed: its name, or the empty string.
pub fn label_str(l: Option<Clearance>) -> &'static str {
    l.map(Clearance::as_str).unwrap_or("")
}

impl Header {
    /// entry = SHA-256(0x00 ‖ lp(format) ‖ lp(global_seq) ‖ lp(tenant) ‖ lp(tenant_seq) ‖ lp(category)
    /// ‖ lp(kind) ‖ lp(occurred_at) ‖ lp(recorded_at) ‖ lp(label) ‖ commitment).
    /// Ciphertext, nonce and key reference are deliberately not hashed.
    pub fn entry_hash(&self) -> [u8; 32] {
        // Valid headers (tenant ≤ 63 B, kind ≤ 64 B) fit in 320 bytes; a longer one read
        // from a damaged store is hashed incrementally, to the same value.
        let mut s = StackBuf::<320>::new();
        self.entry_input(&mut |b| s.put(b));
        if let Some(bytes) = s.bytes() {
            return sha256(bytes);
        }
        let mut h = Sha256::new();
        self.entry_input(&mut |b| h.update(b));
        h.finish()
    }

    fn entry_input(&self, put: &mut impl FnMut(&[u8])) {
        put(&[ENTRY_PREFIX]);
        lp(put, RECORD_FORMAT);
        lp(put, &self.global_seq.to_be_bytes());
        lp(put, self.tenant.as_str().as_bytes());
        lp(put, &self.tenant_seq.to_be_bytes());
        lp(put, self.category.as_str().as_bytes());
        lp(put, self.kind.as_bytes());
        lp(put, &self.occurred_at.to_be_bytes());
        lp(put, &self.recorded_at.to_be_bytes());
        lp(put, label_str(self.label).as_bytes());
        put(&self.commitment);
    }

    /// AAD binding a ciphertext to its row: tenant, tenant_seq, global_seq, category,
    /// kind, occurred_at, commitment and the DEK version that sealed it.
    pub fn aad(&self, dek_version: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(160);
        self.aad_into(dek_version, &mut v);
        v
    }

    /// [`Header::aad`] into a reused buffer (hot read and verify paths).
    pub fn aad_into(&self, dek_version: u32, v: &mut Vec<u8>) {
        v.clear();
        lp_vec(v, AAD_FORMAT);
        lp_vec(v, self.tenant.as_str().as_bytes());
        lp_vec(v, &self.tenant_seq.to_be_bytes());
        lp_vec(v, &self.global_seq.to_be_bytes());
        lp_vec(v, self.category.as_str().as_bytes());
        lp_vec(v, self.kind.as_bytes());
        lp_vec(v, &self.occurred_at.to_be_bytes());
        lp_vec(v, &self.commitment);
        lp_vec(v, &dek_version.to_be_bytes());
    }
}

/// chain' = SHA-256(prefix ‖ chain ‖ entry).
pub fn link(prefix: u8, prev: &[u8; 32], entry: &[u8; 32]) -> [u8; 32] {
    let mut b = [0u8; 65];
    b[0] = prefix;
    b[1..33].copy_from_slice(prev);
    b[33..].copy_from_slice(entry);
    sha256(&b)
}

/// Folds entry hashes into a chain head, from `start`.
pub fn fold_chain(prefix: u8, start: [u8; 32], entries: impl IntoIterator<Item = [u8; 32]>) -> [u8; 32] {
    entries.into_iter().fold(start, |acc, e| link(prefix, &acc, &e))
}

/// Splits a decrypted body into salt and canonical `{actor, data}` bytes.
pub fn split_body(plain: &[u8]) -> Option<(&[u8; SALT_LEN], &[u8])> {
    if plain.len() < SALT_LEN {
        return None;
    }
    let (s, rest) = plain.split_at(SALT_LEN);
    s.try_into().ok().map(|s| (s, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn header(seq: u64) -> Header {
        Header {
            global_seq: seq,
            tenant: TenantId::parse("acme").unwrap_or_else(|_| TenantId::system()),
            tenant_seq: seq,
            category: Category::Runs,
            kind: "run_completed".into(),
            occurred_at: 1_759_492_800_000_000,
            recorded_at: 1_759_492_800_000_001,
            label: None,
            commitment: [9u8; 32],
        }
    }

    #[test]
    fn every_hashed_field_matters() {
        let base = header(1);
        let e = base.entry_hash();
        let mut variants = vec![];
        let mut h = base.clone();
        h.global_seq = 2;
        variants.push(h);
        let mut h = base.clone();
        h.tenant = TenantId::system();
        variants.push(h);
        let mut h = base.clone();
        h.tenant_seq = 2;
        variants.push(h);
        let mut h = base.clone();
        h.category = Category::Costs;
        variants.push(h);
        let mut h = base.clone();
        h.kind = "run_completeD".into();
        variants.push(h);
        let mut h = base.clone();
        h.occurred_at += 1;
        variants.push(h);
        let mut h = base.clone();
        h.recorded_at += 1;
        variants.push(h);
        let mut h = base.clone();
        h.label = Some(Clearance::Public);
        variants.push(h);
        let mut h = base.clone();
        h.commitment[31] ^= 1;
        variants.push(h);
        for v in variants {
            assert_ne!(v.entry_hash(), e, "{v:?}");
        }
        assert_ne!(base.aad(1), base.aad(2));
    }

    /// The vectors of docs/FORMAT.md §6, computed independently (Python hashlib); change both together.
    #[test]
    fn format_md_vectors() {
        let salt: [u8; 16] = core::array::from_fn(|i| i as u8);
        let body = serde_json::json!({"actor": "admin", "data": {"usd_micros": 2100, "model": "gpt-4o", "run_id": "r1"}});
        let canon = custos_crypto::canonical::to_vec(&body);
        assert_eq!(canon, br#"{"actor":"admin","data":{"model":"gpt-4o","run_id":"r1","usd_micros":2100}}"#);
        let commitment = custos_crypto::commitment(&salt, &canon);
        assert_eq!(hex::encode(commitment), "0909dec8f1638937fd85e48e2a67b0fb36e7ae5c49fd8a77835703e46f4c6f8e");
        let h = Header {
            global_seq: 1,
            tenant: TenantId::parse("acme").unwrap_or_else(|_| TenantId::system()),
            tenant_seq: 1,
            category: Category::Costs,
            kind: "cost_recorded".into(),
            occurred_at: 1_759_492_800_000_000,
            recorded_at: 1_759_492_800_000_001,
            label: None,
            commitment,
        };
        let e = h.entry_hash();
        assert_eq!(hex::encode(e), "adf899a7137b25c36a3370ed40f27bc06862c7ebf4cf68878a99e6b43ec8fec0");
        assert_eq!(
            hex::encode(link(TENANT_CHAIN_PREFIX, &GENESIS, &e)),
            "e82533cfc01a8798f0af32b6da8bed56390225d15bf0f07b5f96638a615a71f9"
        );
        assert_eq!(
            hex::encode(link(GLOBAL_CHAIN_PREFIX, &GENESIS, &e)),
            "10884c2d0284e1c4ea8c44dfc671b9da9bf29f79484e20b694e3a8ec3ce709f5"
        );
    }

    proptest! {
        #[test]
        fn chain_fold_is_incremental(n in 0usize..40, split in 0usize..40) {
            let entries: Vec<[u8; 32]> = (0..n as u64).map(|i| header(i + 1).entry_hash()).collect();
            let all = fold_chain(GLOBAL_CHAIN_PREFIX, GENESIS, entries.clone());
            let k = split.min(n);
            let mid = fold_chain(GLOBAL_CHAIN_PREFIX, GENESIS, entries[..k].to_vec());
            prop_assert_eq!(fold_chain(GLOBAL_CHAIN_PREFIX, mid, entries[k..].to_vec()), all);
            if n > 0 {
                prop_assert_ne!(fold_chain(TENANT_CHAIN_PREFIX, GENESIS, entries.clone()), all);
            }
        }
    }
}
