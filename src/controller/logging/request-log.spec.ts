import { requestIdOf } from './request-log';

describe('requestIdOf', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it("takes a client's well-formed x-request-id as it is", () => {
    for (const id of ['abc', '0f8fad5b-d9cb-469f-a165-70867728950e', 'trace:4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7', 'YWJj+/=_~.-', 'x'.repeat(128)]) {
      expect(requestIdOf({ headers: { 'x-request-id': id } })).toBe(id);
    }
  });

  it('makes a new one when there is none, or it is too long, has unsafe characters or comes twice', () => {
    for (const given of [undefined, '', 'x'.repeat(129), 'a b', 'a"b', 'a\nb', '{"level":"fatal"}', 'ä', ['a', 'b']]) {
      expect(requestIdOf({ headers: { 'x-request-id': given } })).toMatch(UUID);
    }
  });
});
