"""Process plumbing shared by the built-in agents: workers, waiting, dying with the parent.

The Scientist and the Miner fork worker processes that report to the main
process over one-way pipes, wait on those pipes and the supervisor's socket
together, and kill their workers on the way out. Each worker asks the kernel
for SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), so a killed agent
never leaves orphans burning CPU outside the economy. Linux only; elsewhere a
no-op.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from maxwell._deathsig import die_with_parent

if TYPE_CHECKING:
    from maxwell.agents.client import Agent

# die_with_parent is re-exported: the workers of both built-in agents arm it.
__all__ = ["die_with_parent", "start_workers", "stop_workers", "wait_ready"]


def start_workers(target: Callable[..., None], worker_args: Iterable[tuple[Any, ...]],
                  ) -> tuple[list[Connection], list[BaseProcess]]:
    """Fork one daemon worker per tuple, run as ``target(conn, parent_pid, *args)``.

    Returns the read ends of the workers' pipes and the processes. Call it before
    connecting to the supervisor: forked workers must not inherit the socket.
    """
    ctx = mp.get_context("fork")
    conns: list[Connection] = []
    procs: list[BaseProcess] = []
    for args in worker_args:
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=target, daemon=True, args=(w, os.getpid(), *args))
        p.start()
        w.close()
        conns.append(r)
        procs.append(p)
    return conns, procs


def stop_workers(procs: list[BaseProcess]) -> None:
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(timeout=5)


def wait_ready(live: list[Connection], agent: Agent | None) -> list[Any]:
    """Block until a worker pipe or the supervisor's socket is readable.

    The socket is returned as its fileno. Messages the agent has already buffered
    count as readable: select would not see them again.
    """
    waitables: list[Any] = list(live)
    if agent is not None:
        waitables.append(agent.fileno())
    ready_list = wait(waitables, timeout=0 if agent is not None and agent.buffered else None)
    if agent is not None and agent.buffered and agent.fileno() not in ready_list:
        ready_list.append(agent.fileno())
    return ready_list
