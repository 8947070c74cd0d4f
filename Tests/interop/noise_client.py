"""Clients written only from PROTOCOL.md, on the third-party `noiseprotocol` package: if our
binary and these agree, the wire format is the documented one.

- `Client`: the peer ↔ server control channel (§3–4).
- `Section5Peer`: a peer that speaks only §5 (no CALLREQ, no candidates, no key confirmation of
  its own): it calls and answers calls the way the reference's §5 describes, nothing more."""
import base64
import hashlib
import json
import socket
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from noise.connection import Keypair, NoiseConnection

REKEY_INTERVAL = 10


def passcode_digest(userid: str, passcode: str) -> str:
    """PROTOCOL.md §4: lowercase hex SHA-256 of the label, userid and passcode."""
    material = b"securechat/1 passcode\x00" + userid.encode() + b"\x00" + passcode.encode()
    return hashlib.sha256(material).hexdigest()


def new_identity():
    key = X25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, public


def identity_from_key_file(path):
    """A securechat key file: one line of base64, the private key."""
    private = base64.b64decode(open(path).read().strip())
    public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, public


def hello_frame(cipher):
    return json.dumps({"msgtype": "HELLO", "version": 1, "noise": f"Noise_IK_25519_{cipher}_SHA256"},
                      separators=(",", ":")).encode()


class Closed(Exception):
    """The other side closed the connection."""


class NoiseStream:
    """Frames (§2), the IK handshake (§3) and transport messages with the rekey rule (§3.4)."""

    def __init__(self, sock, cipher="ChaChaPoly"):
        self.sock = sock
        self.cipher = cipher
        self.noise = None
        self.sent = 0
        self.received = 0

    def initiate(self, private, remote_public, payload=b""):
        """HELLO and message 1; returns the raw bytes sent (to replay them)."""
        hello = hello_frame(self.cipher)
        self.noise = NoiseConnection.from_name(f"Noise_IK_25519_{self.cipher}_SHA256".encode())
        self.noise.set_as_initiator()
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, private)
        self.noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote_public)
        self.noise.set_prologue(hello)
        self.noise.start_handshake()
        sent = self.frame(hello) + self.frame(self.noise.write_message(payload))
        self.sock.sendall(sent)
        return sent

    def finish_initiating(self):
        """Reads message 2; returns its payload."""
        payload = self.noise.read_message(self.read_frame())
        assert self.noise.handshake_finished
        return payload

    def respond(self, private):
        """Reads HELLO and message 1 as the responder; returns (caller's static key, payload)."""
        hello = self.read_frame()
        self.cipher = json.loads(hello)["noise"].split("_")[3]
        self.noise = NoiseConnection.from_name(f"Noise_IK_25519_{self.cipher}_SHA256".encode())
        self.noise.set_as_responder()
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, private)
        self.noise.set_prologue(hello)
        self.noise.start_handshake()
        payload = self.noise.read_message(self.read_frame())
        return self.noise.noise_protocol.handshake_state.rs.public_bytes, payload

    def answer(self, payload):
        self.sock.sendall(self.frame(self.noise.write_message(payload)))
        assert self.noise.handshake_finished

    @staticmethod
    def frame(body: bytes) -> bytes:
        return struct.pack(">H", len(body)) + body

    def read_exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise Closed()
            data += chunk
        return data

    def read_frame(self) -> bytes:
        (length,) = struct.unpack(">H", self.read_exactly(2))
        assert length > 0
        return self.read_exactly(length)

    def seal(self, plaintext: bytes):
        if self.sent > 0 and self.sent % REKEY_INTERVAL == 0:
            self.noise.rekey_outbound_cipher()
        self.sock.sendall(self.frame(self.noise.encrypt(plaintext)))
        self.sent += 1

    def open(self) -> bytes:
        frame = self.read_frame()
        if self.received > 0 and self.received % REKEY_INTERVAL == 0:
            self.noise.rekey_inbound_cipher()
        self.received += 1
        return self.noise.decrypt(frame)

    def close(self):
        self.sock.close()


