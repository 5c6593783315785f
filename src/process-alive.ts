/**
 * Whether a process with this pid exists (signal 0 probes without signalling). EPERM means it
 * exists under another user. Used for lock files and build directories named after their owner's pid.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
