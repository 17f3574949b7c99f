"""JOBCAST_RETENTION in a real gateway process: finished jobs go by themselves, their offsets
answer 410, unfinished jobs and offsets never handed out are untouched; on each ledger."""

import httpx

from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def test_finished_jobs_are_purged_in_the_background(spawn, jobcast_env, database_url):
    env = {**jobcast_env, "JOBCAST_DATABASE_URL": database_url, "JOBCAST_RETENTION": "1s"}
    server = spawn("serve", env)
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url) as http:
        batch = await http.post("/schedule/batch", json={"jobs": [JOB] * 4, "batch": "old"})
        offsets = batch.json()["offsets"]
        waiting = (await http.post("/schedule", json={**JOB, "delay_seconds": 600})).json()

        async def expired() -> list[int]:
            return [(await http.get(f"/jobs/{offset}")).status_code for offset in offsets]

        codes = await eventually(
            expired, until=lambda codes: codes == [410] * 4, what="finished jobs purged"
        )
        assert codes == [410] * 4
        gone = await http.get(f"/messages/{offsets[0]}")
        assert gone.json() == {"detail": "Offset expired"}
        kept = await http.get(f"/jobs/{waiting['offset']}")
        assert (kept.status_code, kept.json()["state"]) == (200, "scheduled")
        assert (await http.get("/jobs/999")).status_code == 404
        # the gateway keeps serving and scheduling after its purges
        again = (await http.post("/schedule", json=JOB)).json()["offset"]
        assert again == waiting["offset"] + 1
