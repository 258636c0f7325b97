import { array, custom, nullable, object, optional, string } from '../../common/schema';
import { parseId, parseIp, parseMac } from '../../common/values';

const idSchema = custom(parseId, { type: 'string', format: 'uuid' });

export const MAX_IPS_PER_PORT = 16;

export const vmIdSchema = string({ min: 1, max: 128, pattern: /^[\x21-\x7e]+$/, description: 'the VM this vNIC belongs to (printable ASCII, no spaces)' });

export const createPortSchema = object(
  {
    segmentId: idSchema,
    vmId: optional(nullable(vmIdSchema)),
    mac: optional(custom(parseMac, { type: 'string', example: '02:00:00:00:00:01', description: 'unicast MAC; absent = a locally administered one is generated' })),
    ips: optional(array(custom(parseIp, { type: 'string', description: 'IPv4 or IPv6 address inside the segment CIDR' }), { max: MAX_IPS_PER_PORT })),
    hostId: optional(nullable(idSchema)),
  },
  'A VM port (vNIC).',
);

export const updatePortSchema = object(
  {
    hostId: optional(nullable(idSchema)),
    vmId: optional(nullable(vmIdSchema)),
  },
  'Bind (hostId), unbind (hostId: null) or relabel (vmId) a port.',
);

export function createPortBatchSchema(maxBatchSize: number) {
  return object({ ports: array(createPortSchema, { min: 1, max: maxBatchSize }) }, 'Ports created all together or not at all.');
}
