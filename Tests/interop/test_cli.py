"""The command line as people meet it (issue 11): --help with required options marked, examples
and config-only settings; mistakes in words with the usage; shell completions that real bash
completes with; a man page that groff renders without a warning."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import unprivileged
from peers import BINARY


def securechat(*args, stdin=None):
    return subprocess.run(unprivileged.command([BINARY, *args]), capture_output=True, text=True, input=stdin, timeout=30)


class Help(unittest.TestCase):
    def test_every_command_has_help_with_examples(self):
        for command in (["serve"], ["peer"], ["user"], ["user", "add"], ["user", "remove"], ["user", "list"], ["user", "passwd"],
                        ["passwd"], ["key", "show"], ["bench"], ["selftest"], ["version"], ["completions"], ["manual"]):
            run = securechat(*command, "--help")
            self.assertEqual(run.returncode, 0, command)
            self.assertTrue(run.stdout.startswith("OVERVIEW: "), command)
            self.assertIn("\nUSAGE: securechat " + " ".join(command), run.stdout)
            self.assertRegex(run.stdout, r"\nEXAMPLES:\n  .*securechat ", command)
            self.assertIn("-h, --help", run.stdout)
            self.assertTrue(all(len(line) <= 80 for line in run.stdout.splitlines()), command)
        # help COMMAND is the same text.
        self.assertEqual(securechat("help", "user", "add").stdout, securechat("user", "add", "--help").stdout)

    def test_required_settings_and_config_only_settings_are_listed(self):
        peer = securechat("peer", "--help").stdout
        self.assertIn("--user NAME               Your user ID (required, here or in the config).", peer)
        self.assertIn("Config-only settings (see Configs/peer.conf): known-peers,", peer)
        serve = securechat("serve", "--help").stdout
        self.assertIn("--[no-]relay", serve)
        self.assertIn("Config-only settings: scrypt-log-n,", serve)

    def test_the_program_alone_shows_its_commands_and_fails(self):
        run = securechat()
        self.assertEqual(run.returncode, 1)
        self.assertIn("COMMANDS:\n  serve ", run.stderr)
        self.assertEqual(run.stdout, "")

    def test_mistakes_are_said_in_words_with_the_usage(self):
        run = securechat("peer", "--usr", "ali")
        self.assertEqual(run.returncode, 64)
        self.assertEqual(run.stderr, "Error: unknown option --usr for peer (did you mean --user?)\n"
                                     "Usage: securechat peer [OPTIONS]\n  See 'securechat peer --help'.\n")
        run = securechat("serv")
        self.assertIn("Error: unknown command \"serv\" (did you mean serve?)", run.stderr)
        run = securechat("serve", "--relay-calls", "0")
        self.assertIn("Error: --relay-calls: \"0\" is not a whole number from 1 to 1000000", run.stderr)
        run = securechat("peer", "--chat")
        self.assertIn("Error: --chat needs a value: --chat NAME", run.stderr)
        # What was typed is shown visibly, never as terminal control.
        run = securechat("peer", "--\x1b]0;owned\x07")
        self.assertNotIn("\x1b", run.stderr)
        self.assertIn("^[", run.stderr)


class Completions(unittest.TestCase):
    def complete(self, line):
        """What bash offers for `line` (the cursor at its end) with our script loaded."""
        script = securechat("completions", "bash").stdout
        words = line.split(" ")
        program = f"""
{script}
COMP_WORDS=({' '.join(repr(word) for word in words)})
COMP_CWORD={len(words) - 1}
_securechat
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
        run = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, timeout=10,
                             cwd=self.directory)
        self.assertEqual(run.stderr, "")
        return sorted(filter(None, run.stdout.split("\n")))

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="securechat-completion-")
        self.addCleanup(shutil.rmtree, self.directory)
        open(os.path.join(self.directory, "server.key"), "w").close()

    def test_bash_completes_commands_options_choices_and_files(self):
        self.assertEqual(self.complete("securechat pe"), ["peer"])
        self.assertEqual(self.complete("securechat peer --ser"), ["--server", "--server-key"])
        self.assertEqual(self.complete("securechat serve --backend "), ["gcrypt", "openssl"])
        self.assertEqual(self.complete("securechat serve --no-r"), ["--no-relay"])
        self.assertEqual(self.complete("securechat user "), ["--help", "add", "list", "passwd", "remove"])
        self.assertEqual(self.complete("securechat user add carol --data"), ["--data-dir"])
        self.assertEqual(self.complete("securechat key show ser"), ["server.key"])
        self.assertEqual(self.complete("securechat passwd --"), sorted(["--user", "--config", "--server", "--server-key",
                                                                         "--key-file", "--help"]))

    def test_fish_completes_the_same_way(self):
        if shutil.which("fish") is None:
            self.skipTest("NOT RUN: fish is not installed here")
        script = os.path.join(self.directory, "securechat.fish")
        with open(script, "w") as file:
            file.write(securechat("completions", "fish").stdout)

        def complete(line):
            run = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"], capture_output=True,
                                 text=True, timeout=10)
            return sorted(entry.split("\t")[0] for entry in run.stdout.splitlines())

        self.assertEqual(complete("securechat pe"), ["peer"])
        self.assertEqual(complete("securechat serve --backend "), ["gcrypt", "openssl"])
        self.assertEqual(complete("securechat user "), ["add", "list", "passwd", "remove"])
        # `passwd` alone and `user passwd` are different commands with different options.
        self.assertIn("--server-key", complete("securechat passwd --"))
        self.assertNotIn("--server-key", complete("securechat user passwd --"))

    def test_zsh_and_fish_scripts_parse(self):
        for shell, check in (("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])):
            if shutil.which(shell) is None:
                print(f"\n  NOT RUN: {shell} is not installed here", flush=True)
                continue
            with self.subTest(shell=shell):
                script = securechat("completions", shell).stdout
                run = subprocess.run([*check], input=script, capture_output=True, text=True, timeout=10)
                self.assertEqual((run.returncode, run.stderr), (0, ""))


class Manual(unittest.TestCase):
    def test_the_man_page_renders_cleanly_with_every_command(self):
        page = securechat("manual").stdout
        self.assertTrue(page.startswith(".TH SECURECHAT 1 "))
        run = subprocess.run(["groff", "-man", "-Tutf8", "-ww"], input=page, capture_output=True, text=True, timeout=30)
        self.assertEqual(run.stderr, "")
        text = re.sub(".\x08", "", run.stdout)  # no overstrike bold
        for heading in ("securechat serve", "securechat peer", "securechat user add", "securechat key show", "securechat bench"):
            self.assertIn(heading, text)
        self.assertIn("--passcode-file FILE", text)


class Install(unittest.TestCase):
    def test_install_puts_the_binary_man_page_and_completions_where_tools_find_them(self):
        prefix = unprivileged.private_directory("securechat-install-")
        self.addCleanup(shutil.rmtree, prefix)
        script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "install.sh")
        run = subprocess.run(unprivileged.command([script, prefix, os.path.realpath(BINARY)]), capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        installed = os.path.join(prefix, "bin", "securechat")
        self.assertEqual(subprocess.run([installed, "version"], capture_output=True).returncode, 0)
        man = subprocess.run(["man", "-l", os.path.join(prefix, "share/man/man1/securechat.1")], capture_output=True, text=True,
                             env=dict(os.environ, MANPAGER="cat", MANWIDTH="80"), timeout=30)
        self.assertIn("securechat peer", man.stdout)
        bash = subprocess.run(["bash", "--norc", "-c", f"source {prefix}/share/bash-completion/completions/securechat; complete -p securechat"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(bash.stdout.strip(), "complete -F _securechat securechat")
        for path in ("share/zsh/site-functions/_securechat", "share/fish/vendor_completions.d/securechat.fish"):
            self.assertTrue(os.path.getsize(os.path.join(prefix, path)) > 0, path)


if __name__ == "__main__":
    unittest.main()
