"""The initramfs writer and the module ordering, on bytes (no QEMU)."""

from __future__ import annotations

import stat

import pytest

from maxwell import image
from maxwell.image import _cpio, _kmod


def test_newc_round_trip_and_alignment() -> None:
    entries = [_cpio.directory("bin"), _cpio.file("bin/x", b"abc", 0o755),
               _cpio.symlink("bin/sh", "x"), _cpio.chardev("console", 5, 1)]  # fmt: skip
    data = _cpio.archive(entries)
    assert data[:6] == b"070701"
    assert len(data) % 4 == 0
    back = _cpio.read(data)
    assert [e.name for e in back] == ["bin", "bin/x", "bin/sh", "console"]
    assert back[1].data == b"abc" and stat.S_IMODE(back[1].mode) == 0o755
    assert stat.S_ISLNK(back[2].mode) and back[2].data == b"x"
    assert stat.S_ISCHR(back[3].mode) and back[3].rdev == (5, 1)
    assert data.rstrip(b"\0").endswith(b"TRAILER!!!")


def test_load_order_puts_dependencies_first() -> None:
    deps = {"9p": ["9pnet", "fscache", "netfs"], "fscache": ["netfs"], "netfs": [],
            "9pnet": [], "9pnet_virtio": ["virtio", "9pnet", "virtio_ring"],
            "virtio": ["virtio_ring"], "virtio_ring": []}  # fmt: skip
    order = _kmod.load_order(["9pnet_virtio", "9p"], deps)
    for mod, needs in deps.items():
        for d in needs:
            assert order.index(d) < order.index(mod)
    with pytest.raises(KeyError, match="virtio_mmio"):
        _kmod.load_order(["virtio_mmio"], deps)
    with pytest.raises(ValueError, match="cycle"):
        _kmod.load_order(["a"], {"a": ["b"], "b": ["a"]})


def test_real_image_modules_are_in_dependency_order(guest_image: image.GuestImage) -> None:
    entries = {e.name: e for e in _cpio.read(guest_image.initrd.read_bytes())}
    order = entries["etc/modules.order"].data.decode().split()
    assert order == list(guest_image.modules)
    for i, name in enumerate(order):
        ko = entries[f"lib/modules/{name}.ko"].data
        assert _kmod.modinfo(ko)["name"] == name
        for dep in _kmod.depends(ko):
            assert order.index(dep) < i, f"{name} needs {dep} first"
    assert {"9p", "9pnet_virtio", "virtio_console", "virtio_balloon"} <= set(order)
    assert stat.S_ISCHR(entries["dev/console"].mode)
    assert entries["init"].data.startswith(b"#!/bin/busybox sh")
    head = guest_image.kernel.read_bytes()[:4]
    # An ELF vmlinux (booted through PVH) when the bzImage's payload is XZ or gzip,
    # else the bzImage itself.
    assert head == b"\x7fELF" if guest_image.kernel.name == "vmlinux" else head[:2] == b"MZ"


def test_stale_vm_dirs_of_dead_supervisors_are_removed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from maxwell.membrane._microvm import VM_DIR_PREFIX, remove_stale_dirs

    dead, live = tmp_path / f"{VM_DIR_PREFIX}111-aaaa-x1", tmp_path / f"{VM_DIR_PREFIX}222-bbbb-x2"
    dead.mkdir()
    live.mkdir()
    removed = remove_stale_dirs(lambda sup: sup == "222-bbbb", tmp_path)
    assert removed == [str(dead)] and live.is_dir() and not dead.exists()
