import { prng } from '../../../test/support/prng';
import { Histogram, Registry } from 'prom-client';
import { KeyedHistogram } from './keyed-histogram';

describe('KeyedHistogram', () => {
  const config = (registry: Registry) => ({
    name: 'overlay_test_duration_seconds',
    help: 'a test histogram',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [registry],
  });

  it("is scraped line for line as prom-client's own histogram given the same observations, a reset included", async () => {
    const plainRegistry = new Registry();
    const keyedRegistry = new Registry();
    const plain = new Histogram(config(plainRegistry));
    const keyed = new KeyedHistogram(config(keyedRegistry));
    const routes = ['/v1/ports', '/v1/ports/:portId', '/v1/segments'];
    const methods = ['GET', 'POST', 'DELETE'];
    const statuses = [200, 201, 404, 503];
    const next = prng(11);
    const rnd = (n: number): number => Math.floor(next() * n);
    // Values on the bounds, between them, above the last one, and 0.
    const values = [0, 0.001, 0.0011, 0.0025, 0.004, 0.05, 0.3, 1, 2.5, 29.9, 30, 120, 121, 5000];
    const observe = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const labels = { method: methods[rnd(3)], route: routes[rnd(3)], status: String(statuses[rnd(4)]) };
        const value = rnd(2) ? values[rnd(values.length)] : rnd(100_000) / 1000;
        plain.observe(labels, value);
        keyed.observeAs(`${labels.method} ${labels.route} ${labels.status}`, () => labels, value);
      }
    };
    observe(5_000);
    expect(await keyedRegistry.metrics()).toBe(await plainRegistry.metrics());
    expect(await keyedRegistry.metrics()).toMatch(/overlay_test_duration_seconds_count\{method="POST",route="\/v1\/ports",status="201"\} \d+/);
    plain.reset();
    keyed.reset();
    observe(2_000);
    expect(await keyedRegistry.metrics()).toBe(await plainRegistry.metrics());
  });

  it('refuses what prom-client refuses: a value that is not a number, a label it does not have', () => {
    const keyed = new KeyedHistogram(config(new Registry()));
    keyed.observeAs('GET / 200', () => ({ method: 'GET', route: '/', status: '200' }), 0.1);
    expect(() => keyed.observeAs('GET / 200', () => ({ method: 'GET', route: '/', status: '200' }), NaN)).toThrow(TypeError);
    expect(() => keyed.observeAs('other', () => ({ method: 'GET', host: 'x' }) as never, 0.1)).toThrow(/label/i);
  });
});
