"""A small internet in network namespaces, to run the real binary where users are: behind home
routers, two on one LAN, behind a carrier-grade NAT, on IPv6.

Documentation ranges only, and no link to this machine's own network:

    internet  203.0.113.0/24 and 2001:db8:1::/64 on one bridge
      server 203.0.113.10  ::10        pub1 203.0.113.21  ::21     pub2 203.0.113.22  ::22
      v6a 2001:db8:1::41 and v6b ::42  (IPv6 only)
      rA  .31  masquerade, drops unsolicited inbound   LAN 198.51.100.0/26:   a1 .11, a2 .12
      rB  .32  the same                                LAN 198.51.100.64/26:  b1 .75
      rR  .33  masquerade, answers unsolicited SYNs with RST   LAN 198.51.100.128/26: r1 .139
      rS  .34  symmetric mapping (--random-fully), drops       LAN 198.51.100.192/26: s1 .203
      cgn .35  carrier-grade NAT, drops; inside 192.0.2.0/26
        rC 192.0.2.11  a home router behind it, drops  LAN 192.0.2.64/26:     c1 .75

Needs root (namespaces, iptables); the binary itself runs in them as the unprivileged user.
Everything is torn down whatever happens: the namespaces carry this process's id, and leftovers
of a run that died are removed at the next start."""
import os
import re
import shutil
import signal
import subprocess

import unprivileged
from peers import BINARY, Process

PREFIX = "sclab"
SERVER_V4, SERVER_V6 = "203.0.113.10", "2001:db8:1::10"
SERVER_PORT = 7400
PEER_PORT = 7500

# host: (IPv4/prefix or None, IPv6/prefix or None) on the internet bridge
PUBLIC = {
    "server": ("203.0.113.10/24", "2001:db8:1::10/64"),
    "pub1": ("203.0.113.21/24", "2001:db8:1::21/64"),
    "pub2": ("203.0.113.22/24", "2001:db8:1::22/64"),
    "v6a": (None, "2001:db8:1::41/64"),
    "v6b": (None, "2001:db8:1::42/64"),
}
# router: (WAN address/prefix, upstream router or None for the internet, kind, LAN gateway/prefix, {host: address})
ROUTERS = {
    "rA": ("203.0.113.31/24", None, "drop", "198.51.100.1/26", {"a1": "198.51.100.11", "a2": "198.51.100.12"}),
    "rB": ("203.0.113.32/24", None, "drop", "198.51.100.65/26", {"b1": "198.51.100.75"}),
    "rR": ("203.0.113.33/24", None, "reset", "198.51.100.129/26", {"r1": "198.51.100.139"}),
    "rS": ("203.0.113.34/24", None, "symmetric", "198.51.100.193/26", {"s1": "198.51.100.203"}),
    "cgn": ("203.0.113.35/24", None, "drop", "192.0.2.1/26", {}),
    "rC": ("192.0.2.11/26", "cgn", "drop", "192.0.2.65/26", {"c1": "192.0.2.75"}),
}
# Where each router's WAN side gets its packets delivered.
GATEWAY = {"cgn": "192.0.2.1"}


def missing_tools():
    """What this lab cannot run without here, in words (empty: it can run)."""
    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces and iptables)"
    for tool in ("ip", "iptables", "setpriv"):
        if shutil.which(tool) is None:
            return f"the network lab needs `{tool}` (scripts/setup.sh installs it)"
    return ""


