import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyKindDefinition } from '../core/kinds.js';
import { BatonError } from '../errors.js';

const isKind = (value: unknown): value is AnyKindDefinition =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { kind?: unknown }).kind === 'string' &&
  typeof (value as { payload?: { safeParse?: unknown } }).payload?.safeParse === 'function';

/**
 * Loads the kind definitions a module exports: every named export made by `defineKind`, and a
 * default export that is one definition or an array of them.
 */
export async function loadKinds(modulePath: string): Promise<AnyKindDefinition[]> {
  const url = pathToFileURL(resolve(modulePath)).href;
  let loaded: Record<string, unknown>;
  try {
    loaded = await import(url);
  } catch (error) {
    throw new BatonError(
      'CONFIG_INVALID',
      `--jobs ${modulePath}: could not load the module: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
  const found = new Map<string, AnyKindDefinition>();
  for (const value of Object.values(loaded)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if (isKind(candidate)) found.set(candidate.kind, candidate);
    }
  }
  if (found.size === 0) {
    throw new BatonError(
      'CONFIG_INVALID',
      `--jobs ${modulePath}: the module exports no kind definitions (make them with defineKind and export them)`,
    );
  }
  return [...found.values()];
}
