"""Typed read helpers over ``TencentCloud.call``: pagination and the Describe* calls the flows use.

Who calls it: nothing directly; ``tkeflow.clients.tencent.TencentCloud`` mixes ``DescribeMixin`` in,
and tasks call ``cloud.describe_clusters(...)`` and friends. Why a separate module: the list
semantics (Offset/Limit walked until TotalCount, VPC's string-typed Offset/Limit, InstanceIds in
chunks of 100, exact name matching) are easy to get subtly wrong in each task; they live here once.

Every helper returns plain dicts in the wire's PascalCase (the SDK response model's fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from tkeflow import errors

MAX_PAGE = 100  # the documented maximum Limit of every Describe* used here
MAX_IDS_PER_CALL = 100  # InstanceIds.N / VpcIds.N / ... take at most 100 per request

FilterValues = str | Sequence[str]


class _Caller(Protocol):
    def call(self, service: str, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...


def filters_of(criteria: Mapping[str, FilterValues] | None) -> list[dict[str, Any]]:
    """``{"vpc-id": "vpc-1", "zone": ["a", "b"]}`` -> ``[{"Name": "vpc-id", "Values": ["vpc-1"]}, ...]``."""
    result = []
    for name, values in (criteria or {}).items():
        result.append({"Name": name, "Values": [values] if isinstance(values, str) else list(values)})
    return result


def _chunks(ids: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _tags_match(tag_pairs: Iterable[Mapping[str, Any]], wanted: Mapping[str, str]) -> bool:
    have = {pair.get("Key"): pair.get("Value") for pair in tag_pairs}
    return all(have.get(key) == value for key, value in wanted.items())


def _cluster_tags(cluster: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    pairs: list[Mapping[str, Any]] = []
    for spec in cluster.get("TagSpecification") or []:
        pairs += spec.get("Tags") or []
    return pairs


class DescribeMixin:
    """Pagination and typed Describe* helpers; needs ``self.call`` (TencentCloud provides it)."""

    def paginate(
        self: _Caller,
        service: str,
        action: str,
        params: Mapping[str, Any] | None,
        items_key: str,
        *,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """Every item of an Offset/Limit list, page by page until TotalCount is reached.

        VPC takes Offset and Limit as strings (the SDK sends what it is given, and the API is typed),
        so they are sent as strings there. Stops on an empty page too, so a TotalCount that
        overstates the list cannot loop forever.
        """
        as_str = service == "vpc"
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page_params = dict(params or {})
            page_params["Offset"] = str(offset) if as_str else offset
            page_params["Limit"] = str(page_size) if as_str else page_size
            response = self.call(service, action, page_params)
            page = response.get(items_key) or []
            items.extend(page)
            offset += len(page)
            total = response.get("TotalCount")
            if not page or (total is not None and offset >= int(total)) or (total is None and len(page) < page_size):
                return items

    def _paginate_ids(
        self,
        service: str,
        action: str,
        ids_key: str,
        ids: Sequence[str] | None,
        filters: Mapping[str, FilterValues] | None,
        items_key: str,
        page_size: int,
        extra: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """A list by IDs (chunks of 100, the API refuses more) or by filters, every page of it."""
        base: dict[str, Any] = dict(extra or {})
        if filters:
            base["Filters"] = filters_of(filters)
        if not ids:
            return self.paginate(service, action, base, items_key, page_size=page_size)  # type: ignore[attr-defined]
        items: list[dict[str, Any]] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), MAX_IDS_PER_CALL):
            items += self.paginate(service, action, {**base, ids_key: chunk}, items_key, page_size=page_size)  # type: ignore[attr-defined]
        return items

    # --- TKE -------------------------------------------------------------------------------------

    def describe_clusters(
        self,
        cluster_ids: Sequence[str] | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """Clusters by ID, or all; ``name`` matches ClusterName exactly, ``tags`` all given pairs.

        The name goes to the API as a ClusterName filter (fewer pages) and is matched exactly here
        too, since the filter is not documented as exact. The first tag pair goes to the API as the
        ``Tags`` filter (``key:value``, as DescribeClustersRequest documents it); every pair is matched
        here from TagSpecification too.
        """
        filters: dict[str, FilterValues] = {"ClusterName": name} if name else {}
        if tags:  # the API's Tags filter takes "key:value" pairs (one filter: its values are OR-ed, so one pair)
            key, value = sorted(tags.items())[0]
            filters["Tags"] = f"{key}:{value}"
        clusters = self._paginate_ids("tke", "DescribeClusters", "ClusterIds", cluster_ids, filters, "Clusters", page_size)
        if name:
            clusters = [c for c in clusters if c.get("ClusterName") == name]
        if tags:
            clusters = [c for c in clusters if _tags_match(_cluster_tags(c), tags)]
        return clusters

    def find_cluster_by_name(self, name: str, *, tags: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The one cluster with this exact name (and tags), None if absent; ambiguity is an error."""
        found = self.describe_clusters(name=name, tags=tags)
        if len(found) > 1:
            ids = ", ".join(str(c.get("ClusterId")) for c in found)
            raise errors.PermanentError(
                f"{len(found)} clusters are named {name!r} ({ids}): give cluster_id instead", code="AmbiguousClusterName"
            )
        return found[0] if found else None

    def describe_cluster_instances(
        self,
        cluster_id: str,
        *,
        instance_ids: Sequence[str] | None = None,
        role: str | None = None,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """The cluster's nodes (InstanceSet: InstanceId, InstanceRole, InstanceState, LanIP, ...)."""
        extra: dict[str, Any] = {"ClusterId": cluster_id}
        if role:
            extra["InstanceRole"] = role
        return self._paginate_ids(
            "tke", "DescribeClusterInstances", "InstanceIds", instance_ids, None, "InstanceSet", page_size, extra
        )

    def describe_versions(self) -> list[str]:
        """Kubernetes versions a new cluster can be created with (DescribeVersions)."""
        response = self.call("tke", "DescribeVersions", {})  # type: ignore[attr-defined]
        return [v["Version"] for v in response.get("VersionInstanceSet") or [] if v.get("Version")]

    def describe_available_cluster_versions(self, cluster_id: str) -> list[str]:
        """Versions ``cluster_id`` can be upgraded to (DescribeAvailableClusterVersion)."""
        response = self.call("tke", "DescribeAvailableClusterVersion", {"ClusterId": cluster_id})  # type: ignore[attr-defined]
        return list(response.get("Versions") or [])

    # --- CVM -------------------------------------------------------------------------------------

    def describe_instances(
        self,
        instance_ids: Sequence[str] | None = None,
        *,
        filters: Mapping[str, FilterValues] | None = None,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """CVMs by ID (IDs that do not exist are simply absent) or by filters (vpc-id, zone, ...)."""
        return self._paginate_ids("cvm", "DescribeInstances", "InstanceIds", instance_ids, filters, "InstanceSet", page_size)

    def describe_key_pairs(
        self, key_ids: Sequence[str] | None = None, *, filters: Mapping[str, FilterValues] | None = None
    ) -> list[dict[str, Any]]:
        """Key pairs by ID or filters (KeyPairSet: KeyId, KeyName, PublicKey, AssociatedInstanceIds)."""
        return self._paginate_ids("cvm", "DescribeKeyPairs", "KeyIds", key_ids, filters, "KeyPairSet", MAX_PAGE)

    def describe_account_quota(self, *, zone: str | None = None, quota_type: str = "PostPaidQuotaSet") -> list[dict[str, Any]]:
        """Quota entries of ``quota_type`` (default pay-as-you-go): [{Zone, UsedQuota, RemainingQuota, TotalQuota}]."""
        criteria: dict[str, FilterValues] = {"quota-type": quota_type}
        if zone:
            criteria["zone"] = zone
        response = self.call("cvm", "DescribeAccountQuota", {"Filters": filters_of(criteria)})  # type: ignore[attr-defined]
        quota = ((response.get("AccountQuotaOverview") or {}).get("AccountQuota")) or {}
        entries = list(quota.get(quota_type) or [])
        return [e for e in entries if not zone or e.get("Zone") == zone]

    def describe_zone_instance_config_infos(
        self,
        *,
        zone: str | None = None,
        instance_type: str | None = None,
        instance_types: Sequence[str] | None = None,
        instance_family: str | None = None,
        charge_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Instance types on sale (InstanceTypeQuotaSet: Zone, InstanceType, Cpu, Memory, GpuCount, Status)."""
        criteria: dict[str, FilterValues] = {}
        if zone:
            criteria["zone"] = zone
        wanted_types = ([instance_type] if instance_type else []) + list(instance_types or [])
        if wanted_types:
            criteria["instance-type"] = wanted_types
        if instance_family:
            criteria["instance-family"] = instance_family
        if charge_type:
            criteria["instance-charge-type"] = charge_type
        params = {"Filters": filters_of(criteria)} if criteria else {}
        response = self.call("cvm", "DescribeZoneInstanceConfigInfos", params)  # type: ignore[attr-defined]
        return list(response.get("InstanceTypeQuotaSet") or [])

    # --- VPC (Offset/Limit as strings, handled by paginate) ----------------------------------------

    def describe_vpcs(
        self, vpc_ids: Sequence[str] | None = None, *, filters: Mapping[str, FilterValues] | None = None, page_size: int = MAX_PAGE
    ) -> list[dict[str, Any]]:
        """VPCs (VpcSet: VpcId, VpcName, CidrBlock, AssistantCidrSet, ...)."""
        return self._paginate_ids("vpc", "DescribeVpcs", "VpcIds", vpc_ids, filters, "VpcSet", page_size)

    def describe_subnets(
        self,
        subnet_ids: Sequence[str] | None = None,
        *,
        vpc_id: str | None = None,
        filters: Mapping[str, FilterValues] | None = None,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """Subnets, optionally of one VPC (SubnetSet: SubnetId, VpcId, CidrBlock, Zone, RouteTableId, ...)."""
        criteria = {**(filters or {}), **({"vpc-id": vpc_id} if vpc_id else {})}
        return self._paginate_ids("vpc", "DescribeSubnets", "SubnetIds", subnet_ids, criteria, "SubnetSet", page_size)

    def describe_route_tables(
        self,
        route_table_ids: Sequence[str] | None = None,
        *,
        vpc_id: str | None = None,
        filters: Mapping[str, FilterValues] | None = None,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """Route tables with their routes (RouteTableSet: RouteTableId, Main, AssociationSet, RouteSet)."""
        criteria = {**(filters or {}), **({"vpc-id": vpc_id} if vpc_id else {})}
        return self._paginate_ids(
            "vpc", "DescribeRouteTables", "RouteTableIds", route_table_ids, criteria, "RouteTableSet", page_size
        )

    def describe_security_groups(
        self,
        security_group_ids: Sequence[str] | None = None,
        *,
        filters: Mapping[str, FilterValues] | None = None,
        page_size: int = MAX_PAGE,
    ) -> list[dict[str, Any]]:
        """Security groups (SecurityGroupSet: SecurityGroupId, SecurityGroupName, ...)."""
        return self._paginate_ids(
            "vpc", "DescribeSecurityGroups", "SecurityGroupIds", security_group_ids, filters, "SecurityGroupSet", page_size
        )
