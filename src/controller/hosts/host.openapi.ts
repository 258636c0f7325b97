import { ErrorCode } from '../errors';
import { bool, crudPaths, idParam, int, json, nullableStr, orNull, record, ref, str, strings, type ApiDescription } from '../http/openapi';
import { PAGE_QUERY } from '../store/page';
import { createHostSchema, updateHostSchema } from './host.schemas';

const paths = crudPaths({
  kind: 'host',
  plural: 'hosts',
  create: createHostSchema,
  listQuery: PAGE_QUERY,
  errors: {
    create: [ErrorCode.HostNameTaken, ErrorCode.VtepIpTaken, ErrorCode.InvalidValue],
    get: [ErrorCode.HostNotFound],
    delete: [ErrorCode.HostNotFound, ErrorCode.HostHasPorts, ErrorCode.HostHasMirrorSessions, ErrorCode.HostHasMigrations],
  },
});
// Reads add the agent's status.
paths['/v1/hosts'].get!.responses = { '200': { description: 'a page', ...json(record({ items: { type: 'array', items: ref('hostWithStatus') }, nextCursor: nullableStr })) } };
paths['/v1/hosts/{id}'].get!.responses = { '200': { description: 'the host and its agent', ...json(ref('hostWithStatus')) } };
paths['/v1/hosts/{id}'].patch = {
  operationId: 'updateHost',
  tags: ['hosts'],
  summary: 'Change a host',
  parameters: [idParam],
  body: updateHostSchema,
  responses: { '200': { description: 'host', ...json(ref('host')) } },
  errors: [ErrorCode.HostNotFound, ErrorCode.HostNameTaken, ErrorCode.VtepIpTaken, ErrorCode.InvalidValue],
};

const dateTime = (description: string) => ({ type: 'string', format: 'date-time', description });

/** The declared inventory as stored: every field present, null when not given. */
const inventory = record(
  {
    uplinks: {
      type: 'array',
      items: record({
        name: { type: 'string', description: 'pNIC name on the host' },
        driver: nullableStr,
        pciAddress: nullableStr,
        switch: { ...nullableStr, description: 'upstream physical switch' },
        switchPort: nullableStr,
        team: { ...nullableStr, description: 'NIC team (bond) name' },
        mode: orNull({ type: 'string', enum: ['active', 'standby'] }),
        failureDetection: orNull({ type: 'string', enum: ['link-state', 'beacon'] }),
      }),
    },
    trunkedVlans: { type: 'array', items: int, description: 'sorted, each once' },
  },
  { description: 'what the operator declared of its network (POST and PATCH `inventory`)' },
);

