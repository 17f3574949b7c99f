"""What a jobcast process tells its operators: metrics, traces, logs and probes.

Imported by the composition root (`jobcast/`) only: the parts it observes take plain callables
(`hooks.py` builds them), so producer, consumer and query import nothing from here.
"""
