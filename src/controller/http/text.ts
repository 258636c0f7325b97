/**
 * Characters no string that enters the API may hold, whatever the field: names, descriptions,
 * inventory strings, ids, query values.
 *
 * - A lone UTF-16 surrogate (`"x\ud800y"` is valid JSON, and `JSON.parse` keeps it) is no
 *   Unicode text: `JSON.stringify` writes it back as an escape that Redis' Lua JSON decoder
 *   refuses, so a record holding one could no longer be changed or deleted.
 * - Control characters (C0 including NUL, DEL, C1) forge lines in logs and terminals and end C
 *   strings early; no field has a use for them (a description is one line).
 * - The line and paragraph separators and the bidirectional embedding, override and isolate
 *   controls make text display as something other than what it is.
 */
export interface ForbiddenCharacter {
  /** UTF-16 offset in the string. */
  index: number;
  /** What it is, for an error message: `the control character U+0000`. */
  what: string;
}

const hex = (code: number): string => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;

/** The first forbidden character of `text`, or undefined when it has none. One pass, no allocation for clean text. */
export function forbiddenCharacter(text: string): ForbiddenCharacter | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) {
      continue;
    }
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      return { index: i, what: `the control character ${hex(c)}` };
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return { index: i, what: `a lone UTF-16 surrogate (${hex(c)})` };
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      return { index: i, what: `a lone UTF-16 surrogate (${hex(c)})` };
    }
    if (c === 0x2028 || c === 0x2029) {
      return { index: i, what: `the line separator ${hex(c)}` };
    }
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) {
      return { index: i, what: `the bidirectional control ${hex(c)}` };
    }
  }
  return undefined;
}
