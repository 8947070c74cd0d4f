"""Real `securechat` processes for end-to-end tests: a server and peers in line mode."""
import os
import queue
import shutil
import re
import signal
import subprocess
import threading
import time
import unittest

import unprivileged

BINARY = os.environ.get("SECURECHAT_BINARY", ".build/securechat-static")
PASSCODE = "pass-word"
START_LINE = re.compile(r"listening on ([0-9.]+):(\d+), key ([A-Za-z0-9+/=]{44})")


class Process:
    """A child whose output lines are collected by a thread, so tests can wait for a line."""

    def __init__(self, args, env=None, privileged=False):
        """`args` run as the unprivileged user, unless `privileged` (to build a sandbox first)."""
        self.process = subprocess.Popen(args if privileged else unprivileged.command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern, timeout=10):
        """Waits for a line matching `pattern` (a regex); returns the match."""
        regex = re.compile(pattern)
        for line in self.lines:
            if regex.search(line):
                self.lines.remove(line)
                return regex.search(line)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = None if remaining <= 0 else ""
            if line is None:
                raise AssertionError(f"no line matching {pattern!r}; seen: {self.lines}")
            if line == "":
                continue
            match = regex.search(line)
            if match:
                return match
            self.lines.append(line)

    def drain(self, seconds=0.2):
        """Collects the lines that arrive within `seconds` into `lines`."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                return
            if line is None:
                self._queue.put(None)
                return
            self.lines.append(line)

    def expect_end(self, timeout=10):
        """Collects every line until the output ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return
            self.lines.append(line)

    def send(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close_input(self):
        self.process.stdin.close()

    def wait(self, timeout=10):
        code = self.process.wait(timeout=timeout)
        return code

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except (BrokenPipeError, ValueError):
                pass


class Server(Process):
    def __init__(self, data_dir, *extra):
        super().__init__([BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, *extra])
        match = self.expect(START_LINE.pattern)
        self.host, self.port = match.group(1), int(match.group(2))
        self.address = f"{self.host}:{self.port}"
        self.key = match.group(3)

    def client(self, cipher="ChaChaPoly", identity=None):
        from noise_client import Client
        return Client(self.host, self.port, self.key, cipher, identity)


class Peer(Process):
    def __init__(self, server, user, passcode, home, *extra, signup=False):
        env = dict(os.environ, SECURECHAT_PASSCODE=passcode, HOME=home)
        args = [BINARY, "peer", "--user", user, "--server", server.address, "--server-key", server.key,
                "--listen", "127.0.0.1:0", *extra]
        if signup:
            args.append("--signup")
        super().__init__(args, env=env)
        self.user = user

    def interrupt(self):
        self.process.send_signal(signal.SIGINT)


class PeerTest(unittest.TestCase):
    """A server in a private directory, and helpers to start signed-in peers beside it."""

    server_args = ()

    def setUp(self):
        self.root = unprivileged.private_directory("securechat-e2e-")
        self.addCleanup(shutil.rmtree, self.root)
        self.server = Server(os.path.join(self.root, "data"), *self.server_args)
        self.addCleanup(self.server.stop)

    def home(self, name):
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return unprivileged.hand_over(path)

    def peer(self, user, passcode=PASSCODE, *extra, signup=True, home=None):
        peer = Peer(self.server, user, passcode, home or self.home(user), *extra, signup=signup)
        self.addCleanup(peer.stop)
        return peer

    def signed_in(self, user, *extra, passcode=PASSCODE, **options):
        peer = self.peer(user, passcode, *extra, **options)
        peer.expect(rf"^signed in as {user} ")
        return peer

    def connect(self, caller, callee):
        """A call from `caller` to `callee`, connected on both sides; returns the caller's path."""
        caller.send(f"/chat {callee.user}")
        path = caller.expect(rf"^connected to {callee.user} \((.*)\)$").group(1)
        callee.expect(rf"^connected to {caller.user} \(")
        return path

    def hang_up(self, who, other):
        """`who` hangs up; both see it, with who hung up."""
        who.send("/hangup")
        who.expect(r"^Hang up \(you\)$")
        other.expect(rf"^Hang up \({who.user}\)$")
