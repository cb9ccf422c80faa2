"""What this host offers the microVM tier: /dev/kvm, hardware virtualization, a
KVM canary boot, QEMU, the guest image, Firecracker and vhost-vsock. Reported by
`maxwell doctor`; never raises.

Opening /dev/kvm and asking it for an empty VM only proves the device answers;
whether a guest kernel boots needs hardware virtualization visible to this
kernel (vmx/svm), which a paravirtual KVM inside a VM (PVM's kvm_pvm) may not
provide. So the verdict comes from the canary: the guest image booted under
KVM for a few seconds (`_microvm.probe_accel`, cached per host boot), run only
when /dev/kvm and the image exist.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from maxwell.common import Check

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
    return Check("microVM /dev/kvm", True, f"KVM API {KVM_API_VERSION}, can create a VM "
                 "(whether a guest boots: the KVM canary line)")


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


def _pvm(sysfs_root: Path) -> bool:
    return (sysfs_root / "module" / "kvm_pvm").is_dir()


def _canary_check(kvm: Check, hw: Check, dev_root: Path, sysfs_root: Path,
                  image_dir: Path | None) -> tuple[Check, bool | None]:  # fmt: skip
    from maxwell import image

    if not kvm.ok:
        return Check("microVM KVM canary", False, "not run: /dev/kvm unusable (see above); "
                     "the microVM tier uses TCG emulation (~23x slower guest code)"), None
    if image.find(image_dir) is None:
        return Check("microVM KVM canary", False, "not run: no guest image "
                     "(`maxwell image build`)"), None
    from maxwell.membrane._microvm import probe_accel

    try:
        accel, why = probe_accel(image_dir, dev_root=dev_root)
    except Exception as err:  # doctor explains, never raises
        return Check("microVM KVM canary", False, f"not run: {err}"), None
    if accel == "kvm":
        return Check("microVM KVM canary", True, why), True
    why = why.removeprefix("TCG: KVM canary failed (").removesuffix(")")
    if "MSR 0x10a" in why:
        why += " (IA32_ARCH_CAPABILITIES, which this KVM refuses to set)"
    kind = ("/dev/kvm here is PVM (kvm_pvm module), a paravirtual KVM" if _pvm(sysfs_root)
            else "/dev/kvm creates VMs but")
    fix = ("it needs a host CPU exposing vmx/svm to this kernel (bare metal, or a VM with "
           "nested virtualization enabled) with kvm_intel/kvm_amd loaded"
           if not hw.ok else "check `dmesg` for KVM errors and the QEMU message above")
    return Check("microVM KVM canary", False,
                 f"{kind} that boots no stock guest kernel: {why}; the microVM tier runs "
                 f"under TCG instead (~23x slower guest code); to use KVM {fix}"), False


def microvm_checks(dev_root: Path = Path("/dev"), procfs_root: Path = Path("/proc"),
                   sysfs_root: Path = Path("/sys"), image_dir: Path | None = None,
                   canary: bool = True) -> list[Check]:  # fmt: skip
    """Doctor lines for the microVM tier: KVM (and why not), QEMU, the image, Firecracker."""
    from maxwell import image
    from maxwell.membrane import _firecracker

    kvm, hw = _kvm_check(dev_root), _hw_virt_check(procfs_root)
    checks = [kvm, hw]
    kvm_boots: bool | None = None
    if canary:
        c, kvm_boots = _canary_check(kvm, hw, dev_root, sysfs_root, image_dir)
        checks.append(c)
    img = image.find(image_dir)
    checks.append(Check("microVM guest image", img is not None,
                        f"{img.directory}: kernel {img.kernel_version}" if img else
                        f"none in {image_dir or image.default_cache_dir()}: run "
                        "`maxwell image build` (downloads linux-image-amd64, busybox-static)"))
    fc = _firecracker.availability(dev_root, kvm_boots)
    where = shutil.which("qemu-system-x86_64")
    checks.append(Check("microVM qemu-system-x86_64", where is not None,
                        where if where else "not found: `sudo apt-get install qemu-system-x86`"))
    checks.append(Check("microVM firecracker", fc.ok, fc.reason + (
        "; even then its guest needs a block-device root (Firecracker has no 9p share "
        "of the host), which Maxwell does not build" if not fc.ok else "")))
    vsock = dev_root / "vhost-vsock"
    checks.append(Check("microVM vhost-vsock", vsock.exists(),
                        str(vsock) if vsock.exists() else
                        "no /dev/vhost-vsock (`modprobe vhost_vsock`): virtio-serial is the "
                        "agent channel instead"))
    return checks
