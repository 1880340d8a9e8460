"""Send a varying demo load to a running ``conexe serve``, to watch its
dashboard at http://127.0.0.1:8080/ (this is how docs/dashboard.png was made).

    $ conexe serve --pool-size 8 --queue-size 2000 &
    $ python examples/serve_demo_load.py --seconds 120

Every 0.2 s it posts a batch of short demo tasks whose size follows a slow
wave, and now and then a few long ones, so running, pending and the
throughput chart all move. Standard library only; talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import urllib.error
import urllib.request


def post(base: str, tasks: list[dict[str, object]]) -> dict[str, object]:
    req = urllib.request.Request(
        f"{base}/tasks",
        data=json.dumps(tasks).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.load(r))
    except urllib.error.HTTPError as exc:  # 429: the queue is full, fine here
        return dict(json.load(exc))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    rng = random.Random(7)
    start = time.monotonic()
    n = 0
    while (t := time.monotonic() - start) < args.seconds:
        size = int(20 + 18 * math.sin(t / 9) + rng.randint(0, 6))
        batch = [{"name": f"demo-{n + i}", "duration": rng.randint(20, 120)} for i in range(size)]
        if rng.random() < 0.05:
            batch.append({"name": f"slow-{n}", "duration": rng.randint(3000, 9000)})
        n += len(batch)
        post(base, batch)
        time.sleep(0.2)
    print(f"posted {n} tasks in {args.seconds:g} s")


if __name__ == "__main__":
    main()
