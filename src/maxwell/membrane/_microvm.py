"""The microVM tier: each agent in its own QEMU `-M microvm` guest, inside its own cgroup.

The VMM (QEMU) is spawned through a process tier (`inner`: hybrid, cgroup2,
cgroup1 or signals) as if it were the agent, so the VMM and every thread it has
sit in the agent's cgroup: CPU quota (`cpu.max` / `cfs_quota_us`) and CPU
accounting apply to the guest's vCPUs, `cgroup.kill` ends the VM, and freezing
the cgroup pauses the guest. QMP `stop`/`cont` is the other pause, chosen by
`pause` ("auto": the cgroup freeze, the faster of the two confirmed on this
machine — see the README's microVM section for the figures).

The guest (`maxwell.image`) boots the Debian kernel with a project-written
initramfs, mounts the host's `/` read-only over virtio-9p, hides the host's
/proc, /sys, /dev and /tmp behind its own, and runs the relay, which reads the
agent's spec (argv, environment with its token, cwd) from a virtio-serial
control port — never the host's command line — and bridges a Unix socket
inside the guest (the agent's MAXWELL_ENDPOINT) to a second port whose host
end QEMU connects to the supervisor's endpoint. The agent runs as an
unprivileged guest user. Free-page reporting is on: pages the guest frees come
back to the host as the VMM's madvise(MADV_DONTNEED), which the memory tracer
sees in the agent's cgroup.

Accelerator: KVM only after a canary boot of the same image succeeds within a
few seconds (cached per host boot), otherwise TCG; the reason is in
`Backend.reason` and so in the run record. Firecracker (`_firecracker`): its
availability and the API requests it would take are there; running it as the
VMM is not (no binary and no booting KVM on the machine this was built on).

Touches: the processes it starts, the inner tier's cgroups, and a private
0700 run directory (sockets, consoles) it removes on close.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maxwell.common import Availability
from maxwell.membrane._base import Backend, Handle
from maxwell.membrane._qmp import QMP
from maxwell.membrane._types import AgentSpec, MembraneError, Usage

QEMU = "qemu-system-x86_64"
VMM_MEMORY_OVERHEAD_MB = 160  # QEMU itself, TCG's translation cache (tb-size) and 9p buffers
TB_SIZE_MB = 64  # TCG translation cache (QEMU 7.2's default, 1 GiB, would dominate RSS)
CANARY_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 20.0
# The agent's uid inside the guest: root's ownership without any capability
# (see the relay), so it can run the host's Python wherever it is installed.
GUEST_UID = 0
PAUSES = ("auto", "freeze", "qmp")
VM_DIR_PREFIX = "maxwell-vm-"  # + <supervisor-id>-<random>: sockets of one backend's VMs
# Without a known TSC frequency the guest calibrates it, which under TCG hung 3
# boots in 5 here; tsc=reliable skips the watchdog that would then mark it unstable.
DEFAULT_TSC_KHZ = 2_600_000


@dataclass(frozen=True)
class MicrovmOptions:
    """The `[microvm]` configuration section (and `[membrane] backend = "microvm"`)."""

    accel: str = "auto"  # auto | kvm | tcg
    vmm: str = "auto"  # auto | qemu | firecracker
    memory_mb: int = 256  # guest RAM
    pause: str = "auto"  # auto | freeze | qmp
    isolation: str = "microvm"  # default for agents that name none: microvm | process
    image_dir: Path | None = None
    inner: str = "auto"  # the process tier the VMM runs in
    guest_uid: int = GUEST_UID
    boot_timeout_s: float = 120.0
    # Run the VMM under the agent's jail (its own uid, namespaces, no capabilities) when
    # the spec carries one; False: the VMM runs as the supervisor's user.
    jail_vmm: bool = True


def options_from_config(cfg: Any) -> MicrovmOptions | None:
    """The tier's options from a validated Config, or None when no agent needs a VM."""
    wants = cfg.membrane.backend == "microvm" or any(
        a.isolation == "microvm" for a in cfg.agents)
    if not wants:
        return None
    m = cfg.microvm
    return MicrovmOptions(accel=m.accel, vmm=m.vmm, memory_mb=m.memory_mb, pause=m.pause,
                          inner=m.inner, boot_timeout_s=m.boot_timeout_s, jail_vmm=m.jail_vmm,
                          image_dir=Path(m.image_dir).expanduser() if m.image_dir else None)


