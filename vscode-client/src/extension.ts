/**
 * VS Code glue: starts `codegen-lsp serve` through vscode-languageclient, forwards settings,
 * shows the server's `codegenLsp/status` in the status bar and registers the commands. The
 * decisions (which command, which settings, what the status bar says) live in pure modules.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import {
  discoverServerCommand,
  executableExists,
  expandVariables,
  formatCommand,
  missingExecutableMessage,
  notFoundMessage,
  serverExitedMessage,
  settingToFix,
  type ServerCommand,
} from "./serverCommand";
import { SERVER_SETTING_KEYS, toServerSettings, type MappedSettings } from "./settings";
import {
  DID_PARTIALLY_ACCEPT,
  DID_SHOW,
  partialAccept,
  suggestionId,
  wireItem,
  type ShownSuggestion,
} from "./acceptance";
import { STATUS_NOTIFICATION, parseStatus, renderStatus, type ServerState, type StatusParams } from "./status";

const SECTION = "codegenLsp";
const SERVER_GENERATE_BODY = "codegen-lsp.generateBody";
const SERVER_GENERATE_ALL = "codegen-lsp.generateAllInFile";
const SERVER_RELOAD_MODEL = "codegen-lsp.reloadModel";
/** Restarts allowed within RESTART_WINDOW_MS before the extension gives up and says so. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 3 * 60 * 1000;

let session: ServerSession | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("codegen-lsp", { log: true });
  const statusItem = vscode.window.createStatusBarItem("codegenLsp.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "codegen-lsp";
  statusItem.command = "codegenLsp.showOutput";
  session = new ServerSession(output, statusItem);
  const s = session;

  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand("codegenLsp.generateBody", () => s.generateBodyAtCursor()),
    vscode.commands.registerCommand("codegenLsp.generateAllInFile", () => s.generateAllInFile()),
    vscode.commands.registerCommand("codegenLsp.restartServer", () => s.restart()),
    vscode.commands.registerCommand("codegenLsp.reloadModel", () => s.reloadModel()),
    vscode.commands.registerCommand("codegenLsp.showOutput", () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((e) => s.onConfigurationChanged(e)),
    vscode.workspace.onDidChangeTextDocument((e) => s.onDocumentChanged(e)),
    { dispose: () => void s.stop() },
  );
  await s.start();
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}

function currentSettings(): MappedSettings {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return toServerSettings(
    (key) => cfg.get(key),
    (p) => expandVariables(p, folder, os.homedir()),
  );
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

class ServerSession {
  private client: LanguageClient | undefined;
  private command: ServerCommand | undefined;
  private restartTimes: number[] = [];
  private lastStatus: StatusParams | undefined;
  private warnedSettings = "";
  /** The inline suggestion on screen (the first item VS Code got), for the acceptance stats. */
  private shown: (ShownSuggestion & { uri: string; start: vscode.Position }) | undefined;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly statusItem: vscode.StatusBarItem,
  ) {}

  async start(): Promise<void> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const folders = vscode.workspace.workspaceFolders?.map((f) => f.uri.fsPath) ?? [];
    const cmd = discoverServerCommand({
      serverCommand: cfg.get<string[]>("serverCommand") ?? [],
      pythonPath: cfg.get<string>("pythonPath") ?? "",
      workspaceFolders: folders,
      platform: process.platform,
      homeDir: os.homedir(),
      pathEnv: process.env.PATH ?? "",
      isFile,
    });
    if (cmd === undefined) {
      return this.failToStart(notFoundMessage(), undefined);
    }
    if (!executableExists(cmd, process.env.PATH ?? "", process.platform, isFile)) {
      return this.failToStart(missingExecutableMessage(cmd), cmd);
    }
    this.command = cmd;
    this.restartTimes = [];
    this.lastStatus = undefined;
    this.output.appendLine(`Starting ${formatCommand(cmd)} (from ${cmd.source})`);

    const mapped = currentSettings();
    this.reportSettingWarnings(mapped);
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      options: { cwd: folders[0], env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: "file", language: "python" },
        { scheme: "untitled", language: "python" },
      ],
      initializationOptions: mapped.settings,
      // Python files changed outside the editor (git checkout, codegen) keep the workspace index current.
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.py") },
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      errorHandler: {
        error: (_error, _message, count) => ({
          action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
        }),
        closed: () => this.onServerClosed(),
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const result = await next(document, position, context, token);
          this.noteShown(document, position, result);
          return result;
        },
        workspace: {
          // The server pulls its section; answer with the mapped settings, never the raw section
          // (which carries client-only keys the server would warn about).
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) {
              return result;
            }
            return (result as unknown[]).map((value, i) => (params.items[i]?.section === SECTION ? currentSettings().settings : value));
          },
        },
      },
    };
    const client = new LanguageClient(SECTION, "codegen-lsp", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (e.newState === State.Starting) {
        this.show("starting");
      } else if (e.newState === State.Stopped) {
        this.show("stopped");
      } else if (this.lastStatus === undefined) {
        this.show("ready");
      }
    });
    client.onNotification(STATUS_NOTIFICATION, (raw: unknown) => {
      const status = parseStatus(raw);
      if (status === undefined) {
        return;
      }
      this.lastStatus = status;
      this.show(status.state, status);
      if (status.state === "error" && status.message) {
        void vscode.window.showErrorMessage(`codegen-lsp: ${status.message}`, "Show Output").then((pick) => {
          if (pick) {
            this.output.show(true);
          }
        });
      }
    });
    this.show("starting");
    try {
      await client.start();
    } catch (err) {
      this.client = undefined;
      const reason = err instanceof Error ? err.message : String(err);
      this.output.appendLine(`Failed to start ${formatCommand(cmd)}: ${reason}`);
      await this.failToStart(`codegen-lsp: could not start \`${formatCommand(cmd)}\`: ${reason}`, cmd);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        await client.stop(5000);
      } catch (err) {
        this.output.appendLine(`Stopping the server: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration(SECTION)) {
      return;
    }
    if (e.affectsConfiguration(`${SECTION}.serverCommand`) || e.affectsConfiguration(`${SECTION}.pythonPath`)) {
      this.output.appendLine("Server command changed; restarting.");
      await this.restart();
      return;
    }
    if (SERVER_SETTING_KEYS.some((k) => e.affectsConfiguration(`${SECTION}.${k}`)) && this.client?.isRunning()) {
      const mapped = currentSettings();
      this.reportSettingWarnings(mapped);
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SECTION]: mapped.settings },
      });
    }
  }

  /** VS Code shows the first item of what the provider returns: tell the server, once per suggestion. */
  private noteShown(
    document: vscode.TextDocument,
    position: vscode.Position,
    result: vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined,
  ): void {
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    const first = items[0];
    const id = suggestionId(first?.command);
    if (first === undefined || id === undefined || typeof first.insertText !== "string" || this.shown?.id === id) {
      return;
    }
    const start = first.range?.start ?? position;
    const typed = document.getText(new vscode.Range(start, position)).length;
    this.shown = { id, insertText: first.insertText, accepted: typed, uri: document.uri.toString(), start };
    void this.client?.sendNotification(DID_SHOW, { item: wireItem(id, first.insertText) });
  }

  /** A word or line taken from the shown suggestion (Ctrl+Right, or accept line) is a partial accept. */
  onDocumentChanged(e: vscode.TextDocumentChangeEvent): void {
    const shown = this.shown;
    if (shown === undefined || e.document.uri.toString() !== shown.uri || e.contentChanges.length !== 1) {
      return;
    }
    const change = e.contentChanges[0];
    const end = e.document.positionAt(change.rangeOffset + change.text.length);
    if (end.isBefore(shown.start)) {
      return;
    }
    const n = partialAccept(shown, e.document.getText(new vscode.Range(shown.start, end)), change.text);
    if (n === undefined) {
      return;
    }
    shown.accepted = n;
    void this.client?.sendNotification(DID_PARTIALLY_ACCEPT, { item: wireItem(shown.id, shown.insertText), acceptedLength: n });
  }

  async generateBodyAtCursor(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || editor.document.languageId !== "python") {
      void vscode.window.showInformationMessage("codegen-lsp: open a Python file and put the cursor in a function.");
      return;
    }
    const pos = editor.selection.active;
    await this.executeOnServer("Generating body…", SERVER_GENERATE_BODY, [
      editor.document.uri.toString(),
      pos.line,
      pos.character,
    ]);
  }

  async generateAllInFile(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || editor.document.languageId !== "python") {
      void vscode.window.showInformationMessage("codegen-lsp: open a Python file first.");
      return;
    }
    await this.executeOnServer("Generating bodies for all stubs…", SERVER_GENERATE_ALL, [
      editor.document.uri.toString(),
    ]);
  }

  async reloadModel(): Promise<void> {
    await this.executeOnServer("Reloading the model…", SERVER_RELOAD_MODEL, []);
  }

  private async executeOnServer(title: string, command: string, args: unknown[]): Promise<void> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      const pick = await vscode.window.showErrorMessage("codegen-lsp: the server is not running.", "Restart Server");
      if (pick) {
        await this.restart();
      }
      return;
    }
    this.output.info(`${command} ${JSON.stringify(args)}`);
    try {
      // Cancel sends $/cancelRequest: the server stops the model within a step (it also reports
      // its own cancellable $/progress, shown in the status bar).
      const applied: unknown = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `codegen-lsp: ${title}`, cancellable: true },
        (_progress, token) => client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token),
      );
      this.output.info(`${command}: ${JSON.stringify(applied)}`);
      if (applied === false) {
        void vscode.window.showInformationMessage("codegen-lsp: no body was generated (no stub here, or nothing valid).");
      }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      void vscode.window.showErrorMessage(`codegen-lsp: ${command} failed: ${reason}`);
    }
  }

  private onServerClosed(): { action: CloseAction; handled: boolean } {
    const now = Date.now();
    this.restartTimes = this.restartTimes.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restartTimes.length < MAX_RESTARTS) {
      this.restartTimes.push(now);
      this.output.appendLine("The server stopped; restarting it.");
      return { action: CloseAction.Restart, handled: true };
    }
    const message = this.command
      ? serverExitedMessage(this.command, this.restartTimes.length)
      : "codegen-lsp: the server stopped.";
    this.output.appendLine(message);
    this.show("error", { state: "error", message });
    void this.offerFixes(message, this.command);
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private async failToStart(message: string, cmd: ServerCommand | undefined): Promise<void> {
    this.output.appendLine(message);
    this.show("error", { state: "error", message });
    await this.offerFixes(message, cmd);
  }

  private async offerFixes(message: string, cmd: ServerCommand | undefined): Promise<void> {
    const pick = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
    if (pick === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", settingToFix(cmd));
    } else if (pick === "Show Output") {
      this.output.show(true);
    }
  }

  private reportSettingWarnings(mapped: MappedSettings): void {
    const text = mapped.warnings.join("; ");
    if (text === "" || text === this.warnedSettings) {
      return;
    }
    this.warnedSettings = text;
    for (const w of mapped.warnings) {
      this.output.appendLine(w);
    }
    void vscode.window.showWarningMessage(`codegen-lsp: ${text}`);
  }

  private show(state: ServerState, status?: StatusParams): void {
    const view = renderStatus(state, status);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor =
      view.severity === "normal" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
    this.statusItem.show();
  }
}
