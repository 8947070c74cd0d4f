"""A securechat control-channel client written only from PROTOCOL.md, on the third-party
`noiseprotocol` package: if our server and this agree, the wire format is the documented one."""
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


class Closed(Exception):
    """The server closed the connection."""


class Client:
    def __init__(self, host, port, server_key_b64, cipher="ChaChaPoly", identity=None):
        self.private, self.public = identity or new_identity()
        self.sock = socket.create_connection((host, port), timeout=10)
        hello = json.dumps({"msgtype": "HELLO", "version": 1,
                            "noise": f"Noise_IK_25519_{cipher}_SHA256"}, separators=(",", ":")).encode()
        self.noise = NoiseConnection.from_name(f"Noise_IK_25519_{cipher}_SHA256".encode())
        self.noise.set_as_initiator()
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, self.private)
        self.noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, base64.b64decode(server_key_b64))
        self.noise.set_prologue(hello)
        self.noise.start_handshake()
        self.send_frame(hello)
        self.send_frame(self.noise.write_message(b""))
        payload = self.noise.read_message(self.read_frame())
        assert payload == b"", "the server's handshake payload must be empty"
        assert self.noise.handshake_finished
        self.sent = 0
        self.received = 0

    def send_frame(self, body: bytes):
        self.sock.sendall(struct.pack(">H", len(body)) + body)

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

    def send(self, message: dict):
        # The rekey rule (§3.4): the key changes before messages 11, 21, ... of each direction.
        if self.sent > 0 and self.sent % REKEY_INTERVAL == 0:
            self.noise.rekey_outbound_cipher()
        self.send_frame(self.noise.encrypt(json.dumps(message).encode()))
        self.sent += 1

    def receive(self) -> dict:
        frame = self.read_frame()
        if self.received > 0 and self.received % REKEY_INTERVAL == 0:
            self.noise.rekey_inbound_cipher()
        self.received += 1
        return json.loads(self.noise.decrypt(frame))

    def request(self, message: dict) -> dict:
        self.send(message)
        while True:
            reply = self.receive()
            if reply["msgtype"] != "PRESENCE":
                return reply

    def close(self):
        self.sock.close()
