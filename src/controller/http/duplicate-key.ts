import { fieldPath } from './schema';

/**
 * Whether `text`, a valid JSON document, certainly names no member twice, known from `parsed`
 * (JSON.parse of it) without a scan of its structure: every member name is followed by a colon
 * whose previous character other than whitespace is a quote, so the text has at least as many
 * such colons as member names (colons inside strings only add to the count), and at least as
 * many member names as `parsed` has keys (a name given twice makes one key). So when the colons
 * are as many as the keys, no name is given twice; otherwise (a duplicate, or a string holding
 * `":`) the scan decides. About a fifth of the scan's time for a port's body; the keys are
 * counted without recursion, so no depth of nesting overflows the stack.
 */
export function certainlyNoDuplicate(text: string, parsed: unknown): boolean {
  let keys = 0;
  const pending: unknown[] = [parsed];
  while (pending.length > 0) {
    const value = pending.pop();
    if (value === null || typeof value !== 'object') {
      continue;
    }
    if (Array.isArray(value)) {
      for (const item of value) {
        if (item !== null && typeof item === 'object') {
          pending.push(item);
        }
      }
    } else {
      for (const key in value) {
        keys++;
        const item = (value as Record<string, unknown>)[key];
        if (item !== null && typeof item === 'object') {
          pending.push(item);
        }
      }
    }
  }
  let colons = 0;
  for (let i = text.indexOf(':'); i >= 0; i = text.indexOf(':', i + 1)) {
    let j = i - 1;
    let c = text.charCodeAt(j);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      c = text.charCodeAt(--j);
    }
    if (c === 0x22 /* " */ && ++colons > keys) {
      return false;
    }
  }
  return colons === keys;
}

/**
 * The path of the first member name given twice in one object of `text`, a valid JSON document
 * (`rules[0].protocol`), or undefined when there is none. JSON.parse keeps the last of the two
 * while another reader (a proxy, an audit of the request) may take the first: like a repeated
 * query parameter or header, a repeated member is refused rather than resolved. Names are
 * compared unescaped (`"a"` and `"\u0061"` are one name). One pass; strings are skipped with
 * indexOf.
 */
export function duplicateKey(text: string): string | undefined {
  /** Per open object: the names seen, the current one, and whether a name comes next; per open array: the index. */
  const stack: ({ names: Set<string>; name: string; expectName: boolean } | { index: number })[] = [];
  const pathOf = (last: string): string => {
    let path = '';
    for (const frame of stack.slice(0, -1)) {
      path = 'names' in frame ? fieldPath(path, frame.name) : fieldPath(path, frame.index);
    }
    return fieldPath(path, last);
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      while (text.charCodeAt(end - 1) === 0x5c /* \ */ && isEscaped(text, end)) {
        end = text.indexOf('"', end + 1);
      }
      if (top && 'names' in top && top.expectName) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (top.names.has(name)) {
          return pathOf(name);
        }
        top.names.add(name);
        top.name = name;
        top.expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push({ names: new Set(), name: '', expectName: true });
    } else if (c === 0x5b /* [ */) {
      stack.push({ index: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */ && top) {
      if ('names' in top) {
        top.expectName = true;
      } else {
        top.index++;
      }
    }
  }
  return undefined;
}

/** Whether the quote at `at` is escaped: an odd number of backslashes before it. */
function isEscaped(text: string, at: number): boolean {
  let backslashes = 0;
  for (let j = at - 1; text.charCodeAt(j) === 0x5c; j--) {
    backslashes++;
  }
  return backslashes % 2 === 1;
}
