"""Imports every service's responses module so that their ``@action`` handlers are registered.

Who imports it: wire.py. One line per module, so that adding a service is one line here.
"""

from twin.cloud.autoscaling import responses as as_responses  # noqa: F401
from twin.cloud.cvm import responses as cvm_responses  # noqa: F401
from twin.cloud.dc import responses as dc_responses  # noqa: F401
from twin.cloud.tke import responses as tke_responses  # noqa: F401
from twin.cloud.tke import responses_2022 as tke_responses_2022  # noqa: F401
from twin.cloud.tke import responses_nodes as tke_responses_nodes  # noqa: F401
from twin.cloud.vpc import responses as vpc_responses  # noqa: F401
