import { ErrorCode, OverlayError } from '../errors';
import { array, boolean, custom, fieldPath, integer, nullable, object, oneOf, optional, string, stringOrNumber } from './schema';
import { parseIp, parseMac } from '../model/value-parsers';

function refused(fn: () => unknown): { code: ErrorCode; field: string | undefined } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OverlayError);
    return { code: (err as OverlayError).code, field: (err as OverlayError).field };
  }
  throw new Error('expected an OverlayError, nothing was thrown');
}

/** A body shaped like a port batch, to check the paths of nested errors. */
const portSchema = object({
  segmentId: string({ min: 1, max: 64 }),
  mac: optional(custom(parseMac, { type: 'string' }, [ErrorCode.InvalidMac, ErrorCode.MulticastMac])),
  ips: optional(array(custom(parseIp, { type: 'string' }, [ErrorCode.InvalidIp]), { max: 4 })),
  vmId: optional(nullable(string({ min: 1, max: 8 }))),
});
const batchSchema = object({ ports: array(portSchema, { min: 1, max: 5 }) });

const port = (extra: Record<string, unknown> = {}) => ({ segmentId: 's', ...extra });
const batch = (...ports: unknown[]) => ({ ports });

describe('fieldPath', () => {
  it('joins keys with dots and indexes with brackets, starting from the body', () => {
    expect(fieldPath('', 'ports')).toBe('ports');
    expect(fieldPath('ports', 3)).toBe('ports[3]');
    expect(fieldPath('ports[3]', 'ips')).toBe('ports[3].ips');
    expect(fieldPath('ports[3].ips', 1)).toBe('ports[3].ips[1]');
    expect(fieldPath('', 0)).toBe('[0]');
  });
});

describe('object', () => {
  it('returns the parsed fields and leaves absent optional ones out', () => {
    expect(batchSchema.parse(batch(port(), port({ mac: '02-00-00-00-00-AA', ips: ['FD00::1'], vmId: null })), '')).toEqual({
      ports: [{ segmentId: 's' }, { segmentId: 's', mac: '02:00:00:00:00:aa', ips: ['fd00::1'], vmId: null }],
    });
  });

  it('refuses an unknown field with UNKNOWN_FIELD and its path', () => {
    expect(refused(() => batchSchema.parse({ ports: [port()], extra: 1 }, ''))).toEqual({ code: ErrorCode.UnknownField, field: 'extra' });
    expect(refused(() => batchSchema.parse(batch(port(), port(), port(), port({ vlan: 5 })), ''))).toEqual({ code: ErrorCode.UnknownField, field: 'ports[3].vlan' });
  });

  it('refuses an unknown field even when its value is null or it looks like an inherited property', () => {
    expect(refused(() => portSchema.parse({ segmentId: 's', hostId: null }, ''))).toEqual({ code: ErrorCode.UnknownField, field: 'hostId' });
    expect(refused(() => portSchema.parse(JSON.parse('{"segmentId":"s","__proto__":{"x":1}}'), ''))).toEqual({ code: ErrorCode.UnknownField, field: '__proto__' });
    expect(refused(() => portSchema.parse({ segmentId: 's', toString: 'x' }, ''))).toEqual({ code: ErrorCode.UnknownField, field: 'toString' });
  });

  it('refuses a missing required field with MISSING_FIELD and its path', () => {
    expect(refused(() => batchSchema.parse({}, ''))).toEqual({ code: ErrorCode.MissingField, field: 'ports' });
    expect(refused(() => batchSchema.parse(batch(port(), { mac: '02:00:00:00:00:01' }), ''))).toEqual({ code: ErrorCode.MissingField, field: 'ports[1].segmentId' });
  });

  it('treats null as a value, not as absence: a required field given null is a type error', () => {
    expect(refused(() => portSchema.parse({ segmentId: null }, ''))).toEqual({ code: ErrorCode.InvalidType, field: 'segmentId' });
    expect(refused(() => portSchema.parse({ segmentId: 's', ips: null }, ''))).toEqual({ code: ErrorCode.InvalidType, field: 'ips' });
  });

  it.each([
    ['null', null],
    ['an array', [port()]],
    ['a string', '{"ports":[]}'],
    ['a number', 42],
  ])('refuses %s where an object is expected; the body itself has no field', (_what, value) => {
    expect(refused(() => batchSchema.parse(value, ''))).toEqual({ code: ErrorCode.InvalidType, field: undefined });
    expect(refused(() => batchSchema.parse(batch(port(), value), ''))).toEqual({ code: ErrorCode.InvalidType, field: 'ports[1]' });
  });

  it('reports the first problem in field order, unknown fields before anything else', () => {
    expect(refused(() => portSchema.parse({ mac: 'nope', extra: 1 }, ''))).toEqual({ code: ErrorCode.UnknownField, field: 'extra' });
    expect(refused(() => portSchema.parse({ mac: 'nope' }, ''))).toEqual({ code: ErrorCode.MissingField, field: 'segmentId' });
  });

  it('publishes a JSON Schema that refuses additional properties and lists the required ones', () => {
    expect(portSchema.json).toMatchObject({ type: 'object', additionalProperties: false, required: ['segmentId'] });
    expect(Object.keys(portSchema.json.properties as object)).toEqual(['segmentId', 'mac', 'ips', 'vmId']);
    expect(object({ a: optional(boolean()) }).json).not.toHaveProperty('required');
  });
});

