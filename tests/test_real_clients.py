"""Real libraries that take a ThreadPoolExecutor, given a conexe one.

Dask's local schedulers (``dask.compute(scheduler=executor)`` and
``dask.config.set(pool=executor)``, which read ``_max_workers``) and a real
gRPC server (``grpc.server(executor)``, plus a per-method
``experimental_thread_pool``, which grpc accepts only from a
ThreadPoolExecutor instance) answering calls over loopback. The asyncio
default executor is in test_threadpool_compat.py. Each library comes from
PyPI (the ``clients`` extra); a test skips where it can't be installed
(grpcio has no free-threaded wheels). Every test runs on both cores.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from support import wait_until


def _thread_name(_: Any = None) -> str:
    return threading.current_thread().name


# -- Dask's local schedulers ----------------------------------------------------------


def _graph(dask: Any) -> tuple[Any, Any]:
    """A small fan-out/fan-in graph whose leaves say where they ran."""
    inc = dask.delayed(lambda x: x + 1, pure=False)
    total = dask.delayed(sum, pure=False)
    leaves = [inc(i) for i in range(40)]
    where = [dask.delayed(_thread_name, pure=False)(leaf) for leaf in leaves]
    return total(leaves), where


def test_dask_compute_with_scheduler_set_to_the_executor(make_executor: Any) -> None:
    dask = pytest.importorskip("dask")
    ex = make_executor(3, thread_name_prefix="dask-conexe")
    total, where = _graph(dask)
    got_total, got_where = dask.compute(total, where, scheduler=ex)
    assert got_total == sum(range(1, 41))
    assert {name.rsplit("_", 1)[0] for name in got_where} == {"dask-conexe"}
    assert ex.stats().submitted >= 81  # every task of the graph went through it


def test_dask_config_pool_runs_the_threaded_scheduler_on_the_executor(
    make_executor: Any,
) -> None:
    dask = pytest.importorskip("dask")
    ex = make_executor(2, thread_name_prefix="dask-pool")
    total, where = _graph(dask)
    with dask.config.set(pool=ex, scheduler="threads"):
        got_total, got_where = dask.compute(total, where)
    assert got_total == sum(range(1, 41))
    # (dask's threaded scheduler reads the pool's _max_workers to size its
    # scheduling: an AttributeError here without it.)
    assert {name.rsplit("_", 1)[0] for name in got_where} == {"dask-pool"}


def test_a_failing_dask_task_raises_its_error_through_the_executor(make_executor: Any) -> None:
    dask = pytest.importorskip("dask")
    ex = make_executor(2)

    def boom(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(KeyError):
        dask.compute(dask.delayed(boom, pure=False)(7), scheduler=ex)


# -- a gRPC server ------------------------------------------------------------------------


def _serve(grpc: Any, executor: Any, **method_pools: Any) -> tuple[Any, str]:
    """A grpc server on ``executor`` with generic (protoc-free) handlers:
    bytes in, bytes out; ``method_pools`` puts a method on its own pool."""

    def upper(request: bytes, context: Any) -> bytes:
        return request.upper() + b" on " + _thread_name().encode()

    def count(request: bytes, context: Any) -> Any:
        for i in range(int(request)):
            yield f"{i} on {_thread_name()}".encode()

    behaviours: dict[str, Any] = {"Upper": upper, "Count": count}
    for name, pool in method_pools.items():
        behaviours[name].experimental_thread_pool = pool
    handler = grpc.method_handlers_generic_handler(
        "conexe.test.Echo",
        {
            "Upper": grpc.unary_unary_rpc_method_handler(upper),
            "Count": grpc.unary_stream_rpc_method_handler(count),
        },
    )
    server = grpc.server(executor, handlers=(handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def test_grpc_server_runs_its_handlers_on_the_executor(make_executor: Any) -> None:
    grpc = pytest.importorskip("grpc")
    ex = make_executor(4, thread_name_prefix="grpc-conexe")
    server, address = _serve(grpc, ex)
    try:
        with grpc.insecure_channel(address) as channel:
            upper = channel.unary_unary("/conexe.test.Echo/Upper")
            count = channel.unary_stream("/conexe.test.Echo/Count")
            assert upper(b"hello", timeout=10).startswith(b"HELLO on grpc-conexe_")
            calls = [upper.future(b"call %d" % i, timeout=10) for i in range(50)]
            replies = [c.result() for c in calls]
            assert [r.split(b" on ")[0] for r in replies] == [b"CALL %d" % i for i in range(50)]
            streamed = list(count(b"5", timeout=10))
            assert [s.split(b" on ")[0] for s in streamed] == [str(i).encode() for i in range(5)]
            assert all(b" on grpc-conexe_" in s for s in streamed + replies)
    finally:
        server.stop(grace=None).wait(10)
    # The client has the stream's last item before the handler's task returns.
    wait_until(lambda: ex.stats().completed >= 52, what="every handler's task to end")


def test_grpc_accepts_a_conexe_pool_for_one_method(make_executor: Any) -> None:
    grpc = pytest.importorskip("grpc")
    main_pool = make_executor(2, thread_name_prefix="grpc-main")
    upper_pool = make_executor(2, thread_name_prefix="grpc-upper")
    server, address = _serve(grpc, main_pool, Upper=upper_pool)
    try:
        with grpc.insecure_channel(address) as channel:
            reply = channel.unary_unary("/conexe.test.Echo/Upper")(b"x", timeout=10)
            streamed = list(channel.unary_stream("/conexe.test.Echo/Count")(b"1", timeout=10))
    finally:
        server.stop(grace=None).wait(10)
    assert b" on grpc-upper_" in reply
    assert b" on grpc-main_" in streamed[0]


def test_grpc_handler_errors_reach_the_client_as_status(make_executor: Any) -> None:
    grpc = pytest.importorskip("grpc")
    ex = make_executor(2)

    def fail(request: bytes, context: Any) -> bytes:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad request")
        raise AssertionError("abort() returned")

    handler = grpc.method_handlers_generic_handler(
        "conexe.test.Fail", {"Fail": grpc.unary_unary_rpc_method_handler(fail)}
    )
    server = grpc.server(ex, handlers=(handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as info:
                channel.unary_unary("/conexe.test.Fail/Fail")(b"", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "bad request"
    finally:
        server.stop(grace=None).wait(10)
