import * as protobuf from 'protobufjs';
import { FlatMessage, tag, WIRE_LEN, WIRE_VARINT } from '../proto-wire';
import type { FirewallRule } from '../../generated/overlay/v1/FirewallRule';
import type { PortPolicy } from '../../generated/overlay/v1/PortPolicy';
import type { SpanKind } from './span-kind';

/** A policy's own fields: what differs between ports whose groups are the same. */
export type PolicyHead = Pick<PortPolicy, 'portId' | 'portSecurity' | 'mac' | 'ips' | 'allowedAddressPairs'>;

/**
 * A policy's rules (its fields 6 and 7, tags included), with protobufjs' Writer, whose
 * fork/ldelim does the nesting. Every port with the same groups has the same rules: the
 * controller encodes them once per group set (firewall-index.ts) and each policy around them.
 */
export function encodePolicyRules(ingress: readonly FirewallRule[], egress: readonly FirewallRule[]): Uint8Array {
  const w = protobuf.Writer.create();
  const str = (field: number, value: string | undefined) => {
    if (value) {
      w.uint32(tag(field, WIRE_LEN)).string(value);
    }
  };
  for (const [field, rules] of [
    [6, ingress],
    [7, egress],
  ] as const) {
    for (const r of rules) {
      w.uint32(tag(field, WIRE_LEN)).fork();
      str(1, r.ethertype);
      str(2, r.protocol);
      if (r.portMin) {
        w.uint32(tag(3, WIRE_VARINT)).uint32(Number(r.portMin));
      }
      if (r.portMax) {
        w.uint32(tag(4, WIRE_VARINT)).uint32(Number(r.portMax));
      }
      if (r.icmpType) {
        w.uint32(tag(5, WIRE_VARINT)).int32(Number(r.icmpType));
      }
      if (r.icmpCode) {
        w.uint32(tag(6, WIRE_VARINT)).int32(Number(r.icmpCode));
      }
      str(7, r.remoteCidr);
      str(8, r.remoteGroupId);
      w.ldelim();
    }
  }
  return w.finish();
}

/** A policy's Resource message: its own fields, then its rules' bytes (encodePolicyRules). */
export function encodePolicy(head: PolicyHead, rules: Uint8Array): Uint8Array {
  const message = new FlatMessage()
    .string(1, head.portId ?? '')
    .varint(2, head.portSecurity ? 1 : 0)
    .string(3, head.mac ?? '')
    .strings(4, head.ips ?? []);
  for (const pair of head.allowedAddressPairs ?? []) {
    message.raw(new FlatMessage()
      .string(1, pair.ip ?? '')
      .string(2, pair.mac ?? '')
      .finishAs(5));
  }
  return message.raw(rules).finishAs(3); // Resource.policy
}

/**
 * The compiled firewall policy of one of the host's own ports (its id is the port's id):
 * port security, its addresses, and its ingress and egress rules.
 */
export const policyKind: SpanKind<'policy', 'policies'> = {
  name: 'policy',
  protoKind: 'RESOURCE_KIND_POLICY',
  protoNumber: 3,
  collection: 'policies',
  idOf: (policy) => policy.portId ?? '',
  encode: (p) => encodePolicy(p, encodePolicyRules(p.ingress ?? [], p.egress ?? [])),
};
