#!/usr/bin/env python3
"""Churning, hostile clients for the echo soak server (tests/soak/echo_soak_server.cpp).

    python3 scripts/soak_client.py PORT [--clients 200] [--seconds 60] [--seed N]

Keeps --clients concurrent client tasks busy for --seconds; each one loops over behaviours
chosen at random:

  talk           sends payloads of 1 B .. 256 KiB (while reading), reads each echo back and
                 checks it byte for byte; then ends its side and expects the server to end
                 its own with nothing more
  reset          sends some bytes, then closes with SO_LINGER {1, 0}: the server sees
                 ECONNRESET
  vanish         sends a big payload and closes without reading the echo
  slow-read      sends 1 MiB and reads the echo back slowly, in small pieces with sleeps, so
                 that the server's writes back up; checks it byte for byte
  connect-close  connects and closes at once

At the end it prints one JSON object on stdout: per-behaviour counts, the bytes verified,
verification failures (must be 0) and the client-side errors nobody expected (each behaviour
has a time limit, so a server that hangs shows as "TimeoutError"). Exits 1 when a verification
failed, 0 otherwise. Python 3.11, stdlib only.
"""

import argparse
import asyncio
import collections
import json
import random
import socket
import struct
import sys
import time

KINDS = ("talk", "reset", "vanish", "slow-read", "connect-close")
# How often each behaviour is chosen (relative weights).
WEIGHTS = (35, 15, 15, 15, 20)
KIB = 1024
MIB = 1024 * KIB
# Longer than any behaviour takes against a live server (slow-read: about a second); past it
# the server is taken to have hung.
BEHAVIOUR_TIMEOUT = 60.0


class VerificationError(Exception):
    """An echo that is not what was sent."""


class SoakStats:
    def __init__(self):
        self.started = collections.Counter()
        self.completed = collections.Counter()
        self.verified_bytes = 0
        self.verification_failures = 0
        self.unexpected = collections.Counter()
        self.first_failures = []

    def failed(self, kind, what):
        if len(self.first_failures) < 20:
            self.first_failures.append(f"{kind}: {what}")


def log_uniform_size(rng, low, high):
    """A size between low and high whose logarithm is uniform: as many tiny as huge ones."""
    size = int(2 ** rng.uniform(low.bit_length() - 1, high.bit_length() - 1))
    return max(low, min(high, size))


async def send_all(writer, payload):
    writer.write(payload)
    await writer.drain()


def verify(stats, kind, sent, received):
    if received != sent:
        stats.verification_failures += 1
        first = next((i for i, (a, b) in enumerate(zip(sent, received)) if a != b),
                     min(len(sent), len(received)))
        raise VerificationError(
            f"sent {len(sent)} bytes, got back {len(received)}; first difference at {first}")
    stats.verified_bytes += len(sent)


async def end_cleanly(stats, kind, reader, writer):
    """Ends our side; the server must then end its own without sending anything more."""
    writer.write_eof()
    rest = await reader.read()
    if rest:
        stats.verification_failures += 1
        raise VerificationError(f"{len(rest)} bytes after the last echo")
    writer.close()
    await writer.wait_closed()


async def talk(rng, stats, port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(rng.randint(1, 4)):
        payload = rng.randbytes(log_uniform_size(rng, 1, 256 * KIB))
        # Sending and reading at once: a big payload would otherwise fill both directions'
        # buffers and stall (the server stops reading while we do not read its echo).
        _, echo = await asyncio.gather(send_all(writer, payload),
                                       reader.readexactly(len(payload)))
        verify(stats, "talk", payload, echo)
    await end_cleanly(stats, "talk", reader, writer)


async def reset(rng, stats, port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = rng.randbytes(log_uniform_size(rng, 1, 64 * KIB))
    writer.write(payload)
    await writer.drain()
    if rng.random() < 0.5:
        # Sometimes part of the echo first, so that the reset also hits a server mid-write.
        await reader.read(rng.randint(1, len(payload)))
    # SO_LINGER {on, 0 s}: close() sends RST instead of FIN.
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
    writer.transport.abort()


async def vanish(rng, stats, port):
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(rng.randbytes(rng.randint(256 * KIB, MIB)))
    await asyncio.sleep(rng.uniform(0, 0.05))
    # Closing with the echo unread makes the kernel send RST; what asyncio has not handed to
    # the kernel yet is dropped (waiting for it could be for ever: the server stops reading
    # once its own writes back up).
    if writer.transport.get_write_buffer_size() == 0:
        writer.close()
    else:
        writer.transport.abort()


async def slow_read(rng, stats, port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = rng.randbytes(MIB)

    async def read_slowly():
        pieces = []
        got = 0
        while got < len(payload):
            piece = await reader.read(min(rng.randint(1, 16 * KIB), len(payload) - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
            await asyncio.sleep(rng.uniform(0.001, 0.01))
        return b"".join(pieces)

    _, echo = await asyncio.gather(send_all(writer, payload), read_slowly())
    verify(stats, "slow-read", payload, echo)
    await end_cleanly(stats, "slow-read", reader, writer)


async def connect_close(rng, stats, port):
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    await writer.wait_closed()


BEHAVIOURS = {
    "talk": talk,
    "reset": reset,
    "vanish": vanish,
    "slow-read": slow_read,
    "connect-close": connect_close,
}


async def client(rng, stats, port, deadline):
    while time.monotonic() < deadline:
        kind = rng.choices(KINDS, WEIGHTS)[0]
        stats.started[kind] += 1
        try:
            await asyncio.wait_for(BEHAVIOURS[kind](rng, stats, port), BEHAVIOUR_TIMEOUT)
        except VerificationError as e:
            stats.failed(kind, str(e))
            continue
        except Exception as e:  # noqa: BLE001: every error is counted, by type
            name = type(e).__name__
            stats.unexpected[f"{kind}: {name}"] += 1
            stats.failed(kind, f"{name}: {e}")
            continue
        stats.completed[kind] += 1


async def main_async(args):
    stats = SoakStats()
    master = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    started = time.monotonic()
    await asyncio.gather(*(client(random.Random(master.getrandbits(64)), stats, args.port,
                                  deadline)
                           for _ in range(args.clients)))
    return stats, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the random choices (default: a fresh one, printed)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    stats, elapsed = asyncio.run(main_async(args))
    summary = {
        "seed": args.seed,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "kinds": {kind: {"started": stats.started[kind], "completed": stats.completed[kind]}
                  for kind in KINDS},
        "connections": sum(stats.started.values()),
        "verified_bytes": stats.verified_bytes,
        "verification_failures": stats.verification_failures,
        "unexpected_errors": sum(stats.unexpected.values()),
        "unexpected_by_kind": dict(sorted(stats.unexpected.items())),
        "first_failures": stats.first_failures,
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if stats.verification_failures else 0


if __name__ == "__main__":
    sys.exit(main())
