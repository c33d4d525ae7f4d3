import { describe, expect, it } from "vitest";
import { isLaunched, workerCommand } from "./worker-client.js";

describe("workerCommand", () => {
  it("runs the worker module alone for one process on one machine", () => {
    expect(isLaunched({ processes: 1, nodes: 1, nodeRank: 0 })).toBe(false);
    expect(workerCommand({ processes: 1, nodes: 1, nodeRank: 0 })).toEqual(["-m", "ats_lora_worker"]);
    expect(workerCommand(undefined)).toEqual(["-m", "ats_lora_worker"]);
  });

  it("runs torchrun standalone for several processes on one machine", () => {
    expect(workerCommand({ processes: 4, nodes: 1, nodeRank: 0 })).toEqual([
      "-m",
      "torch.distributed.run",
      "--standalone",
      "--nproc-per-node=4",
      "-m",
      "ats_lora_worker",
    ]);
  });

  it("gives torchrun the node's rank and node 0's address across machines", () => {
    expect(workerCommand({ processes: 8, nodes: 2, nodeRank: 1, masterAddr: "10.0.0.1", masterPort: 29600 })).toEqual([
      "-m",
      "torch.distributed.run",
      "--nnodes=2",
      "--node-rank=1",
      "--master-addr=10.0.0.1",
      "--master-port=29600",
      "--nproc-per-node=8",
      "-m",
      "ats_lora_worker",
    ]);
  });
});
