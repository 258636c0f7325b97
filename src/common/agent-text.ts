/** Longest agent-supplied text kept (UTF-16 code units, before the truncation note). */
export const MAX_AGENT_TEXT = 1024;

// Line breaks, tabs and the Unicode line/paragraph separators: a space each (run collapsed).
const BREAKS = /[\t\n\v\f\r\u0085\u2028\u2029]+/g;
// Other C0 and C1 controls, DEL, and the bidirectional overrides/isolates (they can make a log
// line or a terminal show text in another order than it is stored).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// A high surrogate not followed by a low one, or a low one not preceded by a high one: not a
// character, cannot be encoded as UTF-8, and JSON.stringify escapes it (\udXXX) into text that
// strict decoders reject. Without the `u` flag the pattern sees code units, as needed here.
const LONE_SURROGATES = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Makes text from an agent (a NACK's reason) safe to log, store and serve as JSON: hostile input
 * that must always read back. Looks at most 4 x `max` code units of it (so a 1 MiB message costs
 * bounded work), turns line breaks and tabs into spaces, removes other control characters, bidi
 * overrides and lone surrogates, and keeps at most `max` code units (never half of a surrogate
 * pair), followed by a note of the original length when anything was cut. Pure.
 */
export function cleanAgentText(raw: string, max = MAX_AGENT_TEXT): string {
  const head = raw.length > 4 * max ? raw.slice(0, 4 * max) : raw;
  const clean = head.replace(BREAKS, ' ').replace(CONTROLS, '').replace(LONE_SURROGATES, '').trim();
  if (clean.length <= max && head.length === raw.length) {
    return clean;
  }
  let end = Math.min(max, clean.length);
  const last = clean.charCodeAt(end - 1);
  if (end < clean.length && last >= 0xd800 && last <= 0xdbff) {
    end--; // the pair's low half is beyond the cut: leave the pair out whole
  }
  return `${clean.slice(0, end)}… (cut: ${raw.length} characters in all)`;
}
