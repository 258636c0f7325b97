import { DIRECTIONS, ETHERTYPES, PROTOCOL_NAMES } from '../model/security-group';
import { crudPaths, errors, idParam, json, nullableInt, nullableStr, ref, str, type ApiDescription } from '../http/openapi';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, SECURITY_GROUP_LIST_QUERY, updateSecurityGroupSchema } from './security-group.schemas';

const paths = crudPaths('securityGroup', 'security-groups', createSecurityGroupSchema.json, SECURITY_GROUP_LIST_QUERY, 'security group');
const groupPath = paths['/v1/security-groups/{id}'];
groupPath.put = { tags: ['security-groups'], summary: 'Replace a security group (name and every rule)', parameters: [idParam], requestBody: { required: true, ...json(replaceSecurityGroupSchema.json) }, responses: { '200': { description: 'security group', ...json(ref('securityGroup')) }, ...errors } };
groupPath.patch = { tags: ['security-groups'], summary: 'Change a security group (rules, when given, replace every rule)', parameters: [idParam], requestBody: { required: true, ...json(updateSecurityGroupSchema.json) }, responses: { '200': { description: 'security group', ...json(ref('securityGroup')) }, ...errors } };
groupPath.delete = { ...(groupPath.delete as object), description: "Refused (409 SECURITY_GROUP_IN_USE) while ports use the group or another group's rules name it as remote group, and (409 SECURITY_GROUP_IS_DEFAULT) for a tenant's default group, which goes with its tenant." };

/** The routes of SecurityGroupController. */
export const securityGroupApi: ApiDescription = {
  paths,
  schemas: {
    securityGroupRule: {
      type: 'object',
      properties: {
        id: str,
        direction: { type: 'string', enum: DIRECTIONS },
        ethertype: { type: 'string', enum: ETHERTYPES },
        protocol: { anyOf: [{ type: 'string', enum: PROTOCOL_NAMES }, { type: 'integer' }] },
        portRangeMin: nullableInt,
        portRangeMax: nullableInt,
        icmpType: nullableInt,
        icmpCode: nullableInt,
        remoteCidr: nullableStr,
        remoteGroupId: nullableStr,
        description: nullableStr,
      },
    },
    securityGroup: {
      type: 'object',
      properties: { id: str, tenantId: str, name: str, description: nullableStr, isDefault: { type: 'boolean' }, rules: { type: 'array', items: ref('securityGroupRule') }, createdAt: str, updatedAt: str },
    },
  },
};
