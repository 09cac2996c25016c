"""kopf handlers (decorators only); importing this package registers them all."""

from pipeline_recovery.handlers import lifecycle, recoveries, workloads

__all__ = ["lifecycle", "recoveries", "workloads"]
