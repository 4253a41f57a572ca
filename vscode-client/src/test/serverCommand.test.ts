import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  discoverServerCommand,
  executableExists,
  expandVariables,
  findOnPath,
  missingExecutableMessage,
  serverExitedMessage,
  settingToFix,
  type DiscoveryInput,
} from "../serverCommand";

function input(files: string[], over: Partial<DiscoveryInput> = {}): DiscoveryInput {
  const set = new Set(files);
  return {
    serverCommand: [],
    pythonPath: "",
    workspaceFolders: ["/ws"],
    platform: "linux",
    homeDir: "/home/u",
    pathEnv: "/usr/local/bin:/usr/bin",
    isFile: (p) => set.has(p),
    ...over,
  };
}

describe("discoverServerCommand", () => {
  it("uses serverCommand verbatim, expanding variables", () => {
    const cmd = discoverServerCommand(
      input(["/ws/.venv/bin/codegen-lsp"], { serverCommand: ["${workspaceFolder}/bin/srv", "serve", "~/x"] }),
    );
    assert.deepEqual(cmd, { command: "/ws/bin/srv", args: ["serve", "/home/u/x"], source: "serverCommand" });
  });

  it("ignores a serverCommand of blank strings", () => {
    const cmd = discoverServerCommand(input(["/ws/.venv/bin/codegen-lsp"], { serverCommand: ["  ", ""] }));
    assert.equal(cmd?.source, "workspaceVenv");
  });

  it("runs pythonPath as a module before looking at the workspace", () => {
    const cmd = discoverServerCommand(input(["/ws/.venv/bin/codegen-lsp"], { pythonPath: "~/py/bin/python3" }));
    assert.deepEqual(cmd, {
      command: "/home/u/py/bin/python3",
      args: ["-m", "codegen_lsp", "serve"],
      source: "pythonPath",
    });
  });

  it("prefers the workspace venv's codegen-lsp script", () => {
    const cmd = discoverServerCommand(input(["/ws/.venv/bin/codegen-lsp", "/ws/.venv/bin/python"]));
    assert.deepEqual(cmd, { command: "/ws/.venv/bin/codegen-lsp", args: ["serve"], source: "workspaceVenv" });
  });

  it("falls back to the workspace venv's python -m codegen_lsp", () => {
    const cmd = discoverServerCommand(input(["/ws/.venv/bin/python"]));
    assert.deepEqual(cmd, {
      command: "/ws/.venv/bin/python",
      args: ["-m", "codegen_lsp", "serve"],
      source: "workspaceVenv",
    });
  });

  it("looks at every workspace folder", () => {
    const cmd = discoverServerCommand(input(["/b/.venv/bin/codegen-lsp"], { workspaceFolders: ["/a", "/b"] }));
    assert.equal(cmd?.command, "/b/.venv/bin/codegen-lsp");
  });

  it("uses Windows venv layout on win32", () => {
    const cmd = discoverServerCommand(
      input(["C:\\ws\\.venv\\Scripts\\python.exe"], {
        workspaceFolders: ["C:\\ws"],
        platform: "win32",
        pathEnv: "",
      }),
    );
    assert.deepEqual(cmd, {
      command: "C:\\ws\\.venv\\Scripts\\python.exe",
      args: ["-m", "codegen_lsp", "serve"],
      source: "workspaceVenv",
    });
  });

  it("falls back to codegen-lsp on PATH", () => {
    const cmd = discoverServerCommand(input(["/usr/bin/codegen-lsp"]));
    assert.deepEqual(cmd, { command: "/usr/bin/codegen-lsp", args: ["serve"], source: "path" });
  });

  it("returns undefined when there is nothing to run", () => {
    assert.equal(discoverServerCommand(input([], { workspaceFolders: [] })), undefined);
  });
});

describe("helpers", () => {
  it("expandVariables leaves unknown variables alone", () => {
    assert.equal(expandVariables("${env:X}/${workspaceFolder}", "/w", "/h"), "${env:X}//w");
    assert.equal(expandVariables("${workspaceFolder}/a", undefined, "/h"), "${workspaceFolder}/a");
    assert.equal(expandVariables("~", undefined, "/h"), "/h");
    assert.equal(expandVariables("a~b", undefined, "/h"), "a~b");
  });

  it("findOnPath honours Windows extensions", () => {
    const files = new Set(["C:\\t\\codegen-lsp.exe"]);
    assert.equal(findOnPath("codegen-lsp", "C:\\x;C:\\t", "win32", (p) => files.has(p)), "C:\\t\\codegen-lsp.exe");
  });

  it("executableExists checks paths directly and bare names on PATH", () => {
    const files = new Set(["/usr/bin/python3"]);
    const isFile = (p: string) => files.has(p);
    assert.equal(executableExists({ command: "python3", args: [], source: "pythonPath" }, "/usr/bin", "linux", isFile), true);
    assert.equal(executableExists({ command: "/opt/python3", args: [], source: "pythonPath" }, "/usr/bin", "linux", isFile), false);
  });

  it("messages name the interpreter and the setting to fix", () => {
    const py = { command: "/nope/python", args: ["-m", "codegen_lsp", "serve"], source: "pythonPath" as const };
    assert.match(missingExecutableMessage(py), /Python interpreter not found: \/nope\/python\. Check codegenLsp\.pythonPath/);
    assert.match(serverExitedMessage(py, 3), /stopped after 3 restarts.*-m pip install codegen-lsp/);
    const exe = { command: "/x/codegen-lsp", args: ["serve"], source: "serverCommand" as const };
    assert.match(missingExecutableMessage(exe), /server executable not found.*codegenLsp\.serverCommand/);
    assert.equal(settingToFix(undefined), "codegenLsp.serverCommand");
  });
});
