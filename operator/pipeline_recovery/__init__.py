"""pipeline-recovery: diagnose failed CI/CD pipeline runs on Kubernetes and recover them safely."""

__version__ = "0.1.0"
