"""tkeflow: TKE procedures as Prefect flows, and a digital twin of TKE to rehearse them on.

The package holds the library under the flows (specs, rules, clients), the twin, and the CLI.
See DESIGN.md in the shared folder for the layers and who may import whom.
"""

__version__ = "0.1.0"
