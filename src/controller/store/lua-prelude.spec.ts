import { keysFor, luaKeyFunctions } from './keys';
import { luaRecoveryGuard, scriptSource } from './lua-prelude';

/** The source a mutation script runs: only the key functions it calls, the same names as keysFor. */
describe('scriptSource', () => {
  const definedKeys = (lua: string) => [...lua.matchAll(/^K\.(\w+) = function/gm)].map((m) => m[1]).sort();

  it('defines the key functions the prelude and the body call, and no others', () => {
    const source = scriptSource(`return redis.call('HGET', K.ports(), ARGV[3]) or K.hostPorts('h')`);
    // The prelude's commit and audit name the revision, the change log and the audit trail.
    expect(definedKeys(source)).toEqual(['changeLog', 'events', 'ports', 'hostPorts', 'revision'].sort());
    expect(source.indexOf('local K = {}')).toBeLessThan(source.indexOf('local NOW'));
  });

  it('puts the recovery guard, and the keys it reads, before a body that makes a revision, and only then', () => {
    const writes = scriptSource(`return commit({ op('tenant', 't', '{}') })`);
    expect(writes).toContain(luaRecoveryGuard);
    expect(definedKeys(writes)).toEqual(expect.arrayContaining(['epoch', 'recovery']));
    const reads = scriptSource(`return 1`);
    expect(reads).not.toContain(luaRecoveryGuard);
    expect(definedKeys(reads)).not.toContain('recovery');
  });

  it('defines every key function for a body that picks one by name', () => {
    expect(definedKeys(scriptSource(`return K[ARGV[3]]()`))).toEqual(Object.keys(keysFor('p')).filter((k) => k !== 'base').sort());
  });

  it('makes each key as keysFor does, with and without an id', () => {
    const lua = luaKeyFunctions('K.revision() K.hostPorts(x)');
    const keys = keysFor('p');
    expect(lua).toContain(`K.revision = function() return P .. '${keys.revision().slice(keys.base.length)}' end`);
    expect(lua).toMatch(/K\.hostPorts = function\(id\) return P \.\. '[^']*' \.\. id \.\. '[^']*' end/);
  });
});