/** What the host's agent observed (host-observation.repository.ts); null within it means unknown, never absent. */
const observed = record(
  {
    at: dateTime('when the controller received the report'),
    promiscuousPorts: {
      type: 'array',
      description: "the host's local ports whose tap is promiscuous beyond what its bridge accounts for (a bridge port counts one): an analyzer port's is expected, any other is a finding (NIST VM-TM-R2)",
      items: record({
        portId: str,
        role: { type: 'string', enum: ['vm', 'analyzer'] },
        promiscuity: { type: 'integer', description: "the kernel's promiscuity count of the port's tap" },
      }),
    },
    hubSegments: {
      type: 'array',
      description: 'segments whose bridge on this host is in hub mode (MAC ageing 0: every frame flooded to every port)',
      items: record({ segmentId: str, vni: int }),
    },
    inventory: {
      ...orNull(
        record({
          links: {
            type: 'array',
            description: 'network devices (taps, veths and the agent’s own devices left out), by name; at most 256',
            items: record({
              name: str,
              kind: { type: 'string', enum: ['physical', 'bond', 'team', 'vlan', 'bridge', 'vxlan', 'loopback', 'dummy', 'other'] },
              up: { type: 'boolean', description: 'operationally up (carrier)' },
              master: { ...nullableStr, description: 'the bond, team or bridge it is enslaved to' },
              team: {
                ...orNull(
                  record({
                    mode: { type: 'string', description: 'active-backup, 802.3ad, balance-xor, ... (teamd runners: activebackup, lacp read as active-backup, 802.3ad)' },
                    miimon: { type: 'integer', description: 'MII monitoring interval in ms; 0 = off (a teamd ethtool link watch reads as 1)' },
                    arpInterval: { type: 'integer', description: 'ARP monitoring interval in ms; 0 = off' },
                    arpValidate: { ...nullableStr, description: 'none, active, backup, all, ...; null when not said' },
                    members: { type: 'array', items: record({ name: str, up: bool, active: { type: 'boolean', description: 'carries traffic (the active slave of active-backup)' } }) },
                  }),
                ),
                description: 'bonds (`ip -d link`) and teams (teamd): null for a team whose teamd did not answer',
              },
              nic: {
                ...orNull(
                  record({
                    driver: nullableStr,
                    pciAddress: { ...nullableStr, description: 'dddd:bb:dd.f' },
                    pciBus: { ...nullableStr, description: 'dddd:bb' },
                    numaNode: orNull(int),
                    ignoreRoutesWithLinkdown: { ...orNull(bool), description: 'IPv4 routes over the NIC skipped while it has no carrier (net.ipv4.conf ignore_routes_with_linkdown, all or the NIC); routed redundancy needs it' },
                  }),
                ),
                description: 'physical NICs: sysfs /sys/class/net/<if>/device',
              },
              lldp: {
                ...orNull(
                  record({
                    chassisId: nullableStr,
                    systemName: nullableStr,
                    portId: nullableStr,
                    portDescription: nullableStr,
                    vlans: { type: 'array', items: int, description: 'VLAN ids the switch says the port carries' },
                  }),
                ),
                description: 'the upstream switch port (lldpd); null when none was heard or the host runs no lldpd',
              },
              vlanId: { ...orNull(int), description: 'VLAN devices: the 802.1Q id' },
              parent: { ...nullableStr, description: 'VLAN devices: the lower device' },
            }),
          },
          vtepDevice: { ...nullableStr, description: 'the device holding the local VTEP address (lo or a dummy with routed redundancy, a bond, a NIC)' },
          vtepRoutes: {
            type: 'array',
            description: 'for up to 8 peer VTEPs of the span: the devices the route to it goes out of (several with multipath)',
            items: record({ destination: str, devices: strings }),
          },
        }),
      ),
      description:
        "the host's network as its agent last collected it (every OVERLAY_INVENTORY_INTERVAL_MS, default 5 minutes), beside the declared `inventory`: links, bonds and teams, NICs, LLDP neighbours, the devices carrying the VTEP (NIST VM-MP-R1..R3, VM-VN-R1). Null when the agent sent none (collection off, an older agent); within it, null means unknown (not read), never absent",
    },
  },
);

/** The routes of HostController. */
export const hostApi: ApiDescription = {
  paths,
  schemas: {
    host: record(
      { id: str, name: str, vtepIp: str, inventory, createdAt: str, updatedAt: str },
      { example: { id: '01a21ab0-2b10-7d4e-8f00-1a2b3c4d5e6f', name: 'hv1', vtepIp: '192.0.2.11', inventory: { uplinks: [], trunkedVlans: [] }, createdAt: '2026-12-05T01:25:22.462Z', updatedAt: '2026-12-05T01:25:22.462Z' } },
    ),
    hostWithStatus: {
      description: 'A host as reads show it: with its agent’s status.',
      allOf: [
        ref('host'),
        record({
          connected: { type: 'boolean', description: 'an agent holds a sync stream for this host' },
          appliedRevision: { type: 'integer', description: 'the last revision its agent acknowledged' },
          lag: { type: 'integer', description: 'revisions behind; 0 when it holds everything its span needs' },
          lastError: {
            ...orNull(
              record({
                revision: { type: 'integer', description: 'the revision it could not apply' },
                error: { type: 'string', description: "the agent's reason: at most 1024 characters (longer text is cut and says so), no control characters" },
                at: dateTime('when the controller received the NACK'),
              }),
            ),
            description: "the agent's last NACK, null when none or once it applied that revision or a later one",
          },
          observed: { ...orNull(observed), description: "what the host's agent last observed of its kernel (SyncRequest.observed), null when it never reported; replaced by each report" },
        }),
      ],
    },
  },
};
