import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, notFound, notFoundWording, OverlayError, type MissingKind } from './errors';

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
