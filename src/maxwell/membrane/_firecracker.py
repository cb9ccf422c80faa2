"""Firecracker as a second VMM: availability and the API requests Maxwell would send.

Firecracker is configured over HTTP on a Unix socket (its API definition:
firecracker-microvm/firecracker, src/firecracker/swagger/firecracker.yaml).
The bodies below are the whole configuration of one agent's VM; tests check
them against that definition's `required`, `properties` and `enum`s.

It is used only where its binary exists *and* KVM boots the canary: it has no
TCG. It also has no virtio-9p, so the guest cannot mount the host's `/` as
the QEMU guest does — it would need a block-device root holding the agent's
program, which Maxwell does not build (see the README's microVM section).
On this kind of host neither holds, and `availability` says which and why.

Touches nothing but the socket it is given (and `shutil.which`).
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

from maxwell.common import Availability

BINARY = "firecracker"
VSOCK_GUEST_CID = 3  # the lowest guest CID (0-2 are reserved)
AGENT_VSOCK_PORT = 52  # the guest dials this; Firecracker forwards it to `<uds_path>_52`


def availability(dev_root: Path = Path("/dev"), kvm_boots: bool | None = None) -> Availability:
    """Firecracker needs its binary and a KVM that boots a guest (it cannot emulate)."""
    where = shutil.which(BINARY)
    if where is None:
        return Availability(False, "no firecracker binary on PATH (not packaged by Debian; "
                            "install a release binary from github.com/firecracker-microvm/"
                            "firecracker/releases) and it needs a KVM that boots a guest")
    if not (dev_root / "kvm").exists():
        return Availability(False, f"{where} found but no {dev_root / 'kvm'}: Firecracker has "
                            "no emulation fallback")
    if kvm_boots is False:
        return Availability(False, f"{where} found but the KVM canary boot failed (see the "
                            "KVM line): Firecracker has no emulation fallback")
    return Availability(True, f"{where} with KVM")


def machine_config(vcpus: int, memory_mib: int) -> dict[str, Any]:
    """PUT /machine-config (MachineConfiguration). Firecracker wants 1 or an even count."""
    if vcpus > 1 and vcpus % 2:
        vcpus += 1
    return {"vcpu_count": vcpus, "mem_size_mib": memory_mib, "smt": False}


def boot_source(kernel: Path, initrd: Path, boot_args: str) -> dict[str, Any]:
    """PUT /boot-source (BootSource)."""
    return {"kernel_image_path": str(kernel), "initrd_path": str(initrd), "boot_args": boot_args}


def vsock(uds_path: Path) -> dict[str, Any]:
    """PUT /vsock (Vsock): the agent channel; guest-initiated connections to port P
    reach a host listener at `<uds_path>_P`, host-initiated ones send `CONNECT P`."""
    return {"guest_cid": VSOCK_GUEST_CID, "uds_path": str(uds_path)}


def balloon() -> dict[str, Any]:
    """PUT /balloon (Balloon): no inflation, free-page reporting on (the memory tax)."""
    return {"amount_mib": 0, "deflate_on_oom": True, "free_page_reporting": True}


def start() -> dict[str, Any]:
    """PUT /actions (InstanceActionInfo)."""
    return {"action_type": "InstanceStart"}


def vm_state(paused: bool) -> dict[str, Any]:
    """PATCH /vm (Vm): pause and resume."""
    return {"state": "Paused" if paused else "Resumed"}


# (method, path, the API definition its body must satisfy): what a VM's set-up sends.
REQUESTS = (
    ("PUT", "/machine-config", "MachineConfiguration"),
    ("PUT", "/boot-source", "BootSource"),
    ("PUT", "/vsock", "Vsock"),
    ("PUT", "/balloon", "Balloon"),
    ("PUT", "/actions", "InstanceActionInfo"),
    ("PATCH", "/vm", "Vm"),
)


def request(sock_path: Path, method: str, path: str, body: dict[str, Any],
            timeout_s: float = 5.0) -> tuple[int, bytes]:  # fmt: skip
    """One HTTP/1.1 request on Firecracker's API socket; (status, response body)."""
    data = json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(sock_path))
        s.sendall(head + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        header, _, rest = buf.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = 0
        for line in header.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return status, rest
