"""Tencent Cloud API errors of the cloud twin: one class per real error ``Code``.

Raised by the backends and the wire layer; rendered only by the server as
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` (moto's pattern: the backend raises,
the framework renders). Codes are the SDK's errorcodes.py strings and the common platform codes.
"""

from __future__ import annotations


class CloudError(Exception):
    code = "InternalError"

    def __init__(self, message: str = ""):
        super().__init__(message or self.code)
        self.message = message or self.code


def _error(code: str, doc: str = "") -> type[CloudError]:
    name = "".join(part[:1].upper() + part[1:] for part in code.split("."))
    return type(name, (CloudError,), {"code": code, "__doc__": doc or f"Tencent Cloud error {code}."})


# --- common (platform) codes -------------------------------------------------------------------------
SignatureFailure = _error("AuthFailure.SignatureFailure")
SignatureExpire = _error("AuthFailure.SignatureExpire")
SecretIdNotFound = _error("AuthFailure.SecretIdNotFound")
InvalidAuthorization = _error("AuthFailure.InvalidAuthorization")
InvalidAction = _error("InvalidAction")
UnauthorizedOperation = _error("UnauthorizedOperation", "CAM: the caller's policy does not allow the action.")
NoSuchVersion = _error("NoSuchVersion")
UnsupportedRegion = _error("UnsupportedRegion")
UnsupportedProtocol = _error("UnsupportedProtocol")
MissingParameter = _error("MissingParameter")
UnknownParameter = _error("UnknownParameter")
InvalidParameter = _error("InvalidParameter")
InvalidParameterValue = _error("InvalidParameterValue")
RequestLimitExceeded = _error("RequestLimitExceeded")
InternalError = _error("InternalError")
ResourceNotFound = _error("ResourceNotFound")
ResourceInUse = _error("ResourceInUse")
LimitExceeded = _error("LimitExceeded")
FailedOperation = _error("FailedOperation")
UnsupportedOperation = _error("UnsupportedOperation")

# --- TKE ----------------------------------------------------------------------------------------------
ClusterNotFound = _error("ResourceNotFound.ClusterNotFound")
InvalidParameterClusterNotFound = _error("InvalidParameter.ClusterNotFound")
CidrConflictWithVpcCidr = _error("InvalidParameter.CidrConflictWithVpcCidr", "R-CRT-2: container CIDR overlaps the VPC.")
CidrConflictWithOtherCluster = _error("InvalidParameter.CidrConflictWithOtherCluster",
                                      "R-CRT-2: container CIDR overlaps another cluster it routes to.")
CidrInvalid = _error("InvalidParameter.CidrInvalid")
CidrMaskSizeOutOfRange = _error("InvalidParameter.CIDRMaskSizeOutOfRange")
SubnetNotExist = _error("InvalidParameter.SubnetNotExist")
InvalidParameterParam = _error("InvalidParameter.Param")
ClusterState = _error("FailedOperation.ClusterState")
ResourceUnavailableClusterState = _error("ResourceUnavailable.ClusterState")
ClusterVersionNotSupport = _error("FailedOperation.ClusterVersionNotSupport")
ClusterUpgradeNodeVersion = _error("FailedOperation.ClusterUpgradeNodeVersion")
CvmVpcidNotMatch = _error("FailedOperation.CvmVpcidNotMatch", "R-ADD-1: only CVMs of the cluster's VPC.")
TaskAlreadyRunning = _error("FailedOperation.TaskAlreadyRunning")
TaskNotFound = _error("FailedOperation.TaskNotFound")
TaskLifeStateError = _error("FailedOperation.TaskLifeStateError")
QuotaMaxNodLimit = _error("LimitExceeded.QuotaMaxNodLimit")
ClusterInDeletionProtection = _error("OperationDenied.ClusterInDeletionProtection")
NodePoolNotFound = _error("ResourceNotFound.NodePoolNotFound")
ResourceExistAlready = _error("ResourceInUse.ResourceExistAlready")
InvalidParameterValueLimitExceeded = _error("InvalidParameterValue.LimitExceeded")

# --- CVM ----------------------------------------------------------------------------------------------
InstancesQuotaLimitExceeded = _error("InstancesQuotaLimitExceeded", "R-AS-4: pay-as-you-go quota per zone.")
InvalidInstanceIdNotFound = _error("InvalidInstanceId.NotFound")
InvalidInstanceIdMalformed = _error("InvalidInstanceId.Malformed")
InvalidZoneMismatchRegion = _error("InvalidZone.MismatchRegion")
InvalidInstanceTypeNotSupported = _error("InvalidParameterValue.InstanceTypeNotSupported")
InvalidFilter = _error("InvalidFilter")
ResourcesSoldOut = _error("ResourcesSoldOut", "The instance type is sold out in the zone.")

# --- VPC ----------------------------------------------------------------------------------------------
Duplicate = _error("InvalidParameterValue.Duplicate")
CidrConflict = _error("InvalidParameterValue.CidrConflict")
ValueResourceNotFound = _error("InvalidParameterValue.ResourceNotFound")
Malformed = _error("InvalidParameterValue.Malformed")
RouteNextHopInvalid = _error("InvalidParameterValue.RouteNextHopInvalid")
EcmpWithUserRoute = _error("UnsupportedOperation.EcmpWithUserRoute")
VpcPeerCidrConflict = _error("UnsupportedOperation.VpcPeerCidrConflict")
VpcPeerAlreadyExist = _error("UnsupportedOperation.VpcPeerAlreadyExist")
VpcPeerInvalidStateChange = _error("UnsupportedOperation.VpcPeerInvalidStateChange")
VpnConnSpdOverlap = _error("UnsupportedOperation.VpnConnSPDOverlap")
VpnConnSpdCidrConflict = _error("InvalidParameterValue.VpnConnSpdCidrConflict")
VpcCidrOverlapRoute = _error("InvalidParameterValue.VpcCidrOverlapRoute")
InvalidRouteTableIdNotFound = _error("InvalidRouteTableId.NotFound")
InvalidRouteIdNotFound = _error("InvalidRouteId.NotFound")
InvalidVpcIdNotFound = _error("InvalidVpcId.NotFound")
InvalidVpnGatewayIdNotFound = _error("InvalidVpnGatewayId.NotFound")
VpcMismatch = _error("UnsupportedOperation.VpcMismatch")
ResourceInsufficientCidrBlock = _error("ResourceInsufficient.CidrBlock")
FailedOperationVpcRecodrNotFound = _error("FailedOperation.VpcRecodrNotFound")
ResourceNotFoundAsAsgNotExist = _error("ResourceNotFound.AsAsgNotExist")

# --- as (Auto Scaling 2018-04-19): the scaling (alarm) policies of AS groups (R-AS-5) ---------------
AutoScalingGroupNotFound = _error("ResourceNotFound.AutoScalingGroupNotFound")
InvalidParameterConflict = _error("InvalidParameterConflict")
InvalidAutoScalingPolicyId = _error("InvalidParameterValue.InvalidAutoScalingPolicyId")
ScalingPolicyNameDuplicate = _error("InvalidParameterValue.ScalingPolicyNameDuplicate")
