"""The twin of closing.pxi: closing an engine, refusing new tasks,
cancelling or failing what is queued (:func:`drain_locked` takes it out of
the lanes and the keys' chains), and asking the running tasks to stop.
``Engine.close`` and ``Engine.fail_queued`` call these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .primitives import SKIP_CANCELLED, SKIP_EXPIRED
from .running import running_tasks_locked
from .workers import unpark_locked

if TYPE_CHECKING:
    from .engine import Engine
    from .future import Future


def close_engine(engine: Engine, cancel: bool, message: str | None) -> int:
    """``Engine.close``: refuse new tasks; workers leave once the lanes
    are empty. With ``cancel`` the queued tasks are cancelled (their
    waiters wake) and their number is returned, and the running ones are
    asked to stop (``request_cancel``)."""
    with engine._mutex:
        engine._closed = True
        if message is not None:
            engine._closed_message = message
        drained = drain_locked(engine) if cancel else []
        running = running_tasks_locked(engine) if cancel else []
        parked, engine._parked = engine._parked, []
        claimed = []  # those this close() took: only they are cancelled
        try:
            for fut in drained:
                claim = fut._claim(False)
                if claim == SKIP_EXPIRED:
                    # Its start deadline's reaper got it first (RUNNING
                    # until it sets the TimeoutError): failed, not ours.
                    engine._failed += 1
                else:
                    engine._cancelled += 1
                    if claim != SKIP_CANCELLED:
                        claimed.append(fut)
            engine._wake_all_producers_locked()
        finally:
            # Taken off the list, a parked worker is woken here or never:
            # a Ctrl-C whose handler runs in the lines above (Python code
            # runs it between bytecodes) must not leave it asleep.
            for w in parked:
                unpark_locked(engine, w)
                w._park.release()
    for fut in claimed:
        fut._cancel_claimed()
    for fut in running:
        fut.request_cancel()
    return sum(1 for fut in drained if fut.cancelled())


def fail_queued_now(engine: Engine, exc: BaseException) -> int:
    """``Engine.fail_queued``: fail every queued task with ``exc`` (the Runner uses this when no
    worker can be created); returns how many."""
    with engine._mutex:
        drained = drain_locked(engine)
        claimed = []
        for fut in drained:
            claim = fut._claim(False)
            if claim == SKIP_CANCELLED:
                engine._cancelled += 1
            else:
                engine._failed += 1
                if claim != SKIP_EXPIRED:
                    claimed.append(fut)
        engine._wake_all_producers_locked()
    for fut in claimed:
        fut._fail_started(exc)
    return len(claimed)


def drain_locked(engine: Engine) -> list[Future[Any]]:
    """Take every queued task out: the lanes, then the tasks waiting
    behind busy keys. Keys left with nothing running are freed; the lanes'
    stale entries of helped tasks (helping.py) are dropped."""
    in_lanes: list[Future[Any]] = []
    engine._lanes.take_all(in_lanes)
    in_lanes = [fut for fut in in_lanes if not fut._helped]
    out = list(in_lanes)
    # Walk only what was in the lanes: the tasks taken from behind a
    # key's head share its chain, and its entry is freed only once.
    for fut in in_lanes:
        if fut._chain is not None:  # a key's task in flight that never started
            chain = fut._chain
            out.extend(chain.waiting)
            chain.waiting.clear()
            chain.active -= 1
            chain.in_lane = False
            if chain.active == 0:
                del chain.shard[chain.key]
                engine._active_keys -= 1
    idle = []
    for shard in engine._shards:
        for chain in shard.values():  # heads still running
            if chain.active == 0:  # a held paced key, or an idle one kept
                engine._active_keys -= bool(chain.waiting)
                idle.append(chain)
            chain.held = False
            out.extend(chain.waiting)
            chain.waiting.clear()
    for chain in idle:
        del chain.shard[chain.key]
    engine._held_keys = 0
    for fut in out:
        fut._chain = None
    engine._queued = 0
    return out
