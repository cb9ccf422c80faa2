"""Fixtures for the microVM tests: real QEMU (TCG here), the cached guest image, one backend.

Skipped with the reason and the install command where QEMU is absent. The
image is built on first use (`maxwell image build`: apt-get download of the
Debian kernel and busybox), then cached.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from maxwell import image
from maxwell.membrane._microvm import MicrovmBackend, MicrovmOptions

QEMU_MISSING = "qemu-system-x86_64 not installed: sudo apt-get install qemu-system-x86"


@pytest.fixture(scope="session")
def guest_image() -> image.GuestImage:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip(QEMU_MISSING)
    img = image.find()
    if img is not None:
        return img
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("no guest image and no apt-get/dpkg-deb to build one (`maxwell image build`)")
    try:
        return image.build()
    except image.ImageError as err:
        pytest.skip(f"cannot build the guest image: {err}")


@pytest.fixture(scope="module")
def vm_backend(guest_image: image.GuestImage) -> Iterator[MicrovmBackend]:
    b = MicrovmBackend(MicrovmOptions(memory_mb=256, boot_timeout_s=90))
    try:
        yield b
    finally:
        b.close()
