"""The microVM tier on real QEMU (TCG on this machine): boot, the Scientist inside,
pause/resume confirmed both ways, kill leaving nothing, a hostile guest contained.

Each VM boots in ~3 s here under TCG when the machine is quiet (longer under
load); the whole file stays under the tier's 2-minute test budget.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from vm_helpers import log_text, wait_for

from maxwell.agents import Endpoint, Hello, Verifier, WorkClaim, builtin_argv
from maxwell.membrane import AgentSpec
from maxwell.membrane._microvm import MicrovmBackend, MicrovmHandle
from maxwell.membrane._proc import pid_alive

pytestmark = pytest.mark.slow

COUNTER = (
    "import sys\n"
    "i = 0\n"
    "while True:\n"
    "    i += 1\n"
    "    if i % 5000 == 0:\n"
    "        sys.stdout.write(f'{i}\\n'); sys.stdout.flush()\n"
)


def _spawn(b: MicrovmBackend, name: str, argv: list[str], tmp: Path, **kw: object) -> MicrovmHandle:
    h = b.spawn(AgentSpec(name, argv, log_path=tmp / f"{name}.log", **kw))  # type: ignore[arg-type]
    assert isinstance(h, MicrovmHandle)
    return h


def test_scientist_in_a_vm_makes_claims_that_verify(vm_backend: MicrovmBackend,
                                                     tmp_path: Path) -> None:  # fmt: skip
    """Jailed where the jail has its own-uid levels: the VMM runs as the agent's uid with
    no capabilities, and the endpoint accepts the guest's hello from that uid only."""
    from maxwell.membrane import Jail, JailConfig
    from maxwell.membrane._jail import pieces

    out = tmp_path / "out"
    out.mkdir()
    ep = Endpoint(tmp_path / "ep")
    os.chmod(tmp_path / "ep", 0o711)
    jail = (Jail(JailConfig(), hide=[out])
            if os.geteuid() == 0 and all(a.ok for a in pieces().values()) else None)
    uid = jail.reserve("sci", [sys.executable]) if jail is not None else None
    env = {**os.environ, **ep.register("sci", uid=uid), "PYTHONUNBUFFERED": "1"}
    argv = builtin_argv("scientist", {"workers": 1, "segment_size": 100_000})
    h = vm_backend.spawn(AgentSpec("sci", argv, env=env, log_path=out / "sci.log", cpus=1,
                                   jail=jail.request(rw=[ep.path]) if jail else None))
    assert isinstance(h, MicrovmHandle)
    if jail is not None:
        assert h.jailed and uid is not None
        qemu = [p for p in h.pids() if "qemu" in Path(f"/proc/{p}/comm").read_text()]
        assert qemu and all(os.stat(f"/proc/{p}").st_uid == uid for p in qemu)
        with open(f"/proc/{qemu[0]}/status") as f:
            assert "CapEff:\t0000000000000000" in f.read()
    # The token travels over the control port only: not on QEMU's command line.
    assert env["MAXWELL_TOKEN"] not in " ".join(h.qemu_argv)
    with open(f"/proc/{h.pid}/cmdline", "rb") as f:
        assert env["MAXWELL_TOKEN"].encode() not in f.read()
    verifier = Verifier(0.5, np.random.default_rng(1))
    accepted, hello = [], False
    try:
        def progress() -> bool:
            nonlocal hello
            ep.wait(0.2)
            for msg in ep.poll():
                if isinstance(msg, Hello):
                    hello = True
                elif isinstance(msg, WorkClaim):
                    v = verifier.verify(msg)
                    ep.send_verdict(msg.agent, v.accepted, v.units, v.reason, fraud=v.fraud,
                                    claim_id=msg.claim_id)
                    assert v.accepted and not v.fraud, v.reason
                    accepted.append(v.units)
            return len(accepted) >= 2

        wait_for(progress, 90, f"two verified claims (console: {out / 'sci.log'})", 0)
        assert hello and sum(accepted) > 0
        boot_s = h.boot_s
        assert boot_s is not None and 0 < boot_s < 90
        assert h.describe()["accel"] in ("tcg", "kvm")
        assert h.usage().cpu_s > 0.5  # the guest's CPU is the VMM's, in the agent's cgroup
    finally:
        h.kill()
        ep.close()
        if jail is not None:
            jail.close()


