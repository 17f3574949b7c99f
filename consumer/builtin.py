"""The pipelines every worker knows (always loaded)."""

from consumer.pipelines import default_fn

__all__ = ["default_fn"]
