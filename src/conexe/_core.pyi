# Type stub for the Cython core (conexe._core); the pure-Python twin
# conexe._core_py has the same interface and is the reference. CI checks
# this stub against the built extension: python -m mypy.stubtest conexe._core
from collections.abc import Callable, Generator
from concurrent.futures import Future as _StdFuture
from typing import Any, Final, Generic, TypeVar

from typing_extensions import disjoint_base

__all__ = [
    "ChunkItemError",
    "Engine",
    "Future",
    "Worker",
    "IMPLEMENTATION",
    "executor_submit",
    "run_chunk",
    "running_future",
]

_T = TypeVar("_T")

IMPLEMENTATION: Final[str]
EXIT_SHUTDOWN: Final[str]
EXIT_RETIRE: Final[str]
EXIT_REPLACE: Final[str]

class Future(_StdFuture[_T], Generic[_T]):
    def __init__(self) -> None: ...
    def _expire(self) -> bool: ...
    def cancel(self, msg: Any = None) -> bool: ...
    def _cancel_if_pending(self) -> bool: ...
    def request_cancel(self) -> bool: ...
    @property
    def _stop_asked(self) -> bool: ...
    @property
    def _run_deadline(self) -> float: ...
    def add_done_callback(
        self, fn: Callable[[Future[_T]], object], *, context: Any = None
    ) -> None: ...  # type: ignore[override]
    def remove_done_callback(self, fn: Callable[[Future[_T]], object]) -> int: ...
    def get_loop(self) -> Any: ...
    def __await__(self) -> Generator[Any, None, _T]: ...
    def __iter__(self) -> Generator[Any, None, _T]: ...

class ChunkItemError:
    error: BaseException
    def __init__(self, error: BaseException) -> None: ...

def running_future() -> Future[Any] | None: ...
def run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]: ...
def executor_submit(
    self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]: ...

@disjoint_base
class Worker:
    resource: Any
    def __init__(self, resource: Any = None) -> None: ...
    @property
    def parked(self) -> bool: ...
    @property
    def retire(self) -> bool: ...

@disjoint_base
class Engine:
    def __init__(
        self,
        max_queue_size: int = 0,
        *,
        on_need_worker: Callable[[], None] | None = None,
        target_workers: int = 0,
        pass_resource: bool = False,
        check_health: Callable[[BaseException], bool] | None = None,
        max_retries: int = 0,
        track_latency: bool = False,
        context: str = "copy",
        key_width: int = 1,
        key_rate: float = 0.0,
        key_burst: int = 1,
        idle_timeout: float = 0.0,
        min_workers: int = 0,
    ) -> None: ...
    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None
    ) -> Future[Any]: ...
    def submit_with(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        priority: int = 0,
        deadline: float = 0.0,
        context: Any = None,
        no_retry: bool = False,
        block: bool = False,
        timeout: float | None = None,
        run_deadline: float = 0.0,
    ) -> Future[Any]: ...
    def submit_keyed(
        self,
        key: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        priority: int = 0,
        deadline: float = 0.0,
        context: Any = None,
        unique: bool = False,
        block: bool = False,
        timeout: float | None = None,
        width: int = 0,
        rate: float = -1.0,
        run_deadline: float = 0.0,
    ) -> Future[Any] | None: ...
    def call_keyed(
        self, key: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]: ...
    def key_active(self, key: Any) -> bool: ...
    def release_held(self) -> None: ...
    def add_workers(self, n: int) -> None: ...
    def worker_started_failed(self) -> None: ...
    def set_target_workers(self, n: int) -> None: ...
    def retire_worker(self, worker: Worker) -> None: ...
    def worker_loop(self, worker: Worker) -> str: ...
    def close(self, cancel: bool = False, message: str | None = None) -> int: ...
    def fail_queued(self, exc: BaseException) -> int: ...
    def after_fork(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def queued(self) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def latency(self, which: str, percentiles: tuple[float, ...]) -> tuple[float, ...]: ...
