import { ErrorCode } from '../errors';
import { json, nullableStr, record, ref, str, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { FINDING_LIST_QUERY } from './audit.schemas';
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
          'Computed on each call from the desired state (this replica caught up with Redis), the hosts\' last observations and their agents\' status, and recorded in the findings\' history. ' +
          'A recommendation is not-applicable when nothing it is about exists, fails on any high or medium finding, is unknown when evidence is missing (a finding of severity unknown, e.g. an agent that never reported), and passes otherwise (low and info findings allowed). ' +
          'A finding\'s `id` stays the same while it stays true (its recommendation, subject and kind); `since` is when the history first saw it.',
        responses: { '200': { description: 'the audit', ...json({ $ref: '#/components/schemas/audit' }) } },
        // This replica's view catches up with Redis first.
        errors: [ErrorCode.Timeout],
      },
    },
    '/v1/audit/findings': {
      get: {
        operationId: 'listAuditFindings',
        tags: ['audit'],
        summary: "The findings' history: each finding with the time it opened and closed, newest opened first",
        description:
          'The audit is evaluated every OVERLAY_AUDIT_INTERVAL_MS (and on each GET /v1/audit): a finding opens at the first evaluation that finds it and closes at the first that no longer does. ' +
          'Closed findings are kept as long as the audit trail keeps events (OVERLAY_EVENTS_RETENTION_SECONDS), at most 100,000. A finding that reopens is a new record with the same id. ' +
          '`evaluatedAt` is the last evaluation\'s time.',
        parameters: openApiParameters(FINDING_LIST_QUERY),
        responses: { '200': { description: 'a page of findings', ...json(ref('findingPage')) } },
        errors: [],
      },
    },
  },
  schemas: {
    findingPage: record({
      evaluatedAt: { ...nullableStr, description: 'when the audit was last evaluated into the history; null before the first evaluation' },
      items: {
        type: 'array',
        items: record({
          id: str,
          recommendation: { type: 'string', example: 'VM-VN-R1' },
          severity: { type: 'string', enum: [...SEVERITIES] },
          subject: { type: 'object', description: 'as in GET /v1/audit' },
          evidence: { type: 'string', description: 'as last seen' },
          openedAt: str,
          closedAt: { ...nullableStr, description: 'null while open' },
        }),
      },
      nextCursor: { ...nullableStr, description: 'pass as ?cursor= for the next page; null on the last one' },
    }),
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
                  required: ['id', 'severity', 'subject', 'evidence', 'since'],
                  properties: {
                    id: { type: 'string', pattern: '^[0-9a-f]{16}(-[0-9]+)?$', description: "the finding's identity: the same while it stays true" },
                    severity: { type: 'string', enum: [...SEVERITIES] },
                    subject: {
                      type: 'object',
                      description: 'what the finding is about; only the fields that apply',
                      properties: { hostId: str, segmentId: str, portId: str, sessionId: str, securityGroupId: str, tenantId: str, link: { type: 'string', description: 'a device on hostId (a NIC, a team)' } },
                    },
                    evidence: { type: 'string', description: 'what was seen, with values and where they came from (observed or declared)' },
                    since: { ...nullableStr, description: "when the finding opened (the findings' history); null only when a newer evaluation recorded meanwhile no longer finds it" },
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