def _tsc_khz(procfs: Path = Path("/proc")) -> int:
    try:
        for line in (procfs / "cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return round(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        pass
    return DEFAULT_TSC_KHZ


def qemu_version(binary: str = QEMU) -> str | None:
    path = shutil.which(binary)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\S+)", out.stdout)
    return m.group(1) if m else None


def availability(image_dir: Path | None = None) -> Availability:
    """QEMU installed and a guest image built (no boot, no side effects)."""
    from maxwell import image

    ver = qemu_version()
    if ver is None:
        return Availability(False, f"{QEMU} not found: `sudo apt-get install qemu-system-x86`")
    img = image.find(image_dir)
    if img is None:
        return Availability(False, f"no guest image in {image_dir or image.default_cache_dir()}: "
                            "run `maxwell image build`")
    return Availability(True, f"QEMU {ver} -M microvm, guest kernel {img.kernel_version}")


def kernel_cmdline(*, canary: bool, python: str, relay: str, tsc_khz: int) -> str:
    parts = ["console=ttyS0", "quiet", "loglevel=3", f"tsc_early_khz={tsc_khz}", "tsc=reliable",
             "reboot=t", "panic=-1", "random.trust_cpu=on"]
    if canary:
        parts.append("maxwell.canary=1")
    else:
        parts += [f"maxwell.python={python}", f"maxwell.relay={relay}"]
    return " ".join(parts)


def qemu_argv(
    kernel: Path,
    initrd: Path,
    *,
    accel: str,
    smp: int,
    memory_mb: int,
    console: Path | None,
    ctl: Path | None,
    channel: Path | None,
    qmp: Path | None,
    cmdline: str,
    binary: str = QEMU,
) -> list[str]:
    """The QEMU command line of one agent's VM (nothing secret on it)."""
    if accel == "kvm":
        acc = ["-accel", "kvm", "-cpu", "host"]
    else:
        acc = ["-accel", f"tcg,thread=multi,tb-size={TB_SIZE_MB}", "-cpu", "max"]
    argv = [
        binary, "-M", "microvm,x-option-roms=off,rtc=on", *acc,
        "-m", str(memory_mb), "-smp", str(smp),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        # The console goes to QEMU's stdout (None), which the spawn path opened on the
        # agent's log before any jail: a jailed VMM cannot see the run directory.
        "-chardev", f"file,id=con,path={console},append=on" if console is not None
        else "stdio,id=con,signal=off", "-serial", "chardev:con",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
        "-device", "virtio-balloon-device,free-page-reporting=on",
    ]  # fmt: skip
    if ctl is None:  # the canary needs no share, ports or monitor
        return argv
    argv += [
        "-fsdev", "local,id=hostroot,path=/,security_model=passthrough,readonly=on,"
                  "multidevs=remap",
        "-device", "virtio-9p-device,fsdev=hostroot,mount_tag=hostroot",
        "-device", "virtio-serial-device,max_ports=4",
        "-chardev", f"socket,id=ctl,path={ctl}",
        "-device", "virtserialport,chardev=ctl,name=maxwell.ctl",
    ]  # fmt: skip
    if channel is not None:
        argv += ["-chardev", f"socket,id=ch,path={channel},reconnect=1"]
    else:
        argv += ["-chardev", "null,id=ch"]
    argv += ["-device", "virtserialport,chardev=ch,name=maxwell.ch"]
    if qmp is not None:
        argv += ["-chardev", f"socket,id=qmp,path={qmp}", "-mon", "chardev=qmp,mode=control"]
    return argv


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe_accel(image_dir: Path | None = None, *, force: str = "auto",
                dev_root: Path = Path("/dev"), use_cache: bool = True) -> tuple[str, str]:
    """("kvm" | "tcg", why): KVM only if a canary boot succeeds within a few seconds.

    The verdict is cached per host boot, QEMU version and guest kernel in the
    image directory, so a run does not pay a failed canary's timeout each time.
    """
    from maxwell import image

    if force == "tcg":
        return "tcg", "TCG (forced by [microvm] accel)"
    kvm = dev_root / "kvm"
    if not kvm.exists():
        if force == "kvm":
            raise MembraneError(f"[microvm] accel = \"kvm\" but there is no {kvm}")
        return "tcg", f"TCG: no {kvm} (load kvm_intel/kvm_amd with virtualization enabled)"
    img = image.find(image_dir)
    if img is None:
        raise MembraneError("no guest image: run `maxwell image build`")
    key = f"{_boot_id()} {qemu_version()} {img.kernel_version}"
    cache = img.directory / "kvm-canary.json"
    if use_cache:
        with contextlib.suppress(OSError, ValueError, KeyError):
            c = json.loads(cache.read_text())
            if c["key"] == key:
                return _accel_verdict(bool(c["ok"]), str(c["why"]), force)
    ok, why = kvm_canary(img.kernel, img.initrd)
    with contextlib.suppress(OSError):
        cache.write_text(json.dumps({"key": key, "ok": ok, "why": why}) + "\n")
    return _accel_verdict(ok, why, force)


