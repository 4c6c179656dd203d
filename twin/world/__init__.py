"""The twin's world: the state every part of the twin reads and changes (regions, VPCs, CVMs, clusters)."""
