"""The Interconnect spec (kind: Interconnect): connect a cluster's containers to another cluster or an IDC.

Who calls it: tkeflow.specs.parse_manifest and the interconnect flow (its parameter). Static rules:
R-NET-1/2 (peering: both clusters, and they differ; cross-region when the regions differ),
R-NET-4 (direct connect needs a direct connect gateway), R-NET-5 (VPN needs the VPN connection),
R-NET-6 (bare metal: both sides), R-NET-7 (an IDC interconnect is tested against probe hosts inside
the IDC's CIDRs). Container CIDR overlaps between the clusters need their cloud state: the flow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, GetJsonSchemaHandler, field_validator, model_validator

from tkeflow.specs.base import SpecModel, Violation, rule_error
from tkeflow.specs.common import ClusterRef, Region, id_pattern, timeout_field
from tkeflow.specs.existing_hosts import SshSettings


class ClusterSide(ClusterRef):
    """One cluster of the interconnect."""

    region: Region = Field(description="Region of this cluster (R-NET-2: record both regions).")


class ProbeHost(SpecModel):
    """A host in the IDC the containers must reach (R-NET-7); written as host:port or as a mapping."""

    host: str = Field(description="IPv4 address of the host.")
    port: int = Field(80, ge=1, le=65535, description="TCP port that answers.")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        """Editors accept the short form too: "192.168.10.10:80"."""
        as_object = handler(core_schema)
        return {"anyOf": [{"type": "string", "pattern": r"^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$"}, as_object]}

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            host, _, port = data.rpartition(":")
            return {"host": host, "port": port} if host else {"host": data}
        return data

    @field_validator("host")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise rule_error("R-NET-7", "the probe host is not an IPv4 address", "write it as 192.168.10.10:80") from None
        return value


class IdcSide(SpecModel):
    """The IDC (on-premises network) end of a VPN or direct connect interconnect (R-NET-4/5)."""

    cidrs: list[str] = Field(min_length=1, max_length=50, description="The IDC's CIDRs.")
    vpn_connection_id: str | None = Field(None, pattern=id_pattern("vpnx"), description="type vpn: the VPN "
                                          "connection whose SPD policy gets the container CIDR (R-NET-5).")
    direct_connect_gateway_id: str | None = Field(None, pattern=id_pattern("dcg"), description="type "
                                                  "direct_connect: the direct connect gateway (R-NET-4).")
    bgp: bool = Field(False, description="direct_connect: container routes sync by BGP (else the IDC routes the "
                      "container CIDR to the gateway, R-NET-4).")
    probe_hosts: list[ProbeHost] = Field(default_factory=list, max_length=50, description="IDC hosts the containers must reach "
                                         "after the change (R-NET-7), as host:port.")

    @field_validator("cidrs")
    @classmethod
    def _valid_cidrs(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.IPv4Network(cidr, strict=True)
            except ValueError as e:
                raise rule_error("R-NET-5", f"IDC CIDR number {cidrs.index(cidr) + 1} is not a valid IPv4 CIDR", "write an IPv4 CIDR such as "
                                 "192.168.0.0/16") from None
        return cidrs

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        nets = [ipaddress.ip_network(c) for c in values.get("cidrs") or ()]
        for i, probe in enumerate(values.get("probe_hosts") or ()):
            if nets and not any(ipaddress.ip_address(probe.host) in n for n in nets):
                yield Violation(("probe_hosts", i), "R-NET-7", f"probe host {probe.host} is outside the IDC CIDRs",
                                "name a host inside idc.cidrs")


class InterconnectSpec(SpecModel):
    """Connect cluster a to cluster b (peering, bare_metal) or to an IDC (vpn, direct_connect)."""

    type: Literal["peering", "direct_connect", "vpn", "bare_metal"] = Field(description="peering: two VPCs "
                                                                            "(R-NET-1/2); direct_connect, vpn: an "
                                                                            "IDC (R-NET-4/5); bare_metal: R-NET-6.")
    a: ClusterSide = Field(description="The cluster whose containers are connected.")
    b: ClusterSide | None = Field(None, description="peering / bare_metal: the other cluster.")
    peering_connection_id: str | None = Field(None, pattern=id_pattern("pcx"), description="An existing peering "
                                              "connection to use; none: the flow creates one.")
    bandwidth_mbps: int = Field(100, ge=1, description="Bandwidth of a peering connection the flow creates.")
    account_uin: str | None = Field(None, pattern=r"^\d{5,20}$", description="The account's UIN: DestinationUin of "
                                    "a peering the flow creates (both VPCs are this account's) and the account ID "
                                    "of the bare-metal ticket (R-NET-6).")
    idc: IdcSide | None = Field(None, description="vpn / direct_connect: the IDC end.")
    probe_timeout_s: float = timeout_field(30.0, "Timeout of each connectivity test (R-NET-7).", minimum=0.1)
    peering_timeout_s: float = timeout_field(600.0, "How long a peering may take to turn ACTIVE (R-NET-1/2).")
    approve: bool = Field(False, description="R-NET-5: approves ahead of time a change to a VPN connection's "
                          "existing SPD and a route table rebinding (else the run pauses for approval in the UI).")
    rebind_route_table_id: str | None = Field(None, pattern=id_pattern("rtb"), description="vpn / direct_connect: "
                                              "bind the nodes' subnets to this route table; it REPLACES their "
                                              "binding (R-NET-5, approval). None: routes go into the tables bound.")
    ticket_id: str | None = Field(None, min_length=1, max_length=64, description="bare_metal / direct_connect: the "
                                  "number of the ticket (R-NET-4/6) that is done; none: the run publishes the "
                                  "payload and pauses for it.")
    ssh: SshSettings = Field(default_factory=SshSettings, description="R-NET-3: how the flow reaches a node of "
                             "each side for the host-to-host check (host keys checked).")

    @classmethod
    def _rules(cls, values: Mapping[str, Any]) -> Iterator[Violation]:
        kind, a, b, idc = values.get("type"), values.get("a"), values.get("b"), values.get("idc")
        if kind in ("peering", "bare_metal"):
            rule = "R-NET-6" if kind == "bare_metal" else "R-NET-1"
            if "b" in values and b is None:
                yield Violation(("b",), rule, f"a {kind} interconnect needs both clusters", "add spec.b "
                                "(cluster_id or cluster_name, region)")
            if a is not None and b is not None and _same_cluster(a, b):
                yield Violation(("b",), rule, "a and b are the same cluster", "give the other cluster as b")
            if idc is not None:
                yield Violation(("idc",), rule, f"a {kind} interconnect has no IDC end", "remove spec.idc")
        if kind in ("vpn", "direct_connect"):
            yield from _idc_rules(kind, values)
        if values.get("rebind_route_table_id") and kind not in ("vpn", "direct_connect"):
            yield Violation(("rebind_route_table_id",), "R-NET-5", f"a {kind} interconnect adds its routes to the "
                            "tables already bound; it rebinds nothing", "remove spec.rebind_route_table_id")
        if values.get("ticket_id") and kind not in ("bare_metal", "direct_connect"):
            yield Violation(("ticket_id",), "R-NET-6", f"a {kind} interconnect needs no ticket",
                            "remove spec.ticket_id")


def _same_cluster(a: ClusterSide, b: ClusterSide) -> bool:
    if a.cluster_id and a.cluster_id == b.cluster_id:
        return True
    return bool(a.cluster_name) and a.cluster_name == b.cluster_name and a.region == b.region


def _idc_rules(kind: str, values: Mapping[str, Any]) -> Iterator[Violation]:
    rule = "R-NET-5" if kind == "vpn" else "R-NET-4"
    idc = values.get("idc")
    if values.get("b") is not None:
        yield Violation(("b",), rule, f"a {kind} interconnect connects to an IDC, not to a cluster b",
                        "remove spec.b (use type: peering for two clusters)")
    if "idc" not in values:
        return
    if idc is None:
        yield Violation(("idc",), rule, f"a {kind} interconnect needs spec.idc", "add spec.idc with cidrs, "
                        "the gateway or connection ID and probe_hosts")
        return
    if kind == "vpn" and not idc.vpn_connection_id:
        yield Violation(("idc", "vpn_connection_id"), "R-NET-5", "a vpn interconnect needs the VPN connection",
                        "add idc.vpn_connection_id (vpnx-xxxxxxxx)")
    if kind == "direct_connect" and not idc.direct_connect_gateway_id:
        yield Violation(("idc", "direct_connect_gateway_id"), "R-NET-4", "a direct_connect interconnect needs "
                        "the direct connect gateway", "add idc.direct_connect_gateway_id (dcg-xxxxxxxx)")
    if not idc.probe_hosts:
        yield Violation(("idc", "probe_hosts"), "R-NET-7", "every interconnect ends with a test: no IDC host to "
                        "probe", "add idc.probe_hosts, e.g. [192.168.10.10:80]")
