/**
 * What overlayctl prints: tables for people, JSON for scripts (`--json`: the API's own objects,
 * one document on stdout), progress and errors on stderr so stdout stays parseable.
 */

/** One line of text for a cell: controls and line breaks out (a value must not forge a row). */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') {
    return '-';
  }
  const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g, ' ');
}

/** Cut to `max` characters, with an ellipsis. */
export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

/** Left-aligned columns two spaces apart; the last one is not padded. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => cell(c.value(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
  return cells.map((line) => line.map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

/** `key: value` lines, for one object. */
export function details(pairs: readonly [string, unknown][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${cell(v)}`).join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/**
 * A status line on stderr: rewritten in place on a terminal, else printed when it changes (a log
 * or a test reads every step once).
 */
export class Progress {
  private last = '';
  private readonly tty = process.stderr.isTTY === true;

  update(text: string): void {
    if (text === this.last) {
      return;
    }
    this.last = text;
    process.stderr.write(this.tty ? `\r\x1b[2K${text}` : `${text}\n`);
  }

  done(): void {
    if (this.tty && this.last) {
      process.stderr.write('\n');
    }
    this.last = '';
  }
}
