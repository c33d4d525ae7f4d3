import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { installRoot } from "@ats-lora/core";

/** A real MLflow tracking server for tests: `mlflow server` from the project's .venv, SQLite backend, loopback. */
export interface MlflowTestServer {
  url: string;
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
}

/** A loopback port nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `mlflow server` with its store and artifacts in a new temporary folder, and waits until it answers. */
export async function startMlflowServer(): Promise<MlflowTestServer> {
  const python = process.env.ATS_LORA_PYTHON ?? path.join(installRoot(), ".venv", "bin", "python");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-mlflow-"));
  const port = await freePort();
  const log = fs.openSync(path.join(dir, "server.log"), "a");
  const child = spawn(
    python,
    ["-m", "mlflow", "server", "--backend-store-uri", `sqlite:///${path.join(dir, "mlflow.db")}`, "--artifacts-destination", path.join(dir, "artifacts"), "--host", "127.0.0.1", "--port", String(port), "--workers", "1"],
    { stdio: ["ignore", log, log], detached: true },
  );
  fs.closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited) throw new Error(`mlflow server exited before answering:\n${fs.readFileSync(path.join(dir, "server.log"), "utf8").slice(-3000)}`);
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, "SIGKILL");
      throw new Error(`mlflow server did not answer within 120 s:\n${fs.readFileSync(path.join(dir, "server.log"), "utf8").slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    url,
    dir,
    async stop() {
      if (exited) return;
      // The server's process group: mlflow starts uvicorn (or gunicorn) workers as children.
      process.kill(-child.pid!, "SIGTERM");
      const killer = setTimeout(() => !exited && process.kill(-child.pid!, "SIGKILL"), 10_000);
      await exit;
      clearTimeout(killer);
    },
  };
}
