"""One side of a bulk stream between two peers, for scripts/bench-paths.sh: 64 KiB Noise
records from a sender to a receiver, direct or through the server's relay (§9.5), to compare
the relay's throughput with a direct connection's on the same endpoints.

    python3 stream_pair.py receive SERVER KEY USER PORT direct|relay
    python3 stream_pair.py send SERVER KEY USER RECEIVER MEGABYTES direct|relay

Both sign up (or in) with the `calls` extension. The receiver prints `ready`, then after the
stream `received BYTES in SECONDS s`. Written from PROTOCOL.md on `noiseprotocol`, like
noise_client.py; the endpoints are the same both ways, so only the path differs."""
import base64
import json
import socket
import sys
import time

from noise_client import Client, NoiseStream, new_identity, passcode_digest

RECORD = 65519  # the largest plaintext in one Noise message (65535 with its tag)
PASSCODE = "stream-passcode"


def sign_in(server, key, user, port):
    host, server_port = server.rsplit(":", 1)
    identity = new_identity()
    client = Client(host, int(server_port), key, identity=identity)
    digest = passcode_digest(user, PASSCODE)
    client.request({"msgtype": "SIGNUPREQ", "userid": user, "passcode": digest})
    reply = client.request({"msgtype": "AUTHREQ", "userid": user, "passcode": digest, "port": port, "extensions": ["calls"]})
    assert reply["status"] == "GRANTED", reply
    return client, identity, (host, int(server_port))


def relay_leg(server_address, token):
    leg = socket.create_connection(server_address, timeout=30)
    leg.sendall(NoiseStream.frame(json.dumps({"msgtype": "RELAY", "token": token}, separators=(",", ":")).encode()))
    return leg


def receive(server, key, user, port, path):
    client, identity, server_address = sign_in(server, key, user, int(port))
    listener = socket.create_server(("", int(port)), family=socket.AF_INET6, dualstack_ipv6=True) if path == "direct" else None
    print("ready", flush=True)
    if path == "direct":
        sock, _ = listener.accept()
    else:
        while (offer := client.receive())["msgtype"] != "CALLOFFER":
            pass
        sock = relay_leg(server_address, offer["relay"])
    sock.settimeout(60)
    stream = NoiseStream(sock)
    stream.respond(identity[0])
    stream.answer(json.dumps({"msgtype": "CONNECTREPLY", "status": "ACCEPTED"}).encode())
    header = json.loads(stream.open())
    expected, received = header["bytes"], 0
    started = time.monotonic()
    while received < expected:
        received += len(stream.open())
    elapsed = time.monotonic() - started
    print(f"received {received} in {elapsed:.4f} s", flush=True)
    stream.close()
    client.close()


def send(server, key, user, receiver, megabytes, path):
    client, identity, server_address = sign_in(server, key, user, 0)
    if path == "direct":
        found = client.request({"msgtype": "LOOKUPREQ", "userid": user, "lookup": receiver})
        assert found["status"] == "SUCCESS", found
        sock = socket.create_connection((found["address"], found["port"]), timeout=30)
    else:
        found = client.request({"msgtype": "CALLREQ", "userid": user, "callee": receiver})
        assert found["status"] == "SUCCESS" and found["relay"], found
        sock = relay_leg(server_address, found["relay"])
    sock.settimeout(60)
    stream = NoiseStream(sock)
    stream.initiate(identity[0], base64.b64decode(found["encryptionkey"]),
                    json.dumps({"msgtype": "CONNECTREQ", "initiator": user}).encode())
    assert json.loads(stream.finish_initiating())["status"] == "ACCEPTED"
    total = int(megabytes) * 1024 * 1024
    stream.seal(json.dumps({"bytes": total}).encode())
    record = bytes(RECORD)
    sent = 0
    while sent < total:
        chunk = record[:min(RECORD, total - sent)]
        stream.seal(chunk)
        sent += len(chunk)
    # The receiver closes once it has everything; wait for that, not for our own close.
    try:
        stream.read_frame()
    except Exception:
        pass
    stream.close()
    client.close()


if __name__ == "__main__":
    {"receive": receive, "send": send}[sys.argv[1]](*sys.argv[2:])
