"""End to end with the real binary as separate processes on loopback, in line mode: a server,
ali and bianca (and carol), as PROTOCOL.md §5–7 and CLI.md describe them."""
import os
import shutil
import tempfile
import unittest

from peers import Peer, Server


class Chat(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="securechat-e2e-")
        self.addCleanup(shutil.rmtree, self.root)
        self.server = Server(os.path.join(self.root, "data"))
        self.addCleanup(self.server.stop)

    def peer(self, user, passcode="pass", *extra, signup=True, home=None):
        home = home or os.path.join(self.root, user)
        os.makedirs(home, exist_ok=True)
        peer = Peer(self.server, user, passcode, home, *extra, signup=signup)
        self.addCleanup(peer.stop)
        return peer

    def signed_in(self, user, *extra, **options):
        peer = self.peer(user, *extra, **options)
        peer.expect(rf"^signed in as {user} ")
        return peer

    def connect(self, caller, callee):
        caller.send(f"/chat {callee.user}")
        callee.expect(rf"^incoming call from {caller.user}$")
        caller.expect(rf"^connected to {callee.user}$")
        callee.expect(rf"^connected to {caller.user}$")

    def test_chat_both_ways_hang_up_from_each_side_and_call_again(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        for index in range(12):  # past a rekey in each direction
            ali.send(f"hello bianca {index}")
            bianca.expect(rf"^ali> hello bianca {index}$")
            bianca.send(f"hi ali {index}")
            ali.expect(rf"^bianca> hi ali {index}$")
        bianca.send("/hangup")
        bianca.expect("^Hang up$")
        ali.expect("^Hang up$")
        # Both are back to LoggedIn: a new call, hung up from the caller's side with Ctrl-C.
        self.connect(ali, bianca)
        bianca.send("still here")
        ali.expect("^bianca> still here$")
        ali.interrupt()
        ali.expect("^Hang up$")
        bianca.expect("^Hang up$")
        # And again the other way round.
        self.connect(bianca, ali)
        ali.send("third call")
        bianca.expect("^ali> third call$")
        ali.send("/quit")  # quitting while chatting hangs up, then signs out
        bianca.expect("^Hang up$")
        self.assertEqual(ali.wait(), 0)
        bianca.expect("^ali is offline$")
        bianca.close_input()  # end of input quits cleanly
        self.assertEqual(bianca.wait(), 0)

    def test_refusals(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        ali.send("/chat nobody")
        ali.expect("^not online: nobody$")
        carol = self.signed_in("carol")
        carol.send("/quit")
        carol.wait()
        ali.send("/chat carol")
        ali.expect("^not online: carol$")
        # Busy: bianca is chatting with ali, dave calls her.
        self.connect(ali, bianca)
        dave = self.signed_in("dave")
        dave.send("/chat bianca")
        dave.expect("^refused: bianca: busy")
        ali.send("not disturbed")
        bianca.expect("^ali> not disturbed$")

    def test_wrong_passcode_is_refused_and_a_script_stops(self):
        self.signed_in("ali", "right").send("/quit")
        wrong = self.peer("ali", "wrong", signup=False, home=os.path.join(self.root, "ali"))
        wrong.expect("^sign-in refused: wrong user ID or passcode$")
        self.assertNotEqual(wrong.wait(), 0)

    def test_a_changed_key_is_refused_until_trusted(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        bianca.send("/hangup")
        ali.expect("^Hang up$")
        bianca.send("/quit")
        bianca.wait()
        # Bianca comes back with a new device (a new key file): ali's pin no longer agrees.
        bianca2 = self.signed_in("bianca", signup=False, home=os.path.join(self.root, "bianca-new-device"))
        ali.send("/chat bianca")
        refusal = ali.expect(r"^refused: the key of bianca changed\. Pinned: ([0-9a-f ]+); offered now: ([0-9a-f ]+)\. .*/trust bianca$")
        self.assertNotEqual(refusal.group(1), refusal.group(2))
        ali.send("/fingerprint bianca")
        ali.expect(rf"^fingerprint of bianca: {refusal.group(1)}$")
        bianca2.send("/fingerprint")
        bianca2.expect(rf"^your fingerprint: {refusal.group(2)}$")
        # And bianca, with the old pin of ali, still agrees with ali's key: she can take calls.
        ali.send("/trust bianca")
        ali.expect("^forgot the pinned key of bianca")
        self.connect(ali, bianca2)
        ali.send("after trust")
        bianca2.expect("^ali> after trust$")

    def test_the_other_peer_vanishing_ends_the_chat(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        bianca.stop()  # SIGKILL: no HANGUP sent
        ali.expect("^chat ended: the other side closed the connection$")
        ali.expect("^Hang up$")

    def test_list_and_presence(self):
        ali = self.signed_in("ali")
        bianca = self.signed_in("bianca")
        ali.expect("^bianca is online$")
        ali.send("/list")
        ali.expect("^online: ali, bianca$")
        bianca.send("/quit")
        ali.expect("^bianca is offline$")

    def test_chat_survives_the_server_going_away(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        self.server.stop()
        ali.expect("^server: .*trying again in 1 s$")
        ali.send("the server is gone")
        bianca.expect("^ali> the server is gone$")


class AskFirst(unittest.TestCase):
    """The shipped Configs/peer.conf with `answer = ask`: the user accepts or rejects a call."""

    def test_ask_then_reject_then_accept(self):
        root = tempfile.mkdtemp(prefix="securechat-e2e-")
        self.addCleanup(shutil.rmtree, root)
        server = Server(os.path.join(root, "data"))
        self.addCleanup(server.stop)
        shipped = open(os.path.join(os.path.dirname(__file__), "..", "..", "Configs", "peer.conf")).read()
        config = os.path.join(root, "ask.conf")
        with open(config, "w") as file:
            file.write(shipped.replace("answer = auto", "answer = ask"))
        peers = {}
        for user, extra in (("ali", ()), ("bianca", ("--config", config))):
            os.makedirs(os.path.join(root, user))
            peers[user] = Peer(server, user, "pw", os.path.join(root, user), *extra, signup=True)
            self.addCleanup(peers[user].stop)
            peers[user].expect(rf"^signed in as {user} ")
        ali, bianca = peers["ali"], peers["bianca"]
        ali.send("/chat bianca")
        bianca.expect(r"^ali is calling \(fingerprint [0-9a-f ]+\): /accept or /reject$")
        bianca.send("/reject")
        ali.expect("^refused: bianca: declined$")
        ali.send("/chat bianca")
        bianca.expect(r"^ali is calling ")
        bianca.send("/accept")
        ali.expect("^connected to bianca$")
        bianca.expect("^connected to ali$")


class Interop(unittest.TestCase):
    """Ali on OpenSSL, Bianca on libgcrypt, for each cipher: the backends agree on the wire."""

    def test_openssl_and_gcrypt_chat_over_each_cipher(self):
        root = tempfile.mkdtemp(prefix="securechat-e2e-")
        self.addCleanup(shutil.rmtree, root)
        server = Server(os.path.join(root, "data"), "--backend", "gcrypt")
        self.addCleanup(server.stop)
        for cipher in ("chachapoly", "aesgcm"):
            peers = []
            for user, backend in ((f"ali-{cipher}", "openssl"), (f"bianca-{cipher}", "gcrypt")):
                home = os.path.join(root, user)
                os.makedirs(home)
                peer = Peer(server, user, "pw", home, "--backend", backend, "--cipher", cipher, signup=True)
                self.addCleanup(peer.stop)
                peer.expect(rf"^signed in as {user} ")
                peers.append(peer)
            ali, bianca = peers
            ali.send(f"/chat {bianca.user}")
            ali.expect(rf"^connected to {bianca.user}$")
            bianca.expect(rf"^connected to {ali.user}$")
            for index in range(11):
                ali.send(f"openssl says {index}")
                bianca.expect(rf"^{ali.user}> openssl says {index}$")
                bianca.send(f"gcrypt says {index}")
                ali.expect(rf"^{bianca.user}> gcrypt says {index}$")
            ali.send("/hangup")
            bianca.expect("^Hang up$")


if __name__ == "__main__":
    unittest.main()
