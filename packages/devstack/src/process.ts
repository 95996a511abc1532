import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** Every output line so far (stdout and stderr), for diagnosing a failed test. */
  lines: string[];
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL now (fault injection). */
  kill(): Promise<number | null>;
  /** Resolves with the first value `match` returns for an output line (or rejects on exit/timeout). */
  waitFor<T>(match: (line: string) => T | undefined, timeoutMs?: number): Promise<T>;
}

/**
 * Spawns a process and follows its output line by line, so callers wait for what the process
 * says ("ready", its bound port) instead of sleeping.
 */
export function startProcess(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): ManagedProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      if (lines.length > 5000) lines.shift();
      for (const l of listeners) l(line);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));

  const handle: ManagedProcess = {
    name,
    child,
    lines,
    exited,
    async stop(graceMs = 10_000) {
      if (done) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (!done) child.kill("SIGKILL");
      return exited;
    },
    waitFor<T>(match: (line: string) => T | undefined, timeoutMs = 60_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const finish = (fn: () => void) => {
          listeners.delete(onLine);
          clearTimeout(timer);
          fn();
        };
        const onLine = (line: string) => {
          const value = match(line);
          if (value !== undefined) finish(() => resolve(value));
        };
        for (const line of lines) {
          const value = match(line);
          if (value !== undefined) return resolve(value);
        }
        const timer = setTimeout(
          () => finish(() => reject(new Error(`${name}: timed out after ${timeoutMs} ms; last output:\n${lines.slice(-20).join("\n")}`))),
          timeoutMs,
        );
        listeners.add(onLine);
        void exited.then((code) => finish(() => reject(new Error(`${name} exited with ${code}; last output:\n${lines.slice(-20).join("\n")}`))));
      });
    },
  };
  return handle;
}

/** Parses a pino JSON line, or undefined. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
