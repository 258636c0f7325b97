import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/*
 * A process's memory and CPU as Linux accounts them (/proc/<pid>/status and /proc/<pid>/stat),
 * for the benchmarks that measure a child process: the controller (controller-process.ts) and the
 * agent (agent-resources.ts).
 */

/** Resident and peak resident memory, kB (VmRSS and VmHWM of /proc/<pid>/status). */
export interface ProcessMemory {
  rssKb: number;
  hwmKb: number;
}

/** VmRSS and VmHWM of a /proc/<pid>/status text; NaN for a field it lacks (a kernel thread has none). */
export function parseStatusMemory(status: string): ProcessMemory {
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

/**
 * CPU time in clock ticks from a /proc/<pid>/stat line: the process's own (utime, stime) and
 * that of its children it waited for (cutime, cstime: the `ip`, `bridge`, `nft` and `tc` an agent
 * runs are reaped as they exit, so their time lands there).
 */
export interface CpuTicks {
  self: number;
  children: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may hold spaces and
 * parentheses itself, so the fields are counted from the last `)`: after it come state (field 3),
 * ..., utime (14), stime (15), cutime (16), cstime (17).
 */
export function parseStatCpu(stat: string): CpuTicks {
  const close = stat.lastIndexOf(')');
  if (close < 0) {
    throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`);
  }
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 (state): field n is fields[n - 3].
  const at = (n: number): number => {
    const value = Number(fields[n - 3]);
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`/proc/<pid>/stat field ${n} is not a tick count: ${fields[n - 3]}`);
    }
    return value;
  };
  return { self: at(14) + at(15), children: at(16) + at(17) };
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; USER_HZ, 100 on Linux, if getconf is missing). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** A process's memory now; undefined once it is gone. */
export function processMemory(pid: number): ProcessMemory | undefined {
  try {
    return parseStatusMemory(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds a process used so far, its own and its reaped children's; undefined once it is gone. */
export function processCpu(pid: number): { self: number; children: number } | undefined {
  try {
    const ticks = parseStatCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const hz = clockTicksPerSecond();
    return { self: ticks.self / hz, children: ticks.children / hz };
  } catch {
    return undefined;
  }
}

/** CPU used between two readings over `wallMs`, as a percentage of one core. */
export function cpuPercentOfOneCore(beforeSeconds: number, afterSeconds: number, wallMs: number): number {
  return wallMs > 0 ? ((afterSeconds - beforeSeconds) * 100_000) / wallMs : NaN;
}

/**
 * A counter of /proc/net/netstat (pairs of lines: `<Group>: <names...>` then `<Group>: <values...>`),
 * e.g. TcpExt ListenOverflows: connections a listener's full accept queue dropped, machine-wide
 * (this network namespace). NaN when the text lacks it.
 */
export function parseNetstatCounter(text: string, group: string, name: string): number {
  const lines = text.split('\n').filter((line) => line.startsWith(`${group}:`));
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/).slice(1);
    const values = lines[i + 1].split(/\s+/).slice(1);
    const at = names.indexOf(name);
    if (at >= 0 && at < values.length) {
      return Number(values[at]);
    }
  }
  return NaN;
}

/** TcpExt ListenOverflows now (NaN where /proc/net/netstat cannot be read). */
export function listenOverflows(): number {
  try {
    return parseNetstatCounter(readFileSync('/proc/net/netstat', 'utf8'), 'TcpExt', 'ListenOverflows');
  } catch {
    return NaN;
  }
}
