import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _overlay_v1_Ack, Ack__Output as _overlay_v1_Ack__Output } from './overlay/v1/Ack';
import type { AddressPair as _overlay_v1_AddressPair, AddressPair__Output as _overlay_v1_AddressPair__Output } from './overlay/v1/AddressPair';
import type { ConnectionBatch as _overlay_v1_ConnectionBatch, ConnectionBatch__Output as _overlay_v1_ConnectionBatch__Output } from './overlay/v1/ConnectionBatch';
import type { ConnectionsInstalled as _overlay_v1_ConnectionsInstalled, ConnectionsInstalled__Output as _overlay_v1_ConnectionsInstalled__Output } from './overlay/v1/ConnectionsInstalled';
import type { Delta as _overlay_v1_Delta, Delta__Output as _overlay_v1_Delta__Output } from './overlay/v1/Delta';
import type { FirewallRule as _overlay_v1_FirewallRule, FirewallRule__Output as _overlay_v1_FirewallRule__Output } from './overlay/v1/FirewallRule';
import type { Hello as _overlay_v1_Hello, Hello__Output as _overlay_v1_Hello__Output } from './overlay/v1/Hello';
import type { Hold as _overlay_v1_Hold, Hold__Output as _overlay_v1_Hold__Output } from './overlay/v1/Hold';
import type { HostInventory as _overlay_v1_HostInventory, HostInventory__Output as _overlay_v1_HostInventory__Output } from './overlay/v1/HostInventory';
import type { HostObservation as _overlay_v1_HostObservation, HostObservation__Output as _overlay_v1_HostObservation__Output } from './overlay/v1/HostObservation';
import type { IpSetMember as _overlay_v1_IpSetMember, IpSetMember__Output as _overlay_v1_IpSetMember__Output } from './overlay/v1/IpSetMember';
import type { MirrorCounters as _overlay_v1_MirrorCounters, MirrorCounters__Output as _overlay_v1_MirrorCounters__Output } from './overlay/v1/MirrorCounters';
import type { MirrorSink as _overlay_v1_MirrorSink, MirrorSink__Output as _overlay_v1_MirrorSink__Output } from './overlay/v1/MirrorSink';
import type { MirrorTap as _overlay_v1_MirrorTap, MirrorTap__Output as _overlay_v1_MirrorTap__Output } from './overlay/v1/MirrorTap';
import type { MirrorTapCounters as _overlay_v1_MirrorTapCounters, MirrorTapCounters__Output as _overlay_v1_MirrorTapCounters__Output } from './overlay/v1/MirrorTapCounters';
import type { Nack as _overlay_v1_Nack, Nack__Output as _overlay_v1_Nack__Output } from './overlay/v1/Nack';
import type { ObservedBridge as _overlay_v1_ObservedBridge, ObservedBridge__Output as _overlay_v1_ObservedBridge__Output } from './overlay/v1/ObservedBridge';
import type { ObservedLink as _overlay_v1_ObservedLink, ObservedLink__Output as _overlay_v1_ObservedLink__Output } from './overlay/v1/ObservedLink';
import type { ObservedLldp as _overlay_v1_ObservedLldp, ObservedLldp__Output as _overlay_v1_ObservedLldp__Output } from './overlay/v1/ObservedLldp';
import type { ObservedNic as _overlay_v1_ObservedNic, ObservedNic__Output as _overlay_v1_ObservedNic__Output } from './overlay/v1/ObservedNic';
import type { ObservedTap as _overlay_v1_ObservedTap, ObservedTap__Output as _overlay_v1_ObservedTap__Output } from './overlay/v1/ObservedTap';
import type { ObservedTeam as _overlay_v1_ObservedTeam, ObservedTeam__Output as _overlay_v1_ObservedTeam__Output } from './overlay/v1/ObservedTeam';
import type { Port as _overlay_v1_Port, Port__Output as _overlay_v1_Port__Output } from './overlay/v1/Port';
import type { PortFailure as _overlay_v1_PortFailure, PortFailure__Output as _overlay_v1_PortFailure__Output } from './overlay/v1/PortFailure';
import type { PortPolicy as _overlay_v1_PortPolicy, PortPolicy__Output as _overlay_v1_PortPolicy__Output } from './overlay/v1/PortPolicy';
import type { Resource as _overlay_v1_Resource, Resource__Output as _overlay_v1_Resource__Output } from './overlay/v1/Resource';
import type { ResourceKey as _overlay_v1_ResourceKey, ResourceKey__Output as _overlay_v1_ResourceKey__Output } from './overlay/v1/ResourceKey';
import type { Segment as _overlay_v1_Segment, Segment__Output as _overlay_v1_Segment__Output } from './overlay/v1/Segment';
import type { SnapshotChunk as _overlay_v1_SnapshotChunk, SnapshotChunk__Output as _overlay_v1_SnapshotChunk__Output } from './overlay/v1/SnapshotChunk';
import type { SnapshotEnd as _overlay_v1_SnapshotEnd, SnapshotEnd__Output as _overlay_v1_SnapshotEnd__Output } from './overlay/v1/SnapshotEnd';
import type { SyncRequest as _overlay_v1_SyncRequest, SyncRequest__Output as _overlay_v1_SyncRequest__Output } from './overlay/v1/SyncRequest';
import type { SyncResponse as _overlay_v1_SyncResponse, SyncResponse__Output as _overlay_v1_SyncResponse__Output } from './overlay/v1/SyncResponse';
import type { SyncServiceClient as _overlay_v1_SyncServiceClient, SyncServiceDefinition as _overlay_v1_SyncServiceDefinition } from './overlay/v1/SyncService';
import type { TeamMember as _overlay_v1_TeamMember, TeamMember__Output as _overlay_v1_TeamMember__Output } from './overlay/v1/TeamMember';
import type { TrackedConnection as _overlay_v1_TrackedConnection, TrackedConnection__Output as _overlay_v1_TrackedConnection__Output } from './overlay/v1/TrackedConnection';
import type { VmArrived as _overlay_v1_VmArrived, VmArrived__Output as _overlay_v1_VmArrived__Output } from './overlay/v1/VmArrived';
import type { VtepRoute as _overlay_v1_VtepRoute, VtepRoute__Output as _overlay_v1_VtepRoute__Output } from './overlay/v1/VtepRoute';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  overlay: {
    v1: {
      Ack: MessageTypeDefinition<_overlay_v1_Ack, _overlay_v1_Ack__Output>
      AddressPair: MessageTypeDefinition<_overlay_v1_AddressPair, _overlay_v1_AddressPair__Output>
      ConnectionBatch: MessageTypeDefinition<_overlay_v1_ConnectionBatch, _overlay_v1_ConnectionBatch__Output>
      ConnectionsInstalled: MessageTypeDefinition<_overlay_v1_ConnectionsInstalled, _overlay_v1_ConnectionsInstalled__Output>
      Delta: MessageTypeDefinition<_overlay_v1_Delta, _overlay_v1_Delta__Output>
      FirewallRule: MessageTypeDefinition<_overlay_v1_FirewallRule, _overlay_v1_FirewallRule__Output>
      Hello: MessageTypeDefinition<_overlay_v1_Hello, _overlay_v1_Hello__Output>
      Hold: MessageTypeDefinition<_overlay_v1_Hold, _overlay_v1_Hold__Output>
      HostInventory: MessageTypeDefinition<_overlay_v1_HostInventory, _overlay_v1_HostInventory__Output>
      HostObservation: MessageTypeDefinition<_overlay_v1_HostObservation, _overlay_v1_HostObservation__Output>
      IpSetMember: MessageTypeDefinition<_overlay_v1_IpSetMember, _overlay_v1_IpSetMember__Output>
      MirrorCounters: MessageTypeDefinition<_overlay_v1_MirrorCounters, _overlay_v1_MirrorCounters__Output>
      MirrorSink: MessageTypeDefinition<_overlay_v1_MirrorSink, _overlay_v1_MirrorSink__Output>
      MirrorTap: MessageTypeDefinition<_overlay_v1_MirrorTap, _overlay_v1_MirrorTap__Output>
      MirrorTapCounters: MessageTypeDefinition<_overlay_v1_MirrorTapCounters, _overlay_v1_MirrorTapCounters__Output>
      Nack: MessageTypeDefinition<_overlay_v1_Nack, _overlay_v1_Nack__Output>
      ObservedBridge: MessageTypeDefinition<_overlay_v1_ObservedBridge, _overlay_v1_ObservedBridge__Output>
      ObservedLink: MessageTypeDefinition<_overlay_v1_ObservedLink, _overlay_v1_ObservedLink__Output>
      ObservedLldp: MessageTypeDefinition<_overlay_v1_ObservedLldp, _overlay_v1_ObservedLldp__Output>
      ObservedNic: MessageTypeDefinition<_overlay_v1_ObservedNic, _overlay_v1_ObservedNic__Output>
      ObservedTap: MessageTypeDefinition<_overlay_v1_ObservedTap, _overlay_v1_ObservedTap__Output>
      ObservedTeam: MessageTypeDefinition<_overlay_v1_ObservedTeam, _overlay_v1_ObservedTeam__Output>
      Port: MessageTypeDefinition<_overlay_v1_Port, _overlay_v1_Port__Output>
      PortFailure: MessageTypeDefinition<_overlay_v1_PortFailure, _overlay_v1_PortFailure__Output>
      PortPolicy: MessageTypeDefinition<_overlay_v1_PortPolicy, _overlay_v1_PortPolicy__Output>
      Resource: MessageTypeDefinition<_overlay_v1_Resource, _overlay_v1_Resource__Output>
      ResourceKey: MessageTypeDefinition<_overlay_v1_ResourceKey, _overlay_v1_ResourceKey__Output>
      ResourceKind: EnumTypeDefinition
      Segment: MessageTypeDefinition<_overlay_v1_Segment, _overlay_v1_Segment__Output>
      SnapshotChunk: MessageTypeDefinition<_overlay_v1_SnapshotChunk, _overlay_v1_SnapshotChunk__Output>
      SnapshotEnd: MessageTypeDefinition<_overlay_v1_SnapshotEnd, _overlay_v1_SnapshotEnd__Output>
      SyncRequest: MessageTypeDefinition<_overlay_v1_SyncRequest, _overlay_v1_SyncRequest__Output>
      SyncResponse: MessageTypeDefinition<_overlay_v1_SyncResponse, _overlay_v1_SyncResponse__Output>
      /**
       * SyncService distributes to each hypervisor host its span of the desired overlay state: the
       * segments its ports are on, and every bound port of those segments (its own ports, and the
       * remote MAC -> VTEP entries). Versioned, acknowledged, incremental and resumable.
       */
      SyncService: SubtypeConstructor<typeof grpc.Client, _overlay_v1_SyncServiceClient> & { service: _overlay_v1_SyncServiceDefinition }
      TeamMember: MessageTypeDefinition<_overlay_v1_TeamMember, _overlay_v1_TeamMember__Output>
      TrackedConnection: MessageTypeDefinition<_overlay_v1_TrackedConnection, _overlay_v1_TrackedConnection__Output>
      VmArrived: MessageTypeDefinition<_overlay_v1_VmArrived, _overlay_v1_VmArrived__Output>
      VtepRoute: MessageTypeDefinition<_overlay_v1_VtepRoute, _overlay_v1_VtepRoute__Output>
    }
  }
}

