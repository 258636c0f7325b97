import { ErrorCode } from '../errors';
import { array, custom, integer, nullable, object, oneOf, optional, string, type Parsed } from '../http/schema';
import { VLAN_MAX, VLAN_MIN } from '../../common/values';
import { parseVtepIp } from '../model/value-parsers';
import { nameSchema } from '../tenants/tenant.schemas';

const shortText = (description: string) => optional(nullable(string({ min: 1, max: 128, description })));

export const uplinkSchema = object({
  name: string({ min: 1, max: 15, pattern: /^[A-Za-z0-9._-]+$/, description: 'pNIC name on the host' }),
  driver: shortText('kernel driver, e.g. ice, mlx5_core'),
  pciAddress: optional(nullable(string({ min: 7, max: 16, pattern: /^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/, description: 'PCI address dddd:bb:dd.f' }))),
  switch: shortText('upstream physical switch'),
  switchPort: shortText('port on the upstream switch'),
  team: shortText('NIC team (bond) name'),
  mode: optional(nullable(oneOf(['active', 'standby'] as const, 'role in its team'))),
  failureDetection: optional(nullable(oneOf(['link-state', 'beacon'] as const, 'how the team detects a failed link'))),
});

export const inventorySchema = object({
  uplinks: optional(array(uplinkSchema, { max: 64 })),
  trunkedVlans: optional(array(integer({ min: VLAN_MIN, max: VLAN_MAX, code: ErrorCode.VlanOutOfRange }), { max: 4094 })),
});

const vtepSchema = custom(parseVtepIp, { type: 'string', description: 'the host VTEP address (unicast IPv4 or IPv6)' }, [ErrorCode.InvalidIp]);

export const createHostSchema = object({ name: nameSchema, vtepIp: vtepSchema, inventory: optional(inventorySchema) }, 'A hypervisor host.');

export const updateHostSchema = object({ name: optional(nameSchema), vtepIp: optional(vtepSchema), inventory: optional(inventorySchema) }, 'Fields to change.');

export type InventoryInput = Parsed<typeof inventorySchema>;
export type CreateHost = Parsed<typeof createHostSchema>;
export type UpdateHost = Parsed<typeof updateHostSchema>;
