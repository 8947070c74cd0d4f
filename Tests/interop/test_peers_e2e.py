"""End to end with the real binary as separate processes on loopback, in line mode, run as an
unprivileged user: a server, ali and bianca (and carol), as PROTOCOL.md §5–9 and CLI.md
describe them, and as users meet them: refusals, mistakes, second devices, strangers."""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import unittest

import unprivileged
from noise_client import NoiseStream, Section5Peer
from peers import BINARY, PASSCODE, PeerTest, Process, Server


def config_file(test, name, text):
    return unprivileged.write_file(os.path.join(test.root, name), text)


class Chat(PeerTest):
    def test_chat_both_ways_hang_up_from_each_side_and_call_again(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        path = self.connect(ali, bianca)
        self.assertRegex(path, r"^direct, ")
        for index in range(12):  # past a rekey in each direction
            ali.send(f"hello bianca {index}")
            bianca.expect(rf"^ali> hello bianca {index}$")
            bianca.send(f"hi ali {index}")
            ali.expect(rf"^bianca> hi ali {index}$")
        self.hang_up(bianca, ali)
        # Both are back to LoggedIn: a new call, hung up from the caller's side with Ctrl-C.
        self.connect(ali, bianca)
        bianca.send("still here")
        ali.expect("^bianca> still here$")
        ali.interrupt()
        ali.expect(r"^Hang up \(you\)$")
        bianca.expect(r"^Hang up \(ali\)$")
        # And again the other way round.
        self.connect(bianca, ali)
        ali.send("third call")
        bianca.expect("^ali> third call$")
        ali.send("/info")
        ali.expect(r"^in a call with bianca \(direct, .*\); this end .*, other end .*; bianca's fingerprint [0-9a-f ]+, yours [0-9a-f ]+$")
        ali.send("/quit")  # quitting while chatting hangs up, then signs out
        bianca.expect(r"^Hang up \(ali\)$")
        self.assertEqual(ali.wait(), 0)
        bianca.expect("^ali is offline$")
        bianca.close_input()  # end of input quits cleanly
        self.assertEqual(bianca.wait(), 0)

    def test_refusals_and_a_busy_callee_is_told_who_called(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        ali.send("/chat nobody")
        ali.expect("^not online: nobody$")
        carol = self.signed_in("carol")
        carol.send("/quit")
        carol.wait()
        ali.send("/chat carol")
        ali.expect("^not online: carol$")
        ali.send("/chat Bianca")  # user IDs are folded to lowercase, as people type them
        ali.expect(r"^connected to bianca \(")
        bianca.expect(r"^connected to ali \(")
        dave = self.signed_in("dave")
        dave.send("/chat bianca")
        dave.expect(r"^refused: bianca: busy \(in another call\)$")
        bianca.expect("^missed call from dave: you were in a call$")
        ali.send("not disturbed")
        bianca.expect("^ali> not disturbed$")

    def test_commands_help_unknown_and_slash_lines(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        ali.send("/help")
        ali.expect(r"^/chat NAME\s+call NAME$")
        ali.expect(r"^//text\s+send a line that starts with /$")
        ali.send("/frobnicate")
        ali.expect(r"^unknown command /frobnicate: /help lists the commands")
        self.connect(ali, bianca)
        ali.send("//etc/hosts is where names live")
        bianca.expect("^ali> /etc/hosts is where names live$")

    def test_commands_given_before_sign_in_wait_for_it(self):
        self.signed_in("bianca")
        # The whole script is in the pipe before the server has answered: nothing is dropped,
        # and the end of input waits for the answers.
        ali = Process([BINARY, "peer", "--user", "ali", "--signup", "--server", self.server.address,
                                            "--server-key", self.server.key, "--listen", "127.0.0.1:0"],
                      env=dict(os.environ, SECURECHAT_PASSCODE=PASSCODE, HOME=self.home("ali")))
        self.addCleanup(ali.stop)
        ali.send("/list")
        ali.close_input()
        ali.expect("^online: ali, bianca$")
        self.assertEqual(ali.wait(), 0)

    def test_a_changed_key_is_refused_until_the_compared_fingerprint_is_trusted(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        self.hang_up(bianca, ali)
        bianca.send("/quit")
        bianca.wait()
        # Bianca comes back with a new device (a new key file): ali's pin no longer agrees.
        bianca2 = self.signed_in("bianca", signup=False, home=self.home("bianca-new-device"))
        bianca2.expect(r"^note: this device's key replaced the key the server had for bianca \(([0-9a-f ]+)\)")
        ali.send("/chat bianca")
        refusal = ali.expect(r"^refused: the key of bianca changed\. Pinned: ([0-9a-f ]+); offered now: ([0-9a-f ]+)\. "
                             r".*/trust bianca ([0-9a-f]+)$")
        self.assertNotEqual(refusal.group(1), refusal.group(2))
        self.assertEqual(refusal.group(3), refusal.group(2).replace(" ", ""))
        ali.send("/fingerprint bianca")
        ali.expect(rf"^fingerprint of bianca: {refusal.group(1)} \(pinned; the server now offers {refusal.group(2)}: ")
        bianca2.send("/fingerprint")
        bianca2.expect(rf"^your fingerprint: {refusal.group(2)}$")
        # A fingerprint that is not the offered key's is not trusted.
        ali.send(f"/trust bianca {refusal.group(1)}")
        ali.expect(rf"^not trusted: the key offered for bianca has the fingerprint {refusal.group(2)}, not that one$")
        ali.send(f"/trust bianca {refusal.group(2)}")
        ali.expect("^trusted: the key of bianca is pinned now$")
        self.connect(ali, bianca2)
        ali.send("after trust")
        bianca2.expect("^ali> after trust$")

    def test_the_callee_refuses_a_changed_caller_key_in_the_right_words_for_each_side(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)  # bianca pins ali's key
        self.hang_up(ali, bianca)
        ali.send("/quit")
        ali.wait()
        ali2 = self.signed_in("ali", signup=False, home=self.home("ali-new-device"))
        ali2.send("/fingerprint")
        mine = ali2.expect(r"^your fingerprint: ([0-9a-f ]+)$").group(1)
        ali2.send("/trust bianca " + "0" * 20)  # ali2 has no pin for bianca: first key seen is pinned on the call
        ali2.send("/chat bianca")
        ali2.expect(rf"^refused: bianca has a different key pinned for you: your key changed .*Your fingerprint: {mine}\. "
                    rf"Ask bianca to compare it with you and then /trust ali {mine.replace(' ', '')}$")
        bianca.expect(rf"^refused a call from ali: their key changed\. Pinned: [0-9a-f ]+; theirs now: {mine}\. .*/trust ali ")

    def test_fingerprint_before_the_first_call(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        bianca.send("/fingerprint")
        theirs = bianca.expect(r"^your fingerprint: ([0-9a-f ]+)$").group(1)
        ali.send("/fingerprint bianca")
        ali.expect(rf"^fingerprint of bianca: {theirs} \(from the server, not yet verified: compare it with bianca, then /trust bianca ")
        ali.send(f"/trust bianca {theirs}")
        ali.expect("^trusted: the key of bianca is pinned now$")

    def test_the_other_peer_vanishing_ends_the_chat(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        bianca.stop()  # SIGKILL: no HANGUP sent
        ali.expect("^chat with bianca ended: the other side closed the connection$")
        ali.expect(r"^Hang up \(connection to bianca lost\)$")

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


class EarlyDial(PeerTest):
    def test_a_dial_from_the_callee_before_the_call_reply_joins_the_call(self):
        # The server sends CALLREPLY and CALLOFFER at once, so the callee's dial can reach the
        # caller before the caller knows where the callee is. Here a quiet connection from the
        # callee's address (loopback) is already open when ali calls: ali must take it as the
        # callee's dial and open the handshake on it (HELLO), not wait on it for a HELLO as if
        # someone were calling her, holding the address pair every other dial needs.
        ali = self.signed_in("ali")
        port = int(ali.expect(r"^listening for calls on port (\d+)$").group(1))
        early = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(early.close)
        bianca = self.signed_in("bianca")
        time.sleep(0.3)  # accepted by ali before the call
        ali.send("/chat bianca")
        received = b""
        while len(received) < 2 or len(received) < 2 + int.from_bytes(received[:2], "big"):
            chunk = early.recv(4096)
            self.assertTrue(chunk, f"ali closed the early connection without a HELLO; ali saw: {ali.lines}")
            received += chunk
        hello = json.loads(received[2:2 + int.from_bytes(received[:2], "big")])
        self.assertEqual(hello["msgtype"], "HELLO")
        # The early connection never answers; the call connects on another path all the same.
        ali.expect(r"^connected to bianca \(direct, ")
        bianca.expect(r"^connected to ali \(direct, ")


    def test_a_renewed_call_goes_on_over_the_connection_answered_for_the_first(self):
        # Ali (played by hand) calls, gives up and calls again. The callee's dial for the first
        # offer was taken up by ali, whose message 1 was answered before the second offer came
        # (on a loaded machine a direct message can overtake the server's offer). That connection
        # carries the renewed call; bianca must not drop it when the second offer comes.
        bianca = self.signed_in("bianca")
        ali = Section5Peer(self.server, "ali", PASSCODE)
        self.addCleanup(ali.close)
        call = {"msgtype": "CALLREQ", "userid": "ali", "callee": "bianca"}
        reply = ali.control.request(call)
        self.assertEqual(reply["status"], "SUCCESS", reply)
        sock, _ = ali.listener.accept()  # bianca's dial for the first offer
        sock.settimeout(15)
        stream = NoiseStream(sock)
        self.addCleanup(stream.close)
        stream.initiate(ali.private, base64.b64decode(reply["encryptionkey"]),
                        json.dumps({"msgtype": "CONNECTREQ", "initiator": "ali"}).encode())
        self.assertEqual(json.loads(stream.finish_initiating())["status"], "ACCEPTED")
        self.assertEqual(ali.control.request(call)["status"], "SUCCESS")
        bianca.drain(0.5)  # the second offer has come
        Section5Peer.say(stream, "still on the first connection")
        bianca.expect(r"^connected to ali \(direct, ")
        bianca.expect("^ali> still on the first connection$")


class FrozenPartner(PeerTest):
    """A partner that freezes (SIGSTOP: a laptop lid closed) is noticed, by the chat and by the server."""

    def test_a_frozen_partner_ends_the_chat_and_goes_offline(self):
        # A server that probes quickly, and peers whose chats give up after 3 s of silence.
        self.server.stop()
        server_config = config_file(self, "fast.conf", "probe-interval = 1s\nprobe-timeout = 2s\n")
        self.server = Server(os.path.join(self.root, "data"), "--config", server_config)
        self.addCleanup(self.server.stop)
        peer_config = config_file(self, "peer.conf", "chat-keepalive = 1s\nchat-timeout = 3s\n")
        ali = self.signed_in("ali", "--config", peer_config)
        bianca = self.signed_in("bianca", "--config", peer_config)
        self.connect(ali, bianca)
        bianca.process.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: bianca.process.poll() is None and bianca.process.send_signal(signal.SIGCONT))
        started = time.monotonic()
        ali.expect(r"^chat with bianca ended: no word from the other side for 3 s \(frozen, asleep or gone\)$", timeout=15)
        ali.expect(r"^Hang up \(connection to bianca lost\)$")
        ali.expect("^bianca is offline$", timeout=15)
        self.assertLess(time.monotonic() - started, 12, "a frozen peer is noticed within seconds, not minutes")


class CallTimeout(PeerTest):
    def test_a_call_that_never_connects_times_out_with_words(self):
        config = config_file(self, "peer.conf", "call-timeout = 3s\n")
        ali, bianca = self.signed_in("ali", "--config", config), self.signed_in("bianca")
        bianca.process.send_signal(signal.SIGSTOP)  # online, but answers nothing
        self.addCleanup(lambda: bianca.process.poll() is None and bianca.process.send_signal(signal.SIGCONT))
        ali.send("/chat bianca")
        ali.expect(r"^no connection to bianca within 3 s: bianca could not be reached from here$", timeout=15)
        ali.send("/list")
        ali.expect("^online: ali, bianca$")


class SignIn(PeerTest):
    def test_wrong_passcode_is_refused_and_a_script_stops(self):
        self.signed_in("ali", passcode="right-passcode").send("/quit")
        wrong = self.peer("ali", "wrong-passcode", signup=False)
        wrong.expect("^Error: sign-in refused: wrong user ID or passcode$")
        self.assertNotEqual(wrong.wait(), 0)

    def test_signup_for_an_existing_account_signs_in_and_short_passcodes_are_refused(self):
        first = self.signed_in("ali", passcode="right-passcode")
        first.send("/quit")
        first.wait()
        again = self.peer("ali", "right-passcode", signup=True)
        again.expect("^the account ali exists already: signing in to it$")
        again.expect("^signed in as ali ")
        again.send("/quit")
        again.wait()
        wrong = self.peer("ali", "other-passcode", signup=True)
        wrong.expect("^Error: sign-in refused: the account ali exists already, and that is not its passcode$")
        self.assertNotEqual(wrong.wait(), 0)
        short = self.peer("bob", "short", signup=True)
        short.expect("^Error: a new passcode needs at least 8 characters$")
        self.assertNotEqual(short.wait(), 0)

    def test_a_lock_out_says_it_is_one(self):
        self.signed_in("ali", passcode="right-passcode").send("/quit")
        for _ in range(3):
            self.assertNotEqual(self.peer("ali", "wrong-passcode", signup=False).wait(), 0)
        locked = self.peer("ali", "right-passcode", signup=False)
        locked.expect(r"^Error: sign-in refused: locked out: too many failed sign-ins for this user from your address; try again in \d+ s$")
        self.assertNotEqual(locked.wait(), 0)

    def test_passcode_file_beats_the_environment_and_must_be_private(self):
        self.signed_in("ali", passcode="file-passcode").send("/quit")
        path = unprivileged.write_file(os.path.join(self.root, "passcode"), "file-passcode\n", mode=0o600)
        good = self.peer("ali", "not-this-one", "--passcode-file", path, signup=False)
        good.expect("^signed in as ali ")
        good.send("/quit")
        self.assertEqual(good.wait(), 0)
        os.chmod(path, 0o644)
        open_file = self.peer("ali", "x", "--passcode-file", path, signup=False)
        open_file.expect(rf"^Error: {re.escape(path)} is readable by other users \(mode 644\); run: chmod 600 ")
        self.assertNotEqual(open_file.wait(), 0)

    def test_the_passcode_is_not_left_in_the_environment(self):
        ali = self.signed_in("ali")
        with open(f"/proc/{ali.process.pid}/environ", "rb") as environ:
            self.assertNotIn(PASSCODE.encode(), environ.read())

    def test_a_second_device_takes_over_without_a_fight(self):
        ali = self.signed_in("ali")
        bianca = self.signed_in("bianca")
        second = self.signed_in("ali", signup=False, home=self.home("ali-laptop"))
        ali.expect(r"^signed out here: ali signed in on another device\. This one stays signed out .*/reconnect signs in here again")
        second.expect(r"^note: this device's key replaced the key the server had for ali")
        time.sleep(3)  # no automatic reconnect: the two do not take turns
        self.assertEqual(sum("ali is online" in line for line in bianca.lines), 0, bianca.lines)
        ali.send("/reconnect")
        ali.expect("^signed in as ali ")
        second.expect(r"^signed out here: ali signed in on another device")

    def test_passwd_changes_the_passcode(self):
        ali = self.signed_in("ali", passcode="old-passcode")
        ali.send("/quit")
        ali.wait()
        run = subprocess.run(unprivileged.command(["env", f"HOME={self.home('ali')}", BINARY, "passwd", "--user", "ali",
                                                   "--server", self.server.address, "--server-key", self.server.key]),
                             input="old-passcode\nnew-passcode\n", capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("passcode changed for ali", run.stdout)
        self.signed_in("ali", passcode="new-passcode", signup=False)
        self.assertNotEqual(self.peer("ali", "old-passcode", signup=False).wait(), 0)


class Errors(PeerTest):
    """Each mistake gets its own plain sentence, exit status 1, and no library's text."""

    def run_peer(self, *flags, passcode=PASSCODE):
        run = subprocess.run(unprivileged.command(["env", f"HOME={self.home('ali')}", f"SECURECHAT_PASSCODE={passcode}",
                                                   BINARY, "peer", "--user", "ali", *flags]),
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        for library in ("NIO", "SingleConnectionFailure", "errno", "Connection errors", "crypto("):
            self.assertNotIn(library, run.stderr + run.stdout)
        self.assertNotEqual(run.returncode, 0, run.stdout)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        return run.stderr.strip()

    def test_each_mistake_in_words(self):
        server, key = self.server.address, self.server.key
        other_key = "fEkLB71ZMXWXsc5foOTtekLUBZ327Tcl6Za3thda+kM="
        self.assertIn("DOES NOT HAVE THE KEY YOU GAVE", self.run_peer("--server", server, "--server-key", other_key))
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        self.assertIn(f"nothing is listening at 127.0.0.1:{port} (connection refused): is the server running there",
                      self.run_peer("--server", f"127.0.0.1:{port}", "--server-key", key))
        self.assertIn("cannot find the host no-such-host.invalid: the name does not resolve",
                      self.run_peer("--server", "no-such-host.invalid:7400", "--server-key", key))
        self.assertIn("the port is already in use", self.run_peer("--server", server, "--server-key", key, "--listen", server))
        self.assertIn("203.0.113.9 is not an address of this machine",
                      self.run_peer("--server", server, "--server-key", key, "--listen", "203.0.113.9:0"))
        self.assertIn('"7400" is not an address to listen on: use HOST:PORT, e.g. 0.0.0.0:7400, or :7400 for every address',
                      self.run_peer("--server", server, "--server-key", key, "--listen", "7400"))
        self.assertIn('"127.0.0.1" is not a server address: use HOST:PORT, e.g. 127.0.0.1:7400',
                      self.run_peer("--server", "127.0.0.1", "--server-key", key))
        self.assertIn("--server-key is required", self.run_peer("--server", server))

    def test_a_cipher_the_server_refuses(self):
        self.server.stop()
        self.server = Server(os.path.join(self.root, "data"), "--cipher", "aesgcm")
        self.addCleanup(self.server.stop)
        self.assertIn("does not allow the cipher chachapoly; it allows aesgcm. Use --cipher aesgcm",
                      self.run_peer("--server", self.server.address, "--server-key", self.server.key))

    def test_quitting_before_the_server_answered_is_clean(self):
        # A server that accepts and never answers: quit (Ctrl-C) must not leave NIO complaining.
        silent = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        peer = Process([BINARY, "peer", "--user", "ali", "--server", f"127.0.0.1:{silent.getsockname()[1]}",
                        "--server-key", self.server.key, "--listen", "127.0.0.1:0"],
                       env=dict(os.environ, SECURECHAT_PASSCODE=PASSCODE, HOME=self.home("ali")))
        self.addCleanup(peer.stop)
        peer.expect("^listening for calls")
        time.sleep(0.3)
        peer.process.send_signal(signal.SIGINT)
        self.assertEqual(peer.wait(), 0)
        peer.expect_end()
        self.assertFalse(any("EventLoop" in line for line in peer.lines), peer.lines)


class Strangers(PeerTest):
    """What a stranger can do to a peer, tried."""

    def test_control_characters_from_the_other_side_are_shown_visibly(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(ali, bianca)
        # OSC 52 (clipboard), OSC 0 (title), erase line, a bidi override and a fake event line.
        ali.send("\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned\x07\x1b[2K\u202eevil\u202c\x7f")
        line = bianca.expect(r"^ali> ").string
        self.assertNotIn("\x1b", line)
        self.assertEqual(line, "ali> ^[]52;c;cHduZWQ=^G^[]0;pwned^G^[[2K<U+202E>evil<U+202C>^?")

    def test_a_stranger_cannot_claim_a_name_or_keep_the_peer_busy(self):
        bianca = self.signed_in("bianca")
        ali = self.signed_in("ali")
        # A stranger with its own key claims to be "admin" (not even an account).
        stranger = Section5Peer(self.server, "mallory", PASSCODE)
        self.addCleanup(stranger.close)
        lookup = stranger.lookup("bianca")
        stream = NoiseStream(socket.create_connection((lookup["address"], lookup["port"]), timeout=10))
        self.addCleanup(stream.close)
        stream.initiate(stranger.private, base64.b64decode(lookup["encryptionkey"]),
                        json.dumps({"msgtype": "CONNECTREQ", "initiator": "admin"}).encode())
        reply = json.loads(stream.finish_initiating())
        self.assertEqual(reply, {"msgtype": "CONNECTREPLY", "status": "REFUSED", "reason": "the caller could not be verified with the server"})
        bianca.expect("^refused a call that could not be verified with the server$")
        self.assertFalse(any("admin" in line for line in bianca.lines), "a name is shown only once checked")
        # Many silent connections: closed, and a real call still goes through.
        silent = [socket.create_connection((lookup["address"], lookup["port"])) for _ in range(40)]
        self.addCleanup(lambda: [s.close() for s in silent])
        self.connect(ali, bianca)

    def test_a_replayed_call_is_never_shown_as_connected(self):
        bianca = self.signed_in("bianca")
        # "ali" here is a §5 peer that records its message 1 and never sends a record: the
        # callee must wait for the caller's first record before it shows the call.
        ali = Section5Peer(self.server, "ali", PASSCODE)
        self.addCleanup(ali.close)
        lookup = ali.lookup("bianca")
        first = NoiseStream(socket.create_connection((lookup["address"], lookup["port"]), timeout=15))
        recorded = first.initiate(ali.private, base64.b64decode(lookup["encryptionkey"]),
                                  json.dumps({"msgtype": "CONNECTREQ", "initiator": "ali"}).encode())
        self.assertEqual(json.loads(first.finish_initiating())["status"], "ACCEPTED")
        first.close()
        replay = socket.create_connection((lookup["address"], lookup["port"]), timeout=15)
        self.addCleanup(replay.close)
        replay.sendall(recorded)
        # The replay is answered (it passes every check a recording can pass), but without the
        # caller's first record it is never a call, and it is dropped at the confirmation deadline.
        started = time.monotonic()
        while replay.recv(4096):
            pass
        self.assertLess(time.monotonic() - started, 15)
        bianca.drain()
        self.assertFalse(any(line.startswith("connected to") for line in bianca.lines),
                         "a call without the caller's first record is not a call")
        # And bianca is free again for a real one.
        carol = self.signed_in("carol")
        self.connect(carol, bianca)


class Section5(PeerTest):
    """A peer of the reference's §5 only still calls a new one, and is called by it."""

    def section5_call(self):
        """Bianca signed in, and olda (§5 only) calling her: (bianca, olda, the call's stream)."""
        bianca = self.signed_in("bianca")
        old = Section5Peer(self.server, "olda", PASSCODE)
        self.addCleanup(old.close)
        return bianca, old, old.call("bianca")

    def assert_no_second_race(self, bianca):
        bianca.drain(1.5)  # past the relay delay: no second race started
        self.assertFalse([line for line in bianca.lines if "trying the relay" in line or "Hang up" in line], bianca.lines)

    def test_a_section5_peer_calls_and_is_called(self):
        bianca, old, stream = self.section5_call()
        Section5Peer.say(stream, "hello from §5")
        bianca.expect(r"^connected to olda \(direct, ")
        bianca.expect("^olda> hello from §5$")
        bianca.send("hi old one")
        self.assertEqual(Section5Peer.hear(stream), "hi old one")
        bianca.send("/hangup")
        self.assertIsNone(Section5Peer.hear(stream))
        stream.close()
        bianca.expect(r"^Hang up \(you\)$")
        # And the other way: bianca calls the §5 peer (it has no §9: the LOOKUPREPLY path).
        bianca.send("/chat olda")
        answered, caller = old.answer()
        self.assertEqual(caller, "bianca")
        bianca.expect(r"^connected to olda \(direct, ")
        bianca.send("calling you")
        self.assertEqual(Section5Peer.hear(answered), "calling you")
        answered.close()

    def test_a_dial_that_arrives_before_its_call_offer_keeps_the_call(self):
        # Under load the caller's message 1 can reach the callee before the server's CALLOFFER
        # for the same call. Made certain here: the call is connected first (§5), then the
        # CALLREQ. The offer must join that call, not end it and race again.
        bianca, old, stream = self.section5_call()
        reply = old.control.request({"msgtype": "CALLREQ", "userid": "olda", "callee": "bianca"})
        self.assertEqual(reply["status"], "SUCCESS", reply)
        Section5Peer.say(stream, "still the same call")
        bianca.expect(r"^connected to olda \(direct, ")
        bianca.expect("^olda> still the same call$")
        bianca.send("yes")
        self.assertEqual(Section5Peer.hear(stream), "yes")
        self.assert_no_second_race(bianca)
        stream.close()

    def test_an_offer_that_comes_after_the_chat_began_is_this_calls_and_ignored(self):
        # The same race, one step further: the caller's first record also overtook the offer,
        # so the chat is on when the offer comes. It must not start a second race (nor a relay).
        bianca, old, stream = self.section5_call()
        Section5Peer.say(stream, "chatting already")
        bianca.expect(r"^connected to olda \(direct, ")
        bianca.expect("^olda> chatting already$")
        reply = old.control.request({"msgtype": "CALLREQ", "userid": "olda", "callee": "bianca"})
        self.assertEqual(reply["status"], "SUCCESS", reply)
        self.assert_no_second_race(bianca)
        bianca.send("still here")
        self.assertEqual(Section5Peer.hear(stream), "still here")
        stream.close()


class AskFirst(PeerTest):
    """The shipped Configs/peer.conf with `answer = ask`: the user accepts or rejects a call."""

    def test_ask_then_reject_then_accept(self):
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "Configs", "peer.conf")) as file:
            shipped = file.read()
        config = config_file(self, "ask.conf", shipped.replace("answer = auto", "answer = ask"))
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca", "--config", config)
        ali.send("/chat bianca")
        bianca.expect(r"^ali is calling \(fingerprint [0-9a-f ]+\): /accept or /reject$")
        bianca.send("/reject")
        ali.expect("^refused: bianca: declined$")
        ali.send("/chat bianca")
        bianca.expect(r"^ali is calling ")
        bianca.send("/accept")
        ali.expect(r"^connected to bianca \(")
        bianca.expect(r"^connected to ali \(")


class Interop(PeerTest):
    """Ali on OpenSSL, Bianca on libgcrypt (and the server on libgcrypt too), for each cipher:
    the backends agree on the wire."""

    server_args = ("--backend", "gcrypt")

    def test_openssl_and_gcrypt_chat_over_each_cipher(self):
        for cipher in ("chachapoly", "aesgcm"):
            ali = self.signed_in(f"ali-{cipher}", "--backend", "openssl", "--cipher", cipher)
            bianca = self.signed_in(f"bianca-{cipher}", "--backend", "gcrypt", "--cipher", cipher)
            self.connect(ali, bianca)
            for index in range(11):
                ali.send(f"openssl says {index}")
                bianca.expect(rf"^{ali.user}> openssl says {index}$")
                bianca.send(f"gcrypt says {index}")
                ali.expect(rf"^{bianca.user}> gcrypt says {index}$")
            self.hang_up(ali, bianca)


class Unprivileged(PeerTest):
    def test_the_binary_runs_without_privileges(self):
        ali = self.signed_in("ali")
        with open(f"/proc/{self.server.process.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        if unprivileged.AS_ROOT:
            # setpriv execs the binary in place: this is the server's own process.
            self.assertEqual(fields["Uid"].split()[0], str(unprivileged.TEST_UID))
            self.assertEqual(int(fields["CapEff"], 16), 0)
            self.assertEqual(int(fields["CapBnd"], 16), 0)
        ali.send("/quit")
        self.assertEqual(ali.wait(), 0)


if __name__ == "__main__":
    unittest.main()
