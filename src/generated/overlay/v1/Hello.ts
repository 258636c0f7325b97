// Original file: proto/overlay/v1/sync.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Hello identifies the agent and says what it already holds.
 */
export interface Hello {
  /**
   * host_name is the registered name of the agent's host. In secure mode it must equal the
   * name in the agent's client certificate.
   */
  'hostName'?: (string);
  /**
   * vtep_ip is the agent's local VTEP address; when set it must equal the host's registered VTEP.
   */
  'vtepIp'?: (string);
  /**
   * agent_version is the agent's software version, for logs.
   */
  'agentVersion'?: (string);
  /**
   * applied_revision is the last revision whose state the agent holds; 0 when it holds nothing.
   */
  'appliedRevision'?: (number | string | Long);
  /**
   * epoch is the controller epoch that applied_revision belongs to (from a SnapshotChunk);
   * revisions of another epoch mean nothing here and force a snapshot.
   */
  'epoch'?: (string);
}

/**
 * Hello identifies the agent and says what it already holds.
 */
export interface Hello__Output {
  /**
   * host_name is the registered name of the agent's host. In secure mode it must equal the
   * name in the agent's client certificate.
   */
  'hostName': (string);
  /**
   * vtep_ip is the agent's local VTEP address; when set it must equal the host's registered VTEP.
   */
  'vtepIp': (string);
  /**
   * agent_version is the agent's software version, for logs.
   */
  'agentVersion': (string);
  /**
   * applied_revision is the last revision whose state the agent holds; 0 when it holds nothing.
   */
  'appliedRevision': (number);
  /**
   * epoch is the controller epoch that applied_revision belongs to (from a SnapshotChunk);
   * revisions of another epoch mean nothing here and force a snapshot.
   */
  'epoch': (string);
}
