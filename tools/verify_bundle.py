#!/usr/bin/env python3
"""Independent verifier of custos export bundles (docs/FORMAT.md, "Export bundles").

Python 3 standard library only. The Ed25519 signatures are checked when the optional
`cryptography` package is installed; everything else (file digests, the tenant chain
from genesis to the signed head, every commitment, completeness, counts, --previous)
works without it.

    python3 tools/verify_bundle.py BUNDLE [--public-key HEX|FILE] [--previous BUNDLE|MANIFEST]
                                          [--require-signature] [--json]

Exit 0 when every check passes, 5 when one fails (naming it), 1 on usage/IO errors.
"""

import argparse
import hashlib
import io
import json
import os
import struct
import sys
import tarfile
import zlib
import tempfile

FORMAT = "custos.bundle.v1"
RECORD_FORMAT = b"custos.record.v1"
GENESIS = bytes(32)
CATEGORIES = ["runs", "costs", "approvals", "artifacts", "queue", "dlq", "governance", "custom"]
LABELS = ["Public", "Internal", "Confidential", "Restricted"]


class Invalid(Exception):
    def __init__(self, check, detail):
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


class Num:
    """A JSON number kept as its exact text, so canonical JSON reproduces serde_json's output."""

    def __init__(self, text):
        self.text = text


def load_json(text):
    return json.loads(text, parse_float=Num, parse_int=Num)


def canon_str(s, out):
    out.append('"')
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')


def canon(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, Num):
        out.append(v.text)
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, str):
        canon_str(v, out)
    elif isinstance(v, list):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            canon(x, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, k in enumerate(sorted(v.keys(), key=lambda k: k.encode("utf-8"))):
            if i:
                out.append(",")
            canon_str(k, out)
            out.append(":")
            canon(v[k], out)
        out.append("}")
    else:
        raise TypeError(type(v))


def canonical(v):
    out = []
    canon(v, out)
    return "".join(out).encode("utf-8")


def num(v, what):
    if isinstance(v, Num):
        if not v.text.lstrip("-").isdigit():
            raise Invalid("lines", f"{what} is not an integer")
        return int(v.text)
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise Invalid("lines", f"{what} is not an integer")


def lp(b):
    return struct.pack(">I", len(b)) + b


def entry_hash(h):
    """entry = SHA-256(0x00 ‖ lp(format) ‖ lp(u64be global_seq) ‖ lp(tenant) ‖ lp(u64be tenant_seq) ‖ lp(category)
    ‖ lp(kind) ‖ lp(i64be occurred_at) ‖ lp(i64be recorded_at) ‖ lp(label or "") ‖ commitment)"""
    if h["category"] not in CATEGORIES:
        raise Invalid("lines", f"unknown category {h['category']!r}")
    label = h.get("label")
    if label is not None and label not in LABELS:
        raise Invalid("lines", f"unknown label {label!r}")
    commitment = bytes.fromhex(h["commitment"])
    if len(commitment) != 32:
        raise Invalid("lines", "commitment is not 32 bytes")
    m = hashlib.sha256()
    m.update(b"\x00")
    m.update(lp(RECORD_FORMAT))
    m.update(lp(struct.pack(">Q", num(h["global_seq"], "global_seq"))))
    m.update(lp(h["tenant"].encode("utf-8")))
    m.update(lp(struct.pack(">Q", num(h["tenant_seq"], "tenant_seq"))))
    m.update(lp(h["category"].encode("utf-8")))
    m.update(lp(h["kind"].encode("utf-8")))
    m.update(lp(struct.pack(">q", num(h["occurred_at"], "occurred_at"))))
    m.update(lp(struct.pack(">q", num(h["recorded_at"], "recorded_at"))))
    m.update(lp((label or "").encode("utf-8")))
    m.update(commitment)
    return m.digest()


def link(prev, entry):
    return hashlib.sha256(b"\x02" + prev + entry).digest()


def checkpoint_message(cp):
    v = {
        "format": "custos.checkpoint.v1",
        "size": num(cp["size"], "checkpoint.size"),
        "global_head": cp["global_head"],
        "signed_at": num(cp["signed_at"], "checkpoint.signed_at"),
        "tenant": cp["tenant"],
        "tenant_size": num(cp["tenant_size"], "checkpoint.tenant_size"),
        "tenant_head": cp["tenant_head"],
    }
    return canonical(v)


def ed25519_verify(key, msg, sig):
    """True/False when `cryptography` is available, None when it is not."""
    if os.environ.get("CUSTOS_PYVERIFY_NO_CRYPTO"):
        return None  # lets tests exercise the standard-library-only path
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def open_bundle(path, tmp):
    if os.path.isdir(path):
        return path
    if not os.path.isfile(path):
        raise OSError(f"no bundle at {path}")
    try:
        with tarfile.open(path, "r:gz") as t:
            seen = set()
            for m in t.getmembers():
                parts = m.name.split("/")
                if m.name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                    raise Invalid("archive", f"entry {m.name} is not a plain relative path")
                if m.isdir():
                    os.makedirs(os.path.join(tmp, m.name), exist_ok=True)
                    continue
                if not m.isfile():
                    raise Invalid("archive", f"entry {m.name} is not a regular file")
                if m.name in seen:
                    raise Invalid("archive", f"entry {m.name} appears twice")
                seen.add(m.name)
                dest = os.path.join(tmp, *parts)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                src = t.extractfile(m)
                with open(dest, "wb") as o:
                    while True:
                        b = src.read(1 << 20)
                        if not b:
                            break
                        o.write(b)
            # tarfile stops at the end-of-archive marker; reading the gzip stream to its
            # end makes it check the CRC, so damage in padding is reported too.
            while t.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise Invalid("archive", str(e))
    return tmp


def read_manifest(d):
    try:
        raw = open(os.path.join(d, "manifest.json"), "rb").read()
        m = load_json(raw.decode("utf-8"))
    except (OSError, ValueError) as e:
        raise Invalid("manifest", f"cannot read manifest.json: {e}")
    if m.get("format") != FORMAT:
        raise Invalid("manifest", f"format {m.get('format')!r} is not {FORMAT}")
    try:
        sig = bytes.fromhex(open(os.path.join(d, "manifest.sig")).read().strip())
    except (OSError, ValueError):
        sig = None
    return raw, m, sig


def check_signatures(raw, m, sig, key, report):
    if sig is None:
        raise Invalid("signature", "manifest.sig is missing or not hex")
    ok = ed25519_verify(key, raw, sig)
    if ok is None:
        report["signature_checked"] = False
    elif not ok:
        raise Invalid("signature", "manifest.sig is not a valid Ed25519 signature of manifest.json under the public key")
    cp = m["checkpoint"]
    ok2 = ed25519_verify(key, checkpoint_message(cp), bytes.fromhex(cp["signature"]))
    if ok2 is False:
        raise Invalid("checkpoint", "checkpoint signature does not verify under the public key")
    tc = m["tenant_chain"]
    if cp["tenant"] != m["tenant"] or num(cp["tenant_size"], "") != num(tc["size"], "") or cp["tenant_head"] != tc["head"]:
        raise Invalid("checkpoint", "the signed checkpoint's tenant head differs from the manifest's tenant_chain")


def list_files(d):
    out = []
    for root, dirs, files in os.walk(d):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), d).replace(os.sep, "/")
            out.append(rel)
    return out


