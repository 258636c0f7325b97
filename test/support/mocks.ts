import type { ErrorCode } from '../../src/controller/errors';

/**
 * For unit specs of services: a stand-in for a repository (or any collaborator) with the
 * methods the spec names, each a jest mock, typed as the real class so the service takes it.
 */
export function mockOf<T>(methods: Partial<Record<keyof T, jest.Mock>>): T & { [K in keyof T]: jest.Mock } {
  return methods as T & { [K in keyof T]: jest.Mock };
}

/** A rejection with the domain error a client would get: its code and the field it names. */
export async function expectOverlayError(promise: Promise<unknown>, code: ErrorCode, field?: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ name: 'OverlayError', code, field });
}
