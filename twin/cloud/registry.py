"""The cloud twin's action registry and the context every action handler gets.

Who uses it: each service's responses module registers its handlers with ``@action(...)`` (marking
each one mutating or not, and its required parameters); the wire layer (server.py) looks an action up
by (service, version, action) and runs it with a ``Ctx``. ``CloudCore`` ties the world to the twin's
one Clock and to the cluster runtime (the Kubernetes side): state changes happen under the world lock,
side effects on the cluster twin run after it is released (``ctx.effect``) so that the two never
deadlock on each other's locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.tke.v20180525 import models as tke_models
from tencentcloud.tke.v20220501 import models as tke2022_models
from tencentcloud.vpc.v20170312 import models as vpc_models

try:  # the `dc` service (R-NET-4 tunnels) is served only when its SDK package is installed
    from tencentcloud.dc.v20180410 import models as dc_models
except ImportError:  # pragma: no cover - depends on the installation
    dc_models = None

from twin.clock import Clock
from twin.cloud.autoscaling import models as as_models
from twin.cloud.runtime import ClusterRuntime
from twin.world.model import World

log = logging.getLogger(__name__)

# service -> (X-TC-Version, SDK models module)
SERVICES: dict[str, tuple[str, ModuleType]] = {
    "tke": ("2018-05-25", tke_models),
    "cvm": ("2017-03-12", cvm_models),
    "vpc": ("2017-03-12", vpc_models),
    # a service's other API version is keyed "<service>@<version>" (the wire routes X-TC-Version to it)
    "tke@2022-05-01": ("2022-05-01", tke2022_models),
    "as": ("2018-04-19", as_models),  # Auto Scaling: its request models are the twin's own (see that module)
}
if dc_models is not None:
    SERVICES["dc"] = ("2018-04-10", dc_models)

Effect = Callable[[], None]


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    handler: Callable[[Ctx, dict[str, Any]], dict[str, Any]]
    mutating: bool
    required: tuple[str, ...] = ()
    locked: bool = True  # run the whole handler under the world lock


ACTIONS: dict[tuple[str, str], Action] = {}


def action(service: str, name: str, *, mutating: bool, required: tuple[str, ...] = (),
           locked: bool = True) -> Callable[[Callable[[Ctx, dict[str, Any]], dict[str, Any]]], Any]:
    """Register a handler for ``service``'s ``name`` action."""

    def register(fn: Callable[[Ctx, dict[str, Any]], dict[str, Any]]) -> Callable[[Ctx, dict[str, Any]], dict[str, Any]]:
        ACTIONS[(service, name)] = Action(service, name, fn, mutating, required, locked)
        return fn

    return register


class CloudCore:
    """The world, the clock and the cluster runtime, as the handlers and timers see them."""

    def __init__(self, world: World, clock: Clock, runtime: ClusterRuntime):
        self.world = world
        self.clock = clock
        self.runtime = runtime
        self.alive = True  # False once the world is reset: its pending timers do nothing

    def schedule(self, delay: float, fn: Callable[[list[Effect]], None]) -> None:
        """Run ``fn(effects)`` under the world lock after ``delay`` seconds, then the effects it queued."""

        def tick() -> None:
            if not self.alive:
                return
            effects: list[Effect] = []
            with self.world.lock:
                fn(effects)
            run_effects(effects)

        self.clock.call_later(delay, tick, label=f"cloud {getattr(fn, '__qualname__', 'step')}")


def run_effects(effects: list[Effect]) -> None:
    for effect in effects:
        try:
            effect()
        except Exception:  # the cluster twin failing must not break the cloud API's answer
            log.exception("cloud twin side effect failed")


@dataclass
class Ctx:
    core: CloudCore
    region: str
    effects: list[Effect] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.core.world

    @property
    def runtime(self) -> ClusterRuntime:
        return self.core.runtime

    def effect(self, fn: Effect) -> None:
        self.effects.append(fn)

    def schedule(self, delay: float, fn: Callable[[list[Effect]], None]) -> None:
        self.core.schedule(delay, fn)
