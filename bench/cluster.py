"""`python -m bench.cluster [--size full|quick|smoke]`: what a three-node RabbitMQ cluster costs.

W1 (zero-length steps, submitted over AMQP, one gateway and two workers, a PostgreSQL ledger)
in one run, back to back, on throwaway RabbitMQ nodes started from the machine's
`rabbitmq-server` with the same tuning (harness/rabbit_cluster.py: one Erlang scheduler
each):
- one node;
- the three-node cluster, each quorum queue on one node (JOBCAST_QUORUM_SIZE=1);
- the three-node cluster, each quorum queue on all three (JOBCAST_QUORUM_SIZE=3), every write
  confirmed by a majority.
The gateway starts on the first node, the workers on the second and third, as a deployment
spreads them. All the nodes share the machine's two cores, so the cluster rows pay three
brokers' CPU where a real cluster would spread it over three machines.
"""

import asyncio
import shutil
import statistics
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.deployment import Deployment, Figures, log, scale_out_main
from harness.rabbit_cluster import CONF, ERL_ARGS, RabbitCluster
from harness.rabbit_node import RabbitNode

RESULTS = Path(__file__).parent / "results" / "cluster.md"


@dataclass(frozen=True)
class Sizes:
    jobs: int
    repetitions: int


SIZES = {
    "full": Sizes(jobs=2000, repetitions=2),
    "quick": Sizes(jobs=600, repetitions=1),
    "smoke": Sizes(jobs=20, repetitions=1),
}

CONFIGURATIONS = ("one node", "3 nodes, quorum size 1", "3 nodes, quorum size 3")


class Brokers:
    """The throwaway nodes: one alone, and three in a cluster."""

    def __init__(self, run_dir: Path) -> None:
        self.single = RabbitNode(run_dir / "single", erl_args=ERL_ARGS, conf=CONF)
        self.cluster = RabbitCluster(run_dir / "cluster")

    def start(self) -> None:
        self.single.start()
        self.cluster.start()

    def destroy(self) -> None:
        self.single.destroy()
        self.cluster.destroy()

    def urls(self, configuration: str, vhost: str) -> tuple[str, str, str]:
        """JOBCAST_AMQP_URL of the gateway and of the two workers, and a one-node URL for the
        bench's submitter."""
        if configuration == "one node":
            self.single.add_vhost(vhost)
            url = self.single.vhost_url(vhost)
            return url, url, url
        self.cluster.add_vhost(vhost)
        return (
            self.cluster.url(vhost, [0, 1, 2]),
            self.cluster.url(vhost, [1, 2, 0]),
            self.cluster.nodes[0].vhost_url(vhost),
        )


async def measure(
    brokers: Brokers, run_dir: Path, admin_url: str, configuration: str, jobs: int
) -> float:
    """W1's jobs/s on `configuration`: a fresh vhost and PostgreSQL database, one gateway and
    two workers, a warm-up, then `jobs` submitted over AMQP until all are done."""
    label = f"{configuration.replace(' ', '').replace(',', '-')}-{uuid.uuid4().hex[:6]}"
    vhost = f"bench-{label}"
    gateway_url, second_url, submit_url = await asyncio.to_thread(
        brokers.urls, configuration, vhost
    )
    worker_urls = [second_url, brokers.cluster.url(vhost, [2, 0, 1])]
    if configuration == "one node":
        worker_urls = [gateway_url, gateway_url]
    settings: dict[str, str] = {}
    if configuration != "one node":
        settings["quorum_size"] = "1" if configuration.endswith("size 1") else "3"
    async with Deployment(run_dir, admin_url, label, **settings) as deployment:
        await deployment.start_gateway(gateway_url)
        for url in worker_urls:
            await deployment.start_worker(url)
        await deployment.throughput(submit_url, min(jobs, 50))  # warm-up
        return await deployment.throughput(submit_url, jobs)


async def run(sizes: Sizes, admin_url: str) -> Figures:
    run_dir = Path(tempfile.mkdtemp(prefix="jobcast-bench-cluster-"))
    log(f"nodes and process logs in {run_dir}")
    brokers = Brokers(run_dir)
    figures: Figures = {}
    keep = False
    try:
        await asyncio.to_thread(brokers.start)
        for rep in range(sizes.repetitions):
            for configuration in CONFIGURATIONS:
                rate = await measure(brokers, run_dir, admin_url, configuration, sizes.jobs)
                figures.setdefault(configuration, []).append(rate)
                log(f"rep {rep + 1}: W1 on {configuration}: {rate:.0f} jobs/s")
    except BaseException:
        keep = True
        raise
    finally:
        await asyncio.to_thread(brokers.destroy)
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return figures


def render(sizes: Sizes, figures: Figures) -> str:
    med = {name: statistics.median(values) for name, values in figures.items()}
    one = med["one node"]
    lines = [
        f"W1: {sizes.jobs} jobs over AMQP, 1 gateway and 2 workers, PostgreSQL ledger, throwaway "
        f"nodes of one Erlang scheduler each, all on this machine; medians of "
        f"{sizes.repetitions} run(s).",
        "",
        "| configuration | jobs/s | vs one node |",
        "|---|---:|---:|",
    ]
    for configuration in CONFIGURATIONS:
        rate = med[configuration]
        lines.append(f"| W1, {configuration} | {rate:,.0f} | {rate / one:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    scale_out_main("python -m bench.cluster", __doc__, SIZES, run, render, RESULTS)


if __name__ == "__main__":
    main()
