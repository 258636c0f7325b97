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
      },
    },
  },
};
