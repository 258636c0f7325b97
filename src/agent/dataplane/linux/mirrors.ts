import { createHash } from 'node:crypto';
import type { DataplanePlan, DataplaneState, ErspanDeviceState, MirrorFilterState } from '../dataplane';
import { mirrorErspanName, mirrorVxlanName } from '../names';
import { isUp, mayBeTap, OWNER_ALIAS, vxlanLocal, type IpLink, type KernelView } from './kernel-view';
import { DROP_ALL_PROGRAM, MATCH_ALL_PROGRAM, mirrorProgram, programIfindex } from './mirror-bpf';
import { gateFilterLine, GATES, TAP_GATE_BLOCK, type TcFilter } from './tc-gate';

/**
 * Mirror sessions on Linux, the links driver's part for them (pure: reads a KernelView, writes
 * batch lines).
 *
 * - A mirror filter is a classic-BPF cls_bpf filter (not direct-action; see mirror-bpf.ts) with
 *   one action, `mirred egress mirror dev <target> continue cookie <cookie>`: the cookie (16
 *   bytes, hex) is the filter's key in DataplaneState, a digest of the mirror tap, direction,
 *   tap, target and match (`mirrorCookie`). What a VM sends is copied on its tap's own clsact
 *   ingress (before the bridge and its firewall); what it receives, in the taps' shared egress
 *   block (TAP_GATE_BLOCK, after the gate let it through), behind an ifindex check. A tap with a
 *   mirror is bound to that block even without the firewall.
 * - Mirror filters take prefs MIRROR_PREF_MIN..MIRROR_PREF_MAX (the lowest one free where they
 *   go); the gate keeps pref 1, an analyzer's drop filter pref 1 of its own ingress, a sink's
 *   redirect MIRROR_PREF_MIN of its device's ingress. Only filters in that range with a 32-digit
 *   hex cookie are read as the agent's.
 * - A mirror device `mx<vni>` is a VXLAN device with our alias, in no bridge and on no gate
 *   block, without learning nor IPv6 addresses (nothing of the host's own travels to a
 *   collector): `remote <ip>` on the sources' side; none on the sink's side, whose clsact
 *   ingress redirects everything to the analyzer's tap or the uplink.
 * - An ERSPAN device `ms<id>` (type erspan, ip6erspan over IPv6) with our alias goes straight to
 *   a collector: `seq key <id>` (the GRE key is the ERSPAN session ID), `local <vtep> remote
 *   <collector>`, version 1 with index ERSPAN_V1_INDEX or version 2 with a direction and hardware
 *   id ERSPAN_HWID; up, in no bridge, on no gate block, without IPv6 addresses. A kernel without
 *   ERSPAN refuses the `link add`: the taps sending into it are reported with that error (see
 *   `erspanFailure`), their filters not put, and everything else goes on.
 * - An analyzer's tap: a clsact of its own (never the taps' block: copies must reach it), a
 *   direct-action drop of everything on its ingress (pref 1), up, in no bridge.
 */
export const MIRROR_PREF_MIN = 49_152;
export const MIRROR_PREF_MAX = 57_343;

/** An interface name the kernel takes (IFNAMSIZ 16 with its NUL), safe in a batch line. */
export const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const COOKIE_RE = /^[0-9a-f]{32}$/;
const MX_RE = /^mx([1-9][0-9]{0,7})$/;
const MS_RE = /^ms([1-9][0-9]{0,3})$/;
const ERSPAN_KINDS = ['erspan', 'ip6erspan'];
/**
 * ERSPAN v1's index field (20 bits, 1 or more: iproute2 refuses 0) names a source port and
 * direction; one device carries all of a session's taps on a host, so it names none of them.
 */
export const ERSPAN_V1_INDEX = 1;
/** ERSPAN v2's hardware id (6 bits) of the engine that made the copies: one per host, this one. */
export const ERSPAN_HWID = 0;

/** The cookie of a sink's redirect filter. */
export const sinkCookie = (vni: number, redirect: string): string => createHash('sha256').update(`sink/${vni}/${redirect}`).digest('hex').slice(0, 32);

/** The VNI of a mirror device of ours: named mx<vni>, a VXLAN device, with our alias. */
export function ownedMirrorVni(link: IpLink | undefined): number | undefined {
  const m = link ? MX_RE.exec(link.ifname) : null;
  return link && m && link.ifalias === OWNER_ALIAS && link.linkinfo?.info_kind === 'vxlan' ? Number(m[1]) : undefined;
}

