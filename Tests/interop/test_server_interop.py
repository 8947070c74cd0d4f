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
        if self.process.poll() is not None:
            return ""
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


def run(*args, input=None):
    """The binary as the unprivileged user: (status, stdout, stderr)."""
    done = subprocess.run(unprivileged.command([BINARY, *args]), input=input, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


class Administration(unittest.TestCase):
    """Running a server for friends: keys shown again, accounts listed while it runs, passcodes reset."""

    def setUp(self):
        self.root = unprivileged.private_directory("securechat-admin-")
        self.addCleanup(shutil.rmtree, self.root)
        self.data = os.path.join(self.root, "data")

    def test_show_key_key_show_and_user_list_while_running(self):
        status, _, error = run("user", "list", "--data-dir", self.data)
        self.assertNotEqual(status, 0)
        self.assertIn("does not exist: no server has used it", error)
        self.assertFalse(os.path.exists(self.data), "user list creates nothing")
        server = Server(self.data)
        self.addCleanup(server.stop)
        status, shown, _ = run("serve", "--show-key", "--data-dir", self.data)
        self.assertEqual(status, 0)
        self.assertIn(f"key {server.key}", shown)
        self.assertRegex(shown, r"--server-key " + re.escape(server.key) + r"\nfingerprint: ([0-9a-f]{4} ){4}[0-9a-f]{4}\n$")
        status, shown, _ = run("key", "show", os.path.join(self.data, "server.key"))
        self.assertEqual(status, 0)
        self.assertIn(f"public key: {server.key}", shown)
        client = server.client()
        self.addCleanup(client.close)
        self.assertEqual(signup(client, "ali", "sesame")["status"], "CREATED")
        self.assertEqual(signin(client, "ali", "sesame")["status"], "GRANTED")
        status, listing, error = run("user", "list", "--data-dir", self.data)
        self.assertEqual(status, 0, error)
        self.assertRegex(listing, r"^ali\t([0-9a-f]{4} ){4}[0-9a-f]{4}\n$", "while the server runs, with the key's fingerprint")
        status, _, error = run("user", "passwd", "ali", "--data-dir", self.data, input="new-passcode\n")
        self.assertNotEqual(status, 0)
        self.assertIn("while the server runs; stop it first", error)
        server.stop()
        status, out, error = run("user", "passwd", "ali", "--data-dir", self.data, input="new-passcode\n")
        self.assertEqual((status, out.strip()), (0, "the passcode of ali is set"), error)
        server = Server(self.data)
        self.addCleanup(server.stop)
        client = server.client()
        self.addCleanup(client.close)
        self.assertEqual(signin(client, "ali", "new-passcode")["status"], "GRANTED")

    def test_a_relative_data_dir_in_a_config_is_relative_to_it_and_nothing_is_made_before_the_bind(self):
        folder = os.path.join(self.root, "etc")
        os.makedirs(folder)
        unprivileged.hand_over(folder)
        config = unprivileged.write_file(os.path.join(folder, "server.conf"), "listen = 127.0.0.1:0\ndata-dir = state\n")
        server = Server(os.path.join(folder, "state"), "--config", config)
        server.stop()
        self.assertTrue(os.path.exists(os.path.join(folder, "state", "server.key")))
        # A port in use: the start fails in words, and the new data directory is not created.
        blocker = Server(self.data)
        self.addCleanup(blocker.stop)
        status, _, error = run("serve", "--listen", f"127.0.0.1:{blocker.port}", "--data-dir", os.path.join(self.root, "fresh"))
        self.assertNotEqual(status, 0)
        self.assertIn(f"cannot listen for peers on 127.0.0.1:{blocker.port}: the port is already in use", error)
        self.assertFalse(os.path.exists(os.path.join(self.root, "fresh")))


class Hostile(unittest.TestCase):
    """What a stranger can send the server, tried against the real binary."""

    def setUp(self):
        self.data_dir = unprivileged.private_directory("securechat-hostile-")
        self.addCleanup(shutil.rmtree, self.data_dir)
        self.server = Server(self.data_dir)
        self.addCleanup(lambda: self.server.process.poll() is None and self.server.stop())

    def test_strings_from_clients_cannot_forge_log_lines(self):
        import socket
        import struct
        hello = b'{"msgtype":"HELLO","version":1,"noise":"x\\n2026-12-01T00:00:00Z info signed in user=admin\\u001b[2J"}'
        sock = socket.create_connection((self.server.host, self.server.port))
        sock.sendall(struct.pack(">H", len(hello)) + hello)
        sock.recv(100)
        sock.close()
        time.sleep(0.3)
        log = self.server.stop()
        forged = [line for line in log.splitlines() if "user=admin" in line]
        self.assertEqual(len(forged), 1, log)
        self.assertIn("connection closed", forged[0])
        self.assertIn(r"\n2026", forged[0])
        self.assertNotIn("\x1b", log)

    def test_a_client_that_does_not_read_cannot_grow_the_server(self):
        import socket
        client = self.server.client()
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.assertEqual(signup(client, "ali", "sesame")["status"], "CREATED")
        self.assertEqual(signin(client, "ali", "sesame")["status"], "GRANTED")
        before = rss_kib(self.server.process.pid)
        client.sock.settimeout(0.5)
        sent = 0
        deadline = time.monotonic() + 8
        try:
            while time.monotonic() < deadline:
                client.send({"msgtype": "LOOKUPREQ", "userid": "ali", "lookup": "ali"})
                sent += 1
        except (socket.timeout, OSError):
            pass  # the server stopped reading: our writes block, as they should
        grown = rss_kib(self.server.process.pid) - before
        self.assertLess(grown, 30 * 1024, f"{sent} unread requests grew the server by {grown} KiB")
        good = self.server.client()
        self.addCleanup(good.close)
        self.assertEqual(signup(good, "bianca", "sesame")["status"], "CREATED", "the server keeps serving others")
        client.close()

    def test_a_list_over_4096_bytes_comes_in_pages(self):
        # 150 users from this one host: its caps raised for the test.
        self.server.stop()
        config = unprivileged.write_file(os.path.join(self.data_dir, "many.conf"),
                                         "signups-per-host = 1000\nmax-connections-per-host = 1000\nscrypt-log-n = 10\n")
        self.server = Server(os.path.join(self.data_dir, "data"), "--config", config)
        clients = []
        for index in range(150):
            client = self.server.client()
            clients.append(client)
            name = f"a-rather-long-user-id-number-{index:03d}"
            signup(client, name, "pw")
            self.assertEqual(signin(client, name, "pw")["status"], "GRANTED")
        asker = clients[0]
        asker.send({"msgtype": "LISTREQ", "userid": "a-rather-long-user-id-number-000"})
        users, pages = [], 0
        while True:
            reply = asker.receive()
            if reply["msgtype"] != "LISTREPLY":
                continue
            users += reply["users"]
            pages += 1
            if not reply.get("more"):
                break
        self.assertEqual(len(users), 150)
        self.assertGreater(pages, 1)
        for client in clients:
            client.close()


if __name__ == "__main__":
    unittest.main()
