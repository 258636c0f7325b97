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
          },
        },
      },
    },
  },
};