/** The ERSPAN session ID of an ERSPAN device of ours: named ms<id>, of kind erspan or ip6erspan, with our alias. */
export function ownedErspanId(link: IpLink | undefined): number | undefined {
  const m = link ? MS_RE.exec(link.ifname) : null;
  const id = m ? Number(m[1]) : 0;
  return link && m && id <= 1023 && link.ifalias === OWNER_ALIAS && ERSPAN_KINDS.includes(link.linkinfo?.info_kind ?? '') ? id : undefined;
}

/** The GRE key as iproute2 prints it: a dotted quad (inet_ntop of the key's bytes). */
const greKey = (id: number): string => `0.0.${id >> 8}.${id & 255}`;

/** The batch line that creates ERSPAN device `d`. */
export function erspanAddLine(d: ErspanDeviceState): string {
  const kind = d.remote.includes(':') ? 'ip6erspan' : 'erspan';
  const version = d.version === 1 ? `erspan_ver 1 erspan ${ERSPAN_V1_INDEX}` : `erspan_ver 2 erspan_dir ${d.dir} erspan_hwid ${ERSPAN_HWID}`;
  return `link add name ${mirrorErspanName(d.erspanId)} type ${kind} seq key ${d.erspanId} local ${d.localVtep} remote ${d.remote} ${version}`;
}

/**
 * Why an ERSPAN device's line failed, for the taps that send into it: a kernel without ERSPAN
 * (GRE) support says so in its own words on the `link add` (an unknown kind, or not supported).
 */
export function erspanFailure(line: string, error: string): string {
  const add = /^link add name ms\d+ type (ip6)?erspan /.test(line);
  return add && /unknown device type|not supported|no such device|protocol not supported/i.test(error) ? `this kernel has no ERSPAN (ip ${line}: ${error})` : `ip refused "${line}": ${error}`;
}

const remoteOf = (link: IpLink): string => link.linkinfo?.info_data?.remote ?? link.linkinfo?.info_data?.remote6 ?? '';
const insnsText = (f: TcFilter): string => {
  const insns = f.options?.bytecode?.insns ?? [];
  return `${insns.length},${insns.map((x) => `${x.code} ${x.jt} ${x.jf} ${x.k}`).join(',')}`;
};

/** A filter of ours in the mirror range: its pref and mirred action. */
function mirrorAction(f: TcFilter): { pref: number; cookie: string; kind: string; target: string; packets: number; bytes: number } | undefined {
  const action = f.options?.actions?.[0];
  if (!f.options || f.kind !== 'bpf' || f.pref === undefined || f.pref < MIRROR_PREF_MIN || f.pref > MIRROR_PREF_MAX || action?.kind !== 'mirred' || !COOKIE_RE.test(action.cookie ?? '')) {
    return undefined;
  }
  return { pref: f.pref, cookie: action.cookie!, kind: action.mirred_action ?? '', target: action.to_dev ?? '', packets: action.stats?.packets ?? 0, bytes: action.stats?.bytes ?? 0 };
}

const holdsDrop = (filters: TcFilter[] | undefined): boolean => (filters ?? []).some((f) => f.pref === 1 && f.options?.['direct-action'] === true && insnsText(f) === DROP_ALL_PROGRAM);

/**
 * Reads the mirror part of `view` into `state`: the mirror devices (one not as put-mirror-device
 * leaves it, down or learning or in a bridge, is reported without its local VTEP, so the plan
 * puts it again), the mirror filters by cookie with their counters (a filter of the shared
 * block names the tap its ifindex check points at, '' for none: a tap created anew), and the
 * analyzer taps that are ready.
 */
