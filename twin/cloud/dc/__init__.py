"""The `dc` (Direct Connect, 2018-04-10) service of the cloud twin: its tunnels (R-NET-4)."""
