"""The jail's parts on their own: uid reservation, the seccomp list, levels, the tamper check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maxwell.membrane import AgentSpec, Backend, MembraneError, _seccomp, select_backend
from maxwell.membrane._jail import Jail, JailConfig, UidPool, best_level, live_uids, pieces

from .conftest import assert_uid_gone, skip_unless_level


def test_every_seccomp_rule_says_why() -> None:
    rules = _seccomp.explain()
    names = [n for n, _ in rules]
    for must in ("io_uring_setup", "bpf", "perf_event_open", "userfaultfd", "keyctl", "mount",
                 "fsopen", "setns", "ptrace", "process_vm_readv", "kexec_load",
                 "clock_settime", "ioctl(TIOCSTI)", "unshare(CLONE_NEWUSER)"):
        assert must in names, must
    assert all(len(why) > 10 and "\n" not in why for _, why in rules)


def test_the_filter_builds_and_denies_in_a_child() -> None:
    avail = _seccomp.availability()
    if not avail.ok:
        pytest.skip(f"{avail.reason}")
    # Each a real call with harmless arguments; under the filter each must be EPERM.
    calls = {
        "io_uring_setup": "libc.syscall(425, 1, 0)",
        "unshare(NEWUSER)": "libc.unshare(0x10000000)",
        "clone(NEWUSER)": "libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)",
        "keyctl": "libc.syscall(250, 0, -1, 0, 0, 0)",
        "mount": "libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)",
        "clock_settime": "libc.syscall(227, 0, 0)",
        "process_vm_readv": "libc.syscall(310, os.getppid(), 0, 0, 0, 0, 0)",
        "ptrace": "libc.ptrace(16, os.getppid(), None, None)",
        "ioctl(TIOCSTI)": "libc.ioctl(0, 0x5412, b'x')",
        "perf_event_open": "libc.syscall(298, 0, 0, -1, -1, 0)",
        "bpf": "libc.syscall(321, 0, 0, 0)",
    }
    code = (
        "import ctypes, os\nfrom maxwell.membrane import _seccomp as s\n"
        "assert s.Installer(s.program()).install() == 0\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def t(r):\n    return f'{r}/{ctypes.get_errno()}'\n"
        + "".join(f"print(t({c}))\n" for c in calls.values())
        + "print(os.getpid() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30)
    got = out.stdout.split()
    assert got[-1] == "True", out  # ordinary calls still work
    assert dict(zip(calls, got, strict=False)) == dict.fromkeys(calls, "-1/1"), out


def test_uid_pool_skips_locked_and_live_uids(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("running a process as another uid needs root")
    base = 1_878_982_656 + 60_000  # far from the default pool's low end
    a = UidPool(base, 8, tmp_path, start=0)
    b = UidPool(base, 8, tmp_path, start=0)
    ua = a.reserve()
    ub = b.reserve()
    assert ua == base and ub == base + 1  # b saw a's lock
    # A live process of the next uid makes it unusable, even to a fresh pool.
    proc = subprocess.Popen(["setpriv", f"--reuid={base + 2}", f"--regid={base + 2}",
                             "--clear-groups", "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while base + 2 not in live_uids() and time.monotonic() < deadline:
            time.sleep(0.01)
        c = UidPool(base, 8, tmp_path, start=0)
        assert c.reserve() == base + 3
    finally:
        proc.kill()
        proc.wait()
    a.close()
    assert UidPool(base, 8, tmp_path, start=0).reserve() == base  # released with a's lock
    full = UidPool(base, 1, tmp_path / "other")
    full.reserve()
    with pytest.raises(MembraneError, match="no free uid"):
        UidPool(base, 1, tmp_path / "other").reserve()
    spread = {UidPool(base, 1000, tmp_path / "spread")._next for _ in range(20)}
    assert len(spread) > 10  # supervisors start at random places in the block


def test_levels_follow_the_pieces() -> None:
    p = pieces()
    level, why = best_level(JailConfig())
    if p["root"].ok and p["bwrap"].ok and p["setpriv"].ok:
        assert level == "bwrap"
    elif p["root"].ok:
        assert level == "drop" and "bwrap" in why
    else:
        assert level == "user"
    assert best_level(JailConfig(mode="off"))[0] == "off"
    if not p["root"].ok:
        with pytest.raises(MembraneError, match="unavailable"):
            best_level(JailConfig(mode="drop"))


def test_drop_refuses_a_program_other_uids_cannot_reach(tmp_path: Path) -> None:
    skip_unless_level("drop")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    prog = private / "prog"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    jail = Jail(JailConfig(mode="drop"))
    try:
        with pytest.raises(MembraneError, match="cannot search"):
            jail.reserve("a", [str(prog)])
    finally:
        jail.close()
    auto = Jail(JailConfig(mode="auto"))
    try:
        if auto.level == "drop":  # auto runs it as the supervisor's uid and says why
            assert auto.reserve("a", [str(prog)]) is None and "a" in auto.downgraded
    finally:
        auto.close()


def test_tampering_is_restored_and_reported() -> None:
    """A hole the jail should close, simulated from outside: the check notices and restores."""
    backend = select_backend("auto", clean_first=False)
    try:
        if backend.name == "signals":
            pytest.skip("needs a cgroup tier (run as root on a host with cgroups)")
        h = backend.spawn(AgentSpec("tampered", ["sleep", "30"]))
        assert h.verify() == []
        from maxwell.membrane._cgroup import CgroupHandle

        assert isinstance(h, CgroupHandle)
        if "cpu_quota" in backend.capabilities:
            h.set_cpu(0.25)
            q = h._cpu / "cpu.cfs_quota_us" if h._cpu is not None else h._v2 / "cpu.max"
            q.write_text("-1" if q.name == "cpu.cfs_quota_us" else "max 100000")
            drift = h.verify()
            assert any("quota" in d for d in drift), drift
            assert "25000" in q.read_text()
        h.pause()
        freeze = h._v2 / "cgroup.freeze" if h._v2 is not None else h._freezer / "freezer.state"
        freeze.write_text("0" if freeze.name == "cgroup.freeze" else "THAWED")
        drift = h.verify()
        assert any("thawed" in d for d in drift), drift
        h.pause()  # verify() re-requested the freeze; wait for the kernel's confirmation
        assert h.verify() == []
    finally:
        backend.close()


USER_LEVEL = """
import pathlib, sys, time
from maxwell.membrane import AgentSpec, select_backend
from maxwell.membrane._jail import Jail, JailConfig
jail = Jail(JailConfig())
backend = select_backend("signals", clean_first=False)
log = pathlib.Path(sys.argv[1])
h = backend.spawn(AgentSpec("u", ["/bin/sh", "-c", "cat /proc/self/status"],
                            jail=jail.request(), log_path=log))
