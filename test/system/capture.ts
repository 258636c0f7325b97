import type { ChildProcess } from 'node:child_process';
import { waitUntil } from '../support/agents';
import type { Topology } from './topology';

/** One packet tcpdump printed: its kernel timestamp and the rest of its text (continuation lines, such as a VXLAN frame's inner packet, joined with a space). */
export interface Frame {
  /** When the kernel timestamped it (ms since the epoch, to the nanosecond). */
  at: number;
  text: string;
}

/**
 * A packet capture on one interface of a namespace (tcpdump, promiscuous as it is by default):
 * every packet the filter passes, with the kernel's timestamp (`-tt`, nanoseconds). Started
 * listening before `start` returns; `stop` in a finally. In immediate mode: otherwise libpcap
 * hands packets over in blocks, up to a second late. A capture whose interface goes away (a tap
 * deleted) ends there and keeps what it saw.
 */
export class PacketCapture {
  readonly frames: Frame[] = [];
  private child?: ChildProcess;
  private exited?: Promise<void>;

  constructor(
    protected readonly topology: Topology,
    protected readonly ns: string,
    protected readonly dev: string,
    /** tcpdump's filter expression, and flags of its own (`-e` for link-level headers, say). */
    private readonly filter: string[],
    private readonly flags: string[] = [],
  ) {}

  async start(): Promise<this> {
    const child = this.topology.spawnIn(this.ns, 'tcpdump', ['-i', this.dev, '-nn', '-tt', '--time-stamp-precision=nano', '-l', '--immediate-mode', ...this.flags, ...this.filter]);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    let pending = '';
    let listening = false;
    let said = '';
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const m = /^(\d+)\.(\d{9}) (.*)$/.exec(line);
        if (m) {
          const frame = { at: Number(m[1]) * 1000 + Number(m[2]) / 1e6, text: m[3] };
          this.frames.push(frame);
          this.parsed(frame);
        } else if (this.frames.length && line.trim()) {
          this.frames[this.frames.length - 1].text += ' ' + line.trim();
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      said += d.toString();
      listening ||= said.includes('listening on');
    });
    await waitUntil(() => listening || child.exitCode !== null, 10_000, () => `tcpdump in ${this.ns} on ${this.dev} did not start`);
    if (!listening) {
      throw new Error(`tcpdump in ${this.ns} on ${this.dev} exited: ${said.trim()}`);
    }
    return this;
  }

  /** Called for each packet as it is captured (subclasses parse it). */
  protected parsed(_frame: Frame): void {}

  /** Stops tcpdump; resolves once every packet it printed is in `frames`. */
  async stop(): Promise<void> {
    this.child?.kill('SIGINT');
    await this.exited;
  }
}

/** One ICMP echo seen by tcpdump: request or reply, its id and sequence number. */
export interface Echo {
  kind: 'request' | 'reply';
  id: number;
  seq: number;
  /** When the kernel timestamped it (ms since the epoch). */
  at: number;
}

/** The ICMP echo of a tcpdump line, if it is one. */
export function echoOf(frame: Frame): Echo | undefined {
  const m = /ICMP echo (request|reply), id (\d+), seq (\d+)/.exec(frame.text);
  return m ? { kind: m[1] as Echo['kind'], id: Number(m[2]), seq: Number(m[3]), at: frame.at } : undefined;
}

/** A capture of ICMP echoes on one interface: what an analyzer or a collector received. */
export class EchoCapture extends PacketCapture {
  readonly echoes: Echo[] = [];

  constructor(topology: Topology, ns: string, dev = 'eth0') {
    super(topology, ns, dev, ['icmp']);
  }

  protected override parsed(frame: Frame): void {
    const echo = echoOf(frame);
    if (echo) {
      this.echoes.push(echo);
    }
  }

  /** The echoes of one kind, as `seq` numbers, in the order seen. */
  seqs(kind: Echo['kind'], id?: number): number[] {
    return this.echoes.filter((e) => e.kind === kind && (id === undefined || e.id === id)).map((e) => e.seq);
  }
}

/** One line of `bridge -timestamp monitor fdb`: an entry added (or `Deleted ...`), and when the monitor read it. */
export interface FdbEvent {
  /** When `bridge` received the notification (ms since the epoch, to the microsecond). */
  at: number;
  line: string;
}

/**
 * The forwarding entries' changes in a namespace, as `bridge -timestamp monitor fdb` prints them:
 * each entry learned, put or deleted, with the time the monitor read it (netlink notifications
 * carry no kernel timestamp; the monitor reads them within the same millisecond on an idle host).
 */
export class FdbMonitor {
  readonly events: FdbEvent[] = [];
  private child?: ChildProcess;

  constructor(
    private readonly topology: Topology,
    private readonly ns: string,
  ) {}

  /** Starts the monitor; resolves once it is subscribed (its first notification, of an entry put here to that end, came back). */
  async start(): Promise<this> {
    const child = this.topology.spawnIn(this.ns, 'bridge', ['-timestamp', 'monitor', 'fdb']);
    this.child = child;
    let pending = '';
    let at = 0;
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        // `Timestamp: Sat Dec  5 10:44:06 2026 972510 usec` (local time), then the entry.
        const stamp = /^Timestamp: (.+) (\d+) usec$/.exec(line);
        if (stamp) {
          at = new Date(stamp[1]).getTime() + Number(stamp[2]) / 1000;
        } else if (line.trim()) {
          this.events.push({ at, line: line.trim() });
        }
      }
    });
    // Subscribed once a probe entry on a dummy bridge of its own shows up.
    const probe = `fdbprobe${process.pid % 1000}`;
    const ip = (...args: string[]) => this.topology.exec(this.ns, 'ip', args);
    await ip('link', 'add', probe, 'type', 'bridge');
    try {
      await waitUntil(
        async () => {
          await this.topology.exec(this.ns, 'bridge', ['fdb', 'replace', '02:00:00:00:00:01', 'dev', probe, 'self', 'local']);
          return this.events.some((e) => e.line.includes(probe));
        },
        10_000,
        () => `bridge monitor fdb in ${this.ns} did not start`,
      );
    } finally {
      await ip('link', 'del', probe);
    }
    return this;
  }

  stop(): void {
    this.child?.kill('SIGINT');
  }
}
