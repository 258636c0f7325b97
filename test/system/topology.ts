import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A data centre in network namespaces, for system tests. Everything it makes carries one random
 * suffix, so parallel runs never collide, and is registered for teardown the moment it exists:
 * `destroy()` (from afterAll) removes it, and a watchdog process removes whatever is left when
 * a run dies halfway (see Leftovers). Nothing is created in the root namespace: no link, no
 * address, no route.
 *
 *   ovl-underlay-<s>   bridge `ul`, one veth per hypervisor: the underlay L2 segment 192.0.2.0/24
 *   ovl-hv<i>-<s>      `eth0` 192.0.2.<i>/24 (the VTEP); the agent of that host runs in here
 *   ovl-vm-<name>-<s>  `eth0` with the port's MAC and IP; its peer in the hypervisor namespace is
 *                      the tap `tapName(portId)`, left down and unattached for the agent to plug
 *
 * A hypervisor named in `routed` instead has its VTEP routed (routed redundancy, no bond): the
 * VTEP 198.51.100.<i>/32 on `lo`, and two uplinks, `up1` and `up2`, to two leaf routers
 * (see addLeaves), with a multipath default route over both.
 *
 * The controller runs in the test process, in the root namespace, where Redis is. A hypervisor
 * namespace has its own loopback and cannot reach the root's 127.0.0.1, so `exposeController`
 * builds a relay: a listener on 127.0.0.1:50051 *inside* each hypervisor namespace forwards every
 * connection over a Unix socket (filesystem sockets are not scoped by network namespace) to a
 * listener in the test process, which connects to the controller on the root 127.0.0.1. The agent
 * thus uses a plain `OVERLAY_CONTROLLER=127.0.0.1:50051`, and the test needs no address in the
 * root namespace, exposes nothing off the machine, and cannot clash with another run's addresses.
 */
export interface Hypervisor {
  /** `hv1`, `hv2`, ...: the host name registered with the controller. */
  name: string;
  ns: string;
  vtepIp: string;
  /** The links that carry its VTEP's traffic: `eth0`, or for a routed hypervisor `up1` and `up2`. */
  uplinks: string[];
}

export interface TopologyOptions {
  /** Hypervisors (`hv1`, ...) whose VTEP is on `lo`, routed over two uplinks (see the class comment). */
  routed?: string[];
}

/** The leaf routers of routed hypervisors: `ovl-leaf<j>-<s>`, on the underlay at 192.0.2.25<j>. */
const LEAVES = [1, 2] as const;
const leafUnderlayIp = (j: number): string => `192.0.2.${250 + j}`;
/** Routed hypervisors' VTEPs: 198.51.100.<i>/32 on their `lo`. */
const ROUTED_VTEPS = '198.51.100.0/24';

