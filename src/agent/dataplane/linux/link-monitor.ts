import type { AwaitedTaps } from '../dataplane';
import type { CommandRunner } from './command-runner';

/** How long a link seen by the monitor is remembered, for a watch set just after it appeared. */
const RECENT_MS = 10_000;
/** At most this many links remembered (a host creating links in a loop stays bounded). */
const RECENT_MAX = 256;

/**
 * Pure: the link an `ip -o monitor link` line says is there (created or changed; a deletion is
 * not), by name (without its `@peer`) and MAC (lower case); undefined for any other line.
 */
export function linkOfMonitorLine(line: string): { name: string; mac: string } | undefined {
  const m = /^\d+: ([^:@\s]+)(?:@\S*)?: <[^>]*>.*\\\s+link\/ether ([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})\b/.exec(line.trim());
  return m ? { name: m[1], mac: m[2].toLowerCase() } : undefined;
}

/**
 * The tap monitor: tells the agent at once when a tap it waits for shows up (a local port's tap
 * the hypervisor had not created yet: an incoming live migration's, whose QEMU starts after the
 * prepare), rather than at the retry of the ports not in place, whose backoff grows to
 * OVERLAY_BACKOFF_MAX_MS. Owns one `ip -o monitor link` process, started on the first watch of
 * a tap and kept (one started just before the tap appears may subscribe too late to see it).
 * Invariant: `appeared` is called for every event of an awaited link, and once on `watch` when
 * one was seen since the time it gives; the caller coalesces.
 */
export class LinkMonitor {
  private awaited: AwaitedTaps = { names: new Set(), macs: new Set() };
  private onAppeared?: () => void;
  private monitor?: { stop(): void };
  /** Links seen lately, with when: a watch set after a tap appeared (by the end of the pass that looked for it) still sees it. */
  private recent: { name: string; mac: string; at: number }[] = [];

  constructor(
    private readonly runner: CommandRunner,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Watches for these taps (by name, or by MAC), replacing the set watched, and calls
   * `appeared` when one shows up, or at once when one was seen at or after `since` (ms since
   * the epoch: when the caller last read the links).
   */
  watch(awaited: AwaitedTaps, since: number, appeared: () => void): void {
    this.awaited = awaited;
    this.onAppeared = appeared;
    if ((awaited.names.size === 0 && awaited.macs.size === 0) || !this.runner.watch) {
      return;
    }
    this.monitor ??= this.runner.watch('ip', ['-o', 'monitor', 'link'], (line) => {
      const link = linkOfMonitorLine(line);
      if (link) {
        this.seen(link);
      }
    });
    if (this.recent.some((l) => l.at >= since && this.isAwaited(l))) {
      appeared();
    }
  }

  private seen(link: { name: string; mac: string }): void {
    const at = this.now();
    this.recent = [...this.recent.filter((l) => at - l.at < RECENT_MS).slice(1 - RECENT_MAX), { ...link, at }];
    if (this.isAwaited(link)) {
      this.onAppeared?.();
    }
  }

  private isAwaited(link: { name: string; mac: string }): boolean {
    return this.awaited.names.has(link.name) || this.awaited.macs.has(link.mac);
  }

  /** Stops the monitor process. */
  close(): void {
    this.monitor?.stop();
    this.monitor = undefined;
  }
}
