import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { AppModule, buildOpenApiDocument } from '../app.module';
import { loadConfig } from '../config';
import { querySpecOf } from './query';

/** Every route of the API, read from the controllers' decorators, with the query parameters it declares. */
function routes(): { method: string; path: string; query: string[] }[] {
  const config = loadConfig({ OVERLAY_GRPC_INSECURE: 'true' });
  const out: { method: string; path: string; query: string[] }[] = [];
  for (const controller of AppModule.forConfig(config).controllers ?? []) {
    const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
    const proto = (controller as { prototype: Record<string, unknown> }).prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const handler = proto[name];
      if (name === 'constructor' || typeof handler !== 'function' || Reflect.getMetadata(PATH_METADATA, handler) === undefined) {
        continue;
      }
      const sub = String(Reflect.getMetadata(PATH_METADATA, handler));
      const path = `/${[base, sub].filter((p) => p && p !== '/').join('/')}`.replace(/:(\w+)/g, '{$1}');
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod].toLowerCase();
      out.push({ method, path, query: Object.keys(querySpecOf(handler)).sort() });
    }
  }
  return out;
}

describe('the OpenAPI document', () => {
  const doc = buildOpenApiDocument(10_000) as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };

  it('finds the routes (the reflection below sees the controllers)', () => {
    expect(routes().length).toBeGreaterThan(25);
  });

  it.each(routes().map((r) => [`${r.method.toUpperCase()} ${r.path}`, r] as const))('documents %s with exactly the query parameters it takes', (_name, route) => {
    const operation = doc.paths[route.path]?.[route.method];
    expect(operation).toBeDefined();
    const documented = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name).sort();
    expect(documented).toEqual(route.query);
  });

  it('documents no route the controllers do not serve', () => {
    const served = new Set(routes().map((r) => `${r.method} ${r.path}`));
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`));
    expect(documented.filter((operation) => !served.has(operation))).toEqual([]);
  });
});