export function observeMirrors(view: KernelView, state: DataplaneState): void {
  const byIndex = new Map([...view.links.values()].filter((l) => l.ifindex !== undefined).map((l) => [l.ifindex!, l.ifname]));
  for (const link of view.links.values()) {
    const vni = ownedMirrorVni(link);
    if (vni === undefined) {
      continue;
    }
    const info = link.linkinfo?.info_data;
    const healthy = info?.id === vni && info.learning === false && isUp(link) && !link.master;
    const redirect = (view.ingressFilters.get(link.ifname) ?? []).map(mirrorAction).find((a) => a?.kind === 'redirect' && a.pref === MIRROR_PREF_MIN);
    state.mirrorDevices.set(vni, { vni, localVtep: healthy ? (vxlanLocal(link) ?? '') : '', remote: remoteOf(link), dstport: info?.port ?? 0, redirect: redirect?.target ?? '' });
  }
  for (const link of view.links.values()) {
    const erspanId = ownedErspanId(link);
    if (erspanId === undefined) {
      continue;
    }
    const info = link.linkinfo?.info_data;
    const version = info?.erspan_ver ?? 0;
    const healthy = info?.okey === greKey(erspanId) && info.oseq === true && isUp(link) && !link.master;
    state.erspanDevices.set(erspanId, {
      erspanId,
      localVtep: healthy ? (info?.local ?? '') : '',
      remote: info?.remote ?? '',
      version,
      dir: version === 2 && (info?.erspan_dir === 'ingress' || info?.erspan_dir === 'egress') ? info.erspan_dir : '',
    });
  }
  const add = (f: TcFilter, direction: MirrorFilterState['direction'], dev: string) => {
    const a = mirrorAction(f);
    if (a && a.kind === 'mirror' && !state.mirrorFilters.has(a.cookie)) {
      state.mirrorFilters.set(a.cookie, { cookie: a.cookie, tapId: '', direction, dev, target: a.target, match: { ethertype: '', protocol: 0, remoteCidr: '' }, packets: a.packets, bytes: a.bytes });
    }
  };
  for (const [dev, filters] of view.ingressFilters) {
    if (mayBeTap(dev)) {
      filters.forEach((f) => add(f, 'egress', dev));
    }
  }
  for (const f of view.tapBlockFilters) {
    const ifindex = programIfindex(f.options?.bytecode?.insns);
    add(f, 'ingress', (ifindex !== undefined && byIndex.get(ifindex)) || '');
  }
  for (const [dev, filters] of view.ingressFilters) {
    const link = view.links.get(dev);
    if (mayBeTap(dev) && link && view.clsact.get(dev) === 0 && holdsDrop(filters) && isUp(link) && !link.master) {
      state.analyzers.set(dev, { tap: dev });
    }
  }
}

/** The mirror batches of a plan, run in this order after the links' batches, each with `-force`. */
export interface MirrorScript {
  /** `tc`: mirror filters deleted, analyzers' clsacts removed. */
  removals: string[];
  /** `ip`: mirror devices deleted, created, set up. */
  links: string[];
  /** `tc`: clsacts, analyzers' drops, sinks' redirects, mirror filters. */
  filters: string[];
  /** `ip`: analyzers' taps detached and set up, once they drop what they send. */
  ups: string[];
  /** Batch line -> the cookie of the filter it puts or deletes (to say which ones failed). */
  owners: Map<string, string>;
  /** `links` line -> the mirror device it creates or sets (a filter into a device that failed is not put). */
  deviceLines: Map<string, string>;
  /** Cookie -> the device its filter sends into, for the filters `filters` puts. */
  targets: Map<string, string>;
  /** Cookie -> why its filter is not put (its tap or target missing, a malformed match). */
  skipped: Map<string, string>;
}

/**
 * Pure: the mirror commands of `plan` on a kernel like `view`. `rebound` are the devices whose
 * clsact the links' tc batch (re)created, and the block it is bound to (their filters are gone);
 * `detached` the taps that batch took out of a bridge; `gateFilterPut` whether it put the taps'
 * gate filter. With `gated`, a taps' block created here gets its gate filter first.
 */
