"""The hostile-agent suite: each attack is a real attempt from a jailed agent and must fail.

Run at both own-uid levels (`bwrap` and the no-bwrap `drop`), as root, on the
real cgroup tier this machine has. The negative controls show the same attack
succeeding without the jail, so a test that cannot fail would be caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from maxwell.agents import Endpoint, Hello, Strike
from maxwell.membrane._cgroup import CgroupHandle, discover
from maxwell.membrane._jail import live_uids

from .conftest import FSIZE_MB, PIDS_MAX, TMP_MB, Cell, _uid, assert_uid_gone

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _needs_cgroups(cell: Cell) -> None:
    if cell.backend.name == "signals":
        pytest.skip("needs a cgroup tier (run as root on a host with cgroups)")


def _dirs(h: object) -> list[Path]:
    assert isinstance(h, CgroupHandle)
    return list(h._dirs.values())


def _v2(h: object) -> Path | None:
    assert isinstance(h, CgroupHandle)
    return h._v2


def _freeze_file(h: object) -> Path:
    v2 = _v2(h)
    if v2 is not None:
        return v2 / "cgroup.freeze"
    assert isinstance(h, CgroupHandle) and h._freezer is not None
    return h._freezer / "freezer.state"


def test_cannot_escape_to_another_cgroup(cell: Cell) -> None:
    _needs_cgroups(cell)
    roots = [m / "cgroup.procs" for m in discover(CGROUP_ROOT).all_paths()]
    h = cell.spawn("esc", "sleep", "0.5")
    v = cell.verdict("esc2", cell.spawn("esc2", "write", "0", *map(str, roots)))
    assert not v["escaped"], v
    h.kill()


def test_cannot_thaw_itself_or_freeze_a_rival(cell: Cell) -> None:
    _needs_cgroups(cell)
    victim = cell.spawn("victim", "sleep", "30")
    cell.wait_running(victim, cell.jail.uid_of("victim"))
    attacker = cell.spawn("attacker", "sleep", "30")
    own = str(_freeze_file(attacker))
    rival = str(_freeze_file(victim))
    v = cell.run("thief", "write", "1", rival)
    assert not v["escaped"], v
    assert not victim.paused and "frozen 0" in _events(victim)
    thaw = "0" if own.endswith("cgroup.freeze") else "THAWED"
    v = cell.run("thaw", "write", thaw, own)
    assert not v["escaped"], v


def _events(h: object) -> str:
    v2 = _v2(h)
    return (v2 / "cgroup.events").read_text() if v2 is not None else "frozen 0"


def test_cannot_join_signal_or_ptrace_the_jails_helpers(cell: Cell) -> None:
    """bwrap's monitor and pid-1 reaper sit unfrozen in `<agent>+jail` once the agent has
    been paused: the agent can neither move into that cgroup nor signal or ptrace them."""
    _needs_cgroups(cell)
    if cell.level != "bwrap":
        pytest.skip("only bwrap puts helper processes (monitor, pid-1 reaper) in a tree")
    from maxwell.membrane._cgroup import read_procs

    h = cell.spawn("helped", "daemonize", "stay")
    log = cell.logs / "helped.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and "left a daemon" in log.read_text()):  # its orphan is pid 1's
        assert time.monotonic() < deadline and h.alive(), "agent did not start"
        time.sleep(0.01)
    h.pause()
    h.resume()
    assert isinstance(h, CgroupHandle) and h._helpers is not None
    helpers = sorted(read_procs(h._helpers))
    assert len(helpers) == 2
    # Its own helpers' cgroup, by the host's path; pid 1 of its pid namespace is the reaper.
    own = h._helpers.parent / ("joiner" + h._helpers.name[len("helped"):])
    v = cell.run("joiner", "write", "0", str(own / "cgroup.procs"),
                 str(h._helpers / "cgroup.procs"))
    assert not v["escaped"], v
    v = cell.run("parricide", "signal", "9:1", "15:1", *[f"9:{p}" for p in helpers])
    assert not v["escaped"], v
    assert sorted(read_procs(h._helpers)) == helpers and h.alive() and h.verify() == []


def test_cannot_lift_its_own_quota(cell: Cell) -> None:
    _needs_cgroups(cell)
    if "cpu_quota" not in cell.backend.capabilities:
        pytest.skip(f"{cell.backend.name} enforces no cpu quota here")
    h = cell.spawn("greedy", "sleep", "30")
    h.set_cpu(0.5)
    quota = [d / "cpu.cfs_quota_us" for d in _dirs(h) if (d / "cpu.cfs_quota_us").exists()]
    quota += [d / "cpu.max" for d in _dirs(h) if (d / "cpu.max").exists()]
    assert quota
    # Its own quota files, as a process inside the cgroup would name them.
    v = cell.run("greedy2", "write", "-1", *map(str, quota))
    assert not v["escaped"], v
    assert "50000" in quota[0].read_text()


def test_io_uring_bpf_perf_userns_are_denied(cell: Cell) -> None:
    for attack in ("io_uring", "bpf", "perf", "userns"):
        v = cell.run(attack.replace("_", ""), attack)
        assert not v["escaped"], (attack, v)
        assert "Operation not permitted" in v["detail"], (attack, v)


def test_cannot_signal_or_ptrace_the_supervisor_or_a_sibling(cell: Cell) -> None:
    sib = cell.spawn("sibling", "sleep", "30")
    sib_pids = cell.wait_running(sib, cell.jail.uid_of("sibling"))
    # Signal 0 checks the permission without harming the test process.
    targets = [f"0:{os.getpid()}"] + [f"9:{p}" for p in sib_pids] + [f"9:{sib.pid}"]
    v = cell.run("assassin", "signal", *targets)
    assert not v["escaped"], v
    assert sib.alive() and sib.exit_status is None


def test_cannot_raise_its_priority_or_become_root(cell: Cell) -> None:
    v = cell.run("renice", "priority")
    assert not v["escaped"], v


def test_cannot_read_or_write_the_run_or_the_hosts_private_files(
    cell: Cell, tmp_path: Path
) -> None:
    db = cell.logs / "run.db"
    db.write_bytes(b"SQLite format 3\0")
    secret = tmp_path / "secret.txt"
    secret.write_text("the supervisor's")
    secret.chmod(0o644)  # readable by anyone who can reach it: only the path protects it
    home_files = [p for p in sorted(Path.home().iterdir()) if p.is_file()][:3]
    # Paths in the environment, not on the command line (whose files the jail shows).
    v = cell.run("reader", "read", env=_paths(db, secret, *home_files))
    assert not v["escaped"], v
    v = cell.run("writer", "append", env=_paths(db, secret))
    assert not v["escaped"], v
    assert db.read_bytes() == b"SQLite format 3\0"


def _paths(*paths: Path) -> dict[str, str]:
    return {"HOSTILE_PATHS": ":".join(map(str, paths))}


def test_bwrap_shows_no_sys_no_home_and_a_private_tmp(cell: Cell, world_dir: Path) -> None:
    if cell.level != "bwrap":
        pytest.skip("the drop level has no mount namespace (see test above for what it protects)")
    v = cell.run("looker", "read", env=_paths(
        Path("/sys/fs/cgroup/cgroup.procs"), Path("/etc/shadow"), Path.home() / ".bashrc",
        world_dir.parent / "pytest-of-root"))
    assert not v["escaped"], v


def test_a_stolen_token_is_refused_by_peer_uid(cell: Cell, world_dir: Path) -> None:
    sock_dir = world_dir / "ep"
    sock_dir.mkdir()
    os.chmod(sock_dir, 0o711)
    with Endpoint(sock_dir) as ep:
        cell.jail.reserve("victim")
        env = ep.register("victim", uid=cell.jail.uid_of("victim"))
        ep.register("thief", uid=cell.jail.reserve("thief"))
        victim = cell.spawn("victim", "sleep", "30", env=env, rw=[ep.path])
        vpids = cell.wait_running(victim, cell.jail.uid_of("victim"))
        # Reading the victim's environment fails ...
        v = cell.run("snoop", "environ", str(vpids[0]))
        assert not v["escaped"], v
        # ... and even with the token in hand (as if it leaked), the hello is refused.
        thief = cell.spawn("thief", "impersonate", os.fspath(ep.path), env["MAXWELL_TOKEN"],
                           rw=[ep.path])
        records = _pump(ep, thief)
        v = cell.verdict("thief", thief)
        assert not v["escaped"], v
        assert not any(isinstance(r, Hello) for r in records)
        assert any(isinstance(r, Strike) and "uid" in r.reason for r in records), records


def test_control_shared_uid_lets_the_theft_succeed(cell: Cell, world_dir: Path) -> None:
    """Negative control: without the jail (one shared uid) the same theft works."""
    sock_dir = world_dir / "ep"
    sock_dir.mkdir()
    os.chmod(sock_dir, 0o711)
    with Endpoint(sock_dir) as ep:
        env = ep.register("victim")
        victim = cell.spawn("victim", "sleep", "30", env=env, jailed=False)
        vpids = cell.wait_running(victim, None)
        thief = cell.spawn("thief", "impersonate", os.fspath(ep.path),
                           f"/proc/{vpids[0]}/environ", jailed=False)
        records = _pump(ep, thief)
        v = cell.verdict("thief", thief)
        assert v["escaped"], v  # the token was read from /proc and accepted
        assert any(isinstance(r, Hello) and r.agent == "victim" for r in records)


def _pump(ep: Endpoint, h: object, timeout_s: float = 20.0) -> list[object]:
    out: list[object] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out += ep.poll()
        if getattr(h, "exit_status", None) is not None:
            out += ep.poll()
            break
        ep.wait(0.02)
    return out


def test_a_fork_bomb_stops_at_the_limit(cell: Cell) -> None:
    v = cell.run("bomb", "forkbomb", str(PIDS_MAX + 1))
    assert not v["escaped"], v
    uid = cell.jail.uid_of("bomb")
    assert uid is not None and uid not in live_uids()


def test_a_disk_fill_stops_at_the_limits(cell: Cell, world_dir: Path) -> None:
    shared = world_dir / "out"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    v = cell.run("fillfile", "fill", str(shared / "big"), str(FSIZE_MB), rw=[shared])
    assert not v["escaped"], v
    assert (shared / "big").stat().st_size <= FSIZE_MB << 20
    if cell.level == "bwrap":
        # /tmp is a private tmpfs of TMP_MB; many files (each under FSIZE) still stop there.
        h = cell.spawn("filltmp", "fill", "/tmp/x", str(TMP_MB))
        v = cell.verdict("filltmp", h)
        assert not v["escaped"], v


def test_no_new_privs_neuters_a_setuid_binary(cell: Cell, world_dir: Path) -> None:
    suid = world_dir / "suid-id"
    shutil.copy("/usr/bin/id", suid)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    uid = cell.jail.reserve("setuid")
    assert uid is not None
    # Control: the same binary run as that uid without no_new_privs does become root.
    ctl = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                          os.fspath(suid), "-u"], capture_output=True, text=True, check=False)
    if ctl.stdout.strip() != "0":
        pytest.skip(f"setuid bits do not work on {world_dir} (mounted nosuid?)")
    v = cell.run("setuid", "setuid", os.fspath(suid))
    assert not v["escaped"], v


def test_nothing_outlives_the_agent(cell: Cell) -> None:
    """setsid + double fork + an empty environment: still gone when the agent is killed."""
    h = cell.spawn("daemon", "daemonize")
    uid = cell.jail.uid_of("daemon")
    v = cell.verdict("daemon", h)  # waits for the leader, then kills the agent
    assert not v["escaped"]
    assert_uid_gone(uid)


def test_no_supervisor_descriptor_crosses(cell: Cell, world_dir: Path) -> None:
    sock_dir = world_dir / "ep"
    sock_dir.mkdir()
    os.chmod(sock_dir, 0o711)
    with Endpoint(sock_dir) as ep:
        env = ep.register("fds", uid=cell.jail.reserve("fds"))
        h = cell.spawn("fds", "sleep", "30", env=env, rw=[ep.path])
        uid = cell.jail.uid_of("fds")
        for pid in cell.wait_running(h, uid):
            fds = sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))
            assert fds == [0, 1, 2], (pid, fds, [os.readlink(f"/proc/{pid}/fd/{x}")
                                                 for x in fds])
            assert _uid(pid) == uid
            status = Path(f"/proc/{pid}/status").read_text()
            assert "CapBnd:\t0000000000000000" in status
            assert "CapEff:\t0000000000000000" in status
            assert "NoNewPrivs:\t1" in status
            assert "Seccomp:\t2" in status
            groups = next(ln for ln in status.splitlines() if ln.startswith("Groups:"))
            assert groups.split(":")[1].strip() == "", groups



def test_bwrap_keeps_the_hosts_network_out(cell: Cell) -> None:
    import socket

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = str(srv.getsockname()[1])
    try:
        v = cell.run("net", "connect", port)
        if cell.level == "bwrap":  # its own network namespace: only its own loopback
            assert not v["escaped"], v
            # `[jail] host_net = true` opts in to the host's network.
            from maxwell.membrane._jail import Jail, JailConfig

            open_jail = Jail(JailConfig(mode="bwrap", host_net=True))
            try:
                cell.jail, saved = open_jail, cell.jail
                v = cell.run("net-host", "connect", port)
                assert v["escaped"], v
            finally:
                cell.jail = saved
                open_jail.close()
        else:  # no network namespace without bwrap: the control that the attack is real
            assert v["escaped"], v
    finally:
        srv.close()


def test_the_supervisors_environment_stays_out(cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_SECRET", "s3cret")
    monkeypatch.setenv("MAXWELL_SUPERVISOR_ONLY", "x")
    h = cell.spawn("env", "sleep", "30", env={**os.environ, "MAXWELL_TOKEN": "t0k"})
    pid = cell.wait_running(h, cell.jail.uid_of("env"))[0]
    env = dict(x.split("=", 1) for x in
               Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in x)
    assert "SUPERVISOR_SECRET" not in env and "MAXWELL_SUPERVISOR_ONLY" not in env, env
    assert env["MAXWELL_TOKEN"] == "t0k" and env["HOME"] == "/tmp"
