"""What a whole process sees: interpreter exit with work pending, os.fork()
with a live executor, and Ctrl-C while the main thread waits on a result.
Each runs a small script in a subprocess, once per core."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from types import ModuleType

import pytest

from support import child_env, thread_asleep, wait_until


def script(core: ModuleType, body: str) -> str:
    """``body`` with ``Executor`` bound to ``core``."""
    prelude = textwrap.dedent(f"""\
        import os, sys, threading, time, warnings
        import conexe
        from conexe._impl import cores
        Executor = type("ConcurrentExecutor", (conexe.ConcurrentExecutor,),
                        {{"_core": cores[{core.IMPLEMENTATION!r}]}})
        """)
    return prelude + textwrap.dedent(body)


def run(core: ModuleType, body: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script(core, body)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def interrupt_when_waiting(code: str) -> tuple[str, str, int, float]:
    """Run ``code`` in a child that prints "waiting" when it is about to
    block; Ctrl-C it then. Returns (stdout, stderr, exit code, seconds from
    the signal to the child's exit)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        # Signal the main thread once it is blocked in its wait (what this
        # tests); a Ctrl-C on its way there would be handled all the same.
        wait_until(lambda: thread_asleep(proc.pid), 30, "the child's main thread blocked")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out, err, proc.returncode, took


def test_interpreter_exit_runs_the_accepted_work_then_exits(core: ModuleType) -> None:
    proc = run(
        core,
        """
        ex = Executor(2)
        def task(i):
            time.sleep(0.01)
            os.write(1, b"%d\\n" % i)  # one write: lines from threads don't interleave
        for i in range(20):
            ex.submit(task, i)
        # no shutdown(): the interpreter exits with work queued
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sorted(int(line) for line in proc.stdout.split()) == list(range(20))


def test_exit_timeout_lets_the_interpreter_exit_and_says_what_it_left(
    core: ModuleType,
) -> None:
    proc = run(
        core,
        """
        ex = Executor(1, exit_timeout=0.3)
        gate = threading.Event()
        ex.submit(gate.wait)          # never set: runs until abandoned
        left = ex.submit(os.write, 1, b"never ran\\n")
        kept = Executor(1)            # no exit_timeout: waited for, as always
        kept.submit(time.sleep, 0.05)
        kept.submit(os.write, 1, b"kept ran\\n")
        print("submitted", flush=True)
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["submitted", "kept ran"], proc.stdout
    assert "never ran" not in proc.stdout
    assert "did not finish within its exit_timeout (0.3 s)" in proc.stderr
    assert "1 task still running, 1 queued; the 1 queued were cancelled" in proc.stderr


def test_a_runners_exit_timeout_lets_the_interpreter_exit(core: ModuleType) -> None:
    proc = run(
        core,
        """
        R = type("Runner", (conexe.Runner,), {"_core": cores[Executor._core.IMPLEMENTATION]})
        runner = R(lambda: "db", worker_count=1, exit_timeout=0.3)
        gate = threading.Event()
        runner.submit(lambda db: gate.wait())   # never set: abandoned at exit
        print("submitted", flush=True)
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "submitted\n"
    assert "did not finish within its exit_timeout (0.3 s): 1 task still running" in proc.stderr


def test_exit_timeout_that_is_long_enough_changes_nothing(core: ModuleType) -> None:
    proc = run(
        core,
        """
        ex = Executor(2, exit_timeout=30)
        for i in range(10):
            ex.submit(lambda i=i: (time.sleep(0.01), os.write(1, b"%d\\n" % i)))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sorted(int(line) for line in proc.stdout.split()) == list(range(10))


def test_exit_timeout_is_checked_at_the_call(core: ModuleType) -> None:
    import conexe
    from support import bind_core

    for cls in (conexe.ConcurrentExecutor, conexe.ThreadPoolExecutor, conexe.KeyedExecutor):
        with pytest.raises(ValueError, match="exit_timeout must be >= 0"):
            bind_core(cls, core)(1, exit_timeout=-1)
        with pytest.raises(TypeError, match="exit_timeout must be a number"):
            bind_core(cls, core)(1, exit_timeout="1")
    with pytest.raises(ValueError, match="exit_timeout must be >= 0"):
        bind_core(conexe.Runner, core)(object, exit_timeout=-1)


def test_interpreter_exit_with_a_dropped_unshut_executor_does_not_hang(
    core: ModuleType,
) -> None:
    proc = run(
        core,
        """
        def make():
            ex = Executor(3)
            ex.submit(os.write, 1, b"ran\\n")
            return ex.submit(time.sleep, 0.05)
        fut = make()
        print("main done", flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split("\n")) == ["", "main done", "ran"]


def test_after_fork_the_child_gets_a_clear_error_and_the_parent_goes_on(
    core: ModuleType,
) -> None:
    proc = run(
        core,
        """
        # Python 3.12+ warns about fork() in a process with threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        ex = Executor(2)
        assert ex.submit(pow, 2, 5).result() == 32
        pid = os.fork()
        if pid == 0:
            try:
                ex.submit(pow, 2, 6)
            except RuntimeError as exc:
                print("child:", exc, flush=True)
            else:
                print("child: no error", flush=True)
            ex.shutdown()  # must not hang on threads the child doesn't have
            print("child: shut down", flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("parent:", ex.submit(pow, 2, 7).result(), os.waitstatus_to_exitcode(status),
              flush=True)
        ex.shutdown()
        """,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    child = [line for line in lines if line.startswith("child:")]
    assert len(child) == 2, proc.stdout
    assert "os.fork()" in child[0] and "create a new one" in child[0]
    assert child[1] == "child: shut down"
    assert "parent: 128 0" in lines


WAITS = {
    "result": "fut.result()",
    "shutdown": "ex.shutdown(wait=True)",
    "wait_for_completion": "ex.wait_for_completion()",
    "map": "list(ex.map(time.sleep, [0]))",
}


@pytest.mark.parametrize("wait", sorted(WAITS))
def test_ctrl_c_interrupts_a_main_thread_waiting_on_a_long_task(
    core: ModuleType, wait: str
) -> None:
    task_seconds = 120
    out, err, returncode, took = interrupt_when_waiting(
        script(
            core,
            f"""
            ex = Executor(1)
            started = threading.Event()
            def long_task():
                started.set()
                time.sleep({task_seconds})
            ex.start_execution()
            ex.enqueue_task(conexe.Task("long", long_task))
            fut = ex.submit(long_task)
            started.wait()
            try:
                print("waiting", flush=True)
                {WAITS[wait]}
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                os._exit(0)  # don't wait for the sleeping worker
            print("not interrupted", flush=True)
            """,
        )
    )
    assert out.strip() == "interrupted", err
    assert returncode == 0
    # Generous: far less than the task, not a latency target.
    assert took < task_seconds / 2


def test_shutdown_after_an_interrupted_shutdown_still_waits_for_running_tasks(
    core: ModuleType,
) -> None:
    # On 3.11 a Ctrl-C that cuts Thread.join() short marks the still-running
    # thread as stopped (bpo-45274); shutdown() must not rely on it.
    out, err, _, _ = interrupt_when_waiting(
        script(
            core,
            """
            ex = Executor(1)
            started, finished = threading.Event(), threading.Event()
            def task():
                started.set()
                time.sleep(1.5)
                finished.set()
            ex.submit(task)
            started.wait()
            try:
                print("waiting", flush=True)
                ex.shutdown(wait=True)
            except KeyboardInterrupt:
                ex.shutdown(wait=True)
                print("finished" if finished.is_set() else "returned early", flush=True)
            """,
        )
    )
    assert out.strip() == "finished", err