def _accel_verdict(ok: bool, why: str, force: str) -> tuple[str, str]:
    if ok:
        return "kvm", f"KVM ({why})"
    if force == "kvm":
        raise MembraneError(f"[microvm] accel = \"kvm\" but KVM cannot boot a guest here: {why}")
    return "tcg", f"TCG: KVM canary failed ({why})"


def kvm_canary(kernel: Path, initrd: Path, timeout_s: float = CANARY_TIMEOUT_S) -> tuple[bool, str]:
    """Boot the guest under KVM to the canary marker; (booted, what happened)."""
    with tempfile.TemporaryDirectory(prefix="maxwell-canary-") as tmp:
        console = Path(tmp) / "console"
        argv = qemu_argv(kernel, initrd, accel="kvm", smp=1, memory_mb=128, console=console,
                         ctl=None, channel=None, qmp=None,
                         cmdline=kernel_cmdline(canary=True, python="", relay="",
                                                tsc_khz=_tsc_khz()))  # fmt: skip
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)  # fmt: skip
            err = (proc.stderr or "").strip().splitlines()
            tail = err[0] if err else f"exit status {proc.returncode}"
        except subprocess.TimeoutExpired:
            tail = f"no boot within {timeout_s:.0f} s"
        except OSError as e:
            return False, f"cannot run {QEMU}: {e}"
        out = console.read_text(errors="replace") if console.exists() else ""
        if "MAXWELL-CANARY-OK" in out:
            return True, f"canary booted in {time.monotonic() - t0:.2f} s"
        last = [ln for ln in out.splitlines() if ln.strip()]
        seen = f"; guest console ended at {last[-1].strip()[:80]!r}" if last else ""
        return False, f"{tail[:160]}{seen}"


@dataclass
class _Pending:
    """What the control port has told us so far."""

    ready_uptime_s: float | None = None
    ready_host_s: float | None = None
    exit_status: int | None = None
    error: str | None = None


