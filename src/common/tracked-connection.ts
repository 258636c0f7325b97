import { isIP } from 'node:net';

/**
 * A connection as a host's connection tracking holds it, by its original-direction tuple (the
 * reply tuple is its inverse), as a migrating VM's source hands it to its destination through
 * the controller. Shared by both processes: the agent lists and inserts these, the controller
 * checks what a source sends before any destination sees it.
 */
export interface TrackedConnection {
  /** 6 (TCP) or 17 (UDP). */
  protocol: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** conntrack's TCP state name (ESTABLISHED, ...); '' for UDP. */
  tcpState: string;
  timeoutSeconds: number;
  seenReply: boolean;
  assured: boolean;
}

/** The most connections in one ConnectionBatch: what an agent sends, and what the controller takes. */
export const MAX_CONNECTION_BATCH = 4096;

/** TCP states worth carrying: connections that still carry data (closing ones are not). */
export const CARRIED_TCP_STATES: ReadonlySet<string> = new Set(['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK']);
/** conntrack's default timeout of an established TCP connection (5 days): the most carried. */
export const MAX_TIMEOUT_SECONDS = 432_000;

/** The carried protocols, by conntrack's name and by number. */
export const PROTOCOLS: Readonly<Record<string, number>> = { tcp: 6, udp: 17 };
export const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp' };

/** The identity of a connection: protocol and original-direction tuple. */
export const connectionKey = (c: TrackedConnection): string => `${c.protocol} ${c.src} ${c.srcPort} ${c.dst} ${c.dstPort}`;

const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65_535;
/** An IPv4 or IPv6 address in plain digits (no zone index: `fe80::1%eth0` is an address to Node's isIP). */
const family = (address: string): number => (/^[0-9a-fA-F:.]{2,45}$/.test(address) ? isIP(address) : 0);

/** Whether a connection may be carried and rendered into a conntrack command line: known protocol and state, valid addresses of one family, ports, timeout. */
export function isCarriable(c: TrackedConnection): boolean {
  const f = family(c.src);
  if (f === 0 || family(c.dst) !== f || !isPort(c.srcPort) || !isPort(c.dstPort)) {
    return false;
  }
  if (!Number.isInteger(c.timeoutSeconds) || c.timeoutSeconds < 1 || c.timeoutSeconds > MAX_TIMEOUT_SECONDS) {
    return false;
  }
  switch (c.protocol) {
    case 6:
      return CARRIED_TCP_STATES.has(c.tcpState);
    case 17:
      return c.tcpState === '';
    default:
      return false;
  }
}

