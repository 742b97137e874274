"""Child processes of the benchmark: uvicorn servers (as in production) and timed workers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import ROOT

TOKEN = "bench-token-0123456789"  # noqa: S105 - a throw-away token for a local benchmark
OUT = ROOT / "bench" / ".out"
WORKERS = 2  # one per core; see BENCHMARKS.md "Set-up"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env.update(extra)
    return env


@contextlib.contextmanager
def uvicorn_server(
    app: str, env: dict[str, str], *, workers: int = WORKERS, name: str = "server"
) -> Iterator[str]:
    """``uvicorn --factory app`` with uvloop and httptools on a free loopback port."""
    port = free_port()
    OUT.mkdir(exist_ok=True)
    log = (OUT / f"{name}.log").open("wb")
    cmd = [
        sys.executable, "-m", "uvicorn", app, "--factory",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=child_env(**env), stdout=log, stderr=log, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/health", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}; see {OUT}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def service_env(database_url: str) -> dict[str, str]:
    """The service's production environment for a benchmark run."""
    return {
        "ENGARDE_DATABASE_URL": database_url,
        "SIGNUP_SYNC_SERVICE_TOKEN": TOKEN,
        "SYNC_SCHEDULER_ENABLED": "false",
        "AUTO_MIGRATE": "false",
    }


def run_json(module: str, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``python -m module args`` and parse the JSON object it prints last."""
    import orjson

    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=child_env(**(env or {})),
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-3000:]
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{tail}")
    last = done.stdout.decode().strip().splitlines()[-1]
    result = orjson.loads(last)
    assert isinstance(result, dict)
    return result


def path_of(name: str) -> Path:
    return ROOT / "bench" / name


@dataclass
class Servers:
    """The service and the one-INSERT baseline, served the same way."""

    ours: str
    baseline: str


@contextlib.contextmanager
def service_and_baseline(url: str, name: str) -> Iterator[Servers]:
    with (
        uvicorn_server("signup_sync.app:create_app", service_env(url), name=name) as ours,
        uvicorn_server(
            "bench.baseline_app:create_app", {"BENCH_DATABASE_URL": url}, name=f"baseline-{name}"
        ) as baseline,
    ):
        yield Servers(ours=ours, baseline=baseline)
