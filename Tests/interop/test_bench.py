"""`securechat bench` as board users run it: the real binary, a short run, its JSON and its table.

Checks what the command promises (every backend × cipher × size, X25519, IK handshakes with their
floor ratio, the peer-to-peer connect latency, a recommendation), that progress goes to standard
error only, that the throwaway server and peers leave nothing behind, and that bad flags are
refused with a clear message. No timing goal is asserted: performance lives in scripts."""
import glob
import json
import subprocess
import unittest

import unprivileged
from peers import BINARY


def bench(*flags):
    return subprocess.run(unprivileged.command([BINARY, "bench", "--seconds", "0.03", *flags]), capture_output=True, text=True, timeout=120)


class Bench(unittest.TestCase):
    def test_json_has_every_figure_and_a_recommendation(self):
        before = set(glob.glob("/tmp/securechat-bench-*"))
        run = bench("--sizes", "16,1024", "--calls", "3", "--json")
        self.assertEqual(run.returncode, 0, run.stderr)
        report = json.loads(run.stdout)
        values = {r["key"]: r["value"] for r in report["results"]}
        for backend in ("openssl", "gcrypt"):
            for cipher in ("chachapoly", "aesgcm"):
                for op in ("seal", "open"):
                    # MB/s: a 1 KiB message moves many times the bytes per second of a 16-byte one.
                    self.assertGreater(values[f"{op} {backend} {cipher} 1024"], 3 * values[f"{op} {backend} {cipher} 16"])
                    self.assertGreater(values[f"{op} {backend} {cipher} 16"], 0)
                self.assertGreater(values[f"ik-handshake {backend} {cipher}"], 0)
                self.assertGreater(values[f"ik-vs-floor {backend} {cipher}"], 0.5)
                self.assertGreater(values[f"chat-record {backend} {cipher} 64"], 0)
            self.assertGreater(values[f"x25519-dh {backend}"], 0)
        self.assertEqual(values["connect trials"], 3)
        for path in ("direct", "relayed"):
            self.assertLessEqual(values[f"connect {path} p50"], values[f"connect {path} p99"])
        self.assertRegex(report["recommendation"], r"^fastest here: (openssl|gcrypt) with (chachapoly|aesgcm) for messages")
        self.assertIn("[1/", run.stderr, "progress goes to standard error")
        self.assertEqual(set(glob.glob("/tmp/securechat-bench-*")), before, "the throwaway server's files are removed")

    def test_table_for_one_backend_and_cipher(self):
        run = bench("--backend", "gcrypt", "--cipher", "aesgcm", "--sizes", "64", "--calls", "0")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout, r"gcrypt\s+aesgcm\s+seal\s+[\d,.]+")
        self.assertNotIn("openssl", run.stdout.split("fastest here")[0])
        self.assertNotIn("connect", run.stdout)
        self.assertIn("fastest here: gcrypt with aesgcm", run.stdout)

    def test_only_measures_one_figure(self):
        # What scripts/bench-crypto.sh pairs with the C baseline's run of the same figure.
        run = bench("--sizes", "64", "--only", "open gcrypt aesgcm 64", "--json")
        self.assertEqual(run.returncode, 0, run.stderr)
        results = json.loads(run.stdout)["results"]
        self.assertEqual([r["key"] for r in results], ["open gcrypt aesgcm 64"])
        self.assertGreater(results[0]["value"], 0)
        counted = bench("--only", "x25519-dh openssl", "--count", "3")
        self.assertEqual((counted.returncode, counted.stdout), (0, "x25519-dh openssl ran 3 times\n"), counted.stderr)

    def test_bad_flags_are_refused_clearly(self):
        for flags, message in ((["--sizes", "0,64"], "--sizes"), (["--sizes", "65520"], "--sizes"),
                               (["--seconds", "-1"], "--seconds"), (["--cipher", "rot13"], "cipher"),
                               (["--count", "5"], "--count needs --only"), (["--only", "rot13 64"], 'no figure "rot13 64"')):
            run = bench(*flags)
            self.assertNotEqual(run.returncode, 0, flags)
            self.assertIn(message, run.stderr, flags)
            self.assertEqual(run.stdout, "", flags)


if __name__ == "__main__":
    unittest.main()
