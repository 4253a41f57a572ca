import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_SETTINGS, SERVER_SETTING_KEYS, toServerSettings } from "../settings";

const from = (obj: Record<string, unknown>) => (key: string) => obj[key];

describe("toServerSettings", () => {
  it("gives the defaults for an empty section", () => {
    const { settings, warnings } = toServerSettings(from({}));
    assert.deepEqual(settings, DEFAULT_SETTINGS);
    assert.deepEqual(warnings, []);
  });

  it("passes valid values through and sends only server keys", () => {
    const { settings, warnings } = toServerSettings(
      from({
        modelPath: " ~/m ",
        device: "cuda",
        candidates: 5,
        maxTokens: 64,
        temperature: 0,
        topP: 1,
        timeBudgetMs: 250,
        enableInline: false,
        enableCompletion: false,
        enableCodeActions: false,
        logLevel: "debug",
        workspaceContext: "all",
        contextShare: 0.5,
        contextItems: 2,
        debounceMs: 0,
        backend: "openai",
        endpoint: "http://gpu-box:8000/v1",
        apiKeyEnv: "TEAM_KEY",
        remoteModel: "",
        localFallback: false,
        serverCommand: ["x"],
        pythonPath: "/p",
        "trace.server": "verbose",
      }),
      (p) => p.replace("~", "/home/u"),
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(settings, {
      modelPath: "/home/u/m",
      device: "cuda",
      candidates: 5,
      maxTokens: 64,
      temperature: 0,
      topP: 1,
      timeBudgetMs: 250,
      enableInline: false,
      enableCompletion: false,
      enableCodeActions: false,
      logLevel: "debug",
      workspaceContext: "all",
      contextShare: 0.5,
      contextItems: 2,
      debounceMs: 0,
      backend: "openai",
      endpoint: "http://gpu-box:8000/v1",
      apiKeyEnv: "TEAM_KEY",
      remoteModel: "",
      localFallback: false,
    });
    assert.deepEqual(Object.keys(settings).sort(), [...SERVER_SETTING_KEYS].sort());
  });

  it("replaces invalid values with defaults and says so", () => {
    const { settings, warnings } = toServerSettings(
      from({ device: "tpu", candidates: 0, maxTokens: 1.5, temperature: "hot", topP: 0, enableInline: "yes", modelPath: 3 }),
    );
    assert.deepEqual(settings, DEFAULT_SETTINGS);
    assert.equal(warnings.length, 7);
    assert.match(warnings.join("\n"), /codegenLsp\.device = "tpu" is invalid; using "auto"/);
    assert.match(warnings.join("\n"), /codegenLsp\.candidates = 0 is invalid; using 3/);
  });

  it("treats an empty modelPath as the default model", () => {
    assert.equal(toServerSettings(from({ modelPath: "  " })).settings.modelPath, null);
  });
});
