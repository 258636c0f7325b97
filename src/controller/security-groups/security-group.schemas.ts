import { ErrorCode } from '../errors';
import { array, custom, integer, nullable, object, oneOf, optional, string, stringOrNumber, type Parsed } from '../http/schema';
import { parseCidr, parseId } from '../model/value-parsers';
import { idParam, type QuerySpec } from '../http/query';
import { idSchema } from '../segments/segment.schemas';
import { PAGE_QUERY } from '../store/page';
import { nameSchema } from '../tenants/tenant.schemas';
import { DIRECTIONS, ETHERTYPES, PROTOCOL_NAMES } from '../model/security-group';

export const MAX_RULES_PER_GROUP = 200;

const descriptionSchema = string({ min: 0, max: 255, description: 'free text, up to 255 characters' });
const portNumber = (description: string) => optional(nullable(integer({ min: 1, max: 65535, description })));
const icmpNumber = (description: string) => optional(nullable(integer({ min: 0, max: 255, description })));

/**
 * One rule as a client writes it. Optional fields also take `null`, so a group read with GET
 * (where unused fields are null) can be sent back with PUT as it is.
 */
export const ruleSchema = object(
  {
    id: optional(nullable(idSchema)),
    direction: oneOf(DIRECTIONS, 'ingress: traffic to the port; egress: traffic from it'),
    ethertype: oneOf(ETHERTYPES),
    protocol: stringOrNumber(
      oneOf(PROTOCOL_NAMES),
      integer({ min: 0, max: 255, description: 'IP protocol number' }),
      'tcp, udp, icmp (IPv4 only), icmpv6 (IPv6 only), any, or an IP protocol number 0-255 (6, 17, 1 and 58 are stored by name)',
    ),
    portRangeMin: portNumber('first port (tcp, udp and sctp 132 only); alone = that one port'),
    portRangeMax: portNumber('last port, >= portRangeMin'),
    icmpType: icmpNumber('ICMP type (icmp, icmpv6 only); absent = every type'),
    icmpCode: icmpNumber('ICMP code, with icmpType; absent = every code'),
    remoteCidr: optional(nullable(custom(parseCidr, { type: 'string', description: 'peer prefix of the rule ethertype; absent (with no remoteGroupId) = any peer' }, [ErrorCode.InvalidCidr]))),
    remoteGroupId: optional(nullable(custom(parseId, { type: 'string', format: 'uuid', description: 'peer = any member of this security group (same tenant)' }, [ErrorCode.InvalidId]))),
    description: optional(nullable(descriptionSchema)),
  },
  'An allow rule. On update, a rule keeps its id when it is sent back with it, or unchanged.',
);

export type RuleInput = Parsed<typeof ruleSchema>;

const rulesSchema = array(ruleSchema, { max: MAX_RULES_PER_GROUP });

export const createSecurityGroupSchema = object(
  {
    tenantId: idSchema,
    name: nameSchema,
    description: optional(nullable(descriptionSchema)),
    rules: optional(rulesSchema),
  },
  'A security group. Without `rules` it gets the two egress rules allowing everything out (IPv4 0.0.0.0/0 and IPv6 ::/0), as Neutron and AWS do; `rules: []` allows nothing.',
);

export const replaceSecurityGroupSchema = object(
  {
    name: nameSchema,
    description: optional(nullable(descriptionSchema)),
    rules: rulesSchema,
  },
  'The whole group: name and rules are replaced (absent description = none).',
);

export const updateSecurityGroupSchema = object(
  {
    name: optional(nameSchema),
    description: optional(nullable(descriptionSchema)),
    rules: optional(rulesSchema),
  },
  'Fields to change; `rules`, when given, replaces every rule.',
);

export type CreateSecurityGroup = Parsed<typeof createSecurityGroupSchema>;
export type ReplaceSecurityGroup = Parsed<typeof replaceSecurityGroupSchema>;
export type UpdateSecurityGroup = Parsed<typeof updateSecurityGroupSchema>;

/** `GET /v1/security-groups`. */
export const SECURITY_GROUP_LIST_QUERY = { ...PAGE_QUERY, tenantId: idParam('only security groups of this tenant') } satisfies QuerySpec;