class Client(NoiseStream):
    """The control channel to a server: JSON messages both ways."""

    def __init__(self, host, port, server_key_b64, cipher="ChaChaPoly", identity=None):
        super().__init__(socket.create_connection((host, port), timeout=10), cipher)
        self.private, self.public = identity or new_identity()
        self.initiate(self.private, base64.b64decode(server_key_b64))
        assert self.finish_initiating() == b"", "the server's handshake payload must be empty"

    def send(self, message: dict):
        self.seal(json.dumps(message).encode())

    def receive(self) -> dict:
        return json.loads(self.open())

    def request(self, message: dict) -> dict:
        """Sends `message`; the next reply that is not PRESENCE or the server's KEEPALIVE."""
        self.send(message)
        while True:
            reply = self.receive()
            if reply["msgtype"] not in ("PRESENCE", "KEEPALIVE"):
                return reply


TEXT, HANGUP, KEEPALIVE = 1, 2, 3


class Section5Peer:
    """A peer of the reference's §5 only: signs in with `port`, looks users up, calls them
    directly and answers their calls after the §5.2 checks. Sends no record before its first
    line (no key confirmation of its own: a new callee shows the call once that line comes)."""

    def __init__(self, server, user, passcode, identity=None):
        self.user = user
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(15)
        self.private, self.public = identity or new_identity()
        self.control = server.client(identity=(self.private, self.public))
        reply = self.control.request({"msgtype": "SIGNUPREQ", "userid": user, "passcode": passcode_digest(user, passcode)})
        assert reply["status"] in ("CREATED", "EXISTS"), reply
        reply = self.control.request({"msgtype": "AUTHREQ", "userid": user, "passcode": passcode_digest(user, passcode),
                                      "port": self.listener.getsockname()[1]})
        assert reply["status"] == "GRANTED", reply

    def lookup(self, user):
        return self.control.request({"msgtype": "LOOKUPREQ", "userid": self.user, "lookup": user})

    def call(self, callee):
        """§5.1–3 as the caller: returns the stream once ACCEPTED (else raises)."""
        found = self.lookup(callee)
        assert found["status"] == "SUCCESS", found
        stream = NoiseStream(socket.create_connection((found["address"], found["port"]), timeout=15))
        stream.initiate(self.private, base64.b64decode(found["encryptionkey"]),
                        json.dumps({"msgtype": "CONNECTREQ", "initiator": self.user}).encode())
        reply = json.loads(stream.finish_initiating())
        if reply["status"] != "ACCEPTED":
            raise AssertionError(f"refused: {reply}")
        return stream

    def answer(self):
        """§5.2–3 as the callee: takes the next call, checks the caller with a lookup, accepts."""
        sock, (address, _) = self.listener.accept()
        sock.settimeout(15)
        stream = NoiseStream(sock)
        key, payload = stream.respond(self.private)
        caller = json.loads(payload)["initiator"]
        found = self.lookup(caller)
        ok = found["status"] == "SUCCESS" and found["address"] == address and base64.b64decode(found["encryptionkey"]) == key
        stream.answer(json.dumps({"msgtype": "CONNECTREPLY", "status": "ACCEPTED" if ok else "REFUSED"}).encode())
        assert ok, f"the caller did not pass the §5.2 checks: {found}"
        return stream, caller

    @staticmethod
    def say(stream, text):
        stream.seal(bytes([TEXT]) + text.encode())

    @staticmethod
    def hear(stream):
        """The next TEXT line (keep-alives skipped); None after HANGUP."""
        while True:
            record = stream.open()
            if record[0] == TEXT:
                return record[1:].decode()
            if record[0] == HANGUP:
                return None

    def close(self):
        self.listener.close()
        self.control.close()
