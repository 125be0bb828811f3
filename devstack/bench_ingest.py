"""`feedback bench ingest`: the project's ingest against a bare FastAPI + aiokafka endpoint.

Both run as single uvicorn processes against the same local Kafka; the load comes from
wrk (compiled, installed by scripts/install.sh) with devstack/wrk/post_feedback.lua, so
the generator is not the bottleneck. The endpoints alternate round by round (ingest, bare,
bare, ingest, ...), so each round pair runs back to back and load from elsewhere on the
machine hits both alike; the ratio is the median over the pairs. The bare endpoint validates the same pydantic
model and awaits one idempotent acks=all send: the floor of what ingest could cost.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from devstack.bench_stats import ingest_report, paired_ratios, wrk_aggregate
from devstack.processes import ServiceGroup
from pipelines.intake import AppFeedbackIn
from services.settings import SERVICE_PORTS, Settings
from services.topics import FEEDBACK_RECEIVED

LUA = Path(__file__).resolve().parent / "wrk" / "post_feedback.lua"
BARE_PORT = 8099  # + the port offset
WARM_UP_S = 5


def create_bare_app(settings: Settings) -> FastAPI:
    """FastAPI: validate AppFeedbackIn, await an idempotent acks=all send, answer 202."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=5)
        await producer.start()
        state["producer"] = producer
        yield
        await producer.stop()

    app = FastAPI(lifespan=lifespan)
    topic = settings.topic(FEEDBACK_RECEIVED.name)  # the bench's own prefix: nothing consumes it

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/feedback/app")
    async def post(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = AppFeedbackIn.model_validate_json(raw)
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={"errors": exc.errors(include_url=False)})
        fid = str(uuid.uuid4())
        await state["producer"].send_and_wait(topic, body.model_dump_json().encode(), key=fid.encode())
        return JSONResponse(status_code=202, content={"feedback_id": fid, "status": "accepted"})

    return app


def serve_bare() -> None:
    """Entry point of the bare endpoint's process (python -m devstack.bench_ingest)."""
    import uvicorn

    settings = Settings()
    uvicorn.run(create_bare_app(settings), host="127.0.0.1", port=int(os.environ["FEEDBACK_PORT"]),
                log_config=None, access_log=False)


def wrk(url: str, seconds: float, connections: int, threads: int, env: dict[str, str]) -> dict[str, Any]:
    """One wrk run against ``url``; its Lua summary as a dict."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency",
                          "-s", str(LUA), url], capture_output=True, text=True, env={**os.environ, **env},
                         check=True, timeout=seconds + 60).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON "))


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bare endpoint exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the bare endpoint did not come up")


def run_bench_ingest(duration_s: float, rounds: int, connections: int, threads: int, json_path: Path | None,
                     kafka_port: int, es_port: int, smtp_port: int, stack_dir: Path | None, port_offset: int) -> int:
    """Run the bench, print the report, write ``json_path``; returns the exit code."""
    from devstack import LocalStack
    from devstack.bench_run import drop_run
    from services.adapters.topic_admin import create_topics

    if shutil.which("wrk") is None:
        print("error: wrk is not installed; scripts/install.sh installs it (apt package wrk)", file=sys.stderr)
        return 2
    stack = LocalStack(kafka_port=kafka_port, es_port=es_port, smtp_port=smtp_port, stack_dir=stack_dir,
                       components=("kafka",))
    stack.start()
    run = uuid.uuid4().hex[:6]
    env = {**stack.env(), "FEEDBACK_TOPIC_PREFIX": f"bench-ingest-{run}.", "FEEDBACK_DEV_MODE": "true",
           "FEEDBACK_STATE_DIR": str(Path(tempfile.gettempdir()) / f"feedback-bench-{run}")}
    os.environ.update(env)
    settings = Settings()
    create_topics(settings)
    group = ServiceGroup(env, Path(tempfile.gettempdir()) / f"feedback-bench-{run}" / "logs", port_offset=port_offset)
    bare_port = BARE_PORT + port_offset
    bare = subprocess.Popen([sys.executable, "-m", "devstack.bench_ingest"], env={**os.environ, **env,
                            "FEEDBACK_PORT": str(bare_port)}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    urls = {"ingest": f"http://127.0.0.1:{SERVICE_PORTS['ingest'] + port_offset}",
            "bare": f"http://127.0.0.1:{bare_port}"}
    runs: dict[str, list[dict[str, Any]]] = {"ingest": [], "bare": []}
    lua_env = {"BENCH_API_KEY": settings.ingest_api_keys["app"].get_secret_value()}
    try:
        group.start("ingest")
        wait_up(urls["bare"], bare)
        for name, url in urls.items():  # warm-up: connections, first-request imports, Kafka's batches
            wrk(url, WARM_UP_S, connections, threads, {**lua_env, "BENCH_RUN": f"{run}-warm"})
        for i in range(rounds):
            for name, url in (urls.items() if i % 2 == 0 else reversed(list(urls.items()))):
                print(f"round {i + 1}: {name} ...", flush=True)
                runs[name].append(wrk(url, duration_s, connections, threads, {**lua_env, "BENCH_RUN": f"{run}-{i}"}))
    finally:
        group.stop_all()
        bare.terminate()
        bare.wait(30)
        drop_run(settings, index=False)  # the run's own topics: a stack the bench reused keeps nothing
        stack.stop()
    endpoints = {name: wrk_aggregate(r) for name, r in runs.items()}
    result = {"generator": "wrk " + _wrk_version(), "connections": connections, "threads": threads,
              "duration_s": duration_s, "rounds": rounds, "endpoints": endpoints,
              **paired_ratios(runs["ingest"], runs["bare"]),
              "throughput_ratio_pooled": round(endpoints["ingest"]["requests_per_s"]
                                               / endpoints["bare"]["requests_per_s"], 3),
              "machine": f"{os.cpu_count()} CPUs", "topic_prefix": settings.topic_prefix}
    print(ingest_report(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return 0


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return out[1] if len(out) > 1 else "?"


if __name__ == "__main__":
    serve_bare()