export interface Vm {
  name: string;
  ns: string;
  hv: Hypervisor;
  tap: string;
  mac: string;
  ip: string;
  /** The VM's NIC, the far end of its tap: `eth0`; for a VM that migrates, the other of `eth0`/`eth1` after each `resume`. */
  nic: string;
  /** Whether it was made to live-migrate (see addVm). */
  migrates: boolean;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * What is still to be cleaned up, across every topology of this process, mirrored to a file that
 * a watchdog process reads. The watchdog (started once, detached) polls this process and, the
 * moment it is gone however it went (a failed assertion that skipped afterAll, Ctrl-C, SIGKILL,
 * a crash), kills the processes, deletes the namespaces, directories and Redis keys listed.
 * A watchdog rather than `process.on('exit')`: inside Jest, `process` is a copy whose listeners
 * never fire, and no hook survives SIGKILL.
 */
interface Leftovers {
  pids: number[];
  namespaces: string[];
  dirs: string[];
  /** Redis key prefixes (`{prefix}:*`) with the URL of their Redis. */
  redisPrefixes: { url: string; prefix: string }[];
}

const leftovers: Leftovers = { pids: [], namespaces: [], dirs: [], redisPrefixes: [] };
let leftoversFile: string | undefined;

const WATCHDOG_SCRIPT = `
const fs = require('fs');
const { execFileSync } = require('child_process');
const [parent, file, ioredisPath] = process.argv.slice(1);
const alive = () => { try { process.kill(Number(parent), 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(async () => {
  if (alive()) return;
  clearInterval(timer);
  let s;
  try { s = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return; }
  for (const pid of s.pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  for (const ns of s.namespaces) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch {} }
  for (const dir of s.dirs) { fs.rmSync(dir, { recursive: true, force: true }); }
  for (const { url, prefix } of s.redisPrefixes) {
    try {
      const Redis = require(ioredisPath);
      const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
      const keys = await redis.keys('{' + prefix + '}:*');
      if (keys.length) { await redis.del(...keys); }
      redis.disconnect();
    } catch {}
  }
  fs.rmSync(file, { force: true });
}, 250);
`;

function saveLeftovers(): void {
  if (!leftoversFile) {
    leftoversFile = join(tmpdir(), `ovl-system-leftovers-${process.pid}-${randomBytes(3).toString('hex')}.json`);
    writeFileSync(leftoversFile, JSON.stringify(leftovers));
    const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SCRIPT, String(process.pid), leftoversFile, require.resolve('ioredis')], { detached: true, stdio: 'ignore' });
    watchdog.unref();
    return;
  }
  writeFileSync(leftoversFile, JSON.stringify(leftovers));
}

function track<K extends keyof Leftovers>(kind: K, item: Leftovers[K][number]): void {
  (leftovers[kind] as Leftovers[K][number][]).push(item);
  saveLeftovers();
}

function untrack<K extends keyof Leftovers>(kind: K, item: Leftovers[K][number]): void {
  const list = leftovers[kind] as Leftovers[K][number][];
  const i = list.indexOf(item);
  if (i >= 0) {
    list.splice(i, 1);
    saveLeftovers();
  }
}

/** Registers a child process for the watchdog; unregisters it when it exits. */
export function trackProcess(child: ChildProcess): void {
  if (child.pid !== undefined) {
    const pid = child.pid;
    track('pids', pid);
    child.once('exit', () => untrack('pids', pid));
  }
}

/** Has the watchdog delete `{prefix}:*` from that Redis should this process die before its afterAll. */
export function trackRedisPrefix(url: string, prefix: string): () => void {
  const entry = { url, prefix };
  track('redisPrefixes', entry);
  return () => untrack('redisPrefixes', entry);
}

/** Runs a command, never throws for a non-zero exit (the result says). */
export function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && typeof err.code !== 'number' ? err.message : '') });
    });
  });
}

/** Runs a command and throws, with its stderr, unless it exits 0. */
export async function must(cmd: string, args: string[]): Promise<string> {
  const result = await run(cmd, args);
  if (result.code !== 0) {
    throw new Error(`${[cmd, ...args].join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Set by the suite's setup (system-setup.ts) to the reason it said once: this machine runs no system test. */
export const MACHINE_SKIP_REASON = 'OVERLAY_SYSTEM_TESTS_SKIPPED';

/**
 * Why system tests cannot run here, or undefined when they can: root, `ip netns`, VXLAN and
 * bridges in a namespace, ping. Probed for real (a throwaway namespace), since a container may
 * list namespaces yet refuse to create one.
 */
export function systemTestSkipReason(): string | undefined {
  if (process.platform !== 'linux') {
    return 'system tests need Linux';
  }
  if (process.getuid?.() !== 0) {
    return 'system tests need root (network namespaces, VXLAN, bridges): run `sudo npm run test:system`';
  }
  for (const [cmd, args] of [
    ['ip', ['-V']],
    ['bridge', ['-V']],
    ['ping', ['-V']],
  ] as const) {
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
    } catch {
      return `\`${cmd}\` is not available: install ${cmd === 'ping' ? 'iputils-ping' : 'iproute2'}`;
    }
  }
  const probe = `ovl-probe-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (err) {
    return `\`ip netns add\` is not available here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  try {
    execFileSync('ip', ['-n', probe, 'link', 'add', 'vxprobe', 'type', 'vxlan', 'id', '1', 'dstport', '4789', 'nolearning'], { stdio: 'pipe' });
    execFileSync('ip', ['-n', probe, 'link', 'add', 'brprobe', 'type', 'bridge'], { stdio: 'pipe' });
  } catch (err) {
    return `VXLAN or bridge devices are not available in a network namespace: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      // nothing left to delete
    }
  }
  return undefined;
}

