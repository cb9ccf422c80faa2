"""Doctor lines for the microVM tier's prerequisites, on fake trees and on this host."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxwell.membrane._vmcheck import microvm_checks


def _by_name(checks: list) -> dict:  # type: ignore[type-arg]
    return {c.check: c for c in checks}


def test_missing_kvm_and_no_virt_flags_are_explained(tmp_path: Path) -> None:
    dev, proc = tmp_path / "dev", tmp_path / "proc"
    dev.mkdir()
    proc.mkdir()
    (proc / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    checks = _by_name(microvm_checks(dev, proc))
    assert not checks["microVM /dev/kvm"].ok
    assert "kvm_intel" in checks["microVM /dev/kvm"].detail
    assert not checks["microVM hardware virtualization"].ok
    assert not checks["microVM vhost-vsock"].ok


def test_virt_flag_is_found(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("flags\t\t: fpu svm sse2\n")
    checks = _by_name(microvm_checks(tmp_path, tmp_path))
    assert checks["microVM hardware virtualization"].ok
    assert "svm" in checks["microVM hardware virtualization"].detail


def test_a_regular_file_is_not_a_kvm_device(tmp_path: Path) -> None:
    (tmp_path / "kvm").write_bytes(b"")
    (tmp_path / "cpuinfo").write_text("flags\t\t: fpu\n")
    check = _by_name(microvm_checks(tmp_path, tmp_path))["microVM /dev/kvm"]
    assert not check.ok  # the ioctl fails on a plain file: reported, not raised


@pytest.mark.skipif(not Path("/dev/kvm").exists(), reason="this host has no /dev/kvm")
def test_real_kvm_creates_a_vm() -> None:
    check = _by_name(microvm_checks())["microVM /dev/kvm"]
    assert check.ok, check.detail
    assert "can create a VM" in check.detail
