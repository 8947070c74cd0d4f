"""A real PostgreSQL (Debian's) in a temporary folder, and `securechat serve` nodes on it.

The cluster runs as the unprivileged test user, on a loopback port, with password (SCRAM)
authentication, so the nodes' password file and the driver's authentication are exercised too.
Nothing is mocked."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import unprivileged
from peers import Process, START_LINE

CLUSTER_BINARY = os.environ.get("SECURECHAT_CLUSTER_BINARY")
DATABASE_USER = "securechat"
DATABASE_PASSWORD = "cluster-test-password"


def postgres_bin(name):
    """A PostgreSQL server program from Debian's package (not on PATH there)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise unittest_skip(f"PostgreSQL's {name} is not installed (apt install postgresql)")
    return found[-1]


def unittest_skip(reason):
    import unittest
    return unittest.SkipTest(reason)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_postgres(args):
    """`args` as the unprivileged `postgres` account of Debian's package when we are root (initdb
    needs an account with a passwd entry, which the throwaway test uid has not); else as us."""
    if not unprivileged.AS_ROOT:
        return list(args)
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--", *args]


class Postgres:
    """initdb into a folder of its own, then pg_ctl start/stop on a free loopback port."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="securechat-pg-")
        if unprivileged.AS_ROOT:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        password_file = os.path.join(self.root, "superuser-password")
        with open(password_file, "w") as file:
            file.write(DATABASE_PASSWORD + "\n")
        if unprivileged.AS_ROOT:
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
        self._run(postgres_bin("initdb"), "-D", self.data, "-U", DATABASE_USER, "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "-E", "UTF8", "--locale=C")
        os.remove(password_file)
        self.start()

    def _run(self, *args):
        result = subprocess.run(as_postgres(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.root)
        if result.returncode != 0:
            raise AssertionError(f"{os.path.basename(args[0])} failed: {result.stdout}")

    def start(self):
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(postgres_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.root, "log"), "-o", options, "-w", "start")

    def stop(self, mode="fast"):
        self._run(postgres_bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop")

    def close(self):
        try:
            self.stop("immediate")
        except AssertionError:
            pass
        shutil.rmtree(self.root, True)

    def query(self, sql):
        """`sql` through psql as the cluster's user; its output rows, tab-separated."""
        env = dict(os.environ, PGPASSWORD=DATABASE_PASSWORD)
        result = subprocess.run(as_postgres(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", DATABASE_USER,
                                                      "-d", "postgres", "-At", "-F", "\t", "-c", sql]),
                                check=True, capture_output=True, text=True, env=env)
        return [line for line in result.stdout.splitlines() if line]

    @property
    def url(self):
        return f"postgres://{DATABASE_USER}@127.0.0.1:{self.port}/postgres"


class Node(Process):
    """One `securechat serve` node on `postgres`, with its own data folder holding the shared key."""

    def __init__(self, root, name, postgres, key_file, lease="3s", extra_config=""):
        self.name = name
        self.data_dir = unprivileged.private_directory(f"securechat-{name}-")
        shutil.copy(key_file, os.path.join(self.data_dir, "server.key"))
        unprivileged.hand_over(os.path.join(self.data_dir, "server.key"))
        os.chmod(os.path.join(self.data_dir, "server.key"), 0o600)
        password_file = unprivileged.write_file(os.path.join(self.data_dir, "db-password"), DATABASE_PASSWORD + "\n")
        self.port = free_port()
        config = unprivileged.write_file(os.path.join(self.data_dir, "server.conf"), f"""
listen = 127.0.0.1:{self.port}
data-dir = {self.data_dir}
database = {postgres.url}
database-password-file = {password_file}
node-name = {name}
node-lease = {lease}
scrypt-log-n = 10
{extra_config}
""")
        super().__init__([CLUSTER_BINARY, "serve", "--config", config])
        match = self.expect(START_LINE.pattern, timeout=30)
        self.host, self.port = match.group(1), int(match.group(2))
        self.address = f"{self.host}:{self.port}"
        self.key = match.group(3)

    def kill(self):
        """kill -9: no goodbye to the database."""
        self.process.kill()
        self.process.wait()


def make_server_key(root):
    """A server key made by a standalone server's first start, to give every node."""
    data = unprivileged.private_directory("securechat-key-")
    process = Process([CLUSTER_BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", data])
    process.expect(START_LINE.pattern)
    process.stop()
    key = os.path.join(root, "server.key")
    shutil.copy(os.path.join(data, "server.key"), key)
    shutil.rmtree(data)
    return key
