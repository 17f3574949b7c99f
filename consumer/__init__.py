"""The workers: run each job's pipeline step by step and publish every result."""

from consumer.pipelines import Pipeline, StepContext

__all__ = ["Pipeline", "StepContext"]
