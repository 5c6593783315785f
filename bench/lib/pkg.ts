import { readFile } from 'node:fs/promises';

/** Version of an installed package, read from node_modules (exports maps may hide package.json). */
export async function installedVersion(name: string): Promise<string> {
  const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(await readFile(url, 'utf8')).version as string;
}
