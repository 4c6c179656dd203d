"""Catalogue look-ups of the cloud twin: the Kubernetes versions a new cluster can take (TKE
DescribeVersions) and the account's key pairs (CVM DescribeKeyPairs).

Who calls them: the create-cluster flow's pre-flight (is the version available, do the login key
pairs exist) and tccli users. Read-only; answered from the world's versions and key pairs.
Not emulated: DescribeKeyPairs' ProjectId and creation times (reported as the world's epoch).
"""

from __future__ import annotations

from typing import Any

from tkeflow.twin.cloud import common
from tkeflow.twin.cloud import exceptions as exc
from tkeflow.twin.cloud.registry import Ctx, action

KeyPairNotFound = exc._error("InvalidKeyPairId.NotFound", "A key pair ID of the request does not exist.")

_KEY_FILTERS: dict[str, common.Getter] = {
    "key-id": lambda k: [k.key_id], "key-name": lambda k: [k.name], "project-id": lambda k: ["0"],
}


@action("tke", "DescribeVersions", mutating=False)
def describe_versions(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    versions = [{"Name": f"{v.rsplit('.', 1)[0]}", "Version": v, "Remark": ""} for v in ctx.world.versions]
    return {"TotalCount": len(versions), "VersionInstanceSet": versions}


@action("cvm", "DescribeKeyPairs", mutating=False)
def describe_key_pairs(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ids = p.get("KeyIds") or []
    if ids and p.get("Filters"):
        raise exc.InvalidParameter("KeyIds and Filters cannot be given together.")
    pairs = list(ctx.world.key_pairs.values())
    if ids:
        missing = [i for i in ids if i not in ctx.world.key_pairs]
        if missing:
            raise KeyPairNotFound(f"The key pair `{missing[0]}` does not exist.")
        pairs = [ctx.world.key_pairs[i] for i in ids]
    pairs = common.apply_filters(pairs, p.get("Filters"), _KEY_FILTERS)
    offset, limit = int(p.get("Offset") or 0), int(p.get("Limit") or 20)
    page = pairs[offset:offset + limit]
    return {"TotalCount": len(pairs), "KeyPairSet": [
        {"KeyId": k.key_id, "KeyName": k.name, "ProjectId": 0, "Description": "", "PublicKey": k.public_key,
         "PrivateKey": "", "AssociatedInstanceIds": [c.instance_id for c in ctx.world.cvms.values() if k.key_id in c.key_ids],
         "CreatedTime": "2026-11-01T00:00:00Z", "Tags": []} for k in page]}
