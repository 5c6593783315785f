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

/** The OpenAPI 3.0 document of `operations`. */
export function buildOpenApiDocument(operations: readonly Operation[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const operation of operations) {
    const path = operation.path.replace(/:(\w+)/g, '{$1}');
    const parameters: object[] = [...operation.path.matchAll(/:(\w+)/g)].map((match) => ({
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
    paths[path] ??= {};
    paths[path][operation.method] = {
      summary: operation.summary,
      ...(operation.access === 'open' ? { security: [] } : {}),
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
        ...(operation.access === 'open' ? {} : { '401': errorResponse }),
        ...(operation.access === 'operator' || operation.access === 'worker' ? { '403': errorResponse } : {}),
        '400': errorResponse,
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