export function compileMirrors(plan: DataplanePlan, view: KernelView, opts: { gated: boolean; rebound: ReadonlyMap<string, number>; detached: ReadonlySet<string>; gateFilterPut: boolean }): MirrorScript {
  const script: MirrorScript = { removals: [], links: [], filters: [], ups: [], owners: new Map(), deviceLines: new Map(), targets: new Map(), skipped: new Map() };
  const clsactOf = (dev: string): number | undefined => (opts.rebound.has(dev) ? opts.rebound.get(dev) : view.clsact.get(dev));
  const listingOf = (dev: string): TcFilter[] => (opts.rebound.has(dev) ? [] : (view.ingressFilters.get(dev) ?? []));
  const blockListing = (): TcFilter[] => ([...view.clsact.values()].includes(TAP_GATE_BLOCK) ? view.tapBlockFilters : []);
  const find = (filters: TcFilter[], cookie: string) => filters.find((f) => mirrorAction(f)?.cookie === cookie);
  const putAnalyzers = new Set(plan.flatMap((s) => (s.op === 'put-analyzer' ? [s.analyzer.tap] : [])));
  const putPorts = new Set(plan.flatMap((s) => (s.op === 'put-port' ? [s.port.tap] : [])));
  /** Devices whose clsact this script replaces or adds: they start without filters. */
  const fresh = new Set<string>();
  let gateFilterPut = opts.gateFilterPut;

  // 1. Removals.
  for (const step of plan) {
    if (step.op === 'remove-mirror-filter') {
      const { cookie, direction, dev } = step.filter;
      const blockSide = direction === 'ingress';
      const found = find(blockSide ? blockListing() : listingOf(dev), cookie);
      if (found) {
        const line = `filter del ${blockSide ? `block ${TAP_GATE_BLOCK} egress` : `dev ${dev} ingress`} pref ${found.pref}`;
        script.removals.push(line);
        script.owners.set(line, cookie);
      }
    } else if (step.op === 'remove-mirror-device') {
      const name = mirrorVxlanName(step.vni);
      if (ownedMirrorVni(view.links.get(name)) === step.vni) {
        script.links.push(`link del dev ${name}`);
      }
    } else if (step.op === 'remove-erspan-mirror-device') {
      const name = mirrorErspanName(step.erspanId);
      if (ownedErspanId(view.links.get(name)) === step.erspanId) {
        script.links.push(`link del dev ${name}`);
      }
    } else if (step.op === 'remove-analyzer') {
      // A tap that becomes a VM's port gets the gate's clsact in place of this one (links.driver).
      if (clsactOf(step.tap) === 0 && !putAnalyzers.has(step.tap) && !(opts.gated && putPorts.has(step.tap))) {
        script.removals.push(`qdisc del dev ${step.tap} clsact`);
      }
    }
  }

  /** Gives `dev` a clsact of its own (block 0) or bound to the taps' block, replacing another. */
  const clsact = (dev: string, block: number): void => {
    const current = clsactOf(dev);
    if (current === block || fresh.has(dev)) {
      return;
    }
    if (current !== undefined) {
      script.filters.push(`qdisc del dev ${dev} clsact`);
    }
    script.filters.push(block ? `qdisc add dev ${dev} egress_block ${block} clsact` : `qdisc add dev ${dev} clsact`);
    fresh.add(dev);
    if (block === TAP_GATE_BLOCK && opts.gated && !gateFilterPut && !view.gateFilters.has(TAP_GATE_BLOCK)) {
      // A block nobody was bound to starts empty, and an empty block passes everything.
      script.filters.push(gateFilterLine(GATES[0]));
      gateFilterPut = true;
    }
  };

  // 2. Analyzers: they drop what they send before they are up.
  for (const step of plan) {
    if (step.op !== 'put-analyzer') {
      continue;
    }
    const { tap } = step.analyzer;
    const link = view.links.get(tap);
    if (!link) {
      continue;
    }
    clsact(tap, 0);
    if (fresh.has(tap) || !holdsDrop(listingOf(tap))) {
      script.filters.push(`filter replace dev ${tap} ingress pref 1 handle 1 bpf da bytecode "${DROP_ALL_PROGRAM}"`);
    }
    if (link.master && !opts.detached.has(tap)) {
      script.ups.push(`link set dev ${tap} nomaster`);
    }
    if (!isUp(link)) {
      script.ups.push(`link set dev ${tap} up`);
    }
  }

  // 3. Mirror devices.
  /** Mirror devices there once the links batch ran, and those that cannot be: name -> why. */
  const devices = new Set<string>();
  const brokenDevices = new Map<string, string>();
  for (const step of plan) {
    if (step.op !== 'put-mirror-device') {
      continue;
    }
    const { vni, localVtep, remote, dstport, redirect } = step.device;
    const name = mirrorVxlanName(vni);
    const link = view.links.get(name);
    if (link && ownedMirrorVni(link) !== vni) {
      brokenDevices.set(name, `link ${name} exists but is not an overlay-agent mirror device (alias ${OWNER_ALIAS}); it is left untouched`);
      continue;
    }
    const info = link?.linkinfo?.info_data;
    const recreate = link !== undefined && (info?.id !== vni || info.port !== dstport || remoteOf(link) !== remote || vxlanLocal(link) !== localVtep || info.learning !== false);
    if (recreate) {
      script.links.push(`link del dev ${name}`);
    }
    if (!link || recreate) {
      script.links.push(
        `link add name ${name} type vxlan id ${vni} local ${localVtep}${remote ? ` remote ${remote}` : ''} dstport ${dstport} nolearning`,
        `link set dev ${name} alias ${OWNER_ALIAS}`,
        `link set dev ${name} addrgenmode none`,
        `link set dev ${name} up`,
      );
    } else {
      if (link.master) {
        script.links.push(`link set dev ${name} nomaster`);
      }
      if (!isUp(link)) {
        script.links.push(`link set dev ${name} up`);
      }
    }
    devices.add(name);
    if (!redirect) {
      continue;
    }
    if (!view.links.has(redirect)) {
      brokenDevices.set(name, `sink ${redirect} does not exist`);
      continue;
    }
    const isNew = !link || recreate;
    if (isNew) {
      script.filters.push(`qdisc add dev ${name} clsact`);
      fresh.add(name);
    } else {
      clsact(name, 0);
    }
    const cookie = sinkCookie(vni, redirect);
    const have = fresh.has(name) ? undefined : mirrorAction(find(listingOf(name), cookie) ?? {});
    if (!have || have.pref !== MIRROR_PREF_MIN || have.target !== redirect) {
      script.filters.push(`filter replace dev ${name} ingress pref ${MIRROR_PREF_MIN} handle 1 bpf bytecode "${MATCH_ALL_PROGRAM}" action mirred egress redirect dev ${redirect} cookie ${cookie}`);
    }
  }

  // 3b. ERSPAN devices: to a collector, in no bridge, not gated, no sink side.
  for (const step of plan) {
    if (step.op !== 'put-erspan-mirror-device') {
      continue;
    }
    const d = step.device;
    const name = mirrorErspanName(d.erspanId);
    const link = view.links.get(name);
    if (link && ownedErspanId(link) !== d.erspanId) {
      brokenDevices.set(name, `link ${name} exists but is not an overlay-agent ERSPAN device (alias ${OWNER_ALIAS}); it is left untouched`);
      continue;
    }
    const info = link?.linkinfo?.info_data;
    const recreate =
      link !== undefined &&
      (info?.okey !== greKey(d.erspanId) || info.oseq !== true || info.local !== d.localVtep || info.remote !== d.remote || info.erspan_ver !== d.version || (d.version === 2 && info.erspan_dir !== d.dir));
    const lines: string[] = [];
    if (recreate) {
      lines.push(`link del dev ${name}`);
    }
    if (!link || recreate) {
      lines.push(erspanAddLine(d), `link set dev ${name} alias ${OWNER_ALIAS}`, `link set dev ${name} addrgenmode none`, `link set dev ${name} up`);
    } else {
      if (link.master) {
        lines.push(`link set dev ${name} nomaster`);
      }
      if (!isUp(link)) {
        lines.push(`link set dev ${name} up`);
      }
    }
    for (const line of lines) {
      script.links.push(line);
      script.deviceLines.set(line, name);
    }
    devices.add(name);
  }

  // 4. Mirror filters.
  const used = new Map<string, Set<number>>();
  const allocate = (where: string, listing: TcFilter[]): number | undefined => {
    let prefs = used.get(where);
    if (!prefs) {
      prefs = new Set(listing.map((f) => f.pref ?? 0));
      used.set(where, prefs);
    }
    for (let p = MIRROR_PREF_MIN; p <= MIRROR_PREF_MAX; p++) {
      if (!prefs.has(p)) {
        prefs.add(p);
        return p;
      }
    }
    return undefined;
  };
  for (const step of plan) {
    if (step.op !== 'put-mirror-filter') {
      continue;
    }
    const { cookie, direction, dev, target, match } = step.filter;
    const link = view.links.get(dev);
    const skip = (why: string) => script.skipped.set(cookie, why);
    if (!link) {
      skip(`tap ${dev} does not exist (yet)`);
      continue;
    }
    if (brokenDevices.has(target)) {
      skip(brokenDevices.get(target)!);
      continue;
    }
    if (!devices.has(target) && !view.links.has(target)) {
      skip(`sink ${target} does not exist`);
      continue;
    }
    const blockSide = direction === 'ingress';
    let program: string;
    try {
      program = mirrorProgram(match, direction, blockSide ? link.ifindex : undefined);
    } catch (err) {
      skip(`filter: ${(err as Error).message}`);
      continue;
    }
    clsact(dev, TAP_GATE_BLOCK);
    const where = blockSide ? `block ${TAP_GATE_BLOCK} egress` : `dev ${dev} ingress`;
    const listing = blockSide ? blockListing() : fresh.has(dev) ? [] : listingOf(dev);
    const existing = find(listing, cookie);
    if (existing && mirrorAction(existing)?.target === target && insnsText(existing) === program) {
      continue;
    }
    const pref = existing?.pref ?? allocate(where, listing);
    if (pref === undefined) {
      skip(`no pref left in ${MIRROR_PREF_MIN}-${MIRROR_PREF_MAX} on ${where}`);
      continue;
    }
    const line = `filter ${existing ? 'replace' : 'add'} ${where} pref ${pref} handle 1 bpf bytecode "${program}" action mirred egress mirror dev ${target} continue cookie ${cookie}`;
    script.filters.push(line);
    script.owners.set(line, cookie);
    script.targets.set(cookie, target);
  }
  return script;
}
