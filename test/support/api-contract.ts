import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { buildOpenApiDocument } from '../../src/controller/app.module';

/**
 * The OpenAPI document as a contract the medium tests hold the controller to: every answer the
 * tests' client (`api()`) gets from a documented operation must be one of the statuses that
 * operation documents, with a body its schema accepts: the fields marked required are there, and
 * an error's code is one the operation lists for that status. So each test that provokes a
 * refusal also checks that the document names it, and each answer checks the document's
 * `required`. (What no test provokes is not checked here: see openapi.spec.ts for the rest.)
 */
interface Response {
  $ref?: string;
  content?: Record<string, unknown>;
}
interface Operation {
  operationId: string;
  responses: Record<string, Response>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { responses: Record<string, Response> };
}

const DOCUMENT_ID = 'overlayd.json';
// The batch limit changes a request schema only; answers are the same for every configuration.
const doc = buildOpenApiDocument(10_000) as unknown as Document;
// Formats (uuid, date-time) are not what this checks; `example` is an OpenAPI keyword.
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true, validateSchema: false });
ajv.addSchema(doc, DOCUMENT_ID);

/** Documented paths, literal ones (`/v1/ports/batch`) before templated ones (`/v1/ports/{id}`). */
const templates = Object.keys(doc.paths)
  .sort((a, b) => Number(a.includes('{')) - Number(b.includes('{')))
  .map((path) => ({ path, pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const validators = new Map<string, ValidateFunction>();

function validatorFor(path: string, method: string, status: string, response: Response): ValidateFunction {
  const key = `${method} ${path} ${status}`;
  let validate = validators.get(key);
  if (!validate) {
    const at = response.$ref ? `#/components/responses/${pointer(response.$ref.replace('#/components/responses/', ''))}` : `#/${pointer('paths', path, method, 'responses', status)}`;
    validate = ajv.compile({ $ref: `${DOCUMENT_ID}${at}/content/application~1json/schema` });
    validators.set(key, validate);
  }
  return validate;
}

/**
 * Why an answer breaks the contract, or undefined when it keeps it (or answers something the
 * document does not describe: an unknown route, /docs-json).
 */
export function contractViolation(method: string, url: string, status: number, body: unknown): string | undefined {
  const path = new URL(url, 'http://x').pathname;
  const m = method.toLowerCase();
  const template = templates.find((t) => t.pattern.test(path) && doc.paths[t.path][m]);
  if (!template) {
    return undefined;
  }
  const operation = doc.paths[template.path][m];
  const said = `${method.toUpperCase()} ${path} (${operation.operationId}) answered ${status}${typeof (body as { code?: unknown })?.code === 'string' ? ` ${(body as { code: string }).code}` : ''}`;
  const declared = operation.responses[String(status)];
  if (!declared) {
    return `${said}, which it does not document`;
  }
  const response = declared.$ref ? doc.components.responses[declared.$ref.replace('#/components/responses/', '')] : declared;
  if (!response.content) {
    return body === undefined ? undefined : `${said} with a body, where it documents none`;
  }
  if (!response.content['application/json']) {
    // Not JSON (text, say): api() could not have parsed it; not this check's to read.
    return undefined;
  }
  const validate = validatorFor(template.path, m, String(status), declared);
  if (!validate(body)) {
    return `${said} with a body its documented schema refuses: ${ajv.errorsText(validate.errors, { dataVar: 'body' })}`;
  }
  return undefined;
}
