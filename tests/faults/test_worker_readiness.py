"""A worker's own /ready (JOBCAST_WORKER_PORT) follows the broker: red while the throwaway node
is stopped, green again once it is back, and /health stays green throughout."""

import httpx

from harness.processes import free_port
from tests.faults.conftest import Cluster
from tests.support.waiting import eventually


async def _status(http: httpx.AsyncClient, url: str) -> int:
    try:
        return (await http.get(url)).status_code
    except httpx.TransportError:
        return 0


async def test_worker_ready_red_while_the_broker_is_stopped_green_after(cluster: Cluster):
    port = free_port()
    cluster.env = {**cluster.env, "JOBCAST_WORKER_PORT": str(port)}
    cluster.start_worker()
    probe = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as http:
        await eventually(
            lambda: _status(http, probe + "/ready"),
            until=lambda s: s == 200,
            timeout=30,
            what="worker ready",
        )
        cluster.node.stop_app()
        try:
            await eventually(
                lambda: _status(http, probe + "/ready"),
                until=lambda s: s == 503,
                timeout=15,
                what="worker /ready red while the broker is down",
            )
            assert (await http.get(probe + "/ready")).json() == {
                "ready": False,
                "broker": False,
                "accepting_jobs": True,
            }
            assert await _status(http, probe + "/health") == 200
        finally:
            cluster.node.start_app()
        await eventually(
            lambda: _status(http, probe + "/ready"),
            until=lambda s: s == 200,
            timeout=30,
            what="worker /ready green after the broker is back",
        )
