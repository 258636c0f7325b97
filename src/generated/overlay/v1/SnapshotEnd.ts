// Original file: proto/overlay/v1/sync.proto

import type { Long } from '@grpc/proto-loader';

/**
 * SnapshotEnd closes a snapshot. Only now may the agent replace its state with the staged
 * snapshot and remove what the snapshot did not mention.
 */
export interface SnapshotEnd {
  /**
   * revision is the snapshot's revision; the agent acks it once applied.
   */
  'revision'?: (number | string | Long);
  /**
   * epoch identifies the controller state the revision belongs to.
   */
  'epoch'?: (string);
  /**
   * resource_count is the number of resources in all chunks, so a lost chunk is detected.
   */
  'resourceCount'?: (number);
  /**
   * host_id is the id the controller knows the agent's host by: ports with this host_id are local.
   */
  'hostId'?: (string);
  /**
   * vtep_ip is the host's registered VTEP address: the agent's local tunnel end point.
   */
  'vtepIp'?: (string);
  /**
   * record names the change record of revision, `<revision>-<nonce>` (at most 64 characters),
   * unique to the write that made it; empty when the controller cannot name it. The agent keeps
   * it with the revision and says it in Hello.applied_record.
   */
  'record'?: (string);
}

/**
 * SnapshotEnd closes a snapshot. Only now may the agent replace its state with the staged
 * snapshot and remove what the snapshot did not mention.
 */
export interface SnapshotEnd__Output {
  /**
   * revision is the snapshot's revision; the agent acks it once applied.
   */
  'revision': (number);
  /**
   * epoch identifies the controller state the revision belongs to.
   */
  'epoch': (string);
  /**
   * resource_count is the number of resources in all chunks, so a lost chunk is detected.
   */
  'resourceCount': (number);
  /**
   * host_id is the id the controller knows the agent's host by: ports with this host_id are local.
   */
  'hostId': (string);
  /**
   * vtep_ip is the host's registered VTEP address: the agent's local tunnel end point.
   */
  'vtepIp': (string);
  /**
   * record names the change record of revision, `<revision>-<nonce>` (at most 64 characters),
   * unique to the write that made it; empty when the controller cannot name it. The agent keeps
   * it with the revision and says it in Hello.applied_record.
   */
  'record': (string);
}
