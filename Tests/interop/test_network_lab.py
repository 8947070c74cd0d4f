"""Calls where people are (issue 13, PROTOCOL.md §9): the real static binary in the network lab
of netlab.py, line mode, as the unprivileged user. Each placement is a call that connects, one
line each way, a hang-up both sides see, and the path the call should take."""
import itertools
import os
import re
import shutil
import time
import unittest

import netlab
import unprivileged
from peers import BINARY, PASSCODE

WHY_NOT = netlab.missing_tools()
LAB = None
SERVER_LINE = re.compile(r"listening on .*, key ([A-Za-z0-9+/=]{44})")
names = itertools.count(1)


def setUpModule():
    global LAB
    if WHY_NOT:
        return
    LAB = netlab.Lab().__enter__()


def tearDownModule():
    if LAB:
        LAB.__exit__(None, None, None)


class LabServer:
    def __init__(self, root, port, *flags):
        data = os.path.join(root, f"data-{port}")
        # Every test signs up new users, many from one router's address: more than the 5 an
        # hour a server allows one address by default.
        config = unprivileged.write_file(os.path.join(root, f"server-{port}.conf"), "signups-per-host = 1000\n")
        self.process = LAB.start("server", [BINARY, "serve", "--listen", f":{port}", "--data-dir", data, "--config", config, *flags])
        self.key = self.process.expect(SERVER_LINE.pattern).group(1)
        self.port = port


@unittest.skipIf(WHY_NOT, WHY_NOT or "")
class LabTest(unittest.TestCase):
    """Servers in the lab's server namespace (one relays, one does not), peers made per test."""

    @classmethod
    def setUpClass(cls):
        cls.root = unprivileged.private_directory("securechat-lab-")
        cls.server = LabServer(cls.root, netlab.SERVER_PORT)
        cls.no_relay = LabServer(cls.root, netlab.SERVER_PORT + 1, "--no-relay")
        # The relay is tried after 3 s instead of 1 s: on a loaded CI machine a direct path slower
        # than 1 s would lose to the relay, and these tests are about which paths exist.
        cls.peer_config = unprivileged.write_file(os.path.join(cls.root, "peer.conf"), "relay-delay = 3s\ntrace = setup\n")

    @classmethod
    def tearDownClass(cls):
        for server in (cls.server, cls.no_relay):
            server.process.stop()
        shutil.rmtree(cls.root)

    def peer(self, host, server=None):
        """A new user signed in from `host`, on the lab's peer port."""
        server = server or self.server
        user = f"{host.lower()}u{next(names)}"
        home = os.path.join(self.root, user)
        os.makedirs(home)
        unprivileged.hand_over(home)
        address = f"[{netlab.SERVER_V6}]" if host.startswith("v6") else netlab.SERVER_V4
        peer = LAB.start(host, [BINARY, "peer", "--user", user, "--server", f"{address}:{server.port}", "--server-key", server.key,
                                "--listen", f":{netlab.PEER_PORT}", "--signup", "--config", self.peer_config],
                         env=dict(os.environ, SECURECHAT_PASSCODE=PASSCODE, HOME=home))
        self.addCleanup(peer.stop)
        peer.user = user
        peer.expect(rf"^signed in as {user} ", timeout=20)
        return peer

    def call(self, caller_host, callee_host, expected, callee_expected=None):
        """A call from a new user on `caller_host` to one on `callee_host`: connected on the path
        `expected` (a regex, as the caller is told; `callee_expected` as the callee is), a line
        each way, hung up by the caller. Returns both paths."""
        caller, callee = self.peer(caller_host), self.peer(callee_host)
        caller.send(f"/chat {callee.user}")
        path = caller.expect(rf"^connected to {callee.user} \((.*)\)$", timeout=20).group(1)
        callee_path = callee.expect(rf"^connected to {caller.user} \((.*)\)$", timeout=10).group(1)
        # Both sides' lines (with the set-up trace) when the path is not the expected one.
        seen = f"\ncaller saw: {caller.lines}\ncallee saw: {callee.lines}"
        self.assertRegex(path, expected, seen)
        self.assertRegex(callee_path, callee_expected or expected, seen)
        caller.send(f"hello from {caller_host}")
        callee.expect(rf"^{caller.user}> hello from {caller_host}$")
        callee.send(f"hello from {callee_host}")
        caller.expect(rf"^{callee.user}> hello from {callee_host}$")
        caller.send("/hangup")
        caller.expect(r"^Hang up \(you\)$")
        callee.expect(rf"^Hang up \({caller.user}\)$")
        return path, callee_path


