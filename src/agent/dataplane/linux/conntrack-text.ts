/**
 * conntrack-tools text, both ways, pure: `conntrack -L` output parsed into TrackedConnections, and
 * TrackedConnections rendered as `conntrack -R` (load file) lines that insert them into a zone.
 * Both sides are input from outside (the kernel's text; entries that came from another host
 * through the controller), so every value is checked against a strict form before it is used:
 * a line of a load file is a conntrack command line, and nothing but the expected options may
 * ever reach it.
 */
import { isCarriable, MAX_TIMEOUT_SECONDS, PROTOCOL_NAMES, PROTOCOLS, type TrackedConnection } from '../../../common/tracked-connection';


/**
 * Parses `conntrack -L` (default output format) into connections: TCP in a carried state and UDP,
 * whose reply tuple is the inverse of the original one (no NAT). Lines that are not such entries,
 * or not well formed, are left out. The timeout is clamped to 1..MAX_TIMEOUT_SECONDS.
 */
export function parseConntrackList(text: string): TrackedConnection[] {
  const out: TrackedConnection[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    const protocol = PROTOCOLS[tokens[0]];
    if (protocol === undefined || Number(tokens[1]) !== protocol) {
      continue;
    }
    const timeout = Number(tokens[2]);
    let i = 3;
    const tcpState = protocol === 6 ? (tokens[i++] ?? '') : '';
    const tuples: Record<string, string>[] = [];
    const flags = new Set<string>();
    for (; i < tokens.length; i++) {
      const token = tokens[i];
      if (token.startsWith('[') && token.endsWith(']')) {
        flags.add(token.slice(1, -1));
        continue;
      }
      const eq = token.indexOf('=');
      const key = token.slice(0, eq);
      if (key === 'src') {
        tuples.push({});
      }
      if (tuples.length && ['src', 'dst', 'sport', 'dport'].includes(key) && tuples.length <= 2) {
        tuples[tuples.length - 1][key] = token.slice(eq + 1);
      }
    }
    const [orig, reply] = tuples;
    if (tuples.length !== 2 || reply.src !== orig.dst || reply.dst !== orig.src || reply.sport !== orig.dport || reply.dport !== orig.sport) {
      continue; // malformed, or rewritten by NAT
    }
    const c: TrackedConnection = {
      protocol,
      src: orig.src,
      dst: orig.dst,
      srcPort: Number(orig.sport),
      dstPort: Number(orig.dport),
      tcpState,
      timeoutSeconds: Number.isFinite(timeout) ? Math.min(MAX_TIMEOUT_SECONDS, Math.max(1, Math.floor(timeout))) : 0,
      seenReply: !flags.has('UNREPLIED'),
      assured: flags.has('ASSURED'),
    };
    if (isCarriable(c)) {
      out.push(c);
    }
  }
  return out;
}

/** One `conntrack -R` line inserting `c` into `zone`. `c` must be carriable (isCarriable). */
export function insertLine(zone: number, c: TrackedConnection): string {
  const status = [...(c.seenReply ? ['SEEN_REPLY'] : []), ...(c.assured ? ['ASSURED'] : [])];
  return [
    '-I',
    '-w',
    String(zone),
    '-p',
    PROTOCOL_NAMES[c.protocol],
    '-s',
    c.src,
    '-d',
    c.dst,
    '--sport',
    String(c.srcPort),
    '--dport',
    String(c.dstPort),
    ...(c.protocol === 6 ? ['--state', c.tcpState] : []),
    '-t',
    String(c.timeoutSeconds),
    ...(status.length ? ['-u', status.join(',')] : []),
  ].join(' ');
}
