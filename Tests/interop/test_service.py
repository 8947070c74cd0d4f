"""The shipped systemd unit, run in its own sandbox. systemd cannot run here (it is not PID 1), so
the unit's sandbox is built the way systemd builds it: a dynamic user with no groups and no
capabilities (setpriv), the whole file system read-only but the state directory, a private
/tmp, no home directories (a mount namespace). Its ExecStart runs as written: the binary is put
at /usr/local/bin/securechat inside the namespace, and only the config path is changed (to a copy
on a tmpfs at /mnt), so the test works wherever the checkout is, under /home or /tmp too."""
import configparser
import os
import re
import shlex
import shutil
import signal
import subprocess
import unittest

import unprivileged
from peers import BINARY, PASSCODE, PeerTest, START_LINE, Process

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "Configs", "securechat-server.service")


def unit_service_section():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNIT)
    return parser["Service"]


@unittest.skipUnless(unprivileged.AS_ROOT and shutil.which("unshare"), "needs root to build the sandbox (CI runs as root)")
class Service(PeerTest):
    def setUp(self):
        # No server of PeerTest's: the unit's is the server here.
        self.root = unprivileged.private_directory("securechat-service-")
        self.addCleanup(shutil.rmtree, self.root)

    def test_the_unit_serves_in_its_sandbox(self):
        service = unit_service_section()
        # What the sandbox below reproduces: fail here if the unit asks for something else.
        self.assertEqual(service["DynamicUser"], "yes")
        self.assertEqual(service["CapabilityBoundingSet"], "")
        self.assertEqual(service["NoNewPrivileges"], "yes")
        self.assertEqual(service["ProtectSystem"], "strict")
        self.assertEqual(service["ProtectHome"], "yes")
        self.assertEqual(service["PrivateTmp"], "yes")
        self.assertEqual(service["StateDirectory"], "securechat")
        command = shlex.split(service["ExecStart"])
        self.assertEqual(command[0], "/usr/local/bin/securechat")
        config_index = command.index("--config") + 1
        # The shipped config, but on a loopback port free for this test (it listens on :7400).
        with open(os.path.join(ROOT, "Configs", "server.conf")) as file:
            shipped = file.read()
        self.assertRegex(shipped, r"(?m)^listen = :7400$", "the shipped config listens where friends can reach it")
        config_dir = os.path.join(ROOT, ".build", "service-test")
        os.makedirs(config_dir, exist_ok=True)
        config = os.path.join(config_dir, "server.conf")
        with open(config, "w") as file:
            file.write(re.sub(r"(?m)^listen = .*$", "listen = 127.0.0.1:0", shipped))
        os.chmod(config, 0o644)
        command[config_index] = "/mnt/server.conf"
        uid = unprivileged.TEST_UID
        # The copies are made before /tmp and the home directories are hidden: the checkout may be there.
        sandbox = f"""
            set -e
            mount --make-rprivate /
            mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin
            cp {shlex.quote(os.path.abspath(BINARY))} /usr/local/bin/securechat
            mount -t tmpfs -o mode=0755 tmpfs /mnt
            cp {shlex.quote(config)} /mnt/server.conf
            mount -t tmpfs -o mode=1777 tmpfs /tmp
            for home in /root /home; do mount -t tmpfs -o mode=0755 tmpfs $home; done
            mount -t tmpfs -o mode=0755 tmpfs /var/lib
            mkdir -m 0700 /var/lib/securechat && chown {uid}:{uid} /var/lib/securechat
            mount -o remount,bind,ro /
            exec setpriv --reuid={uid} --regid={uid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- {shlex.join(command)}
            """
        server = Process(["unshare", "--mount", "--", "sh", "-c", sandbox], privileged=True)
        self.addCleanup(server.stop)
        match = server.expect(START_LINE.pattern, timeout=20)
        self.server = type("UnitServer", (), {"address": f"{match.group(1)}:{match.group(2)}", "key": match.group(3)})()
        ali = self.signed_in("ali")
        bianca = self.signed_in("bianca")
        ali.send("/list")
        ali.expect("^online: ali, bianca$")
        self.connect(ali, bianca)
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(), 0)
        self.assertFalse(any("warning" in line or "error" in line for line in server.lines), server.lines)

    def test_nothing_outside_the_state_directory_is_writable_there(self):
        os.makedirs(os.path.join(ROOT, ".build", "service-test"), exist_ok=True)
        sandbox = """
            set -e
            mount --make-rprivate /
            mount -o remount,bind,ro /
            exec setpriv --reuid=%d --regid=%d --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- \
                %s serve --listen 127.0.0.1:0 --data-dir %s
            """ % (unprivileged.TEST_UID, unprivileged.TEST_UID, shlex.quote(os.path.abspath(BINARY)),
                   shlex.quote(os.path.join(ROOT, ".build", "service-test", "elsewhere")))
        run = subprocess.run(["unshare", "--mount", "--", "sh", "-c", sandbox], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(run.returncode, 0)
        self.assertRegex(run.stderr.strip(), r"^Error: cannot create directory .*elsewhere: read-only file system$")
