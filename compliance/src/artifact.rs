//! Artifact content sealing: a stream of fixed-size chunks, each sealed separately with
//! the tenant's DEK, so storing or reading an artifact of any size needs memory for
//! about two chunks only.
//!
//! Each chunk's AAD binds the artifact id, the chunk index, a final-chunk flag and the
//! DEK version: a chunk cannot be moved to another artifact or position, chunks cannot be
//! reordered, and dropping trailing chunks (truncation) fails because the new last chunk
//! was not sealed as final. The plaintext SHA-256 and size are checked again on read.

use std::io::{Read, Write};

use custos_crypto::{open_in_place, random_bytes, seal_in_place, Aead, Sha256};
use custos_eventlog::{ArtifactChunk, ArtifactRow, Backend, LogError, Tx};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Format tag of a chunk's AAD.
pub const CHUNK_AAD_FORMAT: &[u8] = b"custos.artifact.chunk.v1";

/// Errors of storing or reading artifact content.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Reading the source or writing the destination failed.
    #[error("{0}")]
    Io(String),
    /// Storage or keys.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The stored content does not match its metadata (tampering or corruption).
    #[error("artifact {id}: {detail}")]
    Integrity {
        /// Artifact id.
        id: String,
        /// What failed.
        detail: String,
    },
}

fn lp(v: &mut Vec<u8>, b: &[u8]) {
    v.extend_from_slice(&(b.len() as u32).to_be_bytes());
    v.extend_from_slice(b);
}

/// AAD of one chunk: lp(format) ‖ lp(tenant) ‖ lp(artifact id) ‖ lp(u64be index) ‖ lp(final 0/1) ‖ lp(u32be dek version).
pub fn chunk_aad(tenant: &str, id: &str, index: u64, last: bool, dek_version: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(96);
    lp(&mut v, CHUNK_AAD_FORMAT);
    lp(&mut v, tenant.as_bytes());
    lp(&mut v, id.as_bytes());
    lp(&mut v, &index.to_be_bytes());
    lp(&mut v, &[u8::from(last)]);
    lp(&mut v, &dek_version.to_be_bytes());
    v
}

/// What [`seal_stream`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Plaintext bytes.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    /// Chunks written.
    pub chunks: u64,
}

fn read_full(r: &mut dyn Read, buf: &mut Vec<u8>, cap: usize) -> Result<(), ArtifactError> {
    buf.clear();
    buf.resize(cap, 0);
    let mut n = 0;
    while n < cap {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ArtifactError::Io(format!("reading artifact content: {e}"))),
        }
    }
    buf.truncate(n);
    Ok(())
}

/// Reads `src` to its end, sealing chunk by chunk into `tx`. One chunk is read ahead
/// so that the last one can be sealed with the final flag.
pub fn seal_stream(
    tx: &mut dyn Tx,
    dek: &Aead,
    dek_version: u32,
    tenant: &str,
    id: &str,
    src: &mut dyn Read,
    progress: &mut dyn FnMut(u64),
) -> Result<Sealed, ArtifactError> {
    let mut hash = Sha256::new();
    let mut cur = Vec::with_capacity(CHUNK_SIZE + 16);
    let mut next = Vec::with_capacity(CHUNK_SIZE + 16);
    read_full(src, &mut cur, CHUNK_SIZE)?;
    let mut index = 0u64;
    let mut size = 0u64;
    loop {
        let last = if cur.len() < CHUNK_SIZE {
            true
        } else {
            read_full(src, &mut next, CHUNK_SIZE)?;
            next.is_empty()
        };
        hash.update(&cur);
        size += cur.len() as u64;
        let mut nonce = [0u8; 12];
        random_bytes(&mut nonce).map_err(LogError::from)?;
        seal_in_place(dek, &nonce, &chunk_aad(tenant, id, index, last, dek_version), &mut cur).map_err(LogError::from)?;
        tx.put_artifact_chunk(&ArtifactChunk { artifact_id: id.to_string(), index, nonce, body: std::mem::take(&mut cur) })?;
        index += 1;
        progress(size);
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        if cur.capacity() < CHUNK_SIZE {
            cur.reserve(CHUNK_SIZE + 16);
        }
    }
    Ok(Sealed { size, sha256: hash.finish(), chunks: index })
}

/// Where [`open_chunks`] reads chunks from: the store, or a write transaction.
trait ChunkSource {
    fn chunk(&mut self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError>;
}

struct StoreChunks<'a>(&'a dyn Backend);

impl ChunkSource for StoreChunks<'_> {
    fn chunk(&mut self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
        self.0.artifact_chunk(id, index)
    }
}

struct TxChunks<'a>(&'a mut dyn Tx);

