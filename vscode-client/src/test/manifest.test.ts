// The package.json contributions must agree with the code: every setting the server gets has a
// declared default equal to the one the extension assumes, and every command is declared.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { DEFAULT_SETTINGS, SERVER_SETTING_KEYS } from "../settings";

const root = path.resolve(__dirname, "..", "..");
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  contributes: {
    commands: { command: string }[];
    configuration: { properties: Record<string, { default: unknown }> };
  };
};

describe("package.json", () => {
  it("declares every server setting with the same default", () => {
    const props = manifest.contributes.configuration.properties;
    for (const key of SERVER_SETTING_KEYS) {
      const declared = props[`codegenLsp.${key}`];
      assert.ok(declared, `codegenLsp.${key} is not declared`);
      const expected = key === "modelPath" ? "" : DEFAULT_SETTINGS[key];
      assert.deepEqual(declared.default, expected, `default of codegenLsp.${key}`);
    }
  });

  it("declares the client settings and commands", () => {
    const props = manifest.contributes.configuration.properties;
    for (const key of ["serverCommand", "pythonPath", "trace.server"]) {
      assert.ok(props[`codegenLsp.${key}`], key);
    }
    const commands = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepEqual(commands, [
      "codegenLsp.generateAllInFile",
      "codegenLsp.generateBody",
      "codegenLsp.reloadModel",
      "codegenLsp.restartServer",
      "codegenLsp.showOutput",
    ]);
  });

  it("registers every declared command in extension.ts", () => {
    const source = fs.readFileSync(path.join(root, "src", "extension.ts"), "utf8");
    for (const { command } of manifest.contributes.commands) {
      assert.ok(source.includes(`registerCommand("${command}"`), command);
    }
  });
});
