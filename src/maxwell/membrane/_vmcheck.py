"""What this host offers a future microVM tier: /dev/kvm, hardware virtualization,
QEMU, Firecracker and vhost-vsock. Reported by `maxwell doctor`; never raises.

Only probes: opening /dev/kvm and asking it for its API version and for an empty
VM (closed at once) is the cheapest proof that KVM works for this user; whether a
stock guest kernel boots needs hardware virtualization visible to this kernel
(vmx/svm), which a paravirtual KVM inside a VM may not provide.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from maxwell.availability import Check

KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)
KVM_CREATE_VM = 0xAE01  # _IO(KVMIO, 0x01)
KVM_API_VERSION = 12  # stable since Linux 2.6.22


def _kvm_check(dev_root: Path) -> Check:
    kvm = dev_root / "kvm"
    if not kvm.exists():
        return Check("microVM /dev/kvm", False,
                     f"no {kvm}: enable virtualization or load kvm_intel/kvm_amd "
                     "(QEMU can still emulate with TCG, much slower)")
    try:
        fd = os.open(kvm, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        return Check("microVM /dev/kvm", False, f"cannot open {kvm}: {err.strerror} "
                     "(add the user to group kvm, or run as root)")
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        if version != KVM_API_VERSION:
            return Check("microVM /dev/kvm", False, f"unexpected KVM API version {version}")
        vm_fd = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm_fd)
    except OSError as err:
        return Check("microVM /dev/kvm", False, f"KVM refused to create a VM: {err.strerror}")
    finally:
        os.close(fd)
    return Check("microVM /dev/kvm", True, f"KVM API {KVM_API_VERSION}, can create a VM")


def _hw_virt_check(procfs_root: Path) -> Check:
    try:
        text = (procfs_root / "cpuinfo").read_text()
    except OSError as err:
        return Check("microVM hardware virtualization", False, f"cannot read cpuinfo: {err}")
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    found = sorted(flags & {"vmx", "svm"})
    if found:
        return Check("microVM hardware virtualization", True, f"CPU flag {found[0]}")
    return Check("microVM hardware virtualization", False,
                 "no vmx/svm flag: a KVM here is paravirtual (e.g. inside a VM) and may not "
                 "boot a stock guest kernel; QEMU TCG works, far slower")


def microvm_checks(dev_root: Path = Path("/dev"), procfs_root: Path = Path("/proc")) -> list[Check]:
    """Doctor lines for the microVM tier's prerequisites (the tier itself is not built yet)."""
    checks = [_kvm_check(dev_root), _hw_virt_check(procfs_root)]
    for binary, why in (("qemu-system-x86_64", "`sudo apt-get install qemu-system-x86`"),
                        ("firecracker", "from the Firecracker releases; not in Debian")):
        where = shutil.which(binary)
        checks.append(Check(f"microVM {binary}", where is not None,
                            where if where else f"not found: {why}"))
    vsock = dev_root / "vhost-vsock"
    checks.append(Check("microVM vhost-vsock", vsock.exists(),
                        str(vsock) if vsock.exists() else
                        "no /dev/vhost-vsock (`modprobe vhost_vsock`); virtio-serial would be "
                        "the agent channel instead"))
    return checks
