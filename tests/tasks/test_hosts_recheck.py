"""Issue 14 item 4 (R-ADD-3): right before the join each host is inspected again, over real SSH against
the twin; an inspection seconds old is reused, and a host whose disks changed since the plan stops."""

from __future__ import annotations

from typing import Any

import pytest

from tasks import hosts
from tests.conftest import CONFIGS
from tkeflow import specs
from tkeflow.rules import data_disk as dd


pytestmark = pytest.mark.usefixtures("prefect_server")  # the recheck is a task of its own


def _spec() -> specs.ExistingHostsSpec:
    spec = specs.load_manifest(CONFIGS / "existing-hosts.yaml").spec
    key = CONFIGS.parent / spec.ssh.private_key_file
    return spec.model_copy(update={"ssh": spec.ssh.model_copy(update={"private_key_file": str(key)})})


def _target(twin: Any, instance_id: str) -> hosts.HostTarget:
    cvm = twin.world.cvms[instance_id]
    disks = tuple(dd.CloudDataDisk(d.disk_id, d.size_gb, d.disk_type) for d in cvm.data_disks)
    return hosts.HostTarget(instance_id, cvm.private_ip, cvm.zone, cvm.vpc_id, "RUNNING", cvm.instance_type, disks)


def test_a_fresh_inspection_is_reused_and_a_changed_disk_stops_its_host(twin: Any) -> None:
    spec = _spec()
    targets = [_target(twin, "ins-host0001"), _target(twin, "ins-host0004")]
    inspections = hosts.inspect_hosts(spec, targets)
    host1 = inspections["ins-host0001"]
    assert host1.ok and host1.disks[0].zeroed is True and not host1.disks[0].holds_data  # both ends read as zeros
    ids = ["ins-host0001", "ins-host0004"]

    # someone writes raw data to host-1's empty disk between the plan and the join
    twin.world.cvms["ins-host0001"].data_disks[0].holds_data = True
    assert hosts.recheck_hosts(spec, inspections, ids) == {}  # seconds old: reused, no SSH
    stopped = hosts.recheck_hosts(spec, inspections, ids, max_age_s=0)
    assert list(stopped) == ["ins-host0001"]
    assert "changed since the plan" in stopped["ins-host0001"] and "non-zero content" in stopped["ins-host0001"]
