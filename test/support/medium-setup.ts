import { ensureTestRedis } from './test-redis';

/** globalSetup of the medium suite (jest.config.js): its Redis, checked once (test-redis.ts). */
export default async function mediumSetup(): Promise<void> {
  await ensureTestRedis('medium');
}
