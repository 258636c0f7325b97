import { FlatMessage } from '../proto-wire';
import type { SpanKind } from './span-kind';

/**
 * One address of a security group's IP set, of one family: what a host needs of a group its
 * policies name as a peer. It carries nothing but its id, `<groupId>/<family>/<cidr>`, so a
 * port joining or leaving a group costs each referencing host one small upsert or removal.
 */
export const memberKind: SpanKind<'member', 'members'> = {
  name: 'member',
  protoKind: 'RESOURCE_KIND_MEMBER',
  protoNumber: 4,
  collection: 'members',
  idOf: (m) => memberId(m.groupId ?? '', m.family ?? '', m.cidr ?? ''),
  encode: (m) =>
    new FlatMessage()
      .string(1, m.groupId ?? '')
      .string(2, m.family ?? '')
      .string(3, m.cidr ?? '')
      .finishAs(4), // Resource.member
};

/**
 * A member's address without its group: `<family>/<cidr>` (what a port contributes to each of its
 * groups). Joined, not concatenated: V8 makes a concatenation this long a two-part string and, once
 * it is a map's key, keeps the flat copy behind it too; the controller's index holds one per port.
 */
export const memberAddress = (family: string, cidr: string): string => [family, cidr].join('/');

/** A member's id from its group and `memberAddress`. */
export const memberIdOf = (groupId: string, address: string): string => `${groupId}/${address}`;

/** A member's id: `<groupId>/<family>/<cidr>`. */
export const memberId = (groupId: string, family: string, cidr: string): string => memberIdOf(groupId, memberAddress(family, cidr));

/** Parses a member id; group ids and families hold no '/', a prefix does. */
export function parseMemberId(id: string): { groupId: string; family: string; cidr: string } {
  const a = id.indexOf('/');
  const b = id.indexOf('/', a + 1);
  return { groupId: id.slice(0, a), family: id.slice(a + 1, b), cidr: id.slice(b + 1) };
}
