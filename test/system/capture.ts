import type { ChildProcess } from 'node:child_process';
import { waitUntil } from '../support/agents';
import type { Topology } from './topology';

/** One ICMP echo seen by tcpdump: request or reply, its id and sequence number. */
export interface Echo {
  kind: 'request' | 'reply';
  id: number;
  seq: number;
  /** When tcpdump saw it (ms since the epoch). */
  at: number;
}

/**
 * A packet capture of ICMP echoes on one interface of a namespace (tcpdump, promiscuous as it is
 * by default): what an analyzer or a collector received. Started listening before `start`
 * returns; `stop` in a finally. In immediate mode: otherwise libpcap hands packets over in
 * blocks, up to a second late.
 */
export class EchoCapture {
  readonly echoes: Echo[] = [];
  private child?: ChildProcess;

  constructor(
    private readonly topology: Topology,
    private readonly ns: string,
    private readonly dev = 'eth0',
  ) {}

  async start(): Promise<this> {
    const child = this.topology.spawnIn(this.ns, 'tcpdump', ['-i', this.dev, '-nn', '-tt', '-l', '--immediate-mode', 'icmp']);
    this.child = child;
    let pending = '';
    let listening = false;
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const m = /^(\d+\.\d+) .*ICMP echo (request|reply), id (\d+), seq (\d+)/.exec(line);
        if (m) {
          this.echoes.push({ kind: m[2] as Echo['kind'], id: Number(m[3]), seq: Number(m[4]), at: Number(m[1]) * 1000 });
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (listening ||= d.toString().includes('listening on')));
    await waitUntil(() => listening, 10_000, () => `tcpdump in ${this.ns} on ${this.dev} did not start`);
    return this;
  }

  /** The echoes of one kind, as `seq` numbers, in the order seen. */
  seqs(kind: Echo['kind'], id?: number): number[] {
    return this.echoes.filter((e) => e.kind === kind && (id === undefined || e.id === id)).map((e) => e.seq);
  }

  stop(): void {
    this.child?.kill('SIGINT');
  }
}
