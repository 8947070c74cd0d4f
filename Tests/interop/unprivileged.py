"""The real binary runs as its users run it: an ordinary account with no capabilities.

These machines and CI run as root, and root hides mistakes that nobody else gets away with (a
socket option that needs CAP_NET_ADMIN made every connection fail for everyone else). So as root,
every command a test starts is wrapped in setpriv: a throwaway uid and gid with no passwd entry, no
supplementary groups, no capabilities and no way to gain any. As anyone else it runs as that user.
Folders and files the test prepares for the binary are handed to that user."""
import os
import shlex
import tempfile

AS_ROOT = os.geteuid() == 0
TEST_UID = int(os.environ.get("SECURECHAT_TEST_UID", "64123")) if AS_ROOT else os.geteuid()


def command(args):
    """`args` as the unprivileged user runs them."""
    if not AS_ROOT:
        return list(args)
    return ["setpriv", f"--reuid={TEST_UID}", f"--regid={TEST_UID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *args]


def shell_command(args):
    """`args` as one shell command line (for tmux), run as the unprivileged user."""
    return shlex.join(command(args))


def hand_over(path):
    """Makes `path` (made by the test) the unprivileged user's."""
    if AS_ROOT:
        os.chown(path, TEST_UID, TEST_UID)
    return path


def private_directory(prefix):
    """A new folder under /tmp that the unprivileged user owns (mode 0700)."""
    return hand_over(tempfile.mkdtemp(prefix=prefix))


def write_file(path, text, mode=0o600):
    """A file for the binary to read, owned by the unprivileged user."""
    with open(path, "w") as file:
        file.write(text)
    os.chmod(path, mode)
    return hand_over(path)
