import { stopTestRedis } from './test-redis';

/** globalTeardown of the medium and system suites: stops the Redis their setup started, if it did. */
export default async function testRedisTeardown(): Promise<void> {
  await stopTestRedis();
}