/** The relay's in-namespace half: TCP 127.0.0.1:<port> -> Unix socket <path>. */
const RELAY_SCRIPT = `
const net = require('net');
const [host, port, path] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.createConnection(path);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
}).listen(Number(port), host, () => console.log('ready'));
`;

/** The NIC a VM resumes on after a migration: the other of `eth0` and `eth1`. */
const incomingNic = (vm: Vm): string => (vm.nic === 'eth0' ? 'eth1' : 'eth0');

/** The port the controller relay listens on inside every hypervisor namespace. */
export const RELAY_PORT = 50051;

export class Topology {
  readonly underlay: string;
  readonly hypervisors: Hypervisor[] = [];
  readonly vms: Vm[] = [];
  /** Scratch space of this topology (relay socket, agents' state directories). */
  readonly dir: string;
  private readonly namespaces: string[] = [];
  private readonly relays: ChildProcess[] = [];
  private relayServer?: Server;
  private readonly relaySockets = new Set<Socket>();
  /** Whether the leaf routers exist (a routed hypervisor asked for them). */
  private leaves = false;

  private constructor(readonly suffix: string) {
    this.underlay = `ovl-underlay-${suffix}`;
    this.dir = mkdtempSync(join(tmpdir(), `ovl-system-${suffix}-`));
    track('dirs', this.dir);
  }

