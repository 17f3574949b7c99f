"""Baseline (b): the original in-process FastAPI example jobcast grew out of.

POST /schedule answers {"offset": n} at once and a BackgroundTask appends result1..3 and done
to an in-memory list, sleeping BENCH_STEP_SECONDS (0 here) before each result. Nothing is
durable and nothing survives a restart. `/_bench/done` is the bench's probe, not the example's.

    uvicorn bench.baselines.fastapi_example:app
"""

import asyncio
import os

from fastapi import BackgroundTasks, FastAPI, HTTPException
from pydantic import BaseModel

STEP_SECONDS = float(os.environ.get("BENCH_STEP_SECONDS", "0"))

app = FastAPI()
messages: list[list[str]] = []
finished = 0


class Job(BaseModel):
    deployment: str
    framework: str
    fn: str


async def default_fn(offset: int) -> None:
    global finished
    for i in range(1, 4):
        await asyncio.sleep(STEP_SECONDS)
        messages[offset].append(f"result{i}")
    messages[offset].append("done")
    finished += 1


@app.post("/schedule")
async def schedule(job: Job, background_tasks: BackgroundTasks) -> dict[str, int]:
    offset = len(messages)
    messages.append([])
    background_tasks.add_task(default_fn, offset)
    return {"offset": offset}


@app.get("/messages/{offset}")
async def read_messages(offset: int) -> list[str]:
    if offset < 0 or offset >= len(messages):
        raise HTTPException(status_code=404, detail="Offset not found")
    return messages[offset]


@app.get("/_bench/done")
async def done() -> int:
    return finished