def sha256_file(p):
    h = hashlib.sha256()
    n = 0
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    return h.hexdigest(), n


def lines(d, rel):
    with open(os.path.join(d, rel), "r", encoding="utf-8", newline="\n") as f:
        for n, line in enumerate(f, 1):
            t = line[:-1] if line.endswith("\n") else line
            if not t:
                raise Invalid("lines", f"{rel} line {n} is empty")
            try:
                yield n, load_json(t)
            except ValueError as e:
                raise Invalid("lines", f"{rel} line {n}: {e}")


def count_key(cat):
    return "artifact_events" if cat == "artifacts" else cat


def load_previous(p, key, tmp):
    if os.path.isdir(p) or p.endswith(".gz"):
        d = open_bundle(p, tmp)
        raw, m, sig = read_manifest(d)
    else:
        raw = open(p, "rb").read()
        m = load_json(raw.decode("utf-8"))
        try:
            sig = bytes.fromhex(open(os.path.join(os.path.dirname(p) or ".", "manifest.sig")).read().strip())
        except (OSError, ValueError):
            sig = None
    if sig is not None:
        try:
            check_signatures(raw, m, sig, key, {})
        except Invalid as e:
            raise Invalid("previous", f"the earlier manifest: {e}")
    return m


def verify(path, public_key=None, previous=None):
    report = {"ok": False, "bundle": path, "signature_checked": True}
    with tempfile.TemporaryDirectory(prefix="custos-pyverify-") as tmp, tempfile.TemporaryDirectory(prefix="custos-pyprev-") as ptmp:
        d = open_bundle(path, tmp)
        raw, m, sig = read_manifest(d)
        tenant = m["tenant"]
        report["tenant"] = tenant
        if public_key is not None:
            key, report["key_source"] = public_key, "argument"
        else:
            key, report["key_source"] = bytes.fromhex(m["public_key"]), "manifest"
        check_signatures(raw, m, sig, key, report)

        files = m["files"]
        present = set(list_files(d)) - {"manifest.json", "manifest.sig"}
        for f in sorted(present - set(files)):
            raise Invalid("files", f"{f} is in the bundle but not listed in the manifest")
        for f in sorted(set(files) - present):
            raise Invalid("files", f"{f} is listed in the manifest but missing")
        for rel, want in sorted(files.items()):
            digest, size = sha256_file(os.path.join(d, rel))
            if digest != want["sha256"] or size != num(want["size"], "size"):
                raise Invalid("files", f"{rel} does not match its SHA-256/size in the manifest")

        prev = None
        if previous is not None:
            prev = load_previous(previous, key, ptmp)
            if prev["tenant"] != tenant:
                raise Invalid("previous", f"earlier bundle is of tenant {prev['tenant']}, this one of {tenant}")
            if num(prev["tenant_chain"]["size"], "") > num(m["tenant_chain"]["size"], "") or num(prev["checkpoint"]["size"], "") > num(
                m["checkpoint"]["size"], ""
            ):
                raise Invalid("previous", "rollback: the earlier bundle covers more than this one")

        recs = []
        chain = GENESIS
        last_global = 0
        for n, cl in lines(d, "chain.jsonl"):
            if cl["tenant"] != tenant:
                raise Invalid("chain", f"line {n} belongs to tenant {cl['tenant']}, not {tenant}")
            if num(cl["tenant_seq"], "tenant_seq") != n:
                raise Invalid("chain", f"line {n} has tenant_seq {cl['tenant_seq'].text} (records missing, duplicated or reordered)")
            g = num(cl["global_seq"], "global_seq")
            if g <= last_global:
                raise Invalid("chain", f"line {n}: global_seq does not increase")
            last_global = g
            e = entry_hash(cl)
            if e.hex() != cl["entry_hash"]:
                raise Invalid("chain", f"line {n}: entry_hash does not match the header")
            chain = link(chain, e)
            if chain.hex() != cl["tenant_chain"]:
                raise Invalid("chain", f"line {n}: tenant_chain does not follow from the previous link")
            st = cl["status"]
            if st not in ("exported", "redacted", "denied", "purged", "out_of_range"):
                raise Invalid("chain", f"line {n}: unknown status {st!r}")
            if cl["redacted"] != (st == "redacted") or (st == "redacted") != (cl.get("redaction") is not None):
                raise Invalid("chain", f"line {n}: status, redacted and redaction disagree")
            if prev is not None and num(prev["tenant_chain"]["size"], "") == n and prev["tenant_chain"]["head"] != cl["tenant_chain"]:
                raise Invalid("previous", f"fork: at tenant_seq {n} the earlier bundle's head differs")
            recs.append({"entry": e, "status": st, "redaction": cl.get("redaction"), "seen": False})
        if len(recs) != num(m["tenant_chain"]["size"], "") or chain.hex() != m["tenant_chain"]["head"]:
            raise Invalid("chain", "chain.jsonl does not end at the signed tenant head")

        counts = {}
        commitments = 0
        redacted = 0
        for rel in sorted(f for f in files if f.startswith("events/")):
            cat = rel[len("events/") : -len(".jsonl")] if rel.endswith(".jsonl") else None
            if cat not in CATEGORIES:
                raise Invalid("files", f"{rel} is not a category file")
            last = 0
            for n, el in lines(d, rel):
                at = f"{rel} line {n}"
                if el["category"] != cat:
                    raise Invalid("lines", f"{at}: category {el['category']} in the {cat} file")
                ts = num(el["tenant_seq"], "tenant_seq")
                if ts <= last:
                    raise Invalid("lines", f"{at}: tenant_seq {ts} is out of order")
                last = ts
                if not 1 <= ts <= len(recs):
                    raise Invalid("completeness", f"{at}: tenant_seq {ts} is not in chain.jsonl")
                rec = recs[ts - 1]
                if entry_hash(el) != rec["entry"]:
                    raise Invalid("lines", f"{at}: header differs from chain.jsonl at tenant_seq {ts}")
                if rec["seen"]:
                    raise Invalid("completeness", f"{at}: tenant_seq {ts} appears twice")
                rec["seen"] = True
                if rec["status"] == "exported" and el["redacted"] is False:
                    if el.get("salt") is None or el.get("actor") is None:
                        raise Invalid("commitment", f"{at}: salt or actor missing")
                    salt = bytes.fromhex(el["salt"])
                    if len(salt) != 16:
                        raise Invalid("commitment", f"{at}: salt is not 16 bytes")
                    body = canonical({"actor": el["actor"], "data": el.get("data")})
                    if hashlib.sha256(salt + body).hexdigest() != el["commitment"]:
                        raise Invalid("commitment", f"{at}: SHA-256(salt || canonical {{actor, data}}) differs from the commitment")
                    commitments += 1
                elif rec["status"] == "redacted" and el["redacted"] is True and el.get("redaction") == rec["redaction"]:
                    if el.get("salt") is not None:
                        raise Invalid("lines", f"{at}: a redacted line must not carry its salt")
                    redacted += 1
                else:
                    raise Invalid("completeness", f"{at}: line contradicts chain.jsonl status {rec['status']} at tenant_seq {ts}")
                counts[count_key(cat)] = counts.get(count_key(cat), 0) + 1
        for i, r in enumerate(recs):
            if r["status"] in ("exported", "redacted") and not r["seen"]:
                raise Invalid("completeness", f"tenant_seq {i + 1} is marked {r['status']} in chain.jsonl but its line is missing")

        art_exported = art_redacted = art_purged = 0
        referenced = set()
        if "artifacts/index.jsonl" in files:
            for n, a in lines(d, "artifacts/index.jsonl"):
                if a["status"] == "exported" and a.get("path"):
                    fe = files.get(a["path"])
                    if fe is None or fe["sha256"] != a["sha256"] or num(fe["size"], "") != num(a["size"], ""):
                        raise Invalid("artifacts", f"{a['path']} does not match the SHA-256/size of artifact {a['artifact_id']}")
                    referenced.add(a["path"])
                    art_exported += 1
                elif a["status"] == "redacted" and a.get("path") is None:
                    art_redacted += 1
                elif a["status"] == "purged" and a.get("path") is None:
                    art_purged += 1
                else:
                    raise Invalid("artifacts", f"index line {n}: bad status/path")
        for f in files:
            if f.startswith("artifacts/") and f != "artifacts/index.jsonl" and f not in referenced:
                raise Invalid("artifacts", f"{f} is not referenced by the artifact index")

        st = [r["status"] for r in recs]
        want = dict(counts)
        want["chain"] = len(recs)
        want["events_denied"] = st.count("denied") + sum(1 for r in recs if r["redaction"] == "policy")
        want["events_redacted"] = redacted
        want["events_purged"] = st.count("purged")
        want["events_out_of_range"] = st.count("out_of_range")
        want["artifacts"] = art_exported
        want["artifacts_redacted"] = art_redacted
        want["artifacts_purged"] = art_purged
        mc = {k: num(v, k) for k, v in m["counts"].items()}
        for k, v in mc.items():
            if k == "artifacts_denied":
                if v < art_redacted:
                    raise Invalid("counts", "artifacts_denied is below the withheld artifacts in the index")
                continue
            if v != want.get(k, 0):
                raise Invalid("counts", f"manifest counts.{k} is {v}, the bundle holds {want.get(k, 0)}")
        for k, v in want.items():
            if v > 0 and k not in mc:
                raise Invalid("counts", f"manifest lacks counts.{k} ({v})")
        total = sum(v for k, v in want.items() if k in [count_key(c) for c in CATEGORIES]) + art_exported
        if num(m["total_items"], "total_items") != total:
            raise Invalid("counts", f"total_items is {m['total_items'].text}, the bundle holds {total}")

        report.update(
            ok=True,
            chain_size=len(recs),
            tenant_head=m["tenant_chain"]["head"],
            commitments_checked=commitments,
            redacted=redacted,
            artifacts_checked=art_exported,
        )
        return report


