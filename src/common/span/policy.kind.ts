import * as protobuf from 'protobufjs';
import { tag, WIRE_LEN, WIRE_VARINT } from '../proto-wire';
import type { SpanKind } from './span-kind';

/**
 * The compiled firewall policy of one of the host's own ports (its id is the port's id):
 * port security, its addresses, and its ingress and egress rules.
 *
 * Encoded with protobufjs' Writer, whose fork/ldelim does the nesting, but without reflection,
 * which dominated snapshot storms.
 */
export const policyKind: SpanKind<'policy', 'policies'> = {
  name: 'policy',
  protoKind: 'RESOURCE_KIND_POLICY',
  protoNumber: 3,
  collection: 'policies',
  idOf: (policy) => policy.portId ?? '',
  encode: (p) => {
    const w = protobuf.Writer.create();
    const str = (field: number, value: string | undefined) => {
      if (value) {
        w.uint32(tag(field, WIRE_LEN)).string(value);
      }
    };
    w.uint32(tag(3, WIRE_LEN)).fork(); // Resource.policy
    str(1, p.portId);
    if (p.portSecurity) {
      w.uint32(tag(2, WIRE_VARINT)).bool(true);
    }
    str(3, p.mac);
    for (const ip of p.ips ?? []) {
      w.uint32(tag(4, WIRE_LEN)).string(ip);
    }
    for (const pair of p.allowedAddressPairs ?? []) {
      w.uint32(tag(5, WIRE_LEN)).fork();
      str(1, pair.ip);
      str(2, pair.mac);
      w.ldelim();
    }
    for (const [field, rules] of [
      [6, p.ingress ?? []],
      [7, p.egress ?? []],
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
    w.ldelim();
    return w.finish();
  },
};
