"""The twin of asyncio_view.pxi: what an event loop sees of a future."""

from __future__ import annotations

import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from .primitives import log

if TYPE_CHECKING:
    from .future import Future

# -- asyncio ------------------------------------------------------------------
# A future submitted from inside a running event loop is bound to that loop
# (its ``_inbox``); one submitted outside any loop is bound to the first loop
# in whose thread asyncio looks at it (``wrap_future``, ``gather``, ``await``
# in a coroutine). Until asyncio looks at it, it is a plain
# concurrent.futures.Future. Once asyncio does (``isfuture()`` reads
# ``_asyncio_future_blocking``: ``loop.run_in_executor``, ``wrap_future``,
# ``await``, ``gather``...), it is, inside that loop, the asyncio future
# ``wrap_future`` would have made: asyncio's callbacks run in the loop,
# ``cancel()`` cancels even a running task (which runs on, its outcome
# dropped), and a cancelled one raises asyncio.CancelledError there. Seen
# from any other thread it stays a concurrent.futures.Future throughout.
#
# That is what lets ``loop.run_in_executor(executor, fn)`` skip
# ``_chain_future``: no second future, no pair of chained callbacks, and,
# instead of one ``call_soon_threadsafe`` (and self-pipe write) per task,
# one per batch: completions queue in the loop's inbox and a single
# callback in the loop drains them.
#
# What the loop sees changes only in the loop's thread, as with the future
# ``wrap_future`` would have made: a coroutine between two awaits must not
# see the future become done (asgiref's cancellation path reads done() right
# after an await and relies on it). So inside its loop, once asyncio has it,
# the future answers done()/cancelled()/result()/exception() from its *loop
# view* (the _AIO_LOOP_* flags), which only the loop's thread moves: when a
# drain reaches the future, or at once when the future ends in the loop's
# own thread. The concurrent state (``_state``) moves as before, for every
# other thread.

AIO_CLAIMED = 1  # asyncio has seen the future (isfuture() was True)
AIO_LOOP_DONE = 2  # its loop has seen it end (the loop view is done)
AIO_LOOP_CANCELLED = 4  # ... cancelled in the loop, whatever the task did


def running_loop() -> Any:
    """The event loop running in this thread, or None; asyncio is not
    imported for it (no loop can run before something imported it)."""
    get = getattr(sys.modules.get("asyncio.events"), "_get_running_loop", None)
    return None if get is None else get()


def asyncio_attr(name: str) -> Any:
    return getattr(sys.modules["asyncio"], name)


class LoopInbox:
    """Loop-bound futures that ended in another thread, on their way to
    their loop. An ending thread appends and, only if no drain is pending,
    schedules one with ``call_soon_threadsafe``; the drain, in the loop,
    shows the loop every future that arrived meanwhile and schedules
    their asyncio callbacks for its next turn."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._items: list[Future[Any]] = []
        self._scheduled = False

    def ended(self, fut: Future[Any]) -> None:
        """``fut``, which asyncio has, just ended: its loop sees it at once
        in the loop's own thread (as an asyncio future), or from the next
        drain (as ``_chain_future``'s state copy, one per batch here)."""
        if running_loop() is self.loop:
            for fn, ctx in fut._end_in_loop(cancelled=False) or ():
                self.loop.call_soon(fn, fut, context=ctx)
        else:
            self._post(fut)

    def _post(self, fut: Future[Any]) -> None:
        with self._lock:
            self._items.append(fut)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop is closed: asyncio drops callbacks it can no longer
            # run (an asyncio future of a closed loop can't even complete).
            with self._lock:
                self._items = []
                self._scheduled = False
        except BaseException:
            log.exception("waking the event loop failed")

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        # The loop sees every future of the batch end now, and their
        # callbacks run on its next turn, in order: asyncio's state copy
        # (_set_state) schedules them with call_soon, so code that counts
        # turns sees what it sees with the stdlib; one handle runs them all.
        due = [(fut, fut._end_in_loop(cancelled=False)) for fut in items]
        if any(callbacks for _, callbacks in due):
            self.loop.call_soon(self._run_due, due)

    def _run_due(self, due: list[tuple[Future[Any], list[tuple[Any, Any]] | None]]) -> None:
        """The callbacks a drain found, on the loop's next turn, as the
        loop's handles would run them: an exception goes to the loop's
        handler; SystemExit and KeyboardInterrupt leave the loop, as asyncio
        lets them, and what is left runs on its next turn."""
        for i, (fut, callbacks) in enumerate(due):
            for j, (fn, ctx) in enumerate(callbacks or ()):
                try:
                    ctx.run(fn, fut)
                except (SystemExit, KeyboardInterrupt):
                    assert callbacks is not None
                    rest = [(fut, callbacks[j + 1 :])] + due[i + 1 :]
                    for later, cbs in rest:
                        for fn, ctx in cbs or ():
                            self.loop.call_soon(fn, later, context=ctx)
                    raise
                except BaseException as exc:
                    self.loop.call_exception_handler(
                        {
                            "message": f"Exception in callback {fn!r}",
                            "exception": exc,
                            "future": fut,
                        }
                    )


_inboxes: weakref.WeakValueDictionary[int, LoopInbox] = weakref.WeakValueDictionary()
_inboxes_lock = threading.Lock()


def inbox_for(loop: Any) -> LoopInbox:
    """The loop's inbox (one per loop, alive while a future bound to the
    loop is). The inbox holds its loop, so while it lives id(loop) is the
    loop's alone."""
    with _inboxes_lock:
        inbox = _inboxes.get(id(loop))
        if inbox is None:
            inbox = _inboxes[id(loop)] = LoopInbox(loop)
        return inbox


def bind_loop(fut: Future[Any]) -> None:
    loop = running_loop()
    if loop is not None:
        fut._inbox = inbox_for(loop)
