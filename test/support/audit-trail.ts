/**
 * "Nothing changed but the audit trail" for dumps of a deployment (Harness.dump): a refused call
 * (401, 403) is recorded in the refusals' stream (keys.deniedEvents()) and changes nothing else.
 * Tests say so with `auditTrailGrowth`, which checks every other key is as it was and returns
 * what the stream gained, for the test to assert on; a test that ignored the key would miss a write.
 */
export interface AuditEntry {
  id: string;
  fields: Record<string, string>;
}

/** The entries of the stream `key` in a dump, oldest first. */
export function streamEntries(dump: Record<string, string>, key: string): AuditEntry[] {
  const raw = dump[key];
  const entries = raw === undefined ? [] : (JSON.parse(raw) as [string, string[]][]);
  return entries.map(([id, list]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) {
      fields[list[i]] = list[i + 1];
    }
    return { id, fields };
  });
}

/**
 * The entries the audit trail's stream `key` gained from `before` to `after`, after checking that
 * every other key is unchanged and that the stream only grew (its earlier entries are all still
 * there, as they were).
 */
export function auditTrailGrowth(before: Record<string, string>, after: Record<string, string>, key: string): AuditEntry[] {
  const rest = (dump: Record<string, string>) => Object.fromEntries(Object.entries(dump).filter(([k]) => k !== key));
  expect(rest(after)).toStrictEqual(rest(before));
  const old = streamEntries(before, key);
  const now = streamEntries(after, key);
  expect(now.slice(0, old.length)).toStrictEqual(old);
  return now.slice(old.length);
}
