/** Prints `msg` and exits with status 2: the harness's answer to a bad command line. */
export function fail(msg: string): never {
  console.error(msg);
  process.exit(2);
}

/** `v` as an integer in 1..max, or `fail` naming the flag `--name`. */
export function positiveInt(v: string, name: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) fail(`--${name} must be an integer in 1..${max}, got ${v}`);
  return n;
}
