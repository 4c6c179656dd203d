"""Fleet selection, scheduling and table (issue 16 item 3): pure decisions of tkeflow/rules/fleet.py,
and the NodeUpgrade spec's cluster_selector (exclusive with cluster_id / cluster_name)."""

from __future__ import annotations

import pytest

from tkeflow.rules import fleet
from tkeflow.specs import parse_manifest


def _cluster(cluster_id: str, **tags: str) -> dict:
    return {"ClusterId": cluster_id, "TagSpecification": [
        {"ResourceType": "cluster", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]}


def test_select_keeps_clusters_with_every_tag_in_id_order() -> None:
    clusters = [_cluster("cls-b", env="prod", team="a"), _cluster("cls-a", env="prod"),
                _cluster("cls-c", env="dev", team="a"), {"ClusterId": "cls-d", "TagSpecification": None}]
    assert fleet.select(clusters, {"env": "prod"}) == ["cls-a", "cls-b"]
    assert fleet.select(clusters, {"env": "prod", "team": "a"}) == ["cls-b"]
    assert fleet.select(clusters, {"env": "staging"}) == []


def test_one_failure_stops_new_clusters_unless_continue() -> None:
    done = [fleet.ClusterOutcome("cls-a", "Completed", 3), fleet.ClusterOutcome("cls-b", "Failed", 1)]
    assert fleet.may_start_more(done[:1], "stop")
    assert not fleet.may_start_more(done, "stop")
    assert fleet.may_start_more(done, "continue")


def test_table_has_cluster_result_nodes_and_child_run() -> None:
    rows = fleet.table_rows([fleet.ClusterOutcome("cls-a", "Completed", 3, "rolling-node-upgrade-cls-a"),
                             fleet.ClusterOutcome("cls-b", "not started", detail="an earlier cluster failed")])
    assert rows[0] == {"cluster": "cls-a", "result": "Completed", "nodes upgraded": 3,
                       "child run": "rolling-node-upgrade-cls-a", "detail": ""}
    assert rows[1]["nodes upgraded"] == "" and rows[1]["result"] == "not started"


def _manifest(**spec: object) -> dict:
    return {"apiVersion": "tkeflow/v1", "kind": "NodeUpgrade", "metadata": {"name": "fleet"},
            "spec": {"region": "ap-guangzhou", "target_version": "1.32.2", **spec}}


def test_selector_is_a_third_way_to_name_clusters() -> None:
    spec = parse_manifest(_manifest(cluster_selector={"tags": {"env": "prod"}}, max_parallel_clusters=4)).spec
    assert spec.cluster_selector.tags == {"env": "prod"} and spec.on_cluster_failure == "stop"


@pytest.mark.parametrize("names", [{"cluster_name": "demo"}, {"cluster_id": "cls-abcdefgh"}])
def test_selector_with_a_cluster_is_refused_naming_field_and_fix(names: dict) -> None:
    with pytest.raises(Exception) as caught:
        parse_manifest(_manifest(cluster_selector={"tags": {"env": "prod"}}, **names))
    text = str(caught.value)
    assert "cluster_selector" in text and "give exactly one" in text


def test_selector_needs_a_tag_and_bounded_parallelism() -> None:
    with pytest.raises(Exception) as caught:
        parse_manifest(_manifest(cluster_selector={"tags": {}}))
    assert "tags" in str(caught.value)
    with pytest.raises(Exception) as caught:
        parse_manifest(_manifest(cluster_selector={"tags": {"env": "prod"}}, max_parallel_clusters=0))
    assert "max_parallel_clusters" in str(caught.value)


def test_table_without_a_count_for_the_fleet_validation() -> None:
    rows = fleet.table_rows([fleet.ClusterOutcome("cls-a", "Failed", None, "validate-cluster-cls-a", "2 checks failed")],
                            count_label=None)
    assert rows == [{"cluster": "cls-a", "result": "Failed", "child run": "validate-cluster-cls-a",
                     "detail": "2 checks failed"}]
