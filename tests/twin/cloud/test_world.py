"""The TwinWorld file: the default world's fixed IDs (team contracts) and the schema validator."""

from __future__ import annotations

from pathlib import Path

import yaml

from twin.world.loader import DEFAULT_WORLD, WorldFileError, load_world
from twin.world.schema import validate_world, validate_world_file


def test_default_world_is_valid_and_has_every_fixed_id() -> None:
    assert validate_world_file(DEFAULT_WORLD) == []
    world = load_world()
    assert {r: w.zones for r, w in world.regions.items()} == {
        "ap-guangzhou": ["ap-guangzhou-3", "ap-guangzhou-4"], "ap-shanghai": ["ap-shanghai-2"]}
    assert world.versions == ["1.28.3", "1.30.0", "1.32.2"]
    assert {v: (x.region, x.cidr) for v, x in world.vpcs.items()} == {
        "vpc-gzdemo01": ("ap-guangzhou", "10.0.0.0/16"), "vpc-gzpeer01": ("ap-guangzhou", "10.1.0.0/16"),
        "vpc-shdemo01": ("ap-shanghai", "10.2.0.0/16")}
    assert set(world.subnets) == {"subnet-gz3app01", "subnet-gz4app01", "subnet-gz3peer1", "subnet-sh2app01"}
    assert set(world.route_tables) == {"rtb-gzdemo01", "rtb-gzpeer01", "rtb-shdemo01"}
    assert set(world.security_groups) == {"sg-gzdemo01", "sg-gzpeer01", "sg-shdemo01"}
    spd = world.vpn_connections["vpnx-gzdemo01"].spd
    assert [(s.local_cidr, s.remote_cidrs) for s in spd] == [("10.0.0.0/16", ["192.168.0.0/16"])]
    assert world.vpn_connections["vpnx-gzdemo01"].customer_gateway_id == "cgw-idc00001"
    assert "dcg-gzdemo01" in world.dc_gateways and world.idcs["idc-main"].probe_hosts[0].ip == "192.168.10.10"
    assert world.key_pairs["skey-demo0001"].public_key.startswith("ssh-ed25519 ")
    assert world.postpaid_quota_per_zone == 30 and world.scaling_group_max == 200
    assert world.timings.cluster_create == 2 and world.timings.endpoint_create == 0.3


def test_default_world_hosts_and_disks_exactly_as_listed() -> None:
    cvms = load_world().cvms
    expected = {"ins-host0001": ("10.0.1.11", [100]), "ins-host0002": ("10.0.1.12", [200]),
                "ins-host0003": ("10.0.1.13", []), "ins-host0004": ("10.0.1.14", [100, 100]),
                "ins-gpu00001": ("10.0.1.21", []), "ins-other001": ("10.1.1.11", [])}
    for instance_id, (ip, disks) in expected.items():
        cvm = cvms[instance_id]
        assert (cvm.private_ip, [d.size_gb for d in cvm.data_disks]) == (ip, disks)
        assert cvm.state == "RUNNING" and cvm.cluster_id is None and cvm.key_ids == ["skey-demo0001"]
        assert cvm.system_disk.size_gb == 50 and cvm.system_disk.disk_type == "CLOUD_PREMIUM"
    assert cvms["ins-host0001"].data_disks[0].disk_type == "CLOUD_SSD" and cvms["ins-host0001"].data_disks[0].filesystem is None
    data = cvms["ins-host0002"].data_disks[0]
    assert (data.filesystem, data.mountpoint, data.used_gb, data.holds_data) == ("ext4", "/data", 35, True)
    gpu = cvms["ins-gpu00001"]
    assert (gpu.instance_type, gpu.cpu, gpu.memory_gib, gpu.gpus, gpu.gpu_type) == ("GN7.2XLARGE32", 8, 32, 1, "Tesla T4")
    assert cvms["ins-other001"].vpc_id == "vpc-gzpeer01"
    assert [d.device for d in cvms["ins-host0004"].disks] == ["/dev/vda", "/dev/vdb", "/dev/vdc"]


def test_existing_cluster_in_shanghai() -> None:
    world = load_world()
    cluster = world.clusters["cls-shpeer01"]
    assert (cluster.name, cluster.version, cluster.container_cidr, cluster.service_cidr, cluster.status) == (
        "sh-peer", "1.30.0", "172.22.0.0/16", "172.23.0.0/20", "Running")
    assert sorted(cluster.instances) == ["ins-shnode01", "ins-shnode02"]
    assert all(world.cvms[i].instance_type == "S5.LARGE8" for i in cluster.instances)


def test_validator_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_WORLD.read_text())
    doc["kind"] = "World"
    doc["spec"]["timings"]["warp"] = 1
    doc["spec"]["timings"]["ssh_command_latency_s"] = 0  # a known timing the default world leaves out
    doc["spec"]["faults"]["default"]["throttle_rate"] = 2
    doc["spec"]["faults"]["default"]["jitter_s"] = 1
    vpc = doc["spec"]["regions"][0]["vpcs"][0]
    vpc["cidr"] = "10.0.0.0/33"
    vpc["subnets"][0]["zone"] = "ap-mars-1"
    doc["spec"]["regions"][0]["instances"][0]["type"] = "Z9.HUGE"
    doc["spec"]["regions"][0]["instances"][1]["id"] = "ins-host0001"
    problems = validate_world(doc)
    for expected in ("kind:", "spec.timings.warp", "spec.faults.default.throttle_rate", "spec.faults.default.jitter_s",
                     "spec.regions[0].vpcs[0].cidr", "spec.regions[0].vpcs[0].subnets[0].zone",
                     "spec.regions[0].instances[0].type", "spec.regions[0].instances[1]: id ins-host0001 already used"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert not any(p.startswith(("spec.timings.cluster_create", "spec.timings.ssh_command_latency_s",
                                 "spec.faults.default.latency_s")) for p in problems)  # every model field is known
    bad = tmp_path / "world.yaml"
    bad.write_text(yaml.safe_dump(doc))
    try:
        load_world(bad)
    except WorldFileError as e:
        assert len(e.problems) == len(problems)
    else:
        raise AssertionError("a bad world loaded")
    (tmp_path / "broken.yaml").write_text("spec: [")
    assert "cannot read YAML" in validate_world_file(tmp_path / "broken.yaml")[0]
