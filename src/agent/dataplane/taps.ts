import { tapNameProblem } from '../../common/tap-name';
import { tapName } from './names';

/**
 * Which link is a local port's tap. The hypervisor creates taps and names them as it likes
 * (libvirt: `vnet<n>`), so the agent finds each port's tap, in this order:
 *  1. `tapName` on the port: that link, and no other;
 *  2. a link named from the port id (`tapName(portId)`, names.ts);
 *  3. the one link whose MAC is the port's MAC with the first octet set to 0xfe (0xfa when the
 *     port's MAC already starts with 0xfe): libvirt gives the host side of a tap that MAC.
 * Only a link that can be a VM's tap is taken: a tap (kind `tun`) or a veth, not one of the
 * agent's own devices; by MAC, also only one in no bridge but the agent's and carrying no IP
 * address (an uplink or a container's veth may have any MAC).
 *
 * Fail closed: a link two ports claim on the same rule (two ports naming one tap, two links with
 * one port's MAC...) is nobody's: those ports get a problem, no tap, and stay closed. A link
 * claimed on a stronger rule (an explicit name beats the port-id name, which beats a MAC) is the
 * stronger claimant's; the weaker gets a problem. When nothing is found yet, the port's tap is
 * the name it gives, or the port-id name (`pending`): the dataplane reports it missing, and the
 * reconcile loop picks the tap up when it appears. Pure and independent of the order of its
 * inputs.
 */

/** A local port whose tap is looked for: its id, MAC (lower case) and the tap name it gives ('' = none). */
export interface TapClaim {
  portId: string;
  mac: string;
  tapName: string;
}

/** A link of the host as the resolver sees it (the dataplane that read it has checked the values). */
export interface HostLink {
  name: string;
  /** Lower case, colon separated; '' when it has none. */
  mac: string;
  /** The kernel's kind: `tun` (a tap), `veth`, `bridge`, `vxlan`, ...; '' for one without (a physical NIC). */
  kind: string;
  /** The device it is enslaved to; '' none. */
  master: string;
  /** Whether `master` is one of the agent's overlay bridges. */
  masterIsOverlay: boolean;
  /** Whether it is one of the agent's own devices. */
  owned: boolean;
  /** Whether it carries an IP address (IPv6 link-local aside); undefined = not read. */
  addressed?: boolean;
}

export type TapRule = 'tapName' | 'port id' | 'MAC';

/** A port's tap: found by a rule, or `pending` (not there yet: the name it will be known by); or why it has none. */
export type TapChoice = { tap: string; by: TapRule | 'pending' } | { problem: string };

/** Kinds of link that can be a VM's tap. */
const TAP_KINDS = new Set(['tun', 'veth']);
const RANK: Record<TapRule, number> = { tapName: 0, 'port id': 1, MAC: 2 };

/** The MAC libvirt gives the host side of a tap for a guest MAC (virNetDevTapCreateInBridgePort). */
export function hostSideMac(guestMac: string): string {
  const [first, ...rest] = guestMac.toLowerCase().split(':');
  return [first === 'fe' ? 'fa' : 'fe', ...rest].join(':');
}

/** Why `link` cannot be a tap; undefined when it can. */
function unfit(link: HostLink): string | undefined {
  if (link.owned) {
    return `link ${link.name} is one of the agent's own devices`;
  }
  if (!TAP_KINDS.has(link.kind)) {
    return `link ${link.name} is ${link.kind ? `a ${link.kind} device` : 'a device without a kind (a NIC)'}, not a tap or veth`;
  }
  return undefined;
}

/**
 * Each claim's tap (by port id). `links` undefined: the host's links are unknown (a dataplane
 * that does not read them): each port's tap is the name it gives or its port-id name.
 */
export function resolveTaps(claims: readonly TapClaim[], links: ReadonlyMap<string, HostLink> | undefined): Map<string, TapChoice> {
  const out = new Map<string, TapChoice>();
  /** Link name -> the claims on it. */
  const claimsOn = new Map<string, { portId: string; rule: TapRule | 'pending'; rank: number }[]>();
  /** A claim on `name` on the strength of `rule` (a pending one: of the rule it would be found by). */
  const claim = (name: string, portId: string, strength: TapRule, present: boolean): void => {
    claimsOn.set(name, [...(claimsOn.get(name) ?? []), { portId, rule: present ? strength : 'pending', rank: RANK[strength] }]);
  };
  const byMac = new Map<string, HostLink[]>();
  for (const link of links?.values() ?? []) {
    const fitForMac = link.mac && !unfit(link) && (link.master === '' || link.masterIsOverlay) && link.addressed !== true;
    if (fitForMac) {
      byMac.set(link.mac, [...(byMac.get(link.mac) ?? []), link]);
    }
  }
  for (const c of claims) {
    if (c.tapName) {
      const problem = tapNameProblem(c.tapName);
      const link = links?.get(c.tapName);
      const misfit = link && unfit(link);
      if (problem || misfit) {
        out.set(c.portId, { problem: problem ? `tapName ${JSON.stringify(c.tapName)} ${problem}` : `tapName ${c.tapName}: ${misfit}` });
      } else {
        claim(c.tapName, c.portId, 'tapName', link !== undefined);
      }
      continue;
    }
    const conventional = tapName(c.portId);
    const named = links?.get(conventional);
    if (!links || named) {
      const misfit = named && unfit(named);
      if (misfit) {
        out.set(c.portId, { problem: misfit });
      } else {
        claim(conventional, c.portId, 'port id', named !== undefined);
      }
      continue;
    }
    const mac = hostSideMac(c.mac);
    const found = (byMac.get(mac) ?? []).map((l) => l.name).sort();
    if (found.length > 1) {
      out.set(c.portId, { problem: `links ${found.join(', ')} all carry MAC ${mac}: none is taken` });
    } else if (found.length === 1) {
      claim(found[0], c.portId, 'MAC', true);
    } else {
      claim(conventional, c.portId, 'port id', false);
    }
  }
  for (const [name, on] of claimsOn) {
    const best = Math.min(...on.map((c) => c.rank));
    const winners = on.filter((c) => c.rank === best);
    if (winners.length > 1) {
      const ids = on.map((c) => c.portId).sort();
      for (const c of on) {
        out.set(c.portId, { problem: `link ${name} is claimed by ports ${ids.join(', ')}: none is given it` });
      }
      continue;
    }
    const [winner] = winners;
    out.set(winner.portId, { tap: name, by: winner.rule });
    for (const c of on.filter((x) => x !== winner)) {
      out.set(c.portId, { problem: `link ${name} is the tap of port ${winner.portId} (by ${winner.rule})` });
    }
  }
  return out;
}
