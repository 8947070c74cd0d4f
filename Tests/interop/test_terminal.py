"""The interactive terminal, as a person uses it: ali in a real terminal (tmux, 100 × 30), bianca
in line mode, both as an unprivileged user. Keys are sent as tmux sends them when typed."""
import os
import shutil
import subprocess
import time
import unittest

import unprivileged
from peers import BINARY, PASSCODE, PeerTest

SESSION = f"securechat-test-{os.getpid()}"


def type_line(text):
    """Types `text` literally (tmux would read a word like `right` as the arrow key), then Enter."""
    tmux("send-keys", "-t", SESSION, "-l", text)
    tmux("send-keys", "-t", SESSION, "Enter")


def keys(*names):
    tmux("send-keys", "-t", SESSION, *names)


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
    def peer_command(self, user, *flags):
        return unprivileged.shell_command(["env", f"HOME={self.home(user)}", BINARY, "peer", "--user", user, *flags,
                                           "--server", self.server.address, "--server-key", self.server.key,
                                           "--listen", "127.0.0.1:0"])

    def terminal_peer(self, user, *flags):
        """`securechat peer` in a tmux pane; its exit status is shown as `EXITED n`."""
        tmux("new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", f"{self.peer_command(user, *flags)}; echo EXITED $?; sleep 30")
        self.addCleanup(subprocess.run, ["tmux", "kill-session", "-t", SESSION], capture_output=True)

    def signed_in_terminal(self, user="ali"):
        """A new account signed up in the terminal: the passcode asked twice, never echoed."""
        self.terminal_peer(user, "--signup")
        wait_for_screen(lambda lines: last_line(lines) == f"New passcode for {user}:")
        type_line(PASSCODE)
        wait_for_screen(lambda lines: last_line(lines) == "The same passcode again:")
        type_line(PASSCODE)
        lines = wait_for_screen(lambda lines: any(line.startswith(f"signed in as {user}") for line in lines))
        self.assertFalse(any(PASSCODE in line for line in lines), "the passcode was echoed")

    def call_from_terminal(self, bianca):
        type_line("/chat bianca")
        bianca.expect(r"^connected to ali \(")
        wait_for_screen(lambda lines: any(line.startswith("connected to bianca (") for line in lines))

    def test_typing_survives_incoming_lines_and_ctrl_c_hangs_up_then_quits(self):
        bianca = self.signed_in("bianca")
        self.signed_in_terminal()
        self.call_from_terminal(bianca)
        # Ali is half-way through a line when bianca's lines arrive.
        tmux("send-keys", "-t", SESSION, "-l", "half typed")
        wait_for_screen(lambda lines: last_line(lines) == "> half typed")
        for index in range(3):
            bianca.send(f"incoming {index}")
        lines = wait_for_screen(lambda lines: any(line.endswith("bianca> incoming 2") for line in lines))
        self.assertTrue(any(line.endswith("bianca> incoming 0") for line in lines))
        self.assertRegex(next(line for line in lines if line.endswith("bianca> incoming 0")), r"^\[\d\d:\d\d\] bianca> incoming 0$",
                         "a terminal shows the time before chat lines")
        self.assertEqual(last_line(lines), "> half typed", "the line being typed was broken:\n" + "\n".join(lines))
        tmux("send-keys", "-t", SESSION, "-l", " and finished")
        keys("Enter")
        bianca.expect("^ali> half typed and finished$")
        # Ctrl-C while chatting hangs up on both sides; Ctrl-C again quits.
        keys("C-c")
        bianca.expect(r"^Hang up \(ali\)$")
        wait_for_screen(lambda lines: "Hang up (you)" in lines)
        keys("C-c")
        wait_for_screen(lambda lines: "EXITED 0" in lines)
        bianca.expect("^ali is offline$")

    def test_editing_keys_history_and_unknown_escapes(self):
        bianca = self.signed_in("bianca")
        self.signed_in_terminal()
        self.call_from_terminal(bianca)
        # ← inserts inside the line (today's bug: `[D` in the message); Home, End.
        tmux("send-keys", "-t", SESSION, "-l", "helo")
        keys("Left", "l", "Home", "-", "End", "!", "Enter")
        bianca.expect("^ali> -hello!$")
        # Ctrl-W deletes a word, Ctrl-A/Ctrl-E move, Ctrl-K kills to the end, an F-key is swallowed.
        tmux("send-keys", "-t", SESSION, "-l", "one two three")
        keys("C-w", "C-a", "C-k")
        tmux("send-keys", "-t", SESSION, "-l", "fresh")
        keys("F5", "PageUp", "Insert", "C-e", "Enter")
        bianca.expect("^ali> fresh$")
        # History: ↑ brings back the earlier line, ↓ goes back to the new one.
        keys("Up", "Up")
        wait_for_screen(lambda lines: last_line(lines) == "> -hello!")
        keys("Down", "Enter")
        bianca.expect("^ali> fresh$")

    def test_lines_wider_than_the_terminal(self):
        bianca = self.signed_in("bianca")
        self.signed_in_terminal()
        self.call_from_terminal(bianca)
        before = screen()
        long = "".join(f"{index:03d}-" for index in range(38))  # 152 characters: wider than 100 columns
        tmux("send-keys", "-t", SESSION, "-l", long)
        lines = wait_for_screen(lambda lines: last_line(lines) == "> " + long[-97:])
        self.assertEqual([line for line in lines if line][:-1], [line for line in before if line][:-1],
                         "typing a wide line leaves no stale rows")
        keys("Enter")
        bianca.expect(f"^ali> {long}$")
        # A 10,000-character paste: one row while it is typed, and sent whole.
        paste = "x" * 10_000
        tmux("send-keys", "-t", SESSION, "-l", paste)
        lines = wait_for_screen(lambda lines: last_line(lines) == "> " + "x" * 97, timeout=30)
        self.assertEqual(sum("xxxx" in line for line in lines), 1, "the paste takes one row:\n" + "\n".join(lines))
        keys("Enter")
        self.assertEqual(len(bianca.expect("^ali> (x+)$", timeout=20).group(1)), 10_000)

    def test_ctrl_z_and_fg_restore_the_terminal(self):
        bianca = self.signed_in("bianca")
        # An interactive shell, so that the job can be stopped and brought back.
        tmux("new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", "bash --norc --noprofile")
        self.addCleanup(subprocess.run, ["tmux", "kill-session", "-t", SESSION], capture_output=True)
        type_line("PS1='$ '; " + self.peer_command("ali", "--signup"))
        wait_for_screen(lambda lines: last_line(lines) == "New passcode for ali:")
        type_line(PASSCODE)
        wait_for_screen(lambda lines: last_line(lines) == "The same passcode again:")
        type_line(PASSCODE)
        wait_for_screen(lambda lines: any(line.startswith("signed in as ali") for line in lines))
        keys("C-z")
        wait_for_screen(lambda lines: any("Stopped" in line for line in lines) and last_line(lines) == "$")
        type_line("fg")
        wait_for_screen(lambda lines: last_line(lines) == ">")
        tmux("send-keys", "-t", SESSION, "-l", "after fg")
        lines = wait_for_screen(lambda lines: last_line(lines) == "> after fg")
        self.assertFalse(any("after fgafter fg" in line or line == "after fg" for line in lines), "typed keys are echoed once, by us")
        keys("C-u")
        type_line("/chat bianca")
        bianca.expect(r"^connected to ali \(")
        type_line("one line")
        bianca.expect("^ali> one line$")
        wait_for_screen(lambda lines: sum(line.endswith("> one line") for line in lines) == 1)

    def test_what_the_other_side_sends_cannot_drive_the_terminal(self):
        bianca = self.signed_in("bianca")
        self.signed_in_terminal()
        self.call_from_terminal(bianca)
        title = tmux("display-message", "-p", "-t", SESSION, "#{pane_title}")
        # A window title (OSC 0), a clipboard write (OSC 52), a cursor move and an erase, then a
        # fake status line drawn over the one above.
        bianca.send("\x1b]0;owned\x07\x1b]52;c;b3duZWQ=\x07\x1b[1A\x1b[2Kthe key of carol changed")
        lines = wait_for_screen(lambda lines: any("carol changed" in line for line in lines))
        shown = next(line for line in lines if "carol changed" in line)
        self.assertIn("bianca> ^[]0;owned^G^[]52;c;b3duZWQ=^G^[[1A^[[2Kthe key of carol changed", shown)
        self.assertEqual(tmux("display-message", "-p", "-t", SESSION, "#{pane_title}"), title, "the window title is ours")

    def test_a_wrong_passcode_says_so_and_asks_again(self):
        carol = self.signed_in("carol", passcode="right-passcode")
        carol.send("/quit")
        carol.wait()
        self.terminal_peer("carol")
        wait_for_screen(lambda lines: last_line(lines) == "Passcode for carol:")
        type_line("wrong-passcode")
        wait_for_screen(lambda lines: "sign-in refused: wrong user ID or passcode" in lines
                        and last_line(lines) == "Passcode for carol:")
        type_line("right-passcode")
        wait_for_screen(lambda lines: any(line.startswith("signed in as carol") for line in lines))
        keys("C-d")
        lines = wait_for_screen(lambda lines: "EXITED 0" in lines)
        self.assertFalse(any("passcode" in line and "refused" not in line and "Passcode for" not in line for line in lines),
                         "a passcode was echoed")


if __name__ == "__main__":
    unittest.main()
