"""The README's curl session, against `jobcast serve` as a subprocess."""

import httpx

from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def test_a_job_shows_each_step_then_done(spawn, jobcast_env):
    server = spawn("serve", jobcast_env)
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url) as http:
        accepted = await http.post("/schedule", json=JOB)
        assert accepted.status_code == 200
        offset = accepted.json()["offset"]
        assert offset == 0

        seen: list[list[str]] = []

        async def messages() -> list[str]:
            body = (await http.get(f"/messages/{offset}")).json()
            if not seen or seen[-1] != body:
                seen.append(body)
            return body

        await eventually(messages, until=lambda m: m and m[-1] == "done", what="job done")

    assert seen[-1] == ["result1", "result2", "result3", "done"]
    # results appear step by step, never all at once at the end
    assert any(0 < len(snapshot) < 4 for snapshot in seen), seen


async def test_unknown_and_invalid_offsets(spawn, jobcast_env):
    server = spawn("serve", jobcast_env)
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.get("/messages/999")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Offset not found"})
        assert (await http.get("/messages/-1")).status_code == 422
        assert (await http.get("/messages/abc")).status_code == 422
