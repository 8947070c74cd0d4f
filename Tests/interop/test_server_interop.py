"""The real `securechat serve` binary, driven by a client on the Python `noiseprotocol` package.

Run by scripts/interop-test.sh with SECURECHAT_BINARY set to the binary under test."""
import base64
import os
import random
import re
import shutil
import signal
import subprocess
import time
import unittest

import unprivileged
from noise_client import Client, Closed, passcode_digest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("SECURECHAT_BINARY", ".build/securechat-static")
START_LINE = re.compile(r"listening on ([0-9.]+):(\d+), key ([A-Za-z0-9+/=]{44})")


class Server:
    def __init__(self, data_dir, *extra):
        self.process = subprocess.Popen(unprivileged.command(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, *extra]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = START_LINE.search(line)
        if not match:
            self.process.kill()
            raise AssertionError(f"no start line: {line!r} {self.process.stderr.read()!r}")
        self.host, self.port, self.key = match.group(1), int(match.group(2)), match.group(3)

    def client(self, cipher="ChaChaPoly", identity=None):
        return Client(self.host, self.port, self.key, cipher, identity)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        log = self.process.stderr.read()
        self._close_pipes()
        return log

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self):
        self.process.stdout.close()
        self.process.stderr.close()


def signup(client, userid, passcode):
    return client.request({"msgtype": "SIGNUPREQ", "userid": userid, "passcode": passcode_digest(userid, passcode)})


def signin(client, userid, passcode, port=6000):
    return client.request({"msgtype": "AUTHREQ", "userid": userid,
                           "passcode": passcode_digest(userid, passcode), "port": port})


class ServerConfig(unittest.TestCase):
    def test_shipped_config_starts_the_server(self):
        data_dir = unprivileged.private_directory("securechat-interop-")
        self.addCleanup(shutil.rmtree, data_dir)
        server = Server(data_dir, "--config", os.path.join(ROOT, "Configs", "server.conf"))
        client = server.client("AESGCM")
        self.assertEqual(signup(client, "ali", "pw")["status"], "CREATED")
        client.close()
        self.assertIn("stopping", server.stop())

    def test_a_config_mistake_is_one_clear_line(self):
        folder = unprivileged.private_directory("securechat-interop-")
        self.addCleanup(shutil.rmtree, folder)
        config = unprivileged.write_file(os.path.join(folder, "bad.conf"), "listen = 127.0.0.1:0\nidle-timeout = 10 minutes\n")
        result = subprocess.run(unprivileged.command([BINARY, "serve", "--config", config]), capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(result.stderr.strip().count("\n"), 0, result.stderr)
        self.assertIn(":2: idle-timeout must be a duration", result.stderr)


class ServerInterop(unittest.TestCase):
    def setUp(self):
        self.data_dir = unprivileged.private_directory("securechat-interop-")
        self.server = Server(self.data_dir)

    def tearDown(self):
        if self.server.process.poll() is None:
            self.server.stop()
        shutil.rmtree(self.data_dir)

    def test_signup_signin_lookup_list_and_wrong_passcode(self):
        for cipher in ("ChaChaPoly", "AESGCM"):
            user = f"ali-{cipher.lower()}"
            client = self.server.client(cipher)
            self.addCleanup(client.close)
            self.assertEqual(signup(client, user, "sesame"), {"msgtype": "SIGNUPREPLY", "status": "CREATED", "reason": ""})
            self.assertEqual(signup(client, user, "again")["status"], "EXISTS")
            wrong = signin(client, user, "not-sesame")
            self.assertEqual((wrong["status"], wrong["userid"]), ("REFUSED", user))
            unknown = signin(client, "nobody", "sesame")
            self.assertEqual(unknown["status"], "REFUSED")
            self.assertEqual(unknown["reason"], wrong["reason"], "an unknown user and a wrong passcode look the same")
            self.assertEqual(signin(client, user, "sesame", port=6123),
                             {"msgtype": "AUTHREPLY", "userid": user, "status": "GRANTED", "extensions": ["calls", "listpages"]})
            # 25 lookups: past two rekeys in each direction.
            for _ in range(25):
                found = client.request({"msgtype": "LOOKUPREQ", "userid": user, "lookup": user})
                self.assertEqual(found["status"], "SUCCESS")
                self.assertEqual((found["answer"], found["address"], found["port"]), (user, "127.0.0.1", 6123))
                self.assertEqual(base64.b64decode(found["encryptionkey"]), client.public)
            missing = client.request({"msgtype": "LOOKUPREQ", "userid": user, "lookup": "bianca"})
            self.assertEqual(missing, {"msgtype": "LOOKUPREPLY", "status": "NOTFOUND", "answer": "",
                                       "address": "", "location": "", "encryptionkey": ""})
            listing = client.request({"msgtype": "LISTREQ", "userid": user})
            self.assertEqual(listing["msgtype"], "LISTREPLY")
            self.assertIn(user, listing["users"])
            client.send({"msgtype": "LOGOUTREQ", "userid": user})
            with self.assertRaises(Closed):
                client.receive()

    def test_missing_field_gets_error_and_close(self):
        client = self.server.client()
        self.addCleanup(client.close)
        client.send({"msgtype": "LOOKUPREQ", "userid": "ali"})
        reply = client.receive()
        self.assertEqual(reply["msgtype"], "ERROR")
        self.assertIn("lookup", reply["reason"])
        with self.assertRaises(Closed):
            client.receive()

    def test_killed_at_any_moment_loses_no_acknowledged_account(self):
        acknowledged = []
        for round_number in range(3):
            deadline = time.monotonic() + random.uniform(0.3, 1.5)
            try:
                client = self.server.client()
                self.addCleanup(client.close)
                while time.monotonic() < deadline:
                    user = f"u{round_number}-{len(acknowledged)}"
                    if signup(client, user, "pw")["status"] == "CREATED":
                        acknowledged.append(user)
            except (Closed, ConnectionError, OSError):
                pass
            self.server.kill()  # SIGKILL, possibly in the middle of a write
            self.server = Server(self.data_dir)
        self.assertGreater(len(acknowledged), 5)
        for user in acknowledged:
            client = self.server.client()
            self.addCleanup(client.close)
            self.assertEqual(signin(client, user, "pw")["status"], "GRANTED", user)


if __name__ == "__main__":
    unittest.main()