def _grows(log: Path, window_s: float) -> bool:
    import time

    before = len(log_text(log))
    time.sleep(window_s)
    return len(log_text(log)) > before


def test_pause_resume_confirmed_by_freeze_and_by_qmp_then_kill_leaves_nothing(
    vm_backend: MicrovmBackend, tmp_path: Path
) -> None:
    h = _spawn(vm_backend, "counter", [sys.executable, "-c", COUNTER], tmp_path)
    log = tmp_path / "counter.log"
    h.wait_ready()
    wait_for(lambda: "5000\n" in log_text(log), 60, "the counter to print")
    for method in ("freeze", "qmp"):
        h.pause_method = method
        h.pause()
        if method == "qmp":
            assert h.qmp_status() == "paused"
        assert not _grows(log, 0.6), f"{method}: the guest kept running while paused"
        h.resume()
        if method == "qmp":
            assert h.qmp_status() == "running"
        wait_for(lambda: _grows(log, 0.2), 20, f"{method}: the guest to run again", 0)
    h.set_cpu(0.2)  # the quota lands on the VMM's cgroup
    h.set_cpu(None)
    pid, vm_dir = h.pid, vm_backend._dir / "counter"
    inner_dirs = list(getattr(h._inner, "_dirs", {}).values())
    h.pause()  # killing a paused VM must leave nothing frozen either
    h.kill()
    assert not h.alive()
    assert not pid_alive(pid)
    assert not vm_dir.exists()
    assert all(not d.exists() for d in inner_dirs)


HOSTILE = r"""
import ctypes, errno, json, os, socket, sys
host_pid, endpoint, secret, victim_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def attempt(name, fn):
    try:
        r = fn()
        out[name] = "ok" if r is None or r is True else f"ok:{r}"
    except OSError as e:
        out[name] = "blocked:" + errno.errorcode.get(e.errno, str(e.errno))
def c(rc):
    if rc != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
attempt("host cgroup procs", lambda: open("/sys/fs/cgroup/unified/cgroup.procs", "w").write("1"))
os.makedirs("/tmp/cg", exist_ok=True)
attempt("mount cgroup2", lambda: c(libc.mount(b"none", b"/tmp/cg", b"cgroup2", 0, None)))
attempt("umount guest /proc", lambda: c(libc.umount2(b"/proc", 2)))
attempt("write host fs", lambda: open("/var/tmp/../../etc/maxwell-hostile", "w"))
attempt("host supervisor environ",
        lambda: "leak" if "MAXWELL" in open(f"/proc/{host_pid}/environ").read() else None)
attempt("connect host endpoint", lambda: socket.socket(socket.AF_UNIX).connect(endpoint))
attempt("signal victim VMM", lambda: os.kill(victim_pid, 0))
attempt("network", lambda: socket.create_connection(("10.0.2.2", 22), timeout=1))
found = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            if secret in open(f"/proc/{p}/environ").read():
                found.append(p)
        except OSError:
            pass
out["secret seen in"] = found
out["caps"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
print("HOSTILE " + json.dumps(out), flush=True)
"""


