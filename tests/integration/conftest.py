"""Integration fixtures: the emulated cluster and the operator in process (see kmock_cluster)."""

from kmock_cluster import cluster, emulator, operator, start_operator

__all__ = ["cluster", "emulator", "operator", "start_operator"]
