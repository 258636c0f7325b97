import { echoOf, type FdbEvent, type Frame } from './capture';

/**
 * Where a live migration's blackout goes: the moments of one move, each in ms after the VM's last
 * frame on the source, from kernel timestamps (tcpdump) where there are packets, the
 * forwarding-entry monitors (`bridge monitor fdb`) for the bridges, and the controller for its
 * own steps. Pure: the system test gathers the records and prints the table.
 */
export interface MoveRecords {
  /** When the test started the switch-over (ms since the epoch). */
  switchAt: number;
  /** When the test plugged the destination's tap (the destination's QEMU started), after the prepare. */
  pluggedAt: number;
  /** The VM's tap (one name on every host). */
  tap: string;
  /** When the switch-over command returned. */
  switchedAt: number;
  vm: { mac: string; ip: string };
  /** The VTEPs of the source and destination. */
  srcVtep: string;
  dstVtep: string;
  /** Captures (`tcpdump -e`): the VM's tap on the source and on the destination, the pinging peer's NIC (ICMP), the underlay (VXLAN). */
  srcTap: Frame[];
  dstTap: Frame[];
  peerNic: Frame[];
  underlay: Frame[];
  /** Forwarding entries' changes on the peer's host, the source and the destination. */
  fdb: { peer: FdbEvent[]; src: FdbEvent[]; dst: FdbEvent[] };
  /** The migration's timeline. */
  timeline: { event: string; at: string; revision?: number }[];
  /** Acks the controller received: host, revision, when. */
  acks: { hostId: string; revision: number; at: number }[];
  hostIds: { src: string; dst: string; peer: string };
}

/** The rows of the breakdown, in order: key and label. */
export const BREAKDOWN_ROWS = [
  ['attached', "destination's tap attached (from its creation: an interval)"],
  ['switchStarted', 'switch-over command started'],
  ['switched', 'switch-over command returned'],
  ['dstFirst', "VM's first frame on the destination tap"],
  ['garp', 'gratuitous ARP on the destination tap'],
  ['underlayFirst', "VM's first frame from the destination VTEP (underlay)"],
  ['learned', 'destination bridge learned the MAC on the tap'],
  ['arrived', 'controller: vm-arrived'],
  ['committed', 'controller: committed'],
  ['ackDst', 'destination acked the commit'],
  ['ackPeer', "peer's host acked the commit"],
  ['ackSrc', 'source acked the commit'],
  ['peerFdb', "peer's entry -> destination VTEP"],
  ['lastBefore', 'last echo reply before the blackout (peer NIC)'],
  ['firstAfter', 'first echo reply after the blackout (peer NIC)'],
] as const;

export type BreakdownKey = (typeof BREAKDOWN_ROWS)[number][0];

export interface MoveBreakdown {
  /** Each moment, in ms after the VM's last frame on the source tap (`switchAt` when there is none; undefined: not seen). */
  at: Partial<Record<BreakdownKey, number>>;
  /** What the VM's first frame on the destination was (`ARP`, `ICMP`, `TCP`...). */
  dstFirstKind?: string;
  /** Echo requests the peer sent in the window that got no reply. */
  lost: number;
  /** The longest time a reply came later than due (ms): from the first request lost to the next reply, or a reply's delay beyond the round trip before it. */
  blackoutMs: number;
  /** The longest gap between two replies the peer's NIC received in the window, less the requests' usual (median) spacing (ms): the blackout as the ping's output shows it, the sender's own delays in it. */
  replyGapMs: number;
}

/** A gratuitous ARP of `ip` (`Request who-has <ip> [(<mac>)] tell <ip>`, or a reply announcing it), as `tcpdump -e` prints it. */
const isGarpOf = (text: string, ip: string): boolean => {
  const at = ip.replace(/\./g, '\\.');
  return new RegExp(`Request who-has ${at} (\\(\\S+\\) )?tell ${at},|Reply ${at} is-at`).test(text);
};

