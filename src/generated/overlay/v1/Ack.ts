// Original file: proto/overlay/v1/sync.proto

import type { PortFailure as _overlay_v1_PortFailure, PortFailure__Output as _overlay_v1_PortFailure__Output } from '../../overlay/v1/PortFailure';
import type { Long } from '@grpc/proto-loader';

/**
 * Ack reports that the agent applied every change up to and including revision, but for the
 * ports in failed_ports: those it could not program (their tap cannot be attached, gated or set
 * up, or does not exist), which it keeps closed and retries with backoff. A failure that
 * concerns no port in particular is a Nack instead.
 */
export interface Ack {
  /**
   * revision is the revision applied.
   */
  'revision'?: (number | string | Long);
  /**
   * failed_ports are the host's local ports (bound or prepared here) not in place at revision,
   * each once, at most 4096; empty when every port is. Each Ack says them all: a port absent from
   * the next Ack is in place. An older agent sends none. The controller ends the stream with
   * INVALID_ARGUMENT for more than 4096 entries, a port id that is empty or longer than 64
   * characters or named twice, or a reason longer than 1024 characters; entries naming a port
   * not local to the host in its view are ignored.
   */
  'failedPorts'?: (_overlay_v1_PortFailure)[];
}

/**
 * Ack reports that the agent applied every change up to and including revision, but for the
 * ports in failed_ports: those it could not program (their tap cannot be attached, gated or set
 * up, or does not exist), which it keeps closed and retries with backoff. A failure that
 * concerns no port in particular is a Nack instead.
 */
export interface Ack__Output {
  /**
   * revision is the revision applied.
   */
  'revision': (number);
  /**
   * failed_ports are the host's local ports (bound or prepared here) not in place at revision,
   * each once, at most 4096; empty when every port is. Each Ack says them all: a port absent from
   * the next Ack is in place. An older agent sends none. The controller ends the stream with
   * INVALID_ARGUMENT for more than 4096 entries, a port id that is empty or longer than 64
   * characters or named twice, or a reason longer than 1024 characters; entries naming a port
   * not local to the host in its view are ignored.
   */
  'failedPorts': (_overlay_v1_PortFailure__Output)[];
}
