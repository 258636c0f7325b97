// Original file: proto/overlay/v1/sync.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { SyncRequest as _overlay_v1_SyncRequest, SyncRequest__Output as _overlay_v1_SyncRequest__Output } from '../../overlay/v1/SyncRequest';
import type { SyncResponse as _overlay_v1_SyncResponse, SyncResponse__Output as _overlay_v1_SyncResponse__Output } from '../../overlay/v1/SyncResponse';

/**
 * SyncService distributes to each hypervisor host its span of the desired overlay state: the
 * segments its ports are on, and every bound port of those segments (its own ports, and the
 * remote MAC -> VTEP entries). Versioned, acknowledged, incremental and resumable.
 */
export interface SyncServiceClient extends grpc.Client {
  /**
   * Sync is one long-lived bidirectional stream per host. The agent sends Hello first; the
   * controller answers with a snapshot (chunks, then SnapshotEnd) or, when it can, only the
   * deltas since the agent's applied revision; then a Delta for every revision that changes
   * the host's span. The agent answers each snapshot and delta with Ack or Nack.
   */
  Sync(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_overlay_v1_SyncRequest, _overlay_v1_SyncResponse__Output>;
  Sync(options?: grpc.CallOptions): grpc.ClientDuplexStream<_overlay_v1_SyncRequest, _overlay_v1_SyncResponse__Output>;
  /**
   * Sync is one long-lived bidirectional stream per host. The agent sends Hello first; the
   * controller answers with a snapshot (chunks, then SnapshotEnd) or, when it can, only the
   * deltas since the agent's applied revision; then a Delta for every revision that changes
   * the host's span. The agent answers each snapshot and delta with Ack or Nack.
   */
  sync(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_overlay_v1_SyncRequest, _overlay_v1_SyncResponse__Output>;
  sync(options?: grpc.CallOptions): grpc.ClientDuplexStream<_overlay_v1_SyncRequest, _overlay_v1_SyncResponse__Output>;
  
}

/**
 * SyncService distributes to each hypervisor host its span of the desired overlay state: the
 * segments its ports are on, and every bound port of those segments (its own ports, and the
 * remote MAC -> VTEP entries). Versioned, acknowledged, incremental and resumable.
 */
export interface SyncServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Sync is one long-lived bidirectional stream per host. The agent sends Hello first; the
   * controller answers with a snapshot (chunks, then SnapshotEnd) or, when it can, only the
   * deltas since the agent's applied revision; then a Delta for every revision that changes
   * the host's span. The agent answers each snapshot and delta with Ack or Nack.
   */
  Sync: grpc.handleBidiStreamingCall<_overlay_v1_SyncRequest__Output, _overlay_v1_SyncResponse>;
  
}

export interface SyncServiceDefinition extends grpc.ServiceDefinition {
  Sync: MethodDefinition<_overlay_v1_SyncRequest, _overlay_v1_SyncResponse, _overlay_v1_SyncRequest__Output, _overlay_v1_SyncResponse__Output>
}
