import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, MAX_ERROR_FIELD, MAX_ERROR_MESSAGE, notFound, notFoundWording, OverlayError, type MissingKind } from './errors';

const KINDS: MissingKind[] = ['tenant', 'segment', 'host', 'port', 'securityGroup', 'migration', 'token', 'mirrorSession'];

/** Every source file of the controller (the Lua scripts live in them as template strings). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('notFound', () => {
  it('answers `no <kind> <id>` with its code, on field id unless told', () => {
    expect(notFound('securityGroup', 'g-1')).toEqual(new OverlayError(ErrorCode.SecurityGroupNotFound, 'no security group g-1', { field: 'id' }));
    expect(notFound('segment', 's-1', 'ports[3].segmentId').toJSON()).toEqual({ code: ErrorCode.SegmentNotFound, message: 'no segment s-1', field: 'ports[3].segmentId' });
  });

  it('is worded as the scripts word their not-found refusals, so a missing object reads the same from either', () => {
    const byCode = new Map(KINDS.map((kind) => [notFoundWording(kind).code as string, notFoundWording(kind).prefix]));
    const found: string[] = [];
    for (const file of sources(join(__dirname))) {
      // fail('SEGMENT_NOT_FOUND', 'id', 'no segment ' .. id)
      for (const m of readFileSync(file, 'utf8').matchAll(/fail\('([A-Z_]+_NOT_FOUND)', [^,]+, '([^']*)' \.\./g)) {
        found.push(m[1]);
        expect({ file, code: m[1], wording: m[2] }).toEqual({ file, code: m[1], wording: byCode.get(m[1]) });
      }
    }
    // The check above found the scripts (it would pass on none).
    expect(new Set(found)).toEqual(new Set(['TENANT_NOT_FOUND', 'SEGMENT_NOT_FOUND', 'HOST_NOT_FOUND', 'PORT_NOT_FOUND', 'SECURITY_GROUP_NOT_FOUND', 'MIGRATION_NOT_FOUND', 'TOKEN_NOT_FOUND', 'MIRROR_SESSION_NOT_FOUND']));
  });
});

describe('OverlayError', () => {
  it('bounds what it quotes: a message and a field made of hostile input are cut, saying how much', () => {
    const huge = 'a'.repeat(70_000);
    const error = new OverlayError(ErrorCode.InvalidMac, `mac must be a MAC address, got ${JSON.stringify(huge)}`, { field: `ports[0].${huge}` });
    expect(error.message.length).toBeLessThan(MAX_ERROR_MESSAGE + 40);
    expect(error.message).toMatch(/^mac must be a MAC address, got "a+\.\.\. \(69\d{3} more characters\)$/);
    expect(error.field!.length).toBeLessThan(MAX_ERROR_FIELD + 40);
    expect(error.field).toMatch(/^ports\[0\]\.a+\.\.\. \(69\d{3} more characters\)$/);
  });

  it('keeps a message and a field within the bounds as they are', () => {
    const message = 'm'.repeat(MAX_ERROR_MESSAGE);
    const field = 'f'.repeat(MAX_ERROR_FIELD);
    expect(new OverlayError(ErrorCode.InvalidValue, message, { field }).toJSON()).toEqual({ code: ErrorCode.InvalidValue, message, field });
  });
});
