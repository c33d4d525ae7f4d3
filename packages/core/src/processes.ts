/**
 * Whether a process with this pid is running on this machine: signal 0 checks without sending anything (EPERM:
 * it runs, as another user). Used to tell the leftovers of a killed run from the files of a live one.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
