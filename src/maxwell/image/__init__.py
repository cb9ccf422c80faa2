"""The microVM guest: a Debian kernel and a project-written initramfs, built once and cached.

`build()` (`maxwell image build`) fetches `linux-image-amd64` (and the versioned
kernel package it depends on) and `busybox-static` with `apt-get download`,
takes the kernel, the virtio / 9p / virtio-console / virtio-balloon modules in
the order their `depends=` fields demand (what depmod computes), busybox and a
small `/init`, and writes a newc cpio initramfs in Python. The guest mounts the
host's `/` read-only over 9p, hides the host's /proc, /sys, /dev, /tmp behind
its own, chroots into it and execs the relay (`_relay.py`, run by the host's
Python) which starts the agent's own command line. `find()` returns the cached
image without side effects.

Touches: the cache directory (default `$XDG_CACHE_HOME/maxwell/image`, else
`~/.cache/maxwell/image`) and a temporary download directory; it runs
`apt-get download` and `dpkg-deb` (both part of any Debian system).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from maxwell.image import _cpio, _kmod

KERNEL_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
# What the guest needs: both virtio transports (microvm's virtio-mmio, PCI where
# a device needs it), the serial ports, the balloon (free-page reporting), 9p.
MODULES = ("virtio_mmio", "virtio_pci", "virtio_console", "virtio_balloon", "9pnet_virtio", "9p")
_MODULE_DIRS = ("kernel/drivers/virtio/", "kernel/drivers/char/virtio_console", "kernel/net/9p/",
                "kernel/fs/9p/", "kernel/fs/netfs/", "kernel/fs/fscache/")  # fmt: skip
FORMAT = 3  # bump when the initramfs layout changes, so old caches are rebuilt


class ImageError(RuntimeError):
    """The guest image cannot be built or is not there (the message says what to do)."""


@dataclass(frozen=True)
class GuestImage:
    directory: Path
    kernel: Path
    initrd: Path
    kernel_version: str
    packages: dict[str, str]  # package -> version
    modules: tuple[str, ...]  # load order

    def describe(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "kernel_version": self.kernel_version,
            "packages": self.packages,
            "modules": list(self.modules),
            "initrd_bytes": self.initrd.stat().st_size,
        }


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "maxwell" / "image"


def relay_path() -> Path:
    """The guest relay's source file (run inside the guest by the host's Python over 9p)."""
    return Path(__file__).with_name("_relay.py")


def find(cache_dir: Path | None = None) -> GuestImage | None:
    """The cached image, if one was built in this format (no side effects)."""
    d = cache_dir or default_cache_dir()
    try:
        meta = json.loads((d / "image.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT:
        return None
    img = GuestImage(d, d / str(meta.get("kernel_file", "vmlinuz")), d / "initrd.cpio",
                     str(meta["kernel_version"]), dict(meta["packages"]),
                     tuple(meta["modules"]))  # fmt: skip
    if not (img.kernel.is_file() and img.initrd.is_file()):
        return None
    return img


def _run(argv: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise ImageError(f"{argv[0]} not found: building the guest needs Debian's apt and "
                         "dpkg (or put a kernel and initrd in the cache by hand)") from err
    if out.returncode != 0:
        raise ImageError(f"{' '.join(argv)} failed: {out.stderr.strip()[-400:]}")
    return out.stdout


def _download(package: str, tmp: Path) -> Path:
    before = set(tmp.glob("*.deb"))
    _run(["apt-get", "download", "-q", package], tmp)
    new = sorted(set(tmp.glob("*.deb")) - before)
    if not new:
        raise ImageError(f"apt-get download {package} produced no .deb")
    return new[0]


def _deb_field(deb: Path, field: str, tmp: Path) -> str:
    return _run(["dpkg-deb", "-f", str(deb), field], tmp).strip()


def _members(deb: Path, tmp: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """Files of a .deb's data archive whose path passes `want` (streamed, nothing unpacked)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], cwd=tmp,
                            stdout=subprocess.PIPE)  # fmt: skip
    out: dict[str, bytes] = {}
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for m in tar:
            name = m.name.removeprefix("./")
            if m.isfile() and want(name):
                f = tar.extractfile(m)
                assert f is not None
                out[name] = f.read()
    if proc.wait() != 0:
        raise ImageError(f"dpkg-deb --fsys-tarfile {deb.name} failed")
    return out


def vmlinux(bzimage: bytes) -> bytes | None:
    """The uncompressed ELF kernel inside a bzImage (XZ or gzip payload), else None.

    QEMU boots an ELF vmlinux through its PVH entry point (CONFIG_PVH) without
    running the kernel's self-decompressor: under TCG that decompression took
    ~3.5 of the ~5.5 s from spawn to a running agent here.
    """
    import lzma
    import zlib

    for magic, make in ((b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor()),
                        (b"\x1f\x8b\x08", lambda: zlib.decompressobj(31))):  # fmt: skip
        at = bzimage.find(magic)
        if at < 0:
            continue
        try:
            out = make().decompress(bzimage[at:])
        except (lzma.LZMAError, zlib.error):
            continue
        if out[:4] == b"\x7fELF":
            return out
    return None


