"""tccli (the official CLI, its own venv) lists the twin's clusters, instances and VPCs.

tccli speaks https unless ``--endpoint`` carries the scheme; with ``http://127.0.0.1:PORT`` the Host
header it signs carries the scheme too, and the twin verifies the signature against the header as sent.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

TCCLI = Path(__file__).resolve().parents[3] / ".venv-tccli" / "bin" / "tccli"
pytestmark = [pytest.mark.contract, pytest.mark.skipif(not TCCLI.exists(), reason="tccli venv not installed")]


def _tccli(twin: Any, tmp_path: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(twin.env(), HOME=str(tmp_path))  # a clean HOME: no ~/.tccli profile of the machine
    if key:
        env["TENCENTCLOUD_SECRET_KEY"] = key
    return subprocess.run([str(TCCLI), *args, "--endpoint", twin.url], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_tccli_lists_clusters_instances_and_vpcs(cloud_twin: Any, tmp_path: Path) -> None:
    clusters = _tccli(cloud_twin, tmp_path, "tke", "DescribeClusters", "--region", "ap-shanghai")
    assert clusters.returncode == 0, clusters.stderr
    assert [c["ClusterId"] for c in json.loads(clusters.stdout)["Clusters"]] == ["cls-shpeer01"]
    instances = _tccli(cloud_twin, tmp_path, "cvm", "DescribeInstances", "--region", "ap-guangzhou",
                       "--Filters", '[{"Name": "vpc-id", "Values": ["vpc-gzdemo01"]}]')
    assert instances.returncode == 0, instances.stderr
    assert json.loads(instances.stdout)["TotalCount"] == 5
    vpcs = _tccli(cloud_twin, tmp_path, "vpc", "DescribeVpcs", "--region", "ap-guangzhou")
    assert vpcs.returncode == 0, vpcs.stderr
    assert sorted(v["VpcId"] for v in json.loads(vpcs.stdout)["VpcSet"]) == ["vpc-gzdemo01", "vpc-gzpeer01"]
    log = cloud_twin.calls()
    assert [(c["service"], c["action"], c["error_code"]) for c in log[-3:]] == [
        ("tke", "DescribeClusters", None), ("cvm", "DescribeInstances", None), ("vpc", "DescribeVpcs", None)]


def test_tccli_with_a_wrong_key_is_refused(cloud_twin: Any, tmp_path: Path) -> None:
    out = _tccli(cloud_twin, tmp_path, "tke", "DescribeClusters", "--region", "ap-shanghai", key="x" * 32)
    assert out.returncode != 0
    assert "AuthFailure.SignatureFailure" in out.stdout + out.stderr