def run(*args, check=True):
    result = subprocess.run(args, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"lab: `{' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


class Lab:
    def __init__(self):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.made = []
        self.processes = []

    # --- building ---------------------------------------------------------------------------

    def __enter__(self):
        remove_leftovers()
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()

    def ns(self, host):
        return f"{self.tag}-{host}"

    def _namespace(self, host):
        run("ip", "netns", "add", self.ns(host))
        self.made.append(host)
        run("ip", "-n", self.ns(host), "link", "set", "lo", "up")
        # No router advertisements or duplicate-address waits: addresses are usable at once.
        self.sysctl(host, "net.ipv6.conf.all.accept_dad", "0")
        self.sysctl(host, "net.ipv6.conf.default.accept_dad", "0")

    def sysctl(self, host, key, value):
        run("ip", "netns", "exec", self.ns(host), "sysctl", "-qw", f"{key}={value}")

    def _bridge(self, host, name):
        run("ip", "-n", self.ns(host), "link", "add", name, "type", "bridge")
        run("ip", "-n", self.ns(host), "link", "set", name, "up")

    def _plug(self, host, interface, bridge_host, bridge):
        """A veth from `host` (named `interface` there) into `bridge` in `bridge_host`."""
        far = f"v-{host}"[:15]
        run("ip", "-n", self.ns(host), "link", "add", interface, "type", "veth", "peer", "name", far,
            "netns", self.ns(bridge_host))
        run("ip", "-n", self.ns(bridge_host), "link", "set", far, "master", bridge, "up")
        run("ip", "-n", self.ns(host), "link", "set", interface, "up")

    def _address(self, host, interface, address):
        family = "-6" if ":" in address else "-4"
        extra = ["nodad"] if family == "-6" else []
        run("ip", "-n", self.ns(host), family, "addr", "add", address, "dev", interface, *extra)

    def _route_default(self, host, gateway):
        family = "-6" if ":" in gateway else "-4"
        run("ip", "-n", self.ns(host), family, "route", "add", "default", "via", gateway)

    def _iptables(self, host, *rule):
        run("ip", "netns", "exec", self.ns(host), "iptables", "-w", *rule)

    def build(self):
        self._namespace("inet")
        self._bridge("inet", "br0")
        for host, addresses in PUBLIC.items():
            self._namespace(host)
            self._plug(host, "eth0", "inet", "br0")
            for address in addresses:
                if address:
                    self._address(host, "eth0", address)
        for router, (wan, upstream, kind, lan, hosts) in ROUTERS.items():
            self._router(router, wan, upstream, kind, lan)
            for host, address in hosts.items():
                self._namespace(host)
                self._plug(host, "eth0", router, "lan0")
                self._address(host, "eth0", address + "/" + lan.split("/")[1])
                self._route_default(host, lan.split("/")[0])

    def _router(self, router, wan, upstream, kind, lan):
        self._namespace(router)
        self._plug(router, "wan0", upstream or "inet", "lan0" if upstream else "br0")
        self._address(router, "wan0", wan)
        if upstream:
            self._route_default(router, GATEWAY[upstream])
        self._bridge(router, "lan0")
        self._address(router, "lan0", lan)
        self.sysctl(router, "net.ipv4.ip_forward", "1")
        masquerade = ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"]
        self._iptables(router, *masquerade, *(["--random-fully"] if kind == "symmetric" else []))
        established = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]
        self._iptables(router, "-A", "FORWARD", "-i", "wan0", *established)
        self._iptables(router, "-A", "FORWARD", "-i", "wan0", "-j", "DROP")
        self._iptables(router, "-A", "INPUT", "-i", "wan0", *established)
        if kind == "reset":
            self._iptables(router, "-A", "INPUT", "-i", "wan0", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
        else:
            self._iptables(router, "-A", "INPUT", "-i", "wan0", "-j", "DROP")

    # --- running ----------------------------------------------------------------------------

    def start(self, host, args, env=None, as_root=False):
        """The real binary (as the unprivileged user) in `host`'s namespace; `as_root` for test
        tools of our own (the Python stream endpoints, whose interpreter may be in root's home)."""
        command = list(args) if as_root else unprivileged.command(args)
        process = Process(["ip", "netns", "exec", self.ns(host), *command], env=env, privileged=True)
        self.processes.append(process)
        return process

    def capture(self, host, path, interface="eth0"):
        """tcpdump (root, as a capture is) of every TCP packet on `host`'s interface, into `path`.
        Immediate mode: each packet is written as it comes, none waits in a buffer to be lost at the end."""
        process = subprocess.Popen(["ip", "netns", "exec", self.ns(host), "tcpdump", "--immediate-mode", "-i", interface, "-U", "-s", "0",
                                    "-w", path, "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on" once it captures.
        process.stderr.readline()
        return process

    def teardown(self):
        for process in self.processes:
            process.stop()
        self.processes.clear()
        for host in reversed(self.made):
            kill_namespace(self.ns(host))
        self.made.clear()


def kill_namespace(name):
    for pid in run("ip", "netns", "pids", name, check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    run("ip", "netns", "del", name, check=False)


def remove_leftovers():
    """Namespaces of an earlier lab whose process is gone."""
    for line in run("ip", "netns", "list", check=False).splitlines():
        match = re.match(rf"^({PREFIX}(\d+)-\S+)", line)
        if match and not os.path.exists(f"/proc/{match.group(2)}"):
            kill_namespace(match.group(1))
