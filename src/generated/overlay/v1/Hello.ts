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
   * The controller resumes from it (a Delta of what changed since) only when it is of this
   * epoch and still covered by the change log; otherwise it sends a snapshot, and the host's
   * applied revision counts from the first Ack, not from this. A revision of this epoch past the
   * store's, or one of an epoch the store does not know (and no accepted recovery retired), shows
   * that the store lost data: the controller enters a store recovery and answers with Hold (only
   * for a host the store registers, or any when it registers none; another host is NOT_FOUND).
   */
  'appliedRevision'?: (number | string | Long);
  /**
   * epoch is the controller epoch that applied_revision belongs to (from a SnapshotChunk); at most
   * 64 characters of [A-Za-z0-9_-] (any other is taken as none). A retired epoch (an accepted
   * store recovery) forces a snapshot; an unknown one starts a store recovery (see
   * applied_revision).
   */
  'epoch'?: (string);
  /**
   * instance_id identifies one run of the agent process: random, made when the process starts,
   * the same on every stream of that run (reconnects included), never reused; 1-64 characters
   * of [A-Za-z0-9_-], or empty (any other value is refused with INVALID_ARGUMENT). It settles
   * two streams claiming one host: a Hello from an instance other than the one holding the
   * host's stream replaces that stream (the newer wins: typically the agent was restarted while
   * its old stream was half-open), and the replaced instance is remembered for as long as the
   * winner's claim lives (it is refreshed while the winner's stream lasts, on any replica). A
   * Hello from a remembered instance is refused with ALREADY_EXISTS and leaves the winner in
   * place; once the winner's stream ends or its claim lapses, that instance may connect again.
   * The same instance reconnecting replaces its own old stream. Empty (an older agent): the
   * Hello always replaces the host's stream, as before.
   */
  'instanceId'?: (string);
  /**
   * features are what the agent implements beyond the base protocol, so the controller relies on
   * them only where they are there. Known: "connection-handover" (it exports the tracked
   * connections of its ports migrating away, installs those handed to it, and answers
   * ConnectionsInstalled; see ConnectionBatch). Unknown names are ignored; at most 16 are read,
   * each at most 64 characters.
   */
  'features'?: (string)[];
  /**
   * applied_record is the record of applied_revision as the controller named it (the record of
   * the SnapshotEnd or Delta that brought the agent there); empty when none was named (an older
   * controller or agent). When set, the controller resumes only if the change log's record of
   * applied_revision is that one: after a failover that lost the record the agent applied and
   * made its revision again from another write, the agent gets a snapshot, not a delta on top of
   * the lost record.
   */
  'appliedRecord'?: (string);
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
   * The controller resumes from it (a Delta of what changed since) only when it is of this
   * epoch and still covered by the change log; otherwise it sends a snapshot, and the host's
   * applied revision counts from the first Ack, not from this. A revision of this epoch past the
   * store's, or one of an epoch the store does not know (and no accepted recovery retired), shows
   * that the store lost data: the controller enters a store recovery and answers with Hold (only
   * for a host the store registers, or any when it registers none; another host is NOT_FOUND).
   */
  'appliedRevision': (number);
  /**
   * epoch is the controller epoch that applied_revision belongs to (from a SnapshotChunk); at most
   * 64 characters of [A-Za-z0-9_-] (any other is taken as none). A retired epoch (an accepted
   * store recovery) forces a snapshot; an unknown one starts a store recovery (see
   * applied_revision).
   */
  'epoch': (string);
  /**
   * instance_id identifies one run of the agent process: random, made when the process starts,
   * the same on every stream of that run (reconnects included), never reused; 1-64 characters
   * of [A-Za-z0-9_-], or empty (any other value is refused with INVALID_ARGUMENT). It settles
   * two streams claiming one host: a Hello from an instance other than the one holding the
   * host's stream replaces that stream (the newer wins: typically the agent was restarted while
   * its old stream was half-open), and the replaced instance is remembered for as long as the
   * winner's claim lives (it is refreshed while the winner's stream lasts, on any replica). A
   * Hello from a remembered instance is refused with ALREADY_EXISTS and leaves the winner in
   * place; once the winner's stream ends or its claim lapses, that instance may connect again.
   * The same instance reconnecting replaces its own old stream. Empty (an older agent): the
   * Hello always replaces the host's stream, as before.
   */
  'instanceId': (string);
  /**
   * features are what the agent implements beyond the base protocol, so the controller relies on
   * them only where they are there. Known: "connection-handover" (it exports the tracked
   * connections of its ports migrating away, installs those handed to it, and answers
   * ConnectionsInstalled; see ConnectionBatch). Unknown names are ignored; at most 16 are read,
   * each at most 64 characters.
   */
  'features': (string)[];
  /**
   * applied_record is the record of applied_revision as the controller named it (the record of
   * the SnapshotEnd or Delta that brought the agent there); empty when none was named (an older
   * controller or agent). When set, the controller resumes only if the change log's record of
   * applied_revision is that one: after a failover that lost the record the agent applied and
   * made its revision again from another write, the agent gets a snapshot, not a delta on top of
   * the lost record.
   */
  'appliedRecord': (string);
}
