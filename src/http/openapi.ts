import { z } from 'zod';

/** Who may call an operation: anyone (health), any token, an operator, or a worker (or operator). */
export type OperationAccess = 'open' | 'viewer' | 'operator' | 'worker';

/**
 * One route as the OpenAPI document describes it. Route modules export a list of these next to
 * their handlers, built from the very zod schemas the handlers validate with.
 */
export interface Operation {
  method: 'get' | 'post' | 'delete';
  /** Hono-style path, e.g. `/api/jobs/:id`; `:id` becomes `{id}` in the document. */
  path: string;
  summary: string;
  access: OperationAccess;
  /** Schema of the query string (an object schema). */
  query?: z.ZodObject;
  /** Schema of the JSON body. */
  body?: z.ZodType;
  /** Schema of the 2xx JSON response, when one is declared. */
  response?: z.ZodType;
  /** Status of a success (default 200). */
  status?: number;
  /** Content type of a success that is not JSON (e.g. text/csv). */
  produces?: string;
}

const toSchema = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' });

/** Hono path parameters: `:id`, with an optional regex constraint (`:id{[0-9]+}`) or `?`. */
const PATH_PARAMETER = /:(\w+)(?:\{(?:[^{}]|\{[^{}]*\})*\})?\??/g;

/** `/api/jobs/:id/retry` as OpenAPI writes it: `/api/jobs/{id}/retry`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(PATH_PARAMETER, '{$1}');
}

/** `post /api/jobs/:id/retry` -> `postApiJobsIdRetry`: unique, since method and path are. */
function operationId(operation: Operation): string {
  const words = operation.path.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return operation.method + words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join('');
}

/**
 * The OpenAPI 3.0 document of `operations`. Error responses follow from what guards a route:
 * 401 without a valid token, 403 for a token whose role may not call it (a worker token may not
 * read, a viewer may not act or claim), 400 when it validates a query or body, 404 when it names
 * something by a path parameter, 413 when it takes a body.
 */
export function buildOpenApiDocument(operations: readonly Operation[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const operation of operations) {
    const path = openApiPath(operation.path);
    if (paths[path]?.[operation.method]) {
      throw new Error(`OpenAPI: ${operation.method.toUpperCase()} ${operation.path} is listed twice`);
    }
    const parameters: object[] = [...operation.path.matchAll(PATH_PARAMETER)].map((match) => ({
      name: match[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    if (operation.query) {
      for (const [name, field] of Object.entries(operation.query.shape)) {
        const schema = toSchema(field as z.ZodType) as { description?: string };
        parameters.push({
          name,
          in: 'query',
          required: !(field as z.ZodType).safeParse(undefined).success,
          schema,
          ...(schema.description ? { description: schema.description } : {}),
        });
      }
    }
    const status = String(operation.status ?? 200);
    const success = operation.produces
      ? { description: 'success', content: { [operation.produces]: { schema: { type: 'string' } } } }
      : {
          description: 'success',
          content: { 'application/json': { schema: operation.response ? toSchema(operation.response) : {} } },
        };
    const errorResponse = { $ref: '#/components/responses/Error' };
    const guarded = operation.access !== 'open';
    paths[path] ??= {};
    paths[path][operation.method] = {
      operationId: operationId(operation),
      summary: operation.summary,
      ...(guarded ? {} : { security: [] }),
      'x-baton-access': operation.access,
      ...(parameters.length ? { parameters } : {}),
      ...(operation.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: toSchema(operation.body) } },
            },
          }
        : {}),
      responses: {
        [status]: success,
        ...(operation.query || operation.body ? { '400': errorResponse } : {}),
        ...(guarded ? { '401': errorResponse, '403': errorResponse } : {}),
        ...(operation.path.includes(':') ? { '404': errorResponse } : {}),
        ...(operation.body ? { '413': errorResponse } : {}),
      },
    };
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'Baton HTTP API',
      version,
      description:
        'Durable background jobs on PostgreSQL. Every route but health needs `Authorization: Bearer <token>`; ' +
        'tokens carry an actor (recorded in the audit log) and a role: viewer reads, operator also acts, ' +
        'worker claims and reports jobs.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Error: {
          description: 'an error',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['error'],
                properties: {
                  error: {
                    type: 'object',
                    required: ['code', 'message'],
                    properties: { code: { type: 'string' }, message: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
