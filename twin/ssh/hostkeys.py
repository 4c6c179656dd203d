"""Stable SSH host keys for twin CVMs, derived from the twin's seed and the instance ID.

Called by the SSH fleet (twin/ssh/fleet.py) when it starts serving a CVM. A real host keeps
its host key across reboots, so a twin host must too: the key is a pure function of (seed, instance
ID), which lets a client pin it once (GET /_twin/ssh) and lets a test provoke a *changed* host key
by restarting the fleet with another seed. ECDSA P-256 because ``ec.derive_private_key`` turns any
scalar into a valid key in microseconds (RSA generation would cost ~100 ms per host).
"""

from __future__ import annotations

import hashlib
import threading

import paramiko
from cryptography.hazmat.primitives.asymmetric import ec

# Order of the NIST P-256 group: a private scalar must lie in [1, n-1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_cache: dict[tuple[str, str], paramiko.ECDSAKey] = {}
_cache_lock = threading.Lock()


def derive_host_key(seed: str, instance_id: str) -> paramiko.ECDSAKey:
    """The host key of ``instance_id`` in a twin started with ``seed`` (same inputs, same key)."""
    with _cache_lock:
        cached = _cache.get((seed, instance_id))
    if cached is not None:
        return cached
    digest = hashlib.sha256(f"tkeflow-twin-host-key\0{seed}\0{instance_id}".encode()).digest()
    scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    key = paramiko.ECDSAKey(vals=(private, private.public_key()))
    with _cache_lock:
        _cache[(seed, instance_id)] = key
    return key


def host_key_line(key: paramiko.PKey) -> str:
    """The public half as a known_hosts / authorized_keys value: ``<type> <base64>``."""
    return f"{key.get_name()} {key.get_base64()}"
