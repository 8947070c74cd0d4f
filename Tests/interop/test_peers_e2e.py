"""End to end with the real binary as separate processes on loopback, in line mode: a server,
ali and bianca (and carol), as PROTOCOL.md §5–7 and CLI.md describe them."""
import os
import unittest

from peers import PeerTest


class Chat(PeerTest):
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
        self.signed_in("ali", passcode="right").send("/quit")
        wrong = self.peer("ali", "wrong", signup=False)
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
        bianca2 = self.signed_in("bianca", signup=False, home=self.home("bianca-new-device"))
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

    def test_a_key_pinned_from_a_call_received_is_checked_on_the_next_call_made(self):
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca")
        self.connect(bianca, ali)  # ali pins bianca's key as the one who was called
        ali.expect("^pinned the key of bianca: ")
        bianca.send("/quit")
        ali.expect("^Hang up$")
        self.signed_in("bianca", signup=False, home=self.home("bianca-new-device"))
        ali.send("/chat bianca")
        ali.expect(r"^refused: the key of bianca changed\. ")

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


class AskFirst(PeerTest):
    """The shipped Configs/peer.conf with `answer = ask`: the user accepts or rejects a call."""

    def test_ask_then_reject_then_accept(self):
        shipped = open(os.path.join(os.path.dirname(__file__), "..", "..", "Configs", "peer.conf")).read()
        config = os.path.join(self.root, "ask.conf")
        with open(config, "w") as file:
            file.write(shipped.replace("answer = auto", "answer = ask"))
        ali, bianca = self.signed_in("ali"), self.signed_in("bianca", "--config", config)
        ali.send("/chat bianca")
        bianca.expect(r"^ali is calling \(fingerprint [0-9a-f ]+\): /accept or /reject$")
        bianca.send("/reject")
        ali.expect("^refused: bianca: declined$")
        ali.send("/chat bianca")
        bianca.expect(r"^ali is calling ")
        bianca.send("/accept")
        ali.expect("^connected to bianca$")
        bianca.expect("^connected to ali$")


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
            ali.send("/hangup")
            bianca.expect("^Hang up$")


if __name__ == "__main__":
    unittest.main()
