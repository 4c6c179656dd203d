"""The twin's cluster autoscaler for TKE node pools (R-AS-1..7): scan.py drives, view.py judges,
status.py reports. Part of the umbrella: it reads the cluster twin and changes node pools through the
cloud twin's backend, the two sides that otherwise meet only through the world."""

from twin.autoscaler.scan import Autoscaler

__all__ = ["Autoscaler"]
