import type { CommandRunner } from './command-runner';
import type { KernelReader } from './kernel-view';

/**
 * The arrival monitor: reports a migrating VM's first frame on the tap prepared for it here. The
 * bridge learns the VM's MAC on the tap, which `bridge monitor fdb` prints as a new entry, and
 * `bridge fdb show` lists. Owns the one monitor process (started on the first watch, stopped
 * by close). Invariant: a tap is reported at most once per watch that names it.
 */
export class ArrivalMonitor {
  /** Taps watched for a migrating VM's arrival -> its MAC (lower case). */
  private watchedTaps = new Map<string, string>();
  private onArrival?: (tap: string) => void;
  private fdbMonitor?: { stop(): void };
  private lastArrivalRead = 0;

  constructor(
    private readonly runner: CommandRunner,
    private readonly kernel: KernelReader,
  ) {}

  /**
   * Watches these taps (tap -> the MAC expected on it), replacing the set watched, and calls
   * `arrived(tap)` once per tap when its MAC shows up. The monitor stays up once started (a
   * monitor started just before the VM lands may subscribe too late to see it), and while taps
   * are watched every call also reads the learned entries once (at most every 200 ms: the agent
   * calls this after every realize, revision markers included), so an arrival the monitor missed
   * is seen at the latest a marker later.
   */
  watch(ports: ReadonlyMap<string, string>, arrived: (tap: string) => void): void {
    this.watchedTaps = new Map([...ports].map(([tap, mac]) => [tap, mac.toLowerCase()]));
    this.onArrival = arrived;
    if (this.watchedTaps.size === 0 || !this.runner.watch) {
      return;
    }
    this.fdbMonitor ??= this.runner.watch('bridge', ['monitor', 'fdb'], (line) => {
      // `<mac> dev <port> master <bridge> ...` for a learned entry; removals start with `Deleted`.
      // The MAC in any case; the tap's name as it is (an adopted tap may be named in capitals).
      const m = /^([0-9a-f]{2}(?::[0-9a-f]{2}){5}) dev (\S+) master /i.exec(line.trim());
      if (m) {
        this.learned(m[2], m[1].toLowerCase());
      }
    });
    const now = Date.now();
    if (now - this.lastArrivalRead >= 200) {
      this.lastArrivalRead = now;
      void this.kernel
        .fdb()
        .then((records) => records.forEach((r) => r.ifname && r.master && this.learned(r.ifname, r.mac.toLowerCase())))
        .catch(() => undefined);
    }
  }

  private learned(tap: string, mac: string): void {
    if (this.watchedTaps.get(tap) === mac) {
      this.watchedTaps.delete(tap);
      this.onArrival?.(tap);
    }
  }

  /** Stops the monitor process. */
  close(): void {
    this.fdbMonitor?.stop();
    this.fdbMonitor = undefined;
  }
}