while h.exit_status is None:
    time.sleep(0.01)
backend.close()
print(jail.level)
print(log.read_text())
"""


def test_without_root_what_can_be_applied_is(world_dir: Path) -> None:
    """As an unprivileged user: agents keep its uid but get no_new_privs and seccomp."""
    import pyseccomp

    import maxwell
    from maxwell.membrane._jail import _unreachable

    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user for the test needs root")
    src = Path(maxwell.__file__).parent.parent
    site = Path(pyseccomp.__file__).parent
    py = Path("/usr/bin/python3")
    if not py.exists() or any(_unreachable(p) for p in (py, src / "maxwell", site)):
        pytest.skip("the system python3, the source or site-packages is not reachable by "
                    "other uids here")
    os.chmod(world_dir, 0o777)
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "env", f"PYTHONPATH={src}:{site}", str(py), "-c", USER_LEVEL,
         str(world_dir / "u.log")],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    level, _, status = out.stdout.partition("\n")
    assert level == "user"
    assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status
    assert "Uid:\t65534" in status


@pytest.mark.parametrize("level", ["bwrap", "drop"])
def test_signals_tier_pauses_and_kills_a_jailed_tree(level: str) -> None:
    """The unprivileged tier's signals still reach a jailed tree (inside a pid namespace
    under bwrap) and nothing of the agent's uid survives its kill."""
    skip_unless_level(level)
    from .conftest import _system_python

    jail = Jail(JailConfig(mode=level))
    backend = select_backend("signals", clean_first=False)
    try:
        code = "import os\nif os.fork() == 0:\n    os.setsid()\nwhile True:\n    pass\n"
        h = backend.spawn(AgentSpec("spin", [str(_system_python()), "-c", code],
                                    jail=jail.request()))
        uid = jail.uid_of("spin")
        deadline = time.monotonic() + 20
        while h.usage().cpu_s < 0.05 and time.monotonic() < deadline:
            time.sleep(0.02)
        h.pause()
        c0 = h.usage().cpu_s
        time.sleep(0.3)
        assert h.usage().cpu_s - c0 < 0.02
        h.resume()
        h.kill()
        assert_uid_gone(uid)
    finally:
        backend.close()
        jail.close()


