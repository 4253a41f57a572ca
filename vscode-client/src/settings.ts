/**
 * Maps the `codegenLsp.*` VS Code settings to the object the server reads (codegen_lsp/config.py:
 * camelCase keys, invalid values fall back to the default with a warning). Client-only settings
 * (serverCommand, pythonPath, trace) never reach the server, which would warn about unknown keys.
 */

export interface ServerSettings {
  modelPath: string | null;
  device: "auto" | "cpu" | "cuda";
  candidates: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  timeBudgetMs: number;
  enableInline: boolean;
  enableCompletion: boolean;
  enableCodeActions: boolean;
  logLevel: "debug" | "info" | "warning" | "error";
  workspaceContext: "off" | "definitions" | "retrieval" | "all";
  contextShare: number;
  contextItems: number;
  debounceMs: number;
  backend: "local" | "openai";
  endpoint: string;
  apiKeyEnv: string;
  remoteModel: string;
  localFallback: boolean;
}

/** Must match `Settings` in codegen_lsp/config.py and the defaults in package.json. */
export const DEFAULT_SETTINGS: Readonly<ServerSettings> = Object.freeze({
  modelPath: null,
  device: "auto",
  candidates: 3,
  maxTokens: 160,
  temperature: 0.2,
  topP: 0.95,
  timeBudgetMs: 4000,
  enableInline: true,
  enableCompletion: true,
  enableCodeActions: true,
  logLevel: "info",
  workspaceContext: "off",
  contextShare: 0.3,
  contextItems: 4,
  debounceMs: 250,
  backend: "local",
  endpoint: "",
  apiKeyEnv: "",
  remoteModel: "",
  localFallback: true,
});

/** The keys the server understands, i.e. the part of `codegenLsp.*` that is sent. */
export const SERVER_SETTING_KEYS = Object.keys(DEFAULT_SETTINGS) as (keyof ServerSettings)[];

type Check = (v: unknown) => boolean;

const isInt = (lo: number, hi: number): Check => (v) =>
  typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
const isNum = (lo: number, hi: number, openLow = false): Check => (v) =>
  typeof v === "number" && Number.isFinite(v) && (openLow ? v > lo : v >= lo) && v <= hi;
const isBool: Check = (v) => typeof v === "boolean";
const oneOf = (...xs: string[]): Check => (v) => typeof v === "string" && xs.includes(v);

const CHECKS: Record<Exclude<keyof ServerSettings, "modelPath">, Check> = {
  device: oneOf("auto", "cpu", "cuda"),
  candidates: isInt(1, 8),
  maxTokens: isInt(8, 1024),
  temperature: isNum(0, 2),
  topP: isNum(0, 1, true),
  timeBudgetMs: isInt(100, 60000),
  enableInline: isBool,
  enableCompletion: isBool,
  enableCodeActions: isBool,
  logLevel: oneOf("debug", "info", "warning", "error"),
  workspaceContext: oneOf("off", "definitions", "retrieval", "all"),
  contextShare: isNum(0, 0.8),
  contextItems: isInt(1, 16),
  debounceMs: isInt(0, 2000),
  backend: oneOf("local", "openai"),
  endpoint: (v) => typeof v === "string",
  apiKeyEnv: (v) => typeof v === "string",
  remoteModel: (v) => typeof v === "string",
  localFallback: isBool,
};

export interface MappedSettings {
  settings: ServerSettings;
  /** One line per value that was replaced by its default; shown to the user. */
  warnings: string[];
}

/**
 * Build the server's settings from a getter over the `codegenLsp` section (`get("maxTokens")`).
 * `expandPath` resolves `${workspaceFolder}` and `~` in modelPath; an empty modelPath becomes
 * null, which tells the server to use its default model.
 */
export function toServerSettings(
  get: (key: string) => unknown,
  expandPath: (p: string) => string = (p) => p,
): MappedSettings {
  const warnings: string[] = [];
  const settings: ServerSettings = { ...DEFAULT_SETTINGS };

  const modelPath = get("modelPath");
  if (typeof modelPath === "string" && modelPath.trim() !== "") {
    settings.modelPath = expandPath(modelPath.trim());
  } else if (modelPath !== undefined && modelPath !== null && modelPath !== "") {
    warnings.push(`codegenLsp.modelPath must be a string; using the default model`);
  }

  for (const key of Object.keys(CHECKS) as (keyof typeof CHECKS)[]) {
    const value = get(key);
    if (value === undefined || value === null) {
      continue;
    }
    if (CHECKS[key](value)) {
      (settings as unknown as Record<string, unknown>)[key] = value;
    } else {
      warnings.push(
        `codegenLsp.${key} = ${JSON.stringify(value)} is invalid; using ${JSON.stringify(DEFAULT_SETTINGS[key])}`,
      );
    }
  }
  return { settings, warnings };
}