class MicrovmHandle(Handle):
    """One agent's VM. `pid` is the VMM's; `boot_s` once the guest has started the agent."""

    def __init__(self, backend: MicrovmBackend, spec: AgentSpec, vm_dir: Path) -> None:
        self._backend = backend
        self._dir = vm_dir
        self._spawned_at = time.monotonic()
        self.accel = backend.accel
        self.pause_method = backend.pause_method
        self.smp = max(1, min(spec.cpus or 1, os.cpu_count() or 1))
        opts = backend.options
        img = backend.image
        need = opts.memory_mb + VMM_MEMORY_OVERHEAD_MB
        if spec.memory_max_bytes is not None and spec.memory_max_bytes < need * 2**20:
            raise MembraneError(
                f"agent {spec.name!r}: memory limit {spec.memory_max_bytes >> 20} MiB is below "
                f"the VM's {opts.memory_mb} MiB plus {VMM_MEMORY_OVERHEAD_MB} MiB for QEMU; "
                "raise membrane.memory_max_mb or lower microvm.memory_mb")
        ctl_path, qmp_path = vm_dir / "ctl.sock", vm_dir / "qmp.sock"
        listeners = {}
        for key, path in (("ctl", ctl_path), ("qmp", qmp_path)):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.fspath(path))
            s.listen(1)
            listeners[key] = s
        endpoint = spec.env.get("MAXWELL_ENDPOINT")
        console = spec.log_path if spec.log_path is not None else vm_dir / "console.log"
        self.console = console
        for p in (ctl_path, qmp_path):
            os.chmod(p, 0o666)  # a jailed VMM (another uid) connects to them
        argv = qemu_argv(
            img.kernel, img.initrd, accel=backend.accel, smp=self.smp,
            memory_mb=opts.memory_mb, console=None, ctl=ctl_path,
            channel=Path(endpoint) if endpoint else None, qmp=qmp_path,
            cmdline=kernel_cmdline(canary=False, python=backend.python,
                                   relay=str(backend.relay), tsc_khz=backend.tsc_khz),
        )  # fmt: skip
        # The VMM's own environment carries no token: only the guest gets it (ctl port).
        vmm_spec = AgentSpec(name=spec.name, argv=argv, env={}, pids_max=spec.pids_max,
                             memory_max_bytes=spec.memory_max_bytes, log_path=console,
                             jail=self._vmm_jail(spec, vm_dir))  # fmt: skip
        self.jailed = vmm_spec.jail is not None
        self.qemu_argv = argv
        try:
            self._inner = backend.inner.spawn(vmm_spec)
        except BaseException:
            for sock in listeners.values():
                sock.close()
            raise
        super().__init__(spec.name, self._inner._proc)
        self.cgroup_id = self._inner.cgroup_id
        self.unenforced = self._inner.unenforced
        self._pending = _Pending()
        self._boot_noted = False
        self._ctl_buf = bytearray()
        self._qmp: QMP | None = None
        self._ctl: socket.socket | None = None
        try:
            ctl = self._accept(listeners["ctl"], "control port")
            self._ctl = ctl
            ctl.sendall(json.dumps(self._guest_spec(spec)).encode() + b"\n")
            ctl.setblocking(False)
            self._qmp = QMP(self._accept(listeners["qmp"], "QMP monitor"))
        except BaseException:
            self._inner.kill()
            raise
        finally:
            for s in listeners.values():
                s.close()
            for p in (ctl_path, qmp_path):
                with contextlib.suppress(OSError):
                    p.unlink()
        self.vmm_started_s = time.monotonic() - self._spawned_at

    def _vmm_jail(self, spec: AgentSpec, vm_dir: Path) -> Any:
        """The agent's jail request, redone for its VMM (as Firecracker's jailer runs it).

        The VMM runs as the agent's own uid, without capabilities, in the jail's
        namespaces; its view holds what QEMU opens (image, sockets, /dev/kvm) and
        what the guest runs over the 9p share: the Python and project the agent's
        command uses, and the files its arguments name. The guest sees only that
        view of the host, read-only.
        """
        req = spec.jail
        if req is None or not self._backend.options.jail_vmm:
            return None
        b = self._backend
        ro = {Path(os.path.realpath(p)) for p in (b.image.directory, b.relay.parent)}
        for p in (sys.executable, os.path.realpath(sys.executable), sys.prefix,
                  sys.base_prefix, *sys.path, *spec.argv):
            if p and os.path.isabs(p) and os.path.exists(p):
                ro.add(Path(p))
        exe = shutil.which(spec.argv[0]) if not os.path.isabs(spec.argv[0]) else spec.argv[0]
        if exe:
            ro.add(Path(exe))
            ro.add(Path(os.path.realpath(exe)).parent.parent)
        os.chmod(vm_dir.parent, 0o711)
        os.chmod(vm_dir, 0o711)
        dev = [Path("/dev/kvm")] if b.accel == "kvm" else []
        return req.jail.request(ro=[*req.ro, *sorted(ro)], rw=[*req.rw, vm_dir],
                                dev=[*req.dev, *dev])

    def _guest_spec(self, spec: AgentSpec) -> dict[str, object]:
        env = dict(spec.env)
        env.pop("MAXWELL_MEMBRANE", None)
        env["MAXWELL_MEMBRANE"] = f"{self._backend.supervisor_id}/{spec.name}"
        env["MAXWELL_ISOLATION"] = "microvm"
        return {"argv": list(spec.argv), "env": env,
                "cwd": str(spec.cwd) if spec.cwd else "/tmp",
                "uid": self._backend.options.guest_uid}  # fmt: skip

    def _accept(self, listener: socket.socket, what: str) -> socket.socket:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        listener.settimeout(0.05)
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                conn = None
            if conn is not None:
                # Only the VMM may have it: the spec carries the agent's token.
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
                if struct.unpack("3i", creds)[0] in self._inner.pids():
                    return conn
                conn.close()
            if self._inner.exit_status is not None or time.monotonic() > deadline:
                tail = ""
                with contextlib.suppress(OSError):
                    tail = self.console.read_text(errors="replace").strip()[-300:]
                raise MembraneError(
                    f"agent {self.name!r}: QEMU did not connect its {what} "
                    f"(exit status {self._inner.exit_status}): {tail}")

    # -- the control port -------------------------------------------------------
    def _poll_ctl(self) -> None:
        if self._ctl is None:
            return
        while True:
            try:
                chunk = self._ctl.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._ctl.close()
                self._ctl = None
                break
            self._ctl_buf += chunk
        while b"\n" in self._ctl_buf:
            line, _, rest = bytes(self._ctl_buf).partition(b"\n")
            self._ctl_buf = bytearray(rest)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            p = self._pending
            if not isinstance(msg, dict):
                continue
            if msg.get("type") == "ready" and p.ready_uptime_s is None:
                p.ready_uptime_s = float(msg.get("uptime_s", 0.0))
                p.ready_host_s = time.monotonic() - self._spawned_at
            elif msg.get("type") == "exit":
                p.exit_status = int(msg.get("status", -1))
            elif msg.get("type") == "error":
                p.error = str(msg.get("reason"))[:300]

    @property
    def boot_s(self) -> float | None:
        """Seconds from spawn until the guest relay had started the agent (None: not yet)."""
        self._poll_ctl()
        return self._pending.ready_host_s

    @property
    def guest_uptime_at_ready_s(self) -> float | None:
        self._poll_ctl()
        return self._pending.ready_uptime_s

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Block until the agent runs in the guest; its boot time in seconds."""
        limit = self._backend.options.boot_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        while (b := self.boot_s) is None:
            if self._pending.error is not None:
                raise MembraneError(f"agent {self.name!r}: guest: {self._pending.error}")
            if not self._inner.alive():
                raise MembraneError(f"agent {self.name!r}: VM ended before the agent started "
                                    f"(see {self.console})")
            if time.monotonic() > deadline:
                raise MembraneError(f"agent {self.name!r}: guest not ready in {limit:.0f} s")
            time.sleep(0.02)
        return b

    def describe(self) -> dict[str, object]:
        """What the run record keeps per agent: accelerator, boot time, pause method."""
        self._poll_ctl()
        return {"isolation": "microvm", "vmm": "qemu", "accel": self.accel, "smp": self.smp,
                "memory_mb": self._backend.options.memory_mb, "pause": self.pause_method,
                "vmm_jailed": self.jailed,
                "boot_s": None if self._pending.ready_host_s is None
                else round(self._pending.ready_host_s, 3),
                "guest_uptime_at_ready_s": self._pending.ready_uptime_s,
                "vmm_started_s": round(self.vmm_started_s, 3)}  # fmt: skip

    @property
    def exit_status(self) -> int | None:
        """The agent's exit status inside the guest (else the VMM's, once it has exited)."""
        self._poll_ctl()
        vmm = self._inner.exit_status
        if self._pending.exit_status is not None and vmm is not None:
            return self._pending.exit_status
        return vmm

    # -- pause / resume ---------------------------------------------------------
    def pause(self, wait: bool = True) -> None:
        if self._killed:
            return
        if self.pause_method == "qmp":
            assert self._qmp is not None
            # `stop` returns once every vCPU has left guest code (QEMU's
            # pause_all_vcpus waits for them): the reply is the confirmation.
            self._qmp.execute("stop")
        else:
            self._inner.pause(wait)
        self.paused = True

    def resume(self) -> None:
        if self._killed:
            return
        if self.pause_method == "qmp":
            assert self._qmp is not None
            self._qmp.execute("cont")
        else:
            self._inner.resume()
        self.paused = False

    def qmp_status(self) -> str:
        assert self._qmp is not None
        return str(self._qmp.execute("query-status").get("status"))

    def set_cpu(self, cores: float | None) -> None:
        if not self._killed:
            self._inner.set_cpu(cores)

    def verify(self) -> list[str]:
        """The inner tier's tamper check (freeze, quota), and QMP's run state if it pauses."""
        if self._killed:
            return []
        drift = self._inner.verify()
        if self.pause_method == "qmp" and self._qmp is not None:
            try:
                running = self.qmp_status() == "running"
            except MembraneError as err:
                return [*drift, f"QMP unreachable: {err}"]
            if running == self.paused:
                drift.append(f"VM {'running' if running else 'stopped'} while "
                             f"{'paused' if self.paused else 'resumed'}; restored")
                self._qmp.execute("stop" if self.paused else "cont")
        return drift

    def boot_note(self) -> dict[str, object]:
        """Once, after boot: what the run's `boot` event records (then {})."""
        if self._boot_noted or self.boot_s is None:
            return {}
        self._boot_noted = True
        return self.describe()

    def usage(self) -> Usage:
        self._poll_ctl()
        return self._inner.usage()

    def pids(self) -> list[int]:
        return self._inner.pids()

    def alive(self) -> bool:
        self._poll_ctl()
        if self._killed:
            return False
        return self._inner.alive()

    def kill(self) -> None:
        if self._killed:
            return
        with contextlib.suppress(OSError):
            self._poll_ctl()
        self._inner.kill()
        self._killed = True
        self.paused = False
        if self._qmp is not None:
            self._qmp.close()
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        shutil.rmtree(self._dir, ignore_errors=True)


