import { DIRECTIONS, ETHERTYPES, PROTOCOL_NAMES } from '../model/security-group';
import { ErrorCode } from '../errors';
import { bool, crudPaths, idParam, json, nullableInt, nullableStr, record, ref, str, type ApiDescription } from '../http/openapi';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, SECURITY_GROUP_LIST_QUERY, updateSecurityGroupSchema } from './security-group.schemas';

/** What the rules of a group are checked for (security-group.rules.ts), and their remote groups (same tenant, in the store). */
const RULE_ERRORS = [
  ErrorCode.ConflictingRemotes,
  ErrorCode.CidrFamilyMismatch,
  ErrorCode.ProtocolFamilyMismatch,
  ErrorCode.PortRangeNotAllowed,
  ErrorCode.InvalidPortRange,
  ErrorCode.IcmpNotAllowed,
  ErrorCode.DuplicateRule,
  ErrorCode.InvalidValue,
  ErrorCode.SecurityGroupNotFound,
  ErrorCode.SecurityGroupTenantMismatch,
];
/** A change of a group (PUT, PATCH): the group itself, its name, its rules. */
const CHANGE_ERRORS = [ErrorCode.SecurityGroupNotFound, ErrorCode.SecurityGroupIsDefault, ErrorCode.SecurityGroupNameTaken, ...RULE_ERRORS];

const paths = crudPaths({
  kind: 'securityGroup',
  plural: 'security-groups',
  label: 'security group',
  create: createSecurityGroupSchema,
  listQuery: SECURITY_GROUP_LIST_QUERY,
  errors: {
    create: [ErrorCode.TenantNotFound, ErrorCode.SecurityGroupNameTaken, ...RULE_ERRORS],
    get: [ErrorCode.SecurityGroupNotFound],
    delete: [ErrorCode.SecurityGroupNotFound, ErrorCode.SecurityGroupIsDefault, ErrorCode.SecurityGroupInUse],
  },
});
const groupPath = paths['/v1/security-groups/{id}'];
const answer = { '200': { description: 'security group', ...json(ref('securityGroup')) } };
groupPath.put = { operationId: 'replaceSecurityGroup', tags: ['security-groups'], summary: 'Replace a security group (name and every rule)', parameters: [idParam], body: replaceSecurityGroupSchema, responses: answer, errors: CHANGE_ERRORS };
groupPath.patch = { operationId: 'updateSecurityGroup', tags: ['security-groups'], summary: 'Change a security group (rules, when given, replace every rule)', parameters: [idParam], body: updateSecurityGroupSchema, responses: answer, errors: CHANGE_ERRORS };
groupPath.delete = { ...groupPath.delete!, description: "Refused (409 SECURITY_GROUP_IN_USE) while ports use the group or another group's rules name it as remote group, and (409 SECURITY_GROUP_IS_DEFAULT) for a tenant's default group, which goes with its tenant." };

/** The routes of SecurityGroupController. */
export const securityGroupApi: ApiDescription = {
  paths,
  schemas: {
    securityGroupRule: record({
      id: str,
      direction: { type: 'string', enum: DIRECTIONS },
      ethertype: { type: 'string', enum: ETHERTYPES },
      protocol: { anyOf: [{ type: 'string', enum: PROTOCOL_NAMES }, { type: 'integer' }], description: 'a name, or a number for the others' },
      portRangeMin: nullableInt,
      portRangeMax: nullableInt,
      icmpType: nullableInt,
      icmpCode: nullableInt,
      remoteCidr: nullableStr,
      remoteGroupId: nullableStr,
      description: nullableStr,
    }),
    securityGroup: record(
      { id: str, tenantId: str, name: str, description: nullableStr, isDefault: bool, rules: { type: 'array', items: ref('securityGroupRule') }, createdAt: str, updatedAt: str },
      {
        example: {
          id: '01a21ab0-1e45-7f00-8a11-0c2d3e4f5a6b',
          tenantId: '01a21ab0-1e44-7c3e-9d2a-5b8e2f0c1d4e',
          name: 'ssh',
          description: null,
          isDefault: false,
          rules: [{ id: '01a21ab0-1e46-7abc-9def-0123456789ab', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, icmpType: null, icmpCode: null, remoteCidr: '0.0.0.0/0', remoteGroupId: null, description: null }],
          createdAt: '2026-12-05T01:25:22.462Z',
          updatedAt: '2026-12-05T01:25:22.462Z',
        },
      },
    ),
  },
};