def parse_key(s):
    try:
        k = bytes.fromhex(s.strip())
        if len(k) == 32:
            return k
    except ValueError:
        pass
    t = open(s, "rb").read()
    try:
        txt = t.decode().strip()
        try:
            return bytes.fromhex(json.loads(txt)["public_key"])
        except (ValueError, KeyError, TypeError):
            return bytes.fromhex(txt)
    except ValueError:
        if len(t) == 32:
            return t
        raise


def main():
    ap = argparse.ArgumentParser(description="Verify a custos export bundle offline.")
    ap.add_argument("bundle")
    ap.add_argument("--public-key")
    ap.add_argument("--previous")
    ap.add_argument("--require-signature", action="store_true", help="fail (exit 5) when `cryptography` is missing")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    try:
        key = parse_key(a.public_key) if a.public_key else None
        rep = verify(a.bundle, key, a.previous)
        if not rep["signature_checked"]:
            print("WARNING: `cryptography` is not installed; Ed25519 signatures were NOT checked", file=sys.stderr)
            if a.require_signature:
                raise Invalid("signature", "not checked (install cryptography)")
        print(json.dumps(rep) if a.json else f"OK: bundle of tenant {rep['tenant']}: {rep['chain_size']} chain records, "
              f"{rep['commitments_checked']} commitments, key from {rep['key_source']}")
        return 0
    except Invalid as e:
        if a.json:
            print(json.dumps({"ok": False, "failed_check": e.check, "error": e.detail}))
        print(f"FAILED ({e.check}): {e.detail}", file=sys.stderr)
        return 5
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 5 if isinstance(e, (KeyError, TypeError)) else 1


if __name__ == "__main__":
    sys.exit(main())