@pytest.mark.parametrize(("text", "key"), [
    ('[jail]\nmode = "chroot"\n', "jail.mode"),
    ("[jail]\nuid_base = 1000\n", "jail"),
    ('[jail]\nro_binds = ["relative/dir"]\n', "jail"),
    ("[jail]\nnofile = 3\n", "jail.nofile"),
    ("[jail]\nhost_network = true\n", "jail.host_network"),
])
def test_bad_jail_config_is_one_line_naming_the_key(text: str, key: str) -> None:
    import tomllib

    from maxwell.config import ConfigError, validate

    agents = '[[agents]]\nname = "a"\ncmd = ["true"]\nfunds = 1.0\n'
    with pytest.raises(ConfigError) as err:
        validate(tomllib.loads(text + agents))
    msg = str(err.value)
    assert key in msg and "\n" not in msg, msg


def _cgroup_tier(tier: str) -> object:
    from maxwell.membrane._cgroup import CgroupBackend, discover, tier_availability

    root = Path("/sys/fs/cgroup")
    h = discover(root)
    if tier == "cgroup2-freeze":  # pure v2 without the cpu controller: cpu.stat accounting
        if h.v2 is None or not os.access(h.v2, os.W_OK) or "cpu" in h.v2_controllers:
            pytest.skip("needs a writable v2 tree without the cpu controller (else: cgroup2)")
        return CgroupBackend("cgroup2", root, allow_no_cpu=True)
    avail = tier_availability(tier, h)
    if not avail.ok:
        pytest.skip(f"{tier} not available here: {avail.reason}")
    return CgroupBackend(tier, root)


@pytest.mark.parametrize("tier", ["cgroup2", "cgroup2-freeze", "hybrid", "cgroup1"])
def test_a_pause_freezes_the_agent_not_the_jails_helpers(tier: str) -> None:
    """bwrap's monitor and pid-1 reaper leave the freezer cgroup at the first confirmed
    pause (so a pause waits for the agent's processes only); every process of the agent
    stays in it, frozen; anything else found in the helpers' cgroup is moved back and
    reported; the kill takes the helpers' cgroup along."""
    skip_unless_level("bwrap")
    from maxwell.membrane import _proc
    from maxwell.membrane._cgroup import CgroupHandle, read_procs

    from .conftest import _uid

    backend = _cgroup_tier(tier)
    assert isinstance(backend, Backend)
    jail = Jail(JailConfig(mode="bwrap"))
    try:
        h = backend.spawn(AgentSpec("helped", ["/bin/sh", "-c", "sleep 60 & sleep 60"],
                                    jail=jail.request()))
        assert isinstance(h, CgroupHandle) and h._helpers is not None
        uid = jail.uid_of("helped")
        deadline = time.monotonic() + 20
        while len([p for p in h.pids() if _uid(p) == uid]) < 3:  # sh and its two sleeps
            assert time.monotonic() < deadline, "agent did not start"
            time.sleep(0.01)
        freezer_cg = h._v2 if h._v2 is not None else h._freezer
        assert freezer_cg is not None
        h.pause()
        assert h.frozen()
        reaper = _proc.children(h.pid)
        assert sorted(read_procs(h._helpers)) == sorted([h.pid, *reaper]) and len(reaper) == 1
        assert all(_uid(p) == 0 for p in read_procs(h._helpers))
        mine = [p for p in _proc.all_pids() if _uid(p) == uid]
        assert len(mine) == 3 and set(mine) <= set(read_procs(freezer_cg))
        assert h.verify() == []
        # A process of the agent in the helpers' (unfrozen) cgroup is a hole: found, moved back.
        (h._helpers / "cgroup.procs").write_text(str(mine[-1]))
        drift = h.verify()
        assert len(drift) == 1 and f"process {mine[-1]}" in drift[0], drift
        assert mine[-1] in read_procs(freezer_cg)
        deadline = time.monotonic() + 10  # the moved task freezes once it next runs
        while not h.frozen():
            assert time.monotonic() < deadline, "the moved-back process did not freeze"
            time.sleep(0.01)
        h.resume()
        assert h.usage().cpu_s > 0 and h.usage().nprocs == 3
        h.kill()
        assert not h._helpers.exists() and not freezer_cg.exists()
        assert_uid_gone(uid)
    finally:
        backend.close()
        jail.close()
