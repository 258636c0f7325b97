import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Compares `text` with a golden file; with OVERLAY_UPDATE_GOLDEN=1 it (re)writes the file instead,
 * for review in the diff. A missing file fails, so a golden is never created silently.
 */
export function expectGoldenFile(file: string, text: string): void {
  if (process.env.OVERLAY_UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    return;
  }
  if (!existsSync(file)) {
    throw new Error(`golden file ${file} is missing; create it with OVERLAY_UPDATE_GOLDEN=1 and review it`);
  }
  expect(text).toBe(readFileSync(file, 'utf8'));
}
