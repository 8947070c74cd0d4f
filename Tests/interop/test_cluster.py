"""Issue 15: several `securechat serve` nodes on one real PostgreSQL (docs/DEPLOYING.md).

Needs the scale-out build (SECURECHAT_CLUSTER_BINARY, made by `scripts/build-static.sh
--scale-out`; scripts/test.sh sets it) and Debian's postgresql. Every process runs as the
unprivileged test user; the database is a real cluster in a temporary folder."""
import concurrent.futures
import os
import shutil
import subprocess
import threading
import time
import unittest

import unprivileged
from cluster import CLUSTER_BINARY, Node, Postgres, free_port, make_server_key
from peers import BINARY, PASSCODE, Process

LEASE_SECONDS = 3


@unittest.skipUnless(CLUSTER_BINARY, "SECURECHAT_CLUSTER_BINARY is not set (scripts/test.sh builds the scale-out binary)")
class ThreeNodes(unittest.TestCase):
    def setUp(self):
        self.root = unprivileged.private_directory("securechat-cluster-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.postgres = Postgres()
        self.addCleanup(self.postgres.close)
        self.key_file = make_server_key(self.root)
        self.nodes = [self.node(f"node{index}") for index in (1, 2, 3)]

    def node(self, name):
        # Every test's peers sign up from 127.0.0.1: more than the default 5 an hour.
        node = Node(self.root, name, self.postgres, self.key_file, lease=f"{LEASE_SECONDS}s",
                    extra_config="signups-per-host = 100")
        self.addCleanup(shutil.rmtree, node.data_dir, True)
        self.addCleanup(node.stop)
        return node

    def peer(self, user, *nodes, signup=True, extra=(), config=None, passcode=PASSCODE):
        """A peer that knows `nodes`, in that order (it signs in to the first that answers)."""
        home = unprivileged.private_directory(f"securechat-{user}-")
        self.addCleanup(shutil.rmtree, home, True)
        args = [CLUSTER_BINARY, "peer", "--user", user, "--server-key", nodes[0].key, "--listen", "127.0.0.1:0"]
        for node in nodes:
            args += ["--server", node.address]
        if config:
            args += ["--config", unprivileged.write_file(os.path.join(home, "peer.conf"), config)]
        if signup:
            args.append("--signup")
        peer = Process(args + list(extra), env=dict(os.environ, SECURECHAT_PASSCODE=passcode, HOME=home))
        peer.user = user
        self.addCleanup(peer.stop)
        return peer

    def signed_in(self, user, *nodes, **options):
        peer = self.peer(user, *nodes, **options)
        peer.expect(rf"^signed in as {user} ", timeout=20)
        return peer

    def call(self, caller, callee, path=r".*"):
        caller.send(f"/chat {callee.user}")
        connected = caller.expect(rf"^connected to {callee.user} \(({path})\)$", timeout=20).group(1)
        callee.expect(rf"^connected to {caller.user} \(", timeout=20)
        caller.send("hello across nodes")
        callee.expect(rf"^{caller.user}> hello across nodes$")
        callee.send("/hangup")
        callee.expect(r"^Hang up \(you\)$")
        caller.expect(rf"^Hang up \({callee.user}\)$")
        return connected

    def test_users_on_three_nodes_see_each_other_and_call_across_nodes(self):
        node1, node2, node3 = self.nodes
        carol = self.signed_in("carol", node3)
        ali = self.signed_in("ali", node1)
        carol.expect(r"^ali is online$", timeout=5)
        bianca = self.signed_in("bianca", node2)
        carol.expect(r"^bianca is online$", timeout=5)
        ali.expect(r"^bianca is online$", timeout=5)
        # The same directory on every node.
        for peer in (ali, bianca, carol):
            peer.send("/list")
            peer.expect(r"^online: ali, bianca, carol$")
        # A call from node 1 to node 2: the CALLOFFER crosses through the database.
        self.call(ali, bianca)
        # Relayed across nodes: the callee's leg goes to the caller's node, named in CALLOFFER.
        relayed_ali = self.signed_in("dora", node1, config="direct = no\n")
        self.call(relayed_ali, bianca, path="relayed by the server")
        # Accounts live in PostgreSQL, with nothing in the nodes' own folders.
        users = self.postgres.query("SELECT user_id FROM securechat_accounts ORDER BY user_id")
        self.assertEqual(users, ["ali", "bianca", "carol", "dora"])
        for node in self.nodes:
            self.assertFalse(os.path.exists(os.path.join(node.data_dir, "accounts.journal")))
        bianca.close_input()
        ali.expect(r"^bianca is offline$", timeout=5)
        carol.expect(r"^bianca is offline$", timeout=5)

    def test_a_second_sign_in_on_another_node_closes_the_first(self):
        node1, _, node3 = self.nodes
        first = self.signed_in("ali", node1)
        second = self.signed_in("ali", node3, signup=False)
        first.expect(r"^signed out here: ali signed in on another device", timeout=5)
        bianca = self.signed_in("bianca", node1)
        self.call(bianca, second)

    def test_a_killed_node_goes_offline_everywhere_within_the_lease_and_its_users_move(self):
        node1, node2, node3 = self.nodes
        ali = self.signed_in("ali", node1)
        # Carol knows only node 2; bianca knows node 2 and then node 1.
        carol = self.signed_in("carol", node2)
        ali.expect(r"^carol is online$", timeout=5)
        bianca = self.signed_in("bianca", node2, node1)
        ali.expect(r"^bianca is online$", timeout=5)
        # Sign-ups acknowledged by node 2 just before it dies.
        made = [f"early{index}" for index in range(5)]
        for user in made:
            self.signed_in(user, node2).close_input()
        node2.kill()
        killed = time.monotonic()
        # Nobody said goodbye for carol: node 2's lease runs out and the others sweep her session.
        ali.expect(r"^carol is offline$", timeout=LEASE_SECONDS + 3)
        self.assertLess(time.monotonic() - killed, LEASE_SECONDS + 1.5, "offline within the lease (and the 1 s sweep)")
        carol.expect(r"^server: .*; trying again in \d+ s$", timeout=5)
        # Bianca's peer went on to node 1 by itself and can be called again.
        bianca.expect(r"^server: the server closed the connection; trying 127\.0\.0\.1:\d+$", timeout=5)
        bianca.expect(r"^signed in as bianca ", timeout=20)
        self.call(ali, bianca)
        for user in made:
            self.signed_in(user, node3, signup=False).close_input()
        self.assertEqual(self.postgres.query("SELECT count(*) FROM securechat_nodes"), ["2"])

    def sign_ups(self, node, prefix, stop):
        """Signs up users one after another on `node` until `stop` is set; the ones acknowledged."""
        acknowledged = []
        index = 0
        while not stop.is_set():
            user = f"{prefix}{index}"
            index += 1
            peer = self.peer(user, node)
            peer.close_input()
            peer.expect_end(timeout=20)
            if f"account {user} created" in peer.lines:
                acknowledged.append(user)
        return acknowledged

    def test_postgresql_stopped_and_started_under_load(self):
        node1, node2, _ = self.nodes
        ali = self.signed_in("ali", node1)
        bianca = self.signed_in("bianca", node2)
        self.signed_in("carol", node1).close_input()
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            load = [pool.submit(self.sign_ups, node, f"load{number}n", stop) for number, node in enumerate((node1, node2))]
            # However the test ends, the load stops (leaving the pool waits for its threads).
            try:
                time.sleep(1)
                self.postgres.stop()
                time.sleep(1)
                node1.expect(r"lost the database", timeout=10)
                # Signed-in users go on: a call still connects (both are in every node's memory).
                self.call(ali, bianca)
                # No sign-in can be checked meanwhile: said in plain words, tried again, nothing crashes.
                waiting = self.peer("carol", node1, signup=False)
                waiting.expect(r"^server: the server cannot check passcodes right now; trying again in \d+ s$", timeout=20)
                # Bianca leaves while node 2 cannot tell anyone.
                bianca.close_input()
                bianca.expect_end()
                self.postgres.start()
                node1.expect(r"the database is back", timeout=15)
                waiting.expect(r"^signed in as carol ", timeout=30)
                # Node 2 puts the table right once it is back, and node 1 hears that she left.
                ali.expect(r"^bianca is offline$", timeout=15)
                ali.send("/list")
                online = ali.expect(r"^online: (.*)$").group(1).split(", ")
                self.assertIn("carol", online)
                self.assertNotIn("bianca", online)
                time.sleep(1)
            finally:
                stop.set()
            acknowledged = [user for future in load for user in future.result()]
        for node in (node1, node2):
            self.assertIsNone(node.process.poll(), f"{node.name} is still running")
        self.assertGreater(len(acknowledged), 2, "sign-ups went on before and after the outage")
        users = set(self.postgres.query("SELECT user_id FROM securechat_accounts"))
        self.assertEqual(set(acknowledged) - users, set(), "every acknowledged sign-up is in the database")
        self.assertLessEqual({"ali", "bianca", "carol"}, users)

    def test_user_administration_works_on_the_database_while_the_nodes_run(self):
        config = os.path.join(self.nodes[0].data_dir, "server.conf")
        def user(*args, stdin=""):
            return subprocess.run(unprivileged.command([CLUSTER_BINARY, "user", *args, "--config", config]),
                                  input=stdin, capture_output=True, text=True, timeout=30)
        added = user("add", "erin", stdin="erin-passcode\n")
        self.assertEqual(added.returncode, 0, added.stderr)
        # The account exists for every node at once: erin signs in on node 2.
        erin = self.signed_in("erin", self.nodes[1], signup=False, passcode="erin-passcode")
        listed = user("list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertRegex(listed.stdout, r"(?m)^erin\t[0-9a-f]{4}( [0-9a-f]{4}){4}$", "the key bound by the first sign-in")
        self.assertEqual(user("passwd", "erin", stdin="changed-passcode\n").returncode, 0)
        erin.close_input()
        self.signed_in("erin", self.nodes[2], signup=False, passcode="changed-passcode").close_input()
        self.assertEqual(user("remove", "erin").returncode, 0)
        self.assertEqual(self.postgres.query("SELECT count(*) FROM securechat_accounts WHERE user_id = 'erin'"), ["0"])
        missing = user("remove", "erin")
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("there is no account erin", missing.stderr)

    def start_fails(self, folder, config_text):
        """`serve` with this config must stop with an error; returns what it said."""
        config = unprivileged.write_file(os.path.join(folder, "server.conf"),
                                         f"listen = 127.0.0.1:0\nnode-address = 127.0.0.1:9\ndata-dir = {folder}/data\n{config_text}")
        result = subprocess.run(unprivileged.command([CLUSTER_BINARY, "serve", "--config", config]),
                                capture_output=True, text=True, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        return result.stderr

    def test_a_node_that_cannot_use_its_database_does_not_start_and_says_why(self):
        folder = unprivileged.private_directory("securechat-bad-node-")
        self.addCleanup(shutil.rmtree, folder, True)
        wrong_password = unprivileged.write_file(os.path.join(folder, "wrong"), "not-the-password\n")
        error = self.start_fails(folder, f"database = {self.postgres.url}\ndatabase-password-file = {wrong_password}\n")
        self.assertIn("cannot use the database", error)
        self.assertIn("password authentication failed", error)
        self.assertNotIn("not-the-password", error)
        readable = unprivileged.write_file(os.path.join(folder, "readable"), "x\n", mode=0o644)
        error = self.start_fails(folder, f"database = {self.postgres.url}\ndatabase-password-file = {readable}\n")
        self.assertIn("can be read by other users (mode 644); run: chmod 600", error)
        closed = f"postgres://securechat@127.0.0.1:{free_port()}/postgres"
        error = self.start_fails(folder, f"database = {closed}\ndatabase-password-file = {wrong_password}\n")
        self.assertIn("cannot use the database", error)
        error = self.start_fails(folder, "database = postgres://securechat:secret@127.0.0.1/postgres\n")
        self.assertIn("must not hold the password", error)
        self.assertNotIn("secret", error)


class DefaultBuild(unittest.TestCase):
    def test_the_default_build_refuses_a_database_with_the_fix(self):
        root = unprivileged.private_directory("securechat-default-")
        self.addCleanup(shutil.rmtree, root, True)
        config = unprivileged.write_file(os.path.join(root, "server.conf"),
                                         f"listen = 127.0.0.1:0\ndata-dir = {root}/data\ndatabase = postgres://u@127.0.0.1/db\n")
        result = subprocess.run(unprivileged.command([BINARY, "serve", "--config", config]), capture_output=True, text=True, timeout=20)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("built without scale-out support", result.stderr)
        self.assertIn("scripts/build-static.sh --scale-out", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "data", "server.key")), "nothing made before refusing")


if __name__ == "__main__":
    unittest.main()
