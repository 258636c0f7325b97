import type { ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from '../support/agents';
import type { Topology } from './topology';

/**
 * An lldpd in one namespace of a topology, in the foreground (`-d`: no pid file, its log kept).
 * Its control socket (and the lock beside it) is its own, in the topology's directory (`-u`):
 * several run side by side, and none touches a host's /run/lldpd.socket or its lldpd. Its
 * configuration is a list of lldpcli commands given with `-O`: lldpd starts paused and applies
 * them before it sends its first frame (nor does it read /etc/lldpd.conf or /etc/lldpd.d).
 * lldpd chroots its unprivileged half into /run/lldpd, which it creates and shares between
 * instances.
 */
export class Lldpd {
  readonly log: string[] = [];
  private child?: ChildProcess;

  private constructor(
    private readonly topology: Topology,
    readonly ns: string,
    /** lldpd's control socket: what `lldpcli -u` and the agent's OVERLAY_LLDPD_SOCKET name. */
    readonly socket: string,
  ) {}

  /** The control socket of the lldpd `start` names `name` (known before it runs: an agent's OVERLAY_LLDPD_SOCKET). */
  static socketOf(topology: Topology, name: string): string {
    return join(topology.dir, `lldpd-${name}.socket`);
  }

  /**
   * Starts lldpd in `ns` on `interfaces` only, with `config` (lldpcli commands) applied before it
   * sends anything; `receiveOnly` (`-r`): it listens and never sends, as a hypervisor's may.
   * Resolves once its socket answers.
   */
  static async start(topology: Topology, ns: string, name: string, opts: { interfaces: string[]; config?: string[]; receiveOnly?: boolean }): Promise<Lldpd> {
    const lldpd = new Lldpd(topology, ns, Lldpd.socketOf(topology, name));
    const conf = join(topology.dir, `lldpd-${name}.conf`);
    writeFileSync(conf, (opts.config ?? []).map((line) => `${line}\n`).join(''), { mode: 0o644 });
    // lldpd applies `-O` through an lldpcli running as its unprivileged user (_lldpd), which must
    // reach the socket and the file: the topology's directory (0700) becomes traverse-only for others.
    chmodSync(topology.dir, 0o711);
    const args = ['-d', '-u', lldpd.socket, '-O', conf, '-I', opts.interfaces.join(','), ...(opts.receiveOnly ? ['-r'] : [])];
    const child = topology.spawnIn(ns, 'lldpd', args);
    lldpd.child = child;
    const keep = (data: Buffer) => lldpd.log.push(...data.toString().split('\n').filter(Boolean));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', (code, signal) => lldpd.log.push(`lldpd exited code=${code} signal=${signal}`));
    await waitUntil(async () => child.exitCode === null && (await topology.exec(ns, 'lldpcli', ['-u', lldpd.socket, 'show', 'configuration'])).code === 0, 10_000, () => `lldpd in ${ns} did not answer:\n${lldpd.log.join('\n')}`);
    return lldpd;
  }

  /** `lldpcli -u <socket> <args>` in its namespace; throws unless it exits 0. Its stdout. */
  cli(args: string[]): Promise<string> {
    return this.topology.mustExec(this.ns, 'lldpcli', ['-u', this.socket, ...args]);
  }

  /** SIGTERM (lldpd then stops its unprivileged half too), SIGKILL after 5 s; resolves once it exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The oui-info of an 802.1 VLAN Name TLV (IEEE 802.1Q annex D, OUI 00-80-C2 subtype 3) for
 * `lldpcli configure ports <p> lldp custom-tlv oui 00,80,c2 subtype 3 oui-info <this>`: the VLAN
 * id (2 bytes), the name's length (1 byte), the name, each byte as two hex digits, comma-separated.
 */
export function vlanNameTlv(vlan: number, name: string): string {
  const bytes = [vlan >> 8, vlan & 0xff, Buffer.byteLength(name), ...Buffer.from(name)];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(',');
}
