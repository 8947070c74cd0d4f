"""The interactive terminal path, as a person uses it: ali in a real terminal (tmux), bianca in
line mode. Typing into ali's pane while bianca's lines arrive must not break the line being typed."""
import os
import shutil
import subprocess
import time
import unittest

from peers import BINARY, PeerTest

SESSION = f"securechat-test-{os.getpid()}"


def type_line(text):
    """Types `text` literally (tmux would read a word like `right` as the arrow key), then Enter."""
    tmux("send-keys", "-t", SESSION, "-l", text)
    tmux("send-keys", "-t", SESSION, "Enter")


def tmux(*args):
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen():
    return [line.rstrip() for line in tmux("capture-pane", "-p", "-t", SESSION).splitlines()]


def wait_for_screen(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = screen()
        if predicate(lines):
            return lines
        time.sleep(0.05)
    raise AssertionError("the terminal never showed what was expected:\n" + "\n".join(screen()))


def last_line(lines):
    filled = [line for line in lines if line]
    return filled[-1] if filled else ""


@unittest.skipUnless(shutil.which("tmux"), "tmux is not installed")
class Terminal(PeerTest):
    def terminal_peer(self, user, *flags):
        """`securechat peer` in a tmux pane; its exit status is shown as `EXITED n`."""
        home = self.home(user)
        command = (f"env HOME={home} {BINARY} peer --user {user} {' '.join(flags)} --server {self.server.address} "
                   f"--server-key {self.server.key} --listen 127.0.0.1:0; echo EXITED $?; sleep 30")
        tmux("new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", command)
        self.addCleanup(subprocess.run, ["tmux", "kill-session", "-t", SESSION], capture_output=True)

    def test_typing_survives_incoming_lines_and_ctrl_c_hangs_up_then_quits(self):
        bianca = self.signed_in("bianca")
        self.terminal_peer("ali", "--signup")

        wait_for_screen(lambda lines: last_line(lines) == "Passcode for ali:")
        type_line("secret-pa")
        lines = wait_for_screen(lambda lines: any(line.startswith("signed in as ali") for line in lines))
        self.assertFalse(any("secret-pa" in line for line in lines), "the passcode was echoed")

        type_line("/chat bianca")
        bianca.expect("^connected to ali$")
        wait_for_screen(lambda lines: "connected to bianca" in lines)

        # Ali is half-way through a line when bianca's lines arrive.
        tmux("send-keys", "-t", SESSION, "-l", "half typed")
        wait_for_screen(lambda lines: last_line(lines) == "> half typed")
        for index in range(3):
            bianca.send(f"incoming {index}")
        lines = wait_for_screen(lambda lines: "bianca> incoming 2" in lines)
        self.assertIn("bianca> incoming 0", lines)
        self.assertEqual(last_line(lines), "> half typed", "the line being typed was broken:\n" + "\n".join(lines))
        tmux("send-keys", "-t", SESSION, "-l", " and finished")
        tmux("send-keys", "-t", SESSION, "Enter")
        bianca.expect("^ali> half typed and finished$")

        # Ctrl-C while chatting hangs up on both sides; Ctrl-C again quits.
        tmux("send-keys", "-t", SESSION, "C-c")
        bianca.expect("^Hang up$")
        wait_for_screen(lambda lines: "Hang up" in lines)
        tmux("send-keys", "-t", SESSION, "C-c")
        wait_for_screen(lambda lines: "EXITED 0" in lines)
        bianca.expect("^ali is offline$")

    def test_a_wrong_passcode_says_so_and_asks_again(self):
        carol = self.signed_in("carol", passcode="right")
        carol.send("/quit")
        carol.wait()
        self.terminal_peer("carol")
        wait_for_screen(lambda lines: last_line(lines) == "Passcode for carol:")
        type_line("wrong")
        wait_for_screen(lambda lines: "sign-in refused: wrong user ID or passcode" in lines
                        and last_line(lines) == "Passcode for carol:")
        type_line("right")
        wait_for_screen(lambda lines: any(line.startswith("signed in as carol") for line in lines))
        tmux("send-keys", "-t", SESSION, "C-d")
        lines = wait_for_screen(lambda lines: "EXITED 0" in lines)
        self.assertFalse(any("wrong" in line and "refused" not in line for line in lines), "a passcode was echoed")


if __name__ == "__main__":
    unittest.main()
