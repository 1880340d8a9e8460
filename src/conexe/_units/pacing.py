"""The twin of pacing.pxi: a key's pace, ``KeyedExecutor(rate_per_key=...)``.

At most ``rate`` starts per second for each key (``burst`` of them back to
back at most), with no thread sleeping per key. The rule is GCRA (the
generic cell rate algorithm, a token bucket kept as one time per key): a
key's task may start once ``now >= tat - tolerance``; a start moves ``tat``
to ``max(tat, now) + interval``. It is checked when a worker takes the task
from its lane, the moment it would start, so a backlog in the lanes can't
bunch a key's starts. A paced key has one task in the lanes at most
(``chain.in_lane``): one taken too early goes back to the head of its key's
waiting tasks (``chain.held``), and the process's timer
(:mod:`conexe._deadlines`) calls ``Engine.release_held`` at its time. A key
with nothing queued or running keeps its entry (uncounted in active_keys)
until ``now >= tat``, when a new entry would behave the same.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any

from .. import _deadlines
from .primitives import log
from .workers import unpark_locked

if TYPE_CHECKING:
    from .engine import Engine
    from .future import Future
    from .keys import KeyChain
    from .workers import Worker


def release_head_locked(engine: Engine, chain: KeyChain) -> None:
    """The key's first waiting task goes to the tail of its lane."""
    nxt = chain.waiting.popleft()
    engine._queued -= 1
    if chain.interval > 0.0:
        chain.in_lane = True
    engine._enqueue_locked(nxt, nxt._priority, False, restamp=False)


def admit_paced_locked(engine: Engine, fut: Future[Any]) -> float:
    """``fut``, its paced key's task in the lanes, was just taken from its
    lane. Returns -1.0 if the key's pace lets it start now. Otherwise it
    goes back to the head of the key's waiting tasks until its time, and
    the return value is when the caller must ask the timer to call
    ``release_held`` (once the engine lock is released), or 0.0 if it
    already will by then."""
    chain = fut._chain
    assert chain is not None
    now = time.monotonic()
    due = chain.tat - chain.tolerance
    chain.in_lane = False
    if now >= due:
        return -1.0
    chain.waiting.appendleft(fut)
    engine._queued += 1
    chain.active -= 1
    chain.held = True
    engine._held_keys += 1
    engine._pacing_seq += 1
    heapq.heappush(engine._held_timers, (due, engine._pacing_seq, chain))
    if engine._armed_at == 0.0 or due < engine._armed_at:
        engine._armed_at = due
        return due
    return 0.0


def paced_started_locked(engine: Engine, chain: KeyChain) -> None:
    """A task of the paced key ``chain`` just started: count it against the
    pace, and let the key's next task into a lane if it has room (it is
    checked in turn when a worker takes it)."""
    chain.tat = max(chain.tat, time.monotonic()) + chain.interval
    if chain.waiting and chain.active < chain.width:
        chain.active += 1
        release_head_locked(engine, chain)


def keep_paced_key_locked(engine: Engine, chain: KeyChain) -> None:
    """The paced key ``chain`` has nothing queued or running: keep its entry
    (and its pace) until a new one would behave the same."""
    if time.monotonic() >= chain.tat:
        del chain.shard[chain.key]
        return
    engine._pacing_seq += 1
    heapq.heappush(engine._idle_paced, (chain.tat, engine._pacing_seq, chain))


def forget_idle_paced_locked(engine: Engine, now: float) -> None:
    """Free the entries of idle paced keys whose pace is forgotten by now.
    Called when a key gets a new entry and when the timer calls: the kept
    entries are bounded by the keys paced recently."""
    heap = engine._idle_paced
    while heap and heap[0][0] <= now:
        chain = heapq.heappop(heap)[2]
        if chain.active or chain.waiting or chain.shard.get(chain.key) is not chain:
            continue  # busy again (it is kept again when idle), or freed
        if now >= chain.tat:
            del chain.shard[chain.key]
        else:
            engine._pacing_seq += 1
            heapq.heappush(heap, (chain.tat, engine._pacing_seq, chain))


def release_due_locked(engine: Engine, now: float) -> bool:
    """Held keys whose time came send their first waiting task to a lane.
    Returns whether any did (a worker is to be woken)."""
    heap = engine._held_timers
    released = False
    while heap and heap[0][0] <= now:
        chain = heapq.heappop(heap)[2]
        if not chain.held:
            continue  # drained by close(cancel=True)
        chain.held = False
        engine._held_keys -= 1
        if chain.waiting and chain.active < chain.width:
            chain.active += 1
            release_head_locked(engine, chain)
            released = True
    if engine._idle_paced:
        forget_idle_paced_locked(engine, now)
    return released


def release_held_now(engine: Engine) -> None:
    """``Engine.release_held``, the process timer's call: paced keys whose
    time came send their next task to a lane. Once closed, the last one
    lets the parked workers leave."""
    parked: list[Worker] = []
    engine._mutex.acquire()
    try:
        now = time.monotonic()
        if engine._armed_at <= now:
            engine._armed_at = 0.0
        released = release_due_locked(engine, now)
        nxt = 0.0
        if engine._held_timers and engine._armed_at == 0.0:
            nxt = engine._armed_at = engine._held_timers[0][0]
        if engine._closed and not engine._held_keys:
            parked, engine._parked = engine._parked, []
            for w in parked:
                unpark_locked(engine, w)
    except BaseException:
        engine._mutex.release()
        raise
    if released:
        engine._unlock_and_wake_helper()
    else:
        engine._mutex.release()
    for w in parked:
        w._park.release()
    if nxt:
        arm_pacing_timer(engine, nxt)


def arm_pacing_timer(engine: Engine, when: float) -> None:
    """Ask the process's timer to call ``engine.release_held()`` at
    ``when``. Called with the engine lock released: it takes the timer's
    lock."""
    try:
        _deadlines.call_at(when, engine, "release_held")
    except BaseException:
        log.exception("conexe: the timer for paced keys could not be set")
