import { ErrorCode } from '../../common/errors';

/** The one map from domain error codes to HTTP status. Exhaustive: an unmapped code does not compile. */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.InvalidJson:
    case ErrorCode.MissingField:
    case ErrorCode.UnknownField:
    case ErrorCode.InvalidType:
    case ErrorCode.InvalidValue:
    case ErrorCode.InvalidName:
    case ErrorCode.InvalidId:
    case ErrorCode.InvalidMac:
    case ErrorCode.MulticastMac:
    case ErrorCode.InvalidIp:
    case ErrorCode.InvalidCidr:
    case ErrorCode.IpOutsideCidr:
    case ErrorCode.IpFamilyMismatch:
    case ErrorCode.ReservedIp:
    case ErrorCode.VniOutOfRange:
    case ErrorCode.VlanOutOfRange:
    case ErrorCode.BatchTooLarge:
    case ErrorCode.InvalidCursor:
    case ErrorCode.PortRangeNotAllowed:
    case ErrorCode.InvalidPortRange:
    case ErrorCode.IcmpNotAllowed:
    case ErrorCode.ProtocolFamilyMismatch:
    case ErrorCode.CidrFamilyMismatch:
    case ErrorCode.ConflictingRemotes:
    case ErrorCode.SecurityGroupTenantMismatch:
    case ErrorCode.PortSecurityConflict:
      return 400;
    case ErrorCode.NotFound:
    case ErrorCode.TenantNotFound:
    case ErrorCode.SegmentNotFound:
    case ErrorCode.HostNotFound:
    case ErrorCode.PortNotFound:
    case ErrorCode.SecurityGroupNotFound:
      return 404;
    case ErrorCode.TenantNameTaken:
    case ErrorCode.TenantHasSegments:
    case ErrorCode.TenantQuotaExceeded:
    case ErrorCode.VniTaken:
    case ErrorCode.VniQuarantined:
    case ErrorCode.VniRangeExhausted:
    case ErrorCode.VlanTaken:
    case ErrorCode.SegmentHasPorts:
    case ErrorCode.HostNameTaken:
    case ErrorCode.VtepIpTaken:
    case ErrorCode.HostHasPorts:
    case ErrorCode.DuplicateMac:
    case ErrorCode.DuplicateIp:
    case ErrorCode.MacSpaceExhausted:
    case ErrorCode.TenantHasSecurityGroups:
    case ErrorCode.SecurityGroupNameTaken:
    case ErrorCode.SecurityGroupInUse:
    case ErrorCode.SecurityGroupIsDefault:
    case ErrorCode.DuplicateRule:
    case ErrorCode.DuplicateAddressPair:
      return 409;
    case ErrorCode.BodyTooLarge:
      return 413;
    case ErrorCode.UnsupportedMediaType:
      return 415;
    case ErrorCode.StoreUnavailable:
      return 503;
    case ErrorCode.Timeout:
      return 504;
    case ErrorCode.Internal:
      return 500;
  }
}