class Placements(LabTest):
    def test_public_to_public_is_direct(self):
        self.call("pub1", "pub2", r"^direct, 203\.0\.113\.22:7500$", r"^direct, 203\.0\.113\.21:7500$")

    def test_behind_a_router_to_public_is_direct(self):
        self.call("a1", "pub1", r"^direct, 203\.0\.113\.21:7500$", r"^direct, 203\.0\.113\.31:7500$")

    def test_public_to_behind_a_router_is_direct_because_the_callee_dials_out(self):
        # The caller cannot reach a1 through its router; a1's own dial is what connects, so the
        # caller sees it arrive from the router's public address.
        self.call("pub1", "a1", r"^direct, 203\.0\.113\.31:7500$", r"^direct, 203\.0\.113\.21:7500$")

    def test_calling_back_at_once_is_still_direct(self):
        # a1 hangs up its call to pub1; pub1 calls a1 straight back. Both calls use the same
        # address pair (one port each): the side that hung up must not be left holding it in
        # TIME_WAIT (the side that reads HANGUP closes with a reset), or its own dial back fails.
        caller, callee = self.peer("a1"), self.peer("pub1")
        for first, second in ((caller, callee), (callee, caller)):
            first.send(f"/chat {second.user}")
            path = first.expect(rf"^connected to {second.user} \((.*)\)$", timeout=20).group(1)
            second.expect(rf"^connected to {first.user} \(", timeout=10)
            self.assertRegex(path, r"^direct, ", f"\n{first.user} saw: {first.lines}\n{second.user} saw: {second.lines}")
            first.send("/hangup")
            second.expect(rf"^Hang up \({first.user}\)$")
            time.sleep(0.3)  # the close, as it goes
            host = "a1" if first is caller else "pub1"
            held = netlab.run("ip", "netns", "exec", LAB.ns(host), "ss", "-Htan", "state", "time-wait", "sport", "=", f":{netlab.PEER_PORT}")
            self.assertEqual(held.strip(), "", f"{host} holds the call's address pair after hanging up")

    def test_two_behind_one_router_talk_over_their_lan(self):
        self.call("a1", "a2", r"^direct, 198\.51\.100\.12:7500$", r"^direct, 198\.51\.100\.11:7500$")

    def test_behind_two_ordinary_routers_is_direct_through_both(self):
        self.call("a1", "b1", r"^direct through both routers$")

    def test_behind_a_symmetric_router_is_relayed(self):
        self.call("a1", "s1", r"^relayed by the server$")

    def test_behind_carrier_grade_nat_to_a_home_router(self):
        # Three routers that each keep the source port (endpoint-independent mappings): a
        # simultaneous open gets through all of them.
        self.call("c1", "a1", r"^direct through both routers$")

    def test_a_router_that_answers_with_resets(self):
        # rR resets a SYN that arrives before r1's own SYN has opened the mapping. One try, as
        # in FACTS.md, loses; but both sides keep dialling every 100 ms and a reset attempt is
        # tried again, so a later SYN finds the mapping open (measured: direct every time, both
        # ways). The relay would cover it otherwise, so either path is a connected call.
        for caller, callee in (("r1", "a1"), ("a1", "r1")):
            path, _ = self.call(caller, callee, r"^(direct through both routers|relayed by the server)$")
            print(f"\n  {caller} → {callee} (r1 behind rR, which resets): {path}", flush=True)

    def test_ipv6_public_to_public_is_direct(self):
        self.call("v6a", "v6b", r"^direct, \[2001:db8:1::42\]:7500$", r"^direct, \[2001:db8:1::41\]:7500$")

    def test_without_a_relay_an_unreachable_callee_is_refused_in_words(self):
        caller, callee = self.peer("a1", self.no_relay), self.peer("s1", self.no_relay)
        caller.send(f"/chat {callee.user}")
        caller.expect(rf"^{callee.user} is online but could not be reached directly, and the server will not relay the call "
                      rf"\(this server does not relay calls\); {callee.user} cannot be reached from here$", timeout=20)
        callee.drain(1)
        self.assertFalse([line for line in callee.lines if line.startswith("connected")], callee.lines)


class RelaySeesCiphertext(LabTest):
    def test_a_relayed_chat_is_not_readable_on_the_server(self):
        capture_path = os.path.join(self.root, "server.pcap")
        capture = LAB.capture("server", capture_path)
        self.addCleanup(capture.stderr.close)
        self.addCleanup(capture.wait)
        self.addCleanup(capture.terminate)
        caller, callee = self.peer("a1"), self.peer("s1")
        caller.send(f"/chat {callee.user}")
        caller.expect(rf"^connected to {callee.user} \(relayed by the server\)$", timeout=20)
        callee.expect(rf"^connected to {caller.user} \(relayed by the server\)$")
        secrets = ["the treasure is under the old oak", "meet me at platform nine"]
        caller.send(secrets[0])
        callee.expect(rf"> {secrets[0]}$")
        callee.send(secrets[1])
        caller.expect(rf"> {secrets[1]}$")
        caller.send("/hangup")
        callee.expect(r"^Hang up")
        capture.terminate()
        capture.wait()
        with open(capture_path, "rb") as file:
            captured = file.read()
        # The relay legs are in the capture (their first frame is plaintext by design)...
        self.assertIn(b'"msgtype":"RELAY"', captured)
        # ...and the chat lines are not, in any form a relay could read.
        for secret in secrets:
            self.assertNotIn(secret.encode(), captured)
            self.assertNotIn(secret.encode("utf-16-le"), captured)


if __name__ == "__main__":
    unittest.main()
