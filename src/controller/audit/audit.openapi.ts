import { ErrorCode } from '../errors';
import { json, nullableStr, str, type ApiDescription } from '../http/openapi';
import { SEVERITIES } from './audit.types';

/** The route of AuditController. */
export const auditApi: ApiDescription = {
  paths: {
    '/v1/audit': {
      get: {
        operationId: 'getAudit',
        tags: ['audit'],
        summary: 'The NIST SP 800-125B audit of the live configuration: the 13 recommendations, each with a status and its findings',
        description:
          'Computed on each call from the desired state (this replica caught up with Redis), the hosts\' last observations and their agents\' status. ' +
          'A recommendation is not-applicable when nothing it is about exists, fails on any high or medium finding, is unknown when evidence is missing (a finding of severity unknown, e.g. an agent that never reported), and passes otherwise (low and info findings allowed). ' +
          '`since` is null in this version (findings have no history yet).',
        responses: { '200': { description: 'the audit', ...json({ $ref: '#/components/schemas/audit' }) } },
        // This replica's view catches up with Redis first.
        errors: [ErrorCode.Timeout],
      },
    },
  },
  schemas: {
    audit: {
      type: 'object',
      required: ['generatedAt', 'revision', 'recommendations'],
      properties: {
        generatedAt: str,
        revision: { type: 'integer', description: 'the desired-state revision audited' },
        recommendations: {
          type: 'array',
          description: 'VM-VN-R1..R3, VM-MP-R1..R3, VM-FW-R1..R4, VM-TM-R1..R3, in this order',
          items: {
            type: 'object',
            required: ['id', 'title', 'status', 'findings'],
            properties: {
              id: { type: 'string', example: 'VM-MP-R2' },
              title: str,
              status: { type: 'string', enum: ['pass', 'fail', 'not-applicable', 'unknown'] },
              findings: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['severity', 'subject', 'evidence', 'since'],
                  properties: {
                    severity: { type: 'string', enum: [...SEVERITIES] },
                    subject: {
                      type: 'object',
                      description: 'what the finding is about; only the fields that apply',
                      properties: { hostId: str, segmentId: str, portId: str, sessionId: str, securityGroupId: str, tenantId: str, link: { type: 'string', description: 'a device on hostId (a NIC, a team)' } },
                    },
                    evidence: { type: 'string', description: 'what was seen, with values and where they came from (observed or declared)' },
                    since: { ...nullableStr, description: 'when the finding opened; null in this version' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};