def remove_stale_dirs(alive: Any, tmp: Path | None = None) -> list[str]:
    """Remove the VM socket directories of supervisors for which `alive(sup_id)` is False."""
    removed = []
    for d in (tmp or Path(tempfile.gettempdir())).glob(VM_DIR_PREFIX + "*"):
        sup_id = d.name[len(VM_DIR_PREFIX):].rsplit("-", 1)[0]
        if d.is_dir() and not alive(sup_id):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


class MicrovmBackend(Backend):
    """QEMU microVMs whose VMMs run in the cgroups of a process tier (`inner`)."""

    name = "microvm"

    def __init__(self, options: MicrovmOptions | None = None,
                 cgroup_root: Path = Path("/sys/fs/cgroup"), *, inner: Backend | None = None,
                 dev_root: Path = Path("/dev")) -> None:  # fmt: skip
        from maxwell import image

        self.options = opts = options or MicrovmOptions()
        if opts.pause not in PAUSES:
            raise MembraneError(f"microvm pause {opts.pause!r}: choose one of {', '.join(PAUSES)}")
        if opts.vmm == "firecracker":
            from maxwell.membrane import _firecracker

            why = _firecracker.availability(dev_root)
            raise MembraneError(
                f"[microvm] vmm = \"firecracker\": {why.reason}; running Firecracker as the VMM "
                "is not implemented (its guest would need a block-device root: it has no 9p)"
                if why.ok else f"[microvm] vmm = \"firecracker\" unavailable: {why.reason}")
        avail = availability(opts.image_dir)
        if not avail.ok:
            raise MembraneError(f"microvm unavailable: {avail.reason}")
        img = image.find(opts.image_dir)
        assert img is not None
        self.image = img
        self.accel, accel_why = probe_accel(opts.image_dir, force=opts.accel, dev_root=dev_root)
        # Freezing the VMM's cgroup is the default: measured here (`maxwell bench
        # membrane --backend microvm`) it confirmed faster than QMP stop, and it
        # also stops QEMU's I/O threads, not only the vCPUs.
        self.pause_method = "qmp" if opts.pause == "qmp" else "freeze"
        self.python = sys.executable
        self.relay = image.relay_path()
        self.tsc_khz = _tsc_khz()
        if inner is None:
            from maxwell.membrane import _select

            inner = _select(opts.inner, cgroup_root)
        # (On the signals tier the "freeze" is SIGSTOP of the VMM: it stops the guest too.)
        self.inner = inner
        self.capabilities = inner.capabilities
        super().__init__(subreaper=False)
        # Named after the supervisor so `cleanup_stale` can remove it if we are SIGKILLed.
        self._dir = Path(tempfile.mkdtemp(prefix=f"{VM_DIR_PREFIX}{self.supervisor_id}-"))
        os.chmod(self._dir, 0o700)
        self.reason = (f"{avail.reason}; accel {accel_why}; VMM in {inner.name} cgroups "
                       f"({inner.reason}); pause by "
                       f"{'QMP stop/cont' if self.pause_method == 'qmp' else 'cgroup freeze'}")

    def describe(self) -> dict[str, object]:
        return {"accel": self.accel, "image": self.image.describe(), "pause": self.pause_method,
                "inner": self.inner.name,
                "agents": {n: h.describe() for n, h in self.handles.items()
                           if isinstance(h, MicrovmHandle)}}  # fmt: skip

    def wait_ready(self, timeout_s: float | None = None) -> dict[str, float]:
        """Block until every VM spawned so far runs its agent; boot seconds per agent.

        Spawning returns once the VMM is up, so several guests boot in parallel;
        the run calls this once after spawning them all, before its first tick.
        """
        return {n: h.wait_ready(timeout_s) for n, h in self.handles.items()
                if isinstance(h, MicrovmHandle) and not h._killed}  # fmt: skip

    def _spawn(self, spec: AgentSpec) -> Handle:
        isolation = spec.isolation or self.options.isolation
        if isolation == "process":
            return self.inner.spawn(spec)
        if isolation != "microvm":
            raise MembraneError(f"agent {spec.name!r}: unknown isolation {isolation!r}")
        vm_dir = self._dir / spec.name
        if vm_dir.exists():
            shutil.rmtree(vm_dir)
        vm_dir.mkdir(mode=0o700)
        return MicrovmHandle(self, spec, vm_dir)

    def _close_tier(self) -> None:
        try:
            self.inner.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

