"""How big each workload is, for the full run and the small ones."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    repetitions: int
    w1_amqp_jobs: int
    w1_http_jobs: int
    w2_jobs: int
    w3_jobs: int
    w3_single_slot_jobs: int
    memory_jobs: int
    peer_repetitions: int = 1
    """Rounds of W1 and W2 for every peer (bench/peer_systems.py) and jobcast's feed run."""
    peer_w1_jobs: int = 0
    peer_w2_jobs: int = 0
    step_seconds: float = 0.1


PLANS = {
    "full": Plan(
        "full",
        repetitions=3,
        w1_amqp_jobs=3000,
        w1_http_jobs=3000,
        w2_jobs=200,
        w3_jobs=1000,
        w3_single_slot_jobs=20,
        memory_jobs=20_000,
        peer_repetitions=2,
        peer_w1_jobs=3000,
        peer_w2_jobs=200,
    ),
    "quick": Plan(
        "quick",
        repetitions=1,
        w1_amqp_jobs=1000,
        w1_http_jobs=1000,
        w2_jobs=50,
        w3_jobs=300,
        w3_single_slot_jobs=5,
        memory_jobs=2000,
        peer_repetitions=2,
        peer_w1_jobs=500,
        peer_w2_jobs=50,
    ),
    "smoke": Plan(
        "smoke",
        repetitions=1,
        w1_amqp_jobs=20,
        w1_http_jobs=20,
        w2_jobs=5,
        w3_jobs=20,
        w3_single_slot_jobs=2,
        memory_jobs=40,
        peer_w1_jobs=10,
        peer_w2_jobs=3,
        step_seconds=0.01,
    ),
}