impl ChunkSource for TxChunks<'_> {
    fn chunk(&mut self, id: &str, index: u64) -> Result<Option<ArtifactChunk>, LogError> {
        self.0.artifact_chunk(id, index)
    }
}

/// What [`open_chunks`] does with each plaintext chunk: (source, index, final?, bytes).
type OnChunk<'a, S> = dyn FnMut(&mut S, u64, bool, Vec<u8>) -> Result<(), ArtifactError> + 'a;

/// Opens `a`'s chunks in order with `dek` and hands each plaintext to `each` (with the
/// source, its index and the final flag), then checks that no chunk is stored beyond
/// the recorded count and that size and SHA-256 match. Returns the plaintext bytes.
fn open_chunks<S: ChunkSource>(src: &mut S, a: &ArtifactRow, dek: &Aead, each: &mut OnChunk<'_, S>) -> Result<u64, ArtifactError> {
    let bad = |detail: String| ArtifactError::Integrity { id: a.id.clone(), detail };
    if a.chunks == 0 {
        return Err(bad("no chunks recorded".into()));
    }
    let mut hash = Sha256::new();
    let mut size = 0u64;
    for index in 0..a.chunks {
        let c = src.chunk(&a.id, index)?.ok_or_else(|| bad(format!("chunk {index} is missing")))?;
        let mut body = c.body;
        let last = index + 1 == a.chunks;
        open_in_place(dek, &c.nonce, &chunk_aad(&a.tenant, &a.id, index, last, a.dek_version), &mut body)
            .map_err(|_| bad(format!("chunk {index} does not decrypt in this position (moved, reordered or truncated)")))?;
        hash.update(&body);
        size += body.len() as u64;
        each(src, index, last, body)?;
    }
    if src.chunk(&a.id, a.chunks)?.is_some() {
        return Err(bad("more chunks stored than recorded".into()));
    }
    if size != a.size {
        return Err(bad(format!("content is {size} bytes, recorded size is {}", a.size)));
    }
    if hash.finish() != a.sha256 {
        return Err(bad("content SHA-256 does not match the recorded one".into()));
    }
    Ok(size)
}

/// Decrypts an artifact chunk by chunk into `out`, checking order, the final flag,
/// size and SHA-256. Returns the bytes written. On error, what was written is partial:
/// callers write to a temporary file and rename only on success.
pub fn open_stream(
    backend: &dyn Backend,
    dek: &Aead,
    a: &ArtifactRow,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ArtifactError> {
    let mut written = 0u64;
    open_chunks(&mut StoreChunks(backend), a, dek, &mut |_, _, _, body| {
        out.write_all(&body).map_err(|e| ArtifactError::Io(format!("writing artifact content: {e}")))?;
        written += body.len() as u64;
        progress(written);
        Ok(())
    })
}

/// Re-seals every chunk of `a` (sealed with `old`, version `a.dek_version`) under `new`
/// (version `new_version`) inside `tx`, with fresh nonces, checking order, the final
/// flag, size and SHA-256 exactly as [`open_stream`] does — a damaged artifact fails
/// here, and the caller's transaction (dropped, not committed) leaves it untouched. The
/// caller records the new version with [`Tx::set_artifact_dek`] in the same
/// transaction. Returns the chunks re-sealed.
pub fn reseal(tx: &mut dyn Tx, a: &ArtifactRow, old: &Aead, new: &Aead, new_version: u32) -> Result<u64, ArtifactError> {
    open_chunks(&mut TxChunks(tx), a, old, &mut |src, index, last, mut body| {
        let mut nonce = [0u8; 12];
        random_bytes(&mut nonce).map_err(LogError::from)?;
        seal_in_place(new, &nonce, &chunk_aad(&a.tenant, &a.id, index, last, new_version), &mut body).map_err(LogError::from)?;
        src.0.replace_artifact_chunk(&ArtifactChunk { artifact_id: a.id.clone(), index, nonce, body })?;
        Ok(())
    })?;
    Ok(a.chunks)
}

/// A new artifact id: `art_` + 24 random hex digits.
pub fn new_id() -> Result<String, LogError> {
    let mut b = [0u8; 12];
    random_bytes(&mut b)?;
    Ok(format!("art_{}", hex::encode(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_binds_every_field() {
        let base = chunk_aad("acme", "art_1", 0, false, 1);
        assert_ne!(base, chunk_aad("acmf", "art_1", 0, false, 1));
        assert_ne!(base, chunk_aad("acme", "art_2", 0, false, 1));
        assert_ne!(base, chunk_aad("acme", "art_1", 1, false, 1));
        assert_ne!(base, chunk_aad("acme", "art_1", 0, true, 1));
        assert_ne!(base, chunk_aad("acme", "art_1", 0, false, 2));
    }
}