def _init_script() -> bytes:
    return resources.files("maxwell.image").joinpath("init.sh").read_bytes()


def initramfs(busybox: bytes, modules: list[tuple[str, bytes]]) -> bytes:
    """The guest's initramfs: busybox, /init, the modules and their load order."""
    e = _cpio
    entries = [e.directory(d) for d in ("bin", "dev", "etc", "host", "lib", "lib/modules",
                                        "proc", "sys", "tmp")]  # fmt: skip
    entries += [
        e.chardev("dev/console", 5, 1),
        e.chardev("dev/null", 1, 3, 0o666),
        e.file("bin/busybox", busybox, 0o755),
        e.symlink("bin/sh", "busybox"),
        e.file("init", _init_script(), 0o755),
        e.file("etc/modules.order", "".join(f"{n}\n" for n, _ in modules).encode()),
    ]
    entries += [e.file(f"lib/modules/{n}.ko", data) for n, data in modules]
    return e.archive(entries)


def build(cache_dir: Path | None = None, *, force: bool = False,
          log: Callable[[str], None] = lambda s: None) -> GuestImage:  # fmt: skip
    """Download the Debian packages and write the kernel and initramfs into the cache."""
    d = cache_dir or default_cache_dir()
    if not force and (img := find(d)) is not None:
        log(f"guest image cached in {d} (kernel {img.kernel_version}); --force rebuilds")
        return img
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="maxwell-image-") as t:
        tmp = Path(t)
        os.chmod(tmp, 0o755)  # apt's _apt user downloads into it
        log(f"apt-get download {KERNEL_PACKAGE} {BUSYBOX_PACKAGE}")
        meta_deb = _download(KERNEL_PACKAGE, tmp)
        depends = _deb_field(meta_deb, "Depends", tmp)
        m = re.search(r"(linux-image-[0-9][^\s,(]*)", depends)
        if m is None:
            raise ImageError(f"{KERNEL_PACKAGE} depends on no versioned kernel ({depends!r})")
        kpkg = m.group(1)
        log(f"apt-get download {kpkg}")
        kdeb = _download(kpkg, tmp)
        bdeb = _download(BUSYBOX_PACKAGE, tmp)
        packages = {p: _deb_field(deb, "Version", tmp)
                    for p, deb in ((KERNEL_PACKAGE, meta_deb), (kpkg, kdeb),
                                   (BUSYBOX_PACKAGE, bdeb))}  # fmt: skip
        log(f"extracting the kernel and modules from {kdeb.name}")
        files = _members(kdeb, tmp, lambda n: n.startswith("boot/vmlinuz-") or (
            n.startswith("lib/modules/") and n.endswith(".ko")
            and any(s in n for s in _MODULE_DIRS)))
        kernels = [n for n in files if n.startswith("boot/vmlinuz-")]
        if len(kernels) != 1:
            raise ImageError(f"{kdeb.name} holds {len(kernels)} kernels, expected one")
        version = kernels[0].removeprefix("boot/vmlinuz-")
        by_name = {Path(n).stem.replace("-", "_"): data
                   for n, data in files.items() if n.endswith(".ko")}  # fmt: skip
        deps = {n: _kmod.depends(data) for n, data in by_name.items()}
        try:
            order = _kmod.load_order(list(MODULES), deps)
        except (KeyError, ValueError) as err:
            raise ImageError(f"kernel {version}: {err}") from err
        bb = _members(bdeb, tmp, lambda n: n == "bin/busybox")
        if "bin/busybox" not in bb:
            raise ImageError(f"{bdeb.name} has no bin/busybox")
        cpio = initramfs(bb["bin/busybox"], [(n, by_name[n]) for n in order])
        elf = vmlinux(files[kernels[0]])
        kernel_file = "vmlinux" if elf is not None else "vmlinuz"
        (d / "kernel.tmp").write_bytes(elf if elf is not None else files[kernels[0]])
        (d / "initrd.cpio.tmp").write_bytes(cpio)
        os.replace(d / "kernel.tmp", d / kernel_file)
        os.replace(d / "initrd.cpio.tmp", d / "initrd.cpio")
        meta = {"format": FORMAT, "kernel_version": version, "packages": packages,
                "modules": order, "kernel_file": kernel_file,
                "initrd_sha256": hashlib.sha256(cpio).hexdigest()}  # fmt: skip
        (d / "image.json").write_text(json.dumps(meta, indent=1) + "\n")
    img = find(d)
    if img is None:
        raise ImageError(f"image written to {d} but cannot be read back")
    log(f"guest image in {d}: kernel {version}, {len(order)} modules, "
        f"initramfs {len(cpio) / 2**20:.1f} MiB")
    return img


def remove(cache_dir: Path | None = None) -> None:
    shutil.rmtree(cache_dir or default_cache_dir(), ignore_errors=True)
