/**
 * bench/child.ts compiled to one JavaScript file, for runs that measure a worker's memory: under
 * tsx a process carries the loader and its transform caches (~35 MB RSS before anything is
 * imported, and Baton's sources cost ~60 MB instead of ~30 MB compiled), which a deployed worker
 * (`baton worker`, from dist/) does not. Packages stay external (imported from node_modules as
 * usual); only the bench and Baton's src/ are bundled. esbuild is a dev dependency (tsx uses the same version). The output is ESM
 * (.js under this package's "type": "module").
 */
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let built: Promise<string> | undefined;

/** Path of the compiled child, built once per orchestrator process and removed when it exits. */
export function compiledChild(): Promise<string> {
  built ??= (async () => {
    const { build } = await import('esbuild');
    // Under bench/results/ (ignored by git as *.tmp), so node_modules resolves as from bench/.
    const dir = fileURLToPath(new URL(`../results/child-${process.pid}.tmp/`, import.meta.url));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    await build({
      entryPoints: [fileURLToPath(new URL('../child.ts', import.meta.url))],
      outdir: dir,
      bundle: true,
      // Keeps each system's adapter in its own chunk, imported only when loadSystem asks for it:
      // one file would import every peer library up front (~24 MB RSS more).
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'warning',
    });
    return `${dir}child.js`;
  })();
  return built;
}
