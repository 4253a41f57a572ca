/**
 * Which process to start as the language server. Pure: the file system and environment come in as
 * arguments, so the discovery order is unit-tested without VS Code.
 */
import * as path from "node:path";

export type CommandSource = "serverCommand" | "pythonPath" | "workspaceVenv" | "path";

export interface ServerCommand {
  command: string;
  args: string[];
  /** Which rule chose this command; shown in messages so users know which setting to fix. */
  source: CommandSource;
}

export interface DiscoveryInput {
  /** `codegenLsp.serverCommand`: the full argv, or empty. */
  serverCommand: readonly string[];
  /** `codegenLsp.pythonPath`: an interpreter with codegen-lsp installed, or empty. */
  pythonPath: string;
  /** Absolute paths of the open workspace folders, first one first. */
  workspaceFolders: readonly string[];
  platform: NodeJS.Platform;
  homeDir: string;
  /** `PATH` from the extension host's environment. */
  pathEnv: string;
  isFile: (p: string) => boolean;
}

const SERVE = ["serve"];
const MODULE_SERVE = ["-m", "codegen_lsp", "serve"];

/** Expand `${workspaceFolder}`, `${userHome}` and a leading `~` the way VS Code users expect. */
export function expandVariables(value: string, workspaceFolder: string | undefined, homeDir: string): string {
  let out = value.replace(/\$\{userHome\}/g, homeDir);
  if (workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  }
  if (out === "~" || out.startsWith("~/") || out.startsWith("~\\")) {
    out = homeDir + out.slice(1);
  }
  return out;
}

function venvCandidates(folder: string, platform: NodeJS.Platform): ServerCommand[] {
  const p = platform === "win32" ? path.win32 : path.posix;
  const bin = platform === "win32" ? p.join(folder, ".venv", "Scripts") : p.join(folder, ".venv", "bin");
  const exe = platform === "win32" ? ".exe" : "";
  return [
    { command: p.join(bin, `codegen-lsp${exe}`), args: SERVE, source: "workspaceVenv" },
    { command: p.join(bin, `python${exe}`), args: MODULE_SERVE, source: "workspaceVenv" },
  ];
}

/** Find an executable on `PATH` (with Windows' extensions); undefined when it is not there. */
export function findOnPath(
  name: string,
  pathEnv: string,
  platform: NodeJS.Platform,
  isFile: (p: string) => boolean,
): string | undefined {
  const p = platform === "win32" ? path.win32 : path.posix;
  const sep = platform === "win32" ? ";" : ":";
  const exts = platform === "win32" ? [".exe", ".cmd", ".bat", ""] : [""];
  for (const dir of pathEnv.split(sep)) {
    if (!dir) {
      continue;
    }
    for (const ext of exts) {
      const candidate = p.join(dir, name + ext);
      if (isFile(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/**
 * Discovery order: explicit `serverCommand`, then `pythonPath -m codegen_lsp serve`, then the first
 * workspace folder's `.venv` (`codegen-lsp` script, else its `python -m codegen_lsp`), then
 * `codegen-lsp` on `PATH`. Returns undefined when nothing is found, so the caller can say so.
 */
export function discoverServerCommand(input: DiscoveryInput): ServerCommand | undefined {
  const folder = input.workspaceFolders[0];
  const expand = (s: string) => expandVariables(s, folder, input.homeDir);

  const argv = input.serverCommand.filter((s) => s.trim() !== "").map(expand);
  if (argv.length > 0) {
    return { command: argv[0], args: argv.slice(1), source: "serverCommand" };
  }
  if (input.pythonPath.trim() !== "") {
    return { command: expand(input.pythonPath.trim()), args: MODULE_SERVE, source: "pythonPath" };
  }
  for (const ws of input.workspaceFolders) {
    for (const candidate of venvCandidates(ws, input.platform)) {
      if (input.isFile(candidate.command)) {
        return candidate;
      }
    }
  }
  const onPath = findOnPath("codegen-lsp", input.pathEnv, input.platform, input.isFile);
  if (onPath !== undefined) {
    return { command: onPath, args: SERVE, source: "path" };
  }
  return undefined;
}

/** Whether the command's executable exists: a path must be a file, a bare name must be on PATH. */
export function executableExists(
  cmd: ServerCommand,
  pathEnv: string,
  platform: NodeJS.Platform,
  isFile: (p: string) => boolean,
): boolean {
  const looksLikePath = cmd.command.includes("/") || (platform === "win32" && cmd.command.includes("\\"));
  if (looksLikePath) {
    return isFile(cmd.command);
  }
  return findOnPath(cmd.command, pathEnv, platform, isFile) !== undefined;
}

const SETTING_FOR_SOURCE: Record<CommandSource, string> = {
  serverCommand: "codegenLsp.serverCommand",
  pythonPath: "codegenLsp.pythonPath",
  workspaceVenv: "codegenLsp.pythonPath",
  path: "codegenLsp.serverCommand",
};

/** The setting a user should change when `cmd` does not work. */
export function settingToFix(cmd: ServerCommand | undefined): string {
  return cmd === undefined ? "codegenLsp.serverCommand" : SETTING_FOR_SOURCE[cmd.source];
}

export function formatCommand(cmd: ServerCommand): string {
  return [cmd.command, ...cmd.args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ");
}

/** The message shown when no server command could be found at all. */
export function notFoundMessage(): string {
  return (
    "codegen-lsp: could not find the language server. Install it into the workspace's .venv " +
    "(pip install codegen-lsp), put `codegen-lsp` on PATH, or set codegenLsp.pythonPath / " +
    "codegenLsp.serverCommand."
  );
}

/** The message shown when the chosen executable does not exist. */
export function missingExecutableMessage(cmd: ServerCommand): string {
  const what = cmd.args[0] === "-m" ? "Python interpreter" : "server executable";
  return `codegen-lsp: ${what} not found: ${cmd.command}. Check ${settingToFix(cmd)}.`;
}

/** The message shown when the process started but the server stopped (e.g. a missing Python package). */
export function serverExitedMessage(cmd: ServerCommand, restarts: number): string {
  const hint =
    cmd.args[0] === "-m"
      ? ` Is codegen-lsp installed for ${cmd.command}? (try: ${cmd.command} -m pip install codegen-lsp)`
      : "";
  const again = restarts > 0 ? ` after ${restarts} restart${restarts === 1 ? "" : "s"}` : "";
  return `codegen-lsp: the server \`${formatCommand(cmd)}\` stopped${again}.${hint} See the output for details.`;
}
