import { crudPaths, errors, idParam, json, ref, str, type ApiDescription } from '../http/openapi';
import { PAGE_QUERY } from '../store/page';
import { createHostSchema, updateHostSchema } from './host.schemas';

const paths = crudPaths('host', 'hosts', createHostSchema.json, PAGE_QUERY);
paths['/v1/hosts/{id}'].patch = { tags: ['hosts'], summary: 'Change a host', parameters: [idParam], requestBody: { required: true, ...json(updateHostSchema.json) }, responses: { '200': { description: 'host', ...json(ref('host')) }, ...errors } };

/** The routes of HostController; reads add the agent's status. */
export const hostApi: ApiDescription = {
  paths,
  schemas: {
    host: {
      type: 'object',
      properties: {
        id: str,
        name: str,
        vtepIp: str,
        inventory: createHostSchema.json.properties && (createHostSchema.json.properties as Record<string, unknown>).inventory,
        createdAt: str,
        updatedAt: str,
        connected: { type: 'boolean', description: 'an agent holds a sync stream for this host (GET only)' },
        appliedRevision: { type: 'integer', description: 'the last revision its agent acknowledged (GET only)' },
        lag: { type: 'integer', description: 'revisions behind; 0 when it holds everything its span needs (GET only)' },
        lastError: {
          type: 'object',
          nullable: true,
          description: "the agent's last NACK, null when none or once it applied that revision or a later one (GET only)",
          properties: {
            revision: { type: 'integer', description: 'the revision it could not apply' },
            error: { type: 'string', description: "the agent's reason: at most 1024 characters (longer text is cut and says so), no control characters" },
            at: { type: 'string', format: 'date-time', description: 'when the controller received the NACK' },
          },
        },
        observed: {
          type: 'object',
          nullable: true,
          description: "what the host's agent last observed of its kernel (SyncRequest.observed), null when it never reported; replaced by each report (GET only)",
          properties: {
            at: { type: 'string', format: 'date-time', description: 'when the controller received the report' },
            promiscuousPorts: {
              type: 'array',
              description: "the host's local ports whose tap is promiscuous beyond what its bridge accounts for (a bridge port counts one): an analyzer port's is expected, any other is a finding (NIST VM-TM-R2)",
              items: {
                type: 'object',
                properties: {
                  portId: str,
                  role: { type: 'string', enum: ['vm', 'analyzer'] },
                  promiscuity: { type: 'integer', description: "the kernel's promiscuity count of the port's tap" },
                },
              },
            },
            hubSegments: {
              type: 'array',
              description: 'segments whose bridge on this host is in hub mode (MAC ageing 0: every frame flooded to every port)',
              items: { type: 'object', properties: { segmentId: str, vni: { type: 'integer' } } },
            },
            inventory: {
              type: 'object',
              nullable: true,
              description:
                "the host's network as its agent last collected it (every OVERLAY_INVENTORY_INTERVAL_MS, default 5 minutes), beside the declared `inventory`: links, bonds and teams, NICs, LLDP neighbours, the devices carrying the VTEP (NIST VM-MP-R1..R3, VM-VN-R1). Null when the agent sent none (collection off, an older agent); within it, null means unknown (not read), never absent",
              properties: {
                links: {
                  type: 'array',
                  description: 'network devices (taps, veths and the agent’s own devices left out), by name; at most 256',
                  items: {
                    type: 'object',
                    properties: {
                      name: str,
                      kind: { type: 'string', enum: ['physical', 'bond', 'team', 'vlan', 'bridge', 'vxlan', 'loopback', 'dummy', 'other'] },
                      up: { type: 'boolean', description: 'operationally up (carrier)' },
                      master: { type: 'string', nullable: true, description: 'the bond, team or bridge it is enslaved to' },
                      team: {
                        type: 'object',
                        nullable: true,
                        description: 'bonds (`ip -d link`) and teams (teamd): null for a team whose teamd did not answer',
                        properties: {
                          mode: { type: 'string', description: 'active-backup, 802.3ad, balance-xor, ... (teamd runners: activebackup, lacp read as active-backup, 802.3ad)' },
                          miimon: { type: 'integer', description: 'MII monitoring interval in ms; 0 = off (a teamd ethtool link watch reads as 1)' },
                          arpInterval: { type: 'integer', description: 'ARP monitoring interval in ms; 0 = off' },
                          arpValidate: { type: 'string', nullable: true, description: 'none, active, backup, all, ...; null when not said' },
                          members: { type: 'array', items: { type: 'object', properties: { name: str, up: { type: 'boolean' }, active: { type: 'boolean', description: 'carries traffic (the active slave of active-backup)' } } } },
                        },
                      },
                      nic: {
                        type: 'object',
                        nullable: true,
                        description: 'physical NICs: sysfs /sys/class/net/<if>/device',
                        properties: {
                          driver: { type: 'string', nullable: true },
                          pciAddress: { type: 'string', nullable: true, description: 'dddd:bb:dd.f' },
                          pciBus: { type: 'string', nullable: true, description: 'dddd:bb' },
                          numaNode: { type: 'integer', nullable: true },
                          ignoreRoutesWithLinkdown: { type: 'boolean', nullable: true, description: 'IPv4 routes over the NIC skipped while it has no carrier (net.ipv4.conf ignore_routes_with_linkdown, all or the NIC); routed redundancy needs it' },
                        },
                      },
                      lldp: {
                        type: 'object',
                        nullable: true,
                        description: 'the upstream switch port (lldpd); null when none was heard or the host runs no lldpd',
                        properties: {
                          chassisId: { type: 'string', nullable: true },
                          systemName: { type: 'string', nullable: true },
                          portId: { type: 'string', nullable: true },
                          portDescription: { type: 'string', nullable: true },
                          vlans: { type: 'array', items: { type: 'integer' }, description: 'VLAN ids the switch says the port carries' },
                        },
                      },
                      vlanId: { type: 'integer', nullable: true, description: 'VLAN devices: the 802.1Q id' },
                      parent: { type: 'string', nullable: true, description: 'VLAN devices: the lower device' },
                    },
                  },
                },
                vtepDevice: { type: 'string', nullable: true, description: 'the device holding the local VTEP address (lo or a dummy with routed redundancy, a bond, a NIC)' },
                vtepRoutes: {
                  type: 'array',
                  description: 'for up to 8 peer VTEPs of the span: the devices the route to it goes out of (several with multipath)',
                  items: { type: 'object', properties: { destination: str, devices: { type: 'array', items: str } } },
                },
              },
            },
          },
        },
      },
    },
  },
};
