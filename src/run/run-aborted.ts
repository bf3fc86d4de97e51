/** Thrown out of a window when the run was aborted (Ctrl-C or its time limit): stop driving, keep what was measured. */
export class RunAborted extends Error {}