def test_hostile_guest_reaches_neither_host_cgroups_nor_other_agents(
    vm_backend: MicrovmBackend, tmp_path: Path
) -> None:
    ep = Endpoint(tmp_path / "ep")
    secret = "s3cr3t-" + os.urandom(8).hex()
    victim = _spawn(vm_backend, "victim", [sys.executable, "-c", "import time; time.sleep(600)"],
                    tmp_path, env={"VICTIM_SECRET": secret, **ep.register("victim")})
    hostile = _spawn(vm_backend, "hostile",
                     [sys.executable, "-c", HOSTILE, str(os.getpid()), str(ep.path), secret,
                      str(victim.pid)], tmp_path, env=ep.register("hostile"))  # fmt: skip
    try:
        line = wait_for(lambda: next((ln for ln in log_text(tmp_path / "hostile.log").splitlines()
                                      if ln.startswith("HOSTILE ")), None), 90, "hostile report")
        out = json.loads(line.removeprefix("HOSTILE "))
        for attack in ("host cgroup procs", "mount cgroup2", "umount guest /proc",
                       "write host fs", "connect host endpoint", "signal victim VMM", "network"):
            assert out[attack].startswith("blocked:"), (attack, out[attack])
        # The guest's /proc is its own: the supervisor's pid does not exist there (or is
        # a guest process without our environment).
        assert out["host supervisor environ"] != "ok:leak"
        assert out["secret seen in"] == []
        assert out["caps"] == "0000000000000000"
        assert victim.alive()
        assert secret not in (tmp_path / "hostile.log").read_text()
        print(out)
    finally:
        hostile.kill()
        victim.kill()
        ep.close()



def test_isolation_process_stays_a_process_and_config_picks_the_tier(
    vm_backend: MicrovmBackend, tmp_path: Path
) -> None:
    from maxwell.config import validate
    from maxwell.membrane import microvm_options

    h = vm_backend.spawn(AgentSpec("plain", [sys.executable, "-c", "import time; time.sleep(30)"],
                                   isolation="process"))
    try:
        assert not isinstance(h, MicrovmHandle) and h.alive()
        assert "qemu" not in Path(f"/proc/{h.pid}/cmdline").read_text()
    finally:
        h.kill()
    base = {"agents": [{"name": "a", "cmd": [sys.executable], "funds": 1.0},
                       {"name": "b", "cmd": [sys.executable], "funds": 1.0}]}
    assert microvm_options(validate(base)) is None  # nobody asks for a VM: no VM tier
    base["agents"][1]["isolation"] = "microvm"
    opts = microvm_options(validate(base))
    assert opts is not None and opts.jail_vmm
    vm = validate({**base, "membrane": {"backend": "microvm"},
                   "microvm": {"pause": "qmp", "memory_mb": 128}})
    o = microvm_options(vm)
    assert o is not None and o.pause == "qmp" and o.memory_mb == 128


SUPERVISOR = r"""
import sys, time
from pathlib import Path
from maxwell.membrane import AgentSpec
from maxwell.membrane._microvm import MicrovmBackend, MicrovmOptions
b = MicrovmBackend(MicrovmOptions())
h = b.spawn(AgentSpec("orphan", [sys.executable, "-c", "import time; time.sleep(600)"],
                      log_path=Path(sys.argv[1])))
print(h.pid, b.supervisor_id, b._dir, flush=True)
time.sleep(600)
"""


def test_a_sigkilled_supervisor_leaves_no_vm(guest_image: object, tmp_path: Path) -> None:
    import signal
    import subprocess

    from maxwell.membrane import cleanup_stale

    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(tmp_path / "orphan.log")],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert sup.stdout is not None
        vmm_pid, sup_id, vm_dir = sup.stdout.readline().split()
        assert pid_alive(int(vmm_pid)) and Path(vm_dir).is_dir()
    finally:
        sup.send_signal(signal.SIGKILL)
        sup.wait()
    # The VMM dies with its supervisor (PDEATHSIG); the next start cleans what is left.
    wait_for(lambda: not pid_alive(int(vmm_pid)), 20, "the VMM to die with its supervisor")
    report = cleanup_stale()
    assert not Path(vm_dir).exists()
    assert sup_id in report.removed_supervisors or not any(
        sup_id in d for d in report.live_supervisors)
