/**
 * Whether a route answers while the store is in recovery: reads, the recovery's own routes, and
 * tokens (not network state, and an admin may need one to recover: the store may have lost them).
 * Every other write is refused with 503 STORE_RECOVERY (recovery.guard.ts; the OpenAPI lists it).
 */
export function writesDuringRecovery(method: string, path: string): boolean {
  return method === 'GET' || method === 'HEAD' || path.startsWith('/v1/admin/recovery') || path.startsWith('/v1/tokens');
}