/** A `tcpdump -e` frame's link-level source MAC (the first address of the line). */
const srcMac = (text: string): string | undefined => /^([0-9a-f]{2}(?::[0-9a-f]{2}){5}) > /.exec(text)?.[1];

/** What a frame carries, in a word (for the VM's first frame on the destination). */
function kindOf(text: string): string {
  if (/Request who-has (\S+) (\(\S+\) )?tell \1,/.test(text)) {
    return 'GARP';
  }
  return /ARP/.test(text) ? 'ARP' : /ICMP/.test(text) ? 'ICMP' : /Flags \[/.test(text) ? 'TCP' : 'other';
}

/**
 * The breakdown of one move. The window runs from 100 ms before the switch-over to `windowEnd`
 * (pings answered after the commit was applied everywhere); pings are the peer's, seen on its
 * NIC: requests out, replies in.
 */
export function moveBreakdown(r: MoveRecords, windowEnd: number): MoveBreakdown {
  const mac = r.vm.mac.toLowerCase();
  const fromVm = (f: Frame) => srcMac(f.text) === mac;
  const after = (f: { at: number }) => f.at >= r.switchAt;
  // The moment the VM stopped on the source, as the kernel saw it: its last frame there before
  // its first on the destination. Everything is said from then (the test's clock, which started
  // the switch-over command, may lag on a busy machine).
  const dstFirst = r.dstTap.find((f) => after(f) && fromVm(f));
  const srcLast = r.srcTap.filter((f) => fromVm(f) && (dstFirst === undefined || f.at < dstFirst.at)).at(-1);
  const t0 = srcLast?.at ?? r.switchAt;
  const rel = (t: number | undefined): number | undefined => (t === undefined || Number.isNaN(t) ? undefined : Math.round((t - t0) * 10) / 10);
  const event = (name: string) => r.timeline.find((e) => e.event === name);
  const committed = event('committed');
  const ackOf = (hostId: string) => (committed?.revision === undefined ? undefined : r.acks.find((a) => a.hostId === hostId && a.revision >= committed.revision!)?.at);
  // The underlay capture prints the outer header, then the inner frame: `... > <vtep>.4789: VXLAN ... <inner src> > <inner dst>, ...`.
  const underlayFirst = r.underlay.find((f) => after(f) && f.text.includes(`${r.dstVtep}.`) && new RegExp(`${r.dstVtep.replace(/\./g, '\\.')}\\.\\d+ > .*VXLAN.* ${mac} > `).test(f.text));
  // A tap enslaved to a bridge gets a permanent entry of its own MAC there.
  const attached = r.fdb.dst.find((e) => e.at >= r.pluggedAt && e.line.includes(` dev ${r.tap} master br`) && e.line.endsWith('permanent'));
  const learned = r.fdb.dst.find((e) => after(e) && e.line.startsWith(`${mac} dev ${r.tap} master `));
  const peerFdb = r.fdb.peer.find((e) => after(e) && e.line.startsWith(`${mac} dev vx`) && e.line.includes(`dst ${r.dstVtep} `));

  const echoes = r.peerNic.map(echoOf).filter((e): e is NonNullable<typeof e> => e !== undefined);
  const inWindow = (e: { at: number }) => e.at >= r.switchAt - 100 && e.at <= windowEnd;
  // Answered whenever the reply came (the test waits a second past the window before reading).
  const answered = new Set(echoes.filter((e) => e.kind === 'reply').map((e) => e.seq));
  const lost = echoes.filter((e) => e.kind === 'request' && inWindow(e) && !answered.has(e.seq)).length;
  const replies = echoes.filter((e) => e.kind === 'reply' && inWindow(e));
  const requests = echoes.filter((e) => e.kind === 'request');
  const sentAt = new Map(requests.map((e) => [e.seq, e.at]));
  const inWindowRequests = requests.filter(inWindow);
  const spacing = inWindowRequests.length > 1 ? median(inWindowRequests.slice(1).map((e, k) => e.at - inWindowRequests[k].at)) : 0;
  // The blackout: how much later than due each reply came. After a reply, the next request (the
  // sequence number after it) was due back one round trip (the last one's) after it was sent;
  // the next reply that came measures from then. So a lost request counts from when it was sent,
  // a late reply by how late it was, and a sender that sent late (a busy machine) not at all.
  let blackout = 0;
  let lastBefore: number | undefined;
  let firstAfter: number | undefined;
  let replyGap = 0;
  for (let k = 1; k < replies.length; k++) {
    const [prev, next] = [replies[k - 1], replies[k]];
    replyGap = Math.max(replyGap, next.at - prev.at);
    const rtt = prev.at - (sentAt.get(prev.seq) ?? prev.at);
    const due = (sentAt.get(prev.seq + 1) ?? next.at) + rtt;
    if (next.at - due > blackout) {
      blackout = next.at - due;
      lastBefore = prev.at;
      firstAfter = next.at;
    }
  }
  return {
    at: {
      attached: attached === undefined ? undefined : Math.round((attached.at - r.pluggedAt) * 10) / 10,
      switchStarted: rel(r.switchAt),
      switched: rel(r.switchedAt),
      dstFirst: rel(dstFirst?.at),
      garp: rel(r.dstTap.find((f) => after(f) && fromVm(f) && isGarpOf(f.text, r.vm.ip))?.at),
      underlayFirst: rel(underlayFirst?.at),
      learned: rel(learned?.at),
      arrived: rel(Date.parse(event('vm-arrived')?.at ?? '')),
      committed: rel(Date.parse(committed?.at ?? '')),
      ackDst: rel(ackOf(r.hostIds.dst)),
      ackPeer: rel(ackOf(r.hostIds.peer)),
      ackSrc: rel(ackOf(r.hostIds.src)),
      peerFdb: rel(peerFdb?.at),
      lastBefore: rel(lastBefore),
      firstAfter: rel(firstAfter),
    },
    dstFirstKind: dstFirst ? kindOf(dstFirst.text) : undefined,
    lost,
    blackoutMs: Math.round(blackout * 10) / 10,
    replyGapMs: Math.max(0, Math.round((replyGap - spacing) * 10) / 10),
  };
}

export const median = (xs: number[]): number => {
  const sorted = [...xs].sort((x, y) => x - y);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
};

/** The breakdowns of every move as a table: one row per moment, one column per move, and the median. */
export function breakdownTable(moves: { label: string; breakdown: MoveBreakdown }[]): string {
  const cell = (v: number | string | undefined) => String(typeof v === 'number' ? Math.round(v * 10) / 10 : (v ?? '-')).padStart(7);
  const blackout = 'blackout (reply later than due)';
  const replyGap = 'longest gap between replies - usual spacing';
  const width = Math.max(...BREAKDOWN_ROWS.map(([, label]) => label.length), replyGap.length);
  const head = `${"ms after the VM's last frame on the source".padEnd(width)} ${moves.map((m) => cell(m.label)).join(' ')} ${cell('median')}`;
  const row = (label: string, values: (number | undefined)[]) => {
    const seen = values.filter((v): v is number => v !== undefined);
    return `${label.padEnd(width)} ${values.map(cell).join(' ')} ${cell(seen.length ? median(seen) : undefined)}`;
  };
  return [
    head,
    ...BREAKDOWN_ROWS.map(([key, label]) => row(label, moves.map((m) => m.breakdown.at[key]))),
    `${"VM's first frame on the destination".padEnd(width)} ${moves.map((m) => cell(m.breakdown.dstFirstKind)).join(' ')}`,
    row('pings lost', moves.map((m) => m.breakdown.lost)),
    row(blackout, moves.map((m) => m.breakdown.blackoutMs)),
    row(replyGap, moves.map((m) => m.breakdown.replyGapMs)),
  ].join('\n');
}
