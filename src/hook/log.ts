import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export type Level = 'info' | 'warning' | 'error';

/** One line per thing the hook did or decided not to do. */
export type HookLog = (level: Level, message: string) => void;

/** The syslog tag (`journalctl -t overlay-libvirt-hook`). */
export const SYSLOG_TAG = 'overlay-libvirt-hook';

/** Control characters (a guest name may hold a newline) shown escaped, so one call stays one line. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 2000);
}

/**
 * `syslog`: logger(1), daemon facility, bounded to 1 s; a file: appended to (each line one
 * write, so concurrent hooks do not interleave within a line). Whatever cannot be logged there
 * goes to stderr, which libvirt keeps when a hook fails.
 */
export function hookLog(target: string): HookLog {
  return (level, message) => {
    const line = oneLine(message);
    try {
      if (target === 'syslog') {
        const priority = `daemon.${level === 'error' ? 'err' : level}`;
        const run = spawnSync('logger', ['-t', SYSLOG_TAG, '-p', priority, '--', line], { timeout: 1000, stdio: 'ignore' });
        if (run.error || run.status !== 0) {
          throw run.error ?? new Error(`logger exited ${run.status}`);
        }
      } else {
        appendFileSync(target, `${new Date().toISOString()} ${level} ${line}\n`, { mode: 0o640 });
      }
    } catch {
      process.stderr.write(`${SYSLOG_TAG}: ${level}: ${line}\n`);
    }
  };
}