  /**
   * Builds the underlay and `hypervisorCount` hypervisors with VTEPs 192.0.2.1, .2, ...; those
   * named in `options.routed` get 198.51.100.<i> on `lo` and two uplinks through two leaves.
   */
  static async create(hypervisorCount: number, options: TopologyOptions = {}): Promise<Topology> {
    const topology = new Topology(randomBytes(3).toString('hex'));
    try {
      const ul = topology.underlay;
      await topology.addNamespace(ul);
      await must('ip', ['-n', ul, 'link', 'add', 'ul', 'type', 'bridge']);
      await must('ip', ['-n', ul, 'link', 'set', 'ul', 'up']);
      const routed = new Set(options.routed ?? []);
      if (routed.size) {
        await topology.addLeaves();
      }
      for (let i = 1; i <= hypervisorCount; i++) {
        const name = `hv${i}`;
        const hv: Hypervisor = routed.has(name)
          ? { name, ns: `ovl-hv${i}-${topology.suffix}`, vtepIp: `198.51.100.${i}`, uplinks: LEAVES.map((j) => `up${j}`) }
          : { name, ns: `ovl-hv${i}-${topology.suffix}`, vtepIp: `192.0.2.${i}`, uplinks: ['eth0'] };
        await topology.addNamespace(hv.ns);
        if (routed.has(name)) {
          await topology.routeOverLeaves(hv, i);
        } else {
          await must('ip', ['-n', ul, 'link', 'add', 'name', `ul-hv${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hv.ns]);
          await must('ip', ['-n', ul, 'link', 'set', `ul-hv${i}`, 'master', 'ul', 'up']);
          await must('ip', ['-n', hv.ns, 'addr', 'add', `${hv.vtepIp}/24`, 'dev', 'eth0']);
          await must('ip', ['-n', hv.ns, 'link', 'set', 'eth0', 'up']);
          await topology.routeToRoutedVteps(hv.ns);
        }
        topology.hypervisors.push(hv);
      }
      return topology;
    } catch (err) {
      await topology.destroy();
      throw err;
    }
  }

  /**
   * A machine on the underlay that is not a hypervisor (a remote traffic collector, say):
   * `ovl-<name>-<s>` with `eth0` at `ip`/24 on the underlay bridge. Returns its namespace.
   */
  async addUnderlayHost(name: string, ip: string): Promise<string> {
    const ns = `ovl-${name}-${this.suffix}`;
    await this.addNamespace(ns);
    await must('ip', ['-n', this.underlay, 'link', 'add', 'name', `ul-${name}`.slice(0, 15), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must('ip', ['-n', this.underlay, 'link', 'set', `ul-${name}`.slice(0, 15), 'master', 'ul', 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await this.routeToRoutedVteps(ns);
    return ns;
  }

  /** A leaf router's namespace (1 or 2; routed topologies only). */
  leaf(j: 1 | 2): string {
    if (!this.leaves) {
      throw new Error('this topology has no routed hypervisor, hence no leaf');
    }
    return `ovl-leaf${j}-${this.suffix}`;
  }

  /**
   * A routed hypervisor's uplink fails as a cable or a switch port does: the leaf's port facing
   * it shuts, and the hypervisor sees the carrier go (nothing is set down on the hypervisor).
   * `up` brings the port back.
   */
  async setUplink(hv: Hypervisor, uplink: string, state: 'up' | 'down'): Promise<void> {
    const j = LEAVES.find((l) => `up${l}` === uplink);
    if (j === undefined || !hv.uplinks.includes(uplink)) {
      throw new Error(`${hv.name} has no routed uplink ${uplink}`);
    }
    await must('ip', ['-n', this.leaf(j), 'link', 'set', hv.name, state]);
  }

  hypervisor(name: string): Hypervisor {
    const hv = this.hypervisors.find((h) => h.name === name);
    if (!hv) {
      throw new Error(`no hypervisor ${name}`);
    }
    return hv;
  }

  /**
   * A VM: its namespace, and a veth whose hypervisor end is the tap (down, unattached, as a
   * hypervisor leaves it before the agent plugs it) and whose VM end has the port's MAC and IP.
   *
   * A VM that `migrates` has, as a VM has one vNIC whatever host it runs on, its MAC and IP on a
   * bridge `vnic` in its namespace (no learning: it sends on every port) whose ports are the far
   * ends of its taps, one per host it is plugged on (`eth0`, `eth1`); on each port a netdev
   * ingress and egress chain (table `netdev vm`) passes frames where the VM runs and drops them
   * where it does not: a paused VM neither sends nor receives. So the VM runs on exactly one host
   * at every instant, and `resume` moves it in one nftables transaction (see plugIncoming).
   */
  async addVm(name: string, hv: Hypervisor, port: { tap: string; mac: string; ip: string; prefixLength: number }, opts: { migrates?: boolean } = {}): Promise<Vm> {
    const vm: Vm = { name, ns: `ovl-vm-${name}-${this.suffix}`, hv, tap: port.tap, mac: port.mac, ip: port.ip, nic: 'eth0', migrates: opts.migrates === true };
    await this.addNamespace(vm.ns);
    await must('ip', ['-n', hv.ns, 'link', 'add', 'name', vm.tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm.ns]);
    // 1450: room for the 50 bytes of VXLAN encapsulation on a 1500-byte underlay.
    if (!vm.migrates) {
      await must('ip', ['-n', vm.ns, 'link', 'set', 'eth0', 'address', vm.mac, 'mtu', '1450']);
      await must('ip', ['-n', vm.ns, 'addr', 'add', `${vm.ip}/${port.prefixLength}`, 'dev', 'eth0']);
      await must('ip', ['-n', vm.ns, 'link', 'set', 'eth0', 'up']);
    } else {
      await must('ip', ['-n', vm.ns, 'link', 'add', 'vnic', 'type', 'bridge', 'ageing_time', '0', 'stp_state', '0']);
      await must('ip', ['-n', vm.ns, 'link', 'set', 'vnic', 'address', vm.mac, 'mtu', '1450']);
      await must('ip', ['-n', vm.ns, 'addr', 'add', `${vm.ip}/${port.prefixLength}`, 'dev', 'vnic']);
      await this.vmNic(vm, 'eth0', 'accept');
      await must('ip', ['-n', vm.ns, 'link', 'set', 'vnic', 'up']);
    }
    this.vms.push(vm);
    return vm;
  }

  /**
   * A live migration's destination vNIC, plugged when the incoming VM is set up (libvirt starts
   * the destination's QEMU, which opens its tap, once the destination is prepared): the tap on
   * `hv`, and in the VM the other of `eth0`/`eth1`, up but closed (the VM does not run there
   * yet). As a QEMU tap, it has its carrier from now on.
   */
  async plugIncoming(vm: Vm, hv: Hypervisor): Promise<void> {
    if (!vm.migrates) {
      throw new Error(`VM ${vm.name} was not made to migrate (addVm's migrates)`);
    }
    const incoming = incomingNic(vm);
    await must('ip', ['-n', hv.ns, 'link', 'add', 'name', vm.tap, 'type', 'veth', 'peer', 'name', incoming, 'netns', vm.ns]);
    await this.vmNic(vm, incoming, 'drop');
  }

  /**
   * The VM's switch-over, as a live migration does it: it stops on the source and runs on the
   * destination, in one nftables transaction (the NIC it ran on closes, the one plugIncoming
   * added opens); then it announces itself with a gratuitous ARP, as QEMU does when it resumes
   * an incoming VM (QEMU sends RARP; arping -U sends the ARP kind); then the source's vNIC goes,
   * its tap with it, as the source's QEMU exits once the destination runs (libvirt's confirm
   * phase). Deleting a link takes tens of milliseconds of RCU grace periods, and so does setting
   * one down: done in the switch-over, either would pause the VM that much longer than a
   * migration does (frames sent to a paused VM's destination tap wait in QEMU's queue; on a veth
   * they are lost). Resolves with the time the switch-over command returned (ms since the
   * epoch), once the old vNIC is gone.
   */
  async resume(vm: Vm): Promise<number> {
    const [old, incoming] = [vm.nic, incomingNic(vm)];
    const policy = (nic: string, verdict: 'accept' | 'drop') => [`chain netdev vm ${nic}_in { policy ${verdict}; }`, `chain netdev vm ${nic}_out { policy ${verdict}; }`];
    await this.nft(vm.ns, [...policy(old, 'drop'), ...policy(incoming, 'accept')]);
    const switched = Date.now();
    vm.nic = incoming;
    // On the NIC, as QEMU writes it into the tap: a frame a packet socket sends on `vnic` would
    // leave by every port (the bridge forwards it past the ports' egress chains).
    await this.mustExec(vm.ns, 'arping', ['-q', '-U', '-c', '1', '-I', incoming, vm.ip]);
    await must('ip', ['-n', vm.ns, 'link', 'del', old]);
    // A kernel that keeps a netdev chain for a device that went would hook it to the next by that name.
    for (const chain of [`${old}_in`, `${old}_out`]) {
      await this.exec(vm.ns, 'nft', ['delete', 'chain', 'netdev', 'vm', chain]);
    }
    return switched;
  }

  /** A port of a migrating VM's `vnic` (the VM end of a tap made by the caller, given the VM's MAC), its chains passing or dropping everything, then up. */
  private async vmNic(vm: Vm, nic: string, verdict: 'accept' | 'drop'): Promise<void> {
    await this.nft(vm.ns, [
      'table netdev vm {}',
      `chain netdev vm ${nic}_in { type filter hook ingress device "${nic}" priority 0; policy ${verdict}; }`,
      `chain netdev vm ${nic}_out { type filter hook egress device "${nic}" priority 0; policy ${verdict}; }`,
    ]);
    await must('ip', ['-n', vm.ns, 'link', 'set', nic, 'address', vm.mac, 'mtu', '1450', 'master', 'vnic']);
    await must('ip', ['-n', vm.ns, 'link', 'set', nic, 'up']);
  }

  /** Loads nftables commands in a namespace, in one transaction. */
  private async nft(ns: string, lines: string[]): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<void>((resolve, reject) => child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft -f - in ${ns} exited ${code}: ${stderr.trim()}`)))));
    child.stdin.end(lines.join('\n') + '\n');
    await done;
  }

  /** Runs a command inside a namespace of this topology. */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  /** Runs a command inside a namespace; throws unless it exits 0. */
  mustExec(ns: string, cmd: string, args: string[]): Promise<string> {
    return must('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Starts a long-running process inside a namespace (registered for teardown). */
  spawnIn(ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    trackProcess(child);
    return child;
  }

  /**
   * Makes the controller's gRPC port (on the root namespace's loopback) reachable as
   * `127.0.0.1:RELAY_PORT` inside every hypervisor namespace (see the class comment). Returns
   * that in-namespace target.
   */
  async exposeController(grpcTarget: string): Promise<string> {
    const [host, port] = [grpcTarget.slice(0, grpcTarget.lastIndexOf(':')), Number(grpcTarget.slice(grpcTarget.lastIndexOf(':') + 1))];
    const path = join(this.dir, 'controller.sock');
    this.relayServer = createServer((inbound) => {
      const outbound = createConnection(port, host);
      for (const s of [inbound, outbound]) {
        this.relaySockets.add(s);
        s.on('close', () => this.relaySockets.delete(s));
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      this.relayServer!.once('error', reject);
      this.relayServer!.listen(path, resolve);
    });
    for (const hv of this.hypervisors) {
      const relay = this.spawnIn(hv.ns, process.execPath, ['-e', RELAY_SCRIPT, '127.0.0.1', String(RELAY_PORT), path]);
      this.relays.push(relay);
      await new Promise<void>((resolve, reject) => {
        let err = '';
        relay.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        relay.stdout!.once('data', () => resolve());
        relay.once('exit', (code) => reject(new Error(`relay in ${hv.ns} exited (${code}): ${err}`)));
      });
    }
    return `127.0.0.1:${RELAY_PORT}`;
  }

  /** Removes every namespace, process and file of this topology. Idempotent; never throws. */
  async destroy(): Promise<void> {
    for (const relay of this.relays) {
      relay.kill('SIGKILL');
    }
    for (const socket of this.relaySockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => (this.relayServer ? this.relayServer.close(() => resolve()) : resolve()));
    this.relayServer = undefined;
    for (const ns of this.namespaces.splice(0).reverse()) {
      await run('ip', ['netns', 'del', ns]);
      untrack('namespaces', ns);
    }
    rmSync(this.dir, { recursive: true, force: true });
    untrack('dirs', this.dir);
  }

  /**
   * The two leaf routers, each on the underlay (192.0.2.251, .252), forwarding, redirects off
   * (a leaf sending to the other over the underlay would otherwise tell the sender to go there).
   * `ignore_routes_with_linkdown`: the route to a host behind a port that lost its carrier is
   * passed over, so the leaf falls back to its route through the other leaf.
   */
  private async addLeaves(): Promise<void> {
    this.leaves = true;
    for (const j of LEAVES) {
      const ns = this.leaf(j);
      await this.addNamespace(ns);
      await must('ip', ['-n', this.underlay, 'link', 'add', 'name', `ul-leaf${j}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await must('ip', ['-n', this.underlay, 'link', 'set', `ul-leaf${j}`, 'master', 'ul', 'up']);
      await must('ip', ['-n', ns, 'addr', 'add', `${leafUnderlayIp(j)}/24`, 'dev', 'eth0']);
      await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.eth0.send_redirects=0', 'net.ipv4.conf.all.ignore_routes_with_linkdown=1']);
    }
  }

  /**
   * A routed hypervisor: its VTEP on `lo`, and per leaf j an uplink `up<j>` (10.<j>.<i>.2/30)
   * whose far end is the leaf's port `hv<i>`. The leaf routes the VTEP to it, and through the
   * other leaf (metric 100) when that route is unusable: static routes standing in for what a
   * fabric's routing protocol would learn. The leaf's port is the only port of a
   * bridge holding the leaf's address (a switch's routed port): shut, it takes the bridge's
   * carrier, so the route goes linkdown and returns with the port, where a route over a veth set
   * down is deleted for good.
   *
   * The hypervisor's multipath default route spreads flows over both uplinks by hash. What makes
   * it fail over is `ignore_routes_with_linkdown=1`: without it the kernel keeps hashing flows to
   * a nexthop whose link lost its carrier (flagged linkdown, not dead) and they are lost;
   * a nexthop whose device is set down is dead and skipped either way.
   */
  private async routeOverLeaves(hv: Hypervisor, i: number): Promise<void> {
    await must('ip', ['-n', hv.ns, 'addr', 'add', `${hv.vtepIp}/32`, 'dev', 'lo']);
    await must('ip', ['netns', 'exec', hv.ns, 'sysctl', '-qw', 'net.ipv4.conf.all.ignore_routes_with_linkdown=1']);
    const nexthops: string[] = [];
    for (const j of LEAVES) {
      const leaf = this.leaf(j);
      const port = `rp-${hv.name}`;
      await must('ip', ['-n', leaf, 'link', 'add', 'name', hv.name, 'type', 'veth', 'peer', 'name', `up${j}`, 'netns', hv.ns]);
      await must('ip', ['-n', leaf, 'link', 'add', 'name', port, 'type', 'bridge']);
      await must('ip', ['-n', leaf, 'link', 'set', hv.name, 'master', port, 'up']);
      await must('ip', ['-n', leaf, 'link', 'set', port, 'up']);
      await must('ip', ['-n', leaf, 'addr', 'add', `10.${j}.${i}.1/30`, 'dev', port]);
      await must('ip', ['-n', hv.ns, 'addr', 'add', `10.${j}.${i}.2/30`, 'dev', `up${j}`]);
      await must('ip', ['-n', hv.ns, 'link', 'set', `up${j}`, 'up']);
      await must('ip', ['-n', leaf, 'route', 'add', `${hv.vtepIp}/32`, 'via', `10.${j}.${i}.2`, 'dev', port]);
      await must('ip', ['-n', leaf, 'route', 'add', `${hv.vtepIp}/32`, 'via', leafUnderlayIp(3 - j), 'dev', 'eth0', 'metric', '100']);
      nexthops.push('nexthop', 'via', `10.${j}.${i}.1`, 'dev', `up${j}`);
    }
    await must('ip', ['-n', hv.ns, 'route', 'add', 'default', 'src', hv.vtepIp, ...nexthops]);
  }

  /** On a machine of the underlay, when there are routed hypervisors: their VTEPs over both leaves. */
  private async routeToRoutedVteps(ns: string): Promise<void> {
    if (this.leaves) {
      await must('ip', ['-n', ns, 'route', 'add', ROUTED_VTEPS, ...LEAVES.flatMap((j) => ['nexthop', 'via', leafUnderlayIp(j)])]);
    }
  }

  /** Creates a namespace with its loopback up and IPv6 off (quiet: no router solicitations, no MLD). */
  private async addNamespace(ns: string): Promise<void> {
    await must('ip', ['netns', 'add', ns]);
    track('namespaces', ns);
    this.namespaces.push(ns);
    await must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
}
