import { ErrorCode } from '../errors';
import { int, json, nullableStr, orNull, record, ref, str, type ApiDescription } from '../http/openapi';

const reasons = ['store-empty', 'epoch-changed', 'revision-went-back', 'agent-epoch-unknown', 'agent-ahead'];

/** The routes of RecoveryController. */
export const recoveryApi: ApiDescription = {
  paths: {
    '/v1/admin/recovery': {
      get: {
        operationId: 'getRecovery',
        tags: ['recovery'],
        summary: "The store's recovery status: normal, or in recovery (why, since when, what was seen and found)",
        responses: {
          '200': {
            description: 'the status',
            ...json(
              record({
                state: { type: 'string', enum: ['normal', 'recovery'] },
                store: record({ epoch: nullableStr, revision: int }),
                recovery: orNull(ref('recoveryRecord')),
                agentEpochs: { type: 'array', items: str, description: 'epochs agents named in their Hello during the recovery (retired by an accept)' },
              }),
            ),
          },
        },
        errors: [],
      },
    },
    '/v1/admin/recovery/accept': {
      post: {
        operationId: 'acceptRecovery',
        tags: ['recovery'],
        summary: "Accept the store's state as it is: a new epoch, and every agent is sent a snapshot of it (what the store lost is removed from the hosts)",
        responses: { '200': { description: 'accepted', ...json(record({ epoch: str, revision: int, accepted: ref('recoveryRecord') })) } },
        errors: [ErrorCode.NotInRecovery],
      },
    },
  },
  schemas: {
    recoveryRecord: record({
      reason: { type: 'string', enum: reasons },
      detail: str,
      detectedAt: str,
      detectedBy: record({ replica: str, host: nullableStr }),
      previous: record({ epoch: str, revision: int }),
      found: record({ epoch: nullableStr, revision: int }),
    }),
  },
};