describe('nested paths', () => {
  it('names a wrong type deep inside arrays of objects, like ports[3].ips[1]', () => {
    const body = batch(port(), port(), port(), port({ ips: ['10.0.0.1', 7] }));
    expect(refused(() => batchSchema.parse(body, ''))).toEqual({ code: ErrorCode.InvalidType, field: 'ports[3].ips[1]' });
  });

  it('names a bad value deep inside arrays of objects with the domain parser’s code', () => {
    expect(refused(() => batchSchema.parse(batch(port(), port({ ips: ['10.0.0.1', '10.0.0.300'] })), ''))).toEqual({ code: ErrorCode.InvalidIp, field: 'ports[1].ips[1]' });
    expect(refused(() => batchSchema.parse(batch(port(), port(), port({ mac: 'ff:ff:ff:ff:ff:ff' })), ''))).toEqual({ code: ErrorCode.MulticastMac, field: 'ports[2].mac' });
  });

  it('names a wrong container type: ips as a string, ports as an object', () => {
    expect(refused(() => batchSchema.parse(batch(port({ ips: '10.0.0.1' })), ''))).toEqual({ code: ErrorCode.InvalidType, field: 'ports[0].ips' });
    expect(refused(() => batchSchema.parse({ ports: { 0: port() } }, ''))).toEqual({ code: ErrorCode.InvalidType, field: 'ports' });
  });

  it('names the array itself when it has too few or too many items', () => {
    expect(refused(() => batchSchema.parse(batch(), ''))).toEqual({ code: ErrorCode.InvalidValue, field: 'ports' });
    expect(refused(() => batchSchema.parse(batch(port({ ips: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'] })), ''))).toEqual({
      code: ErrorCode.InvalidValue,
      field: 'ports[0].ips',
    });
  });
});

describe('string', () => {
  const name = string({ min: 1, max: 5, pattern: /^[a-z]+$/, code: ErrorCode.InvalidName });

  it('accepts a matching string', () => {
    expect(name.parse('abc', 'name')).toBe('abc');
  });

  it('refuses a non-string with INVALID_TYPE', () => {
    for (const value of [5, true, null, [], {}]) {
      expect(refused(() => name.parse(value, 'name'))).toEqual({ code: ErrorCode.InvalidType, field: 'name' });
    }
  });

  it('refuses a bad length or pattern with its own code', () => {
    for (const value of ['', 'abcdef', 'ab1']) {
      expect(refused(() => name.parse(value, 'name'))).toEqual({ code: ErrorCode.InvalidName, field: 'name' });
    }
  });

  it('defaults to INVALID_VALUE', () => {
    expect(refused(() => string({ max: 2 }).parse('abc', 'x'))).toEqual({ code: ErrorCode.InvalidValue, field: 'x' });
  });
});

describe('integer', () => {
  const vni = integer({ min: 1, max: 16_777_215, code: ErrorCode.VniOutOfRange });

  it('accepts integers within the bounds, inclusive', () => {
    expect(vni.parse(1, 'vni')).toBe(1);
    expect(vni.parse(16_777_215, 'vni')).toBe(16_777_215);
  });

  it('refuses values outside the bounds with its own code', () => {
    for (const value of [0, -1, 16_777_216, Number.MAX_SAFE_INTEGER]) {
      expect(refused(() => vni.parse(value, 'vni'))).toEqual({ code: ErrorCode.VniOutOfRange, field: 'vni' });
    }
  });

  it('refuses fractions, numeric strings and other non-integers with INVALID_TYPE', () => {
    for (const value of [1.5, '5000', NaN, Infinity, null, true, [5000], { vni: 5000 }]) {
      expect(refused(() => vni.parse(value, 'vni'))).toEqual({ code: ErrorCode.InvalidType, field: 'vni' });
    }
  });
});

describe('optional and nullable', () => {
  const clearable = optional(nullable(integer({ min: 1, max: 10 })));

  it('passes undefined through optional and keeps null through nullable', () => {
    expect(clearable.parse(undefined, 'n')).toBeUndefined();
    expect(clearable.parse(null, 'n')).toBeNull();
    expect(clearable.parse(3, 'n')).toBe(3);
    expect(clearable.optional).toBe(true);
  });

  it('does not let nullable alone make a field optional', () => {
    const schema = object({ n: nullable(integer({ min: 1, max: 10 })) });
    expect(refused(() => schema.parse({}, ''))).toEqual({ code: ErrorCode.MissingField, field: 'n' });
    expect(schema.parse({ n: null }, '')).toEqual({ n: null });
  });

  it('refuses null where only optional is allowed', () => {
    expect(refused(() => optional(integer({ min: 1, max: 10 })).parse(null, 'n'))).toEqual({ code: ErrorCode.InvalidType, field: 'n' });
  });
});

describe('boolean, oneOf and custom', () => {
  it('accepts only true and false as booleans', () => {
    expect(boolean().parse(false, 'b')).toBe(false);
    expect(refused(() => boolean().parse('true', 'b'))).toEqual({ code: ErrorCode.InvalidType, field: 'b' });
    expect(refused(() => boolean().parse(0, 'b'))).toEqual({ code: ErrorCode.InvalidType, field: 'b' });
  });

  it('accepts only the listed strings', () => {
    const mode = oneOf(['active', 'standby'] as const);
    expect(mode.parse('standby', 'mode')).toBe('standby');
    expect(refused(() => mode.parse('Active', 'mode'))).toEqual({ code: ErrorCode.InvalidValue, field: 'mode' });
    expect(refused(() => mode.parse(1, 'mode'))).toEqual({ code: ErrorCode.InvalidType, field: 'mode' });
  });

  it('hands only strings to a domain parser, with the path as the field', () => {
    const mac = custom(parseMac, { type: 'string' }, [ErrorCode.InvalidMac, ErrorCode.MulticastMac]);
    expect(mac.parse('02-00-00-00-00-0A', 'ports[1].mac')).toBe('02:00:00:00:00:0a');
    expect(refused(() => mac.parse(2, 'ports[1].mac'))).toEqual({ code: ErrorCode.InvalidType, field: 'ports[1].mac' });
    expect(refused(() => mac.parse('02:00', 'ports[1].mac'))).toEqual({ code: ErrorCode.InvalidMac, field: 'ports[1].mac' });
  });
});

describe('stringOrNumber', () => {
  const protocol = stringOrNumber(oneOf(['tcp', 'any'] as const), integer({ min: 0, max: 255 }), 'by name or number');

  it('parses each type with its own schema, and documents both', () => {
    expect(protocol.parse('tcp', 'p')).toBe('tcp');
    expect(protocol.parse(6, 'p')).toBe(6);
    expect(protocol.json).toEqual({ anyOf: [{ type: 'string', enum: ['tcp', 'any'] }, { type: 'integer', minimum: 0, maximum: 255 }], description: 'by name or number' });
  });

  it('refuses each type as its schema does, and any other type as INVALID_TYPE', () => {
    expect(refused(() => protocol.parse('gre', 'rules[0].protocol'))).toEqual({ code: ErrorCode.InvalidValue, field: 'rules[0].protocol' });
    expect(refused(() => protocol.parse(256, 'rules[0].protocol'))).toEqual({ code: ErrorCode.InvalidValue, field: 'rules[0].protocol' });
    expect(refused(() => protocol.parse(null, 'rules[0].protocol'))).toEqual({ code: ErrorCode.InvalidType, field: 'rules[0].protocol' });
  });
});

describe('every string enters through checkText', () => {
  const rule = object({
    name: string({ min: 1, max: 63, pattern: /^[a-z]+$/ }),
    description: optional(nullable(string({ max: 255 }))),
    direction: optional(oneOf(['ingress', 'egress'] as const)),
    protocol: optional(stringOrNumber(oneOf(['tcp', 'udp'] as const), integer({ min: 0, max: 255 }))),
    ips: optional(array(custom(parseIp, { type: 'string' }, [ErrorCode.InvalidIp]), { max: 4 })),
  });
  const hostile = ['x\ud800y', '\udc00', 'a\u0000b', 'line\nforged', 'a\u007f', 'a\u0085', 'a\u2028b', 'evil\u202etxt'];

  it.each(hostile.map((h) => [JSON.stringify(h), h]))('refuses %s in any string field with INVALID_CHARACTER and its path', (_name, h) => {
    expect(refused(() => rule.parse({ name: h }, ''))).toEqual({ code: ErrorCode.InvalidCharacter, field: 'name' });
    expect(refused(() => rule.parse({ name: 'a', description: h }, ''))).toEqual({ code: ErrorCode.InvalidCharacter, field: 'description' });
    expect(refused(() => rule.parse({ name: 'a', direction: `ingress${h}` }, ''))).toEqual({ code: ErrorCode.InvalidCharacter, field: 'direction' });
    expect(refused(() => rule.parse({ name: 'a', protocol: `tcp${h}` }, ''))).toEqual({ code: ErrorCode.InvalidCharacter, field: 'protocol' });
    expect(refused(() => rule.parse({ name: 'a', ips: ['10.0.0.1', `10.0.0.2${h}`] }, ''))).toEqual({ code: ErrorCode.InvalidCharacter, field: 'ips[1]' });
    expect(refused(() => string().parse(h, ''))).toEqual({ code: ErrorCode.InvalidCharacter, field: undefined });
  });

  it('says what it found and where', () => {
    expect(() => string().parse('ab\ud800', 'description')).toThrow('description holds a lone UTF-16 surrogate (U+D800) at position 2');
  });

  it('keeps well-formed text, astral characters included', () => {
    expect(rule.parse({ name: 'a', description: 'Zürich 🚀 東京' }, '')).toEqual({ name: 'a', description: 'Zürich 🚀 東京' });
  });
});

describe('codes: what a schema can refuse with (the OpenAPI document lists them per operation)', () => {
  const name = string({ min: 1, max: 8, code: ErrorCode.InvalidName });
  const schema = object({ name, vni: optional(integer({ min: 1, max: 9, code: ErrorCode.VniOutOfRange })), ports: optional(array(portSchema, { max: 1 })) });

  it("gathers its parts' codes, each once, and those of its own checks", () => {
    expect(new Set(name.codes)).toEqual(new Set([ErrorCode.InvalidType, ErrorCode.InvalidCharacter, ErrorCode.InvalidName]));
    expect(new Set(schema.codes)).toEqual(
      new Set([ErrorCode.InvalidType, ErrorCode.UnknownField, ErrorCode.MissingField, ErrorCode.InvalidCharacter, ErrorCode.InvalidName, ErrorCode.VniOutOfRange, ErrorCode.InvalidValue, ErrorCode.InvalidMac, ErrorCode.MulticastMac, ErrorCode.InvalidIp]),
    );
    expect(schema.codes.length).toBe(new Set(schema.codes).size);
    // An object whose fields are all optional never misses one.
    expect(object({ vmId: optional(name) }).codes).not.toContain(ErrorCode.MissingField);
  });

  const bad: unknown[] = [
    null,
    [],
    'x',
    {},
    { name: 'toolongname' },
    { name: 'a', extra: 1 },
    { name: 'a\u0000' },
    { name: 'a', vni: 10 },
    { name: 'a', vni: 1.5 },
    { name: 'a', ports: [{}] },
    { name: 'a', ports: [{ segmentId: 's' }, { segmentId: 's' }] },
    { name: 'a', ports: [{ segmentId: 's', mac: '01:00:5e:00:00:01' }] },
    { name: 'a', ports: [{ segmentId: 's', mac: 'zz' }] },
    { name: 'a', ports: [{ segmentId: 's', ips: ['300.0.0.1'] }] },
    { name: 'a', ports: [{ segmentId: 's', vmId: 'waytoolongvm' }] },
  ];

  it.each(bad.map((body) => [JSON.stringify(body), body]))('refuses %s with one of them', (_name, body) => {
    expect(schema.codes).toContain(refused(() => schema.parse(body, '')).code);
  });
});
