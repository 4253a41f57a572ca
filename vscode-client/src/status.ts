/**
 * The `codegenLsp/status` notification and how the status bar shows it. Pure so it is unit-tested.
 */

export const STATUS_NOTIFICATION = "codegenLsp/status";

export type ServerState = "starting" | "loading" | "busy" | "ready" | "error" | "stopped";

/** Params of `codegenLsp/status` as the server sends them (all but `state` optional). */
export interface StatusParams {
  /** `busy`: work the user asked for is running (generate all, a code action); `message` says what. */
  state: "loading" | "busy" | "ready" | "error";
  model?: string | null;
  device?: string | null;
  lastLatencyMs?: number | null;
  message?: string | null;
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** Drives the status bar item's background: errors use the theme's error colour. */
  severity: "normal" | "warning" | "error";
}

/** Accept anything from the wire; return undefined for a payload that is not a status. */
export function parseStatus(raw: unknown): StatusParams | undefined {
  if (typeof raw !== "object" || raw === null) {
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  if (r.state !== "loading" && r.state !== "busy" && r.state !== "ready" && r.state !== "error") {
    return undefined;
  }
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const latency = typeof r.lastLatencyMs === "number" && Number.isFinite(r.lastLatencyMs) ? r.lastLatencyMs : undefined;
  return {
    state: r.state,
    model: str(r.model),
    device: str(r.device),
    lastLatencyMs: latency,
    message: str(r.message),
  };
}

/** A model path or id shortened to its last component, so the status bar stays narrow. */
export function shortModelName(model: string): string {
  const parts = model.split(/[\\/]/).filter((p) => p !== "");
  return parts.length > 0 ? parts[parts.length - 1] : model;
}

export function formatLatency(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function renderStatus(state: ServerState, status?: StatusParams): StatusView {
  const details: string[] = [];
  if (status?.model) {
    details.push(`Model: ${status.model}`);
  }
  if (status?.device) {
    details.push(`Device: ${status.device}`);
  }
  if (status?.lastLatencyMs !== undefined && status.lastLatencyMs !== null) {
    details.push(`Last generation: ${formatLatency(status.lastLatencyMs)}`);
  }
  if (status?.message) {
    details.push(status.message);
  }
  const tip = (head: string) => [head, ...details, "", "Click to show the output."].join("\n");

  switch (state) {
    case "starting":
      return { text: "$(loading~spin) codegen", tooltip: tip("codegen-lsp: starting the server"), severity: "normal" };
    case "stopped":
      return { text: "$(circle-slash) codegen", tooltip: tip("codegen-lsp: server stopped"), severity: "warning" };
    case "loading":
      return { text: "$(loading~spin) codegen: loading", tooltip: tip("codegen-lsp: loading the model"), severity: "normal" };
    case "error":
      return { text: "$(error) codegen", tooltip: tip("codegen-lsp: error"), severity: "error" };
    case "busy": {
      const what = status?.message ?? "working";
      const short = what.length > 48 ? `${what.slice(0, 47)}…` : what;
      return { text: `$(sync~spin) codegen: ${short}`, tooltip: tip("codegen-lsp: running (cancel from the notification)"), severity: "normal" };
    }
    case "ready": {
      const parts = [
        status?.model ? shortModelName(status.model) : undefined,
        status?.device ?? undefined,
        status?.lastLatencyMs !== undefined && status.lastLatencyMs !== null
          ? formatLatency(status.lastLatencyMs)
          : undefined,
      ].filter((p): p is string => p !== undefined);
      const text = parts.length > 0 ? `$(zap) ${parts.join(" · ")}` : "$(zap) codegen";
      return { text, tooltip: tip("codegen-lsp: ready"), severity: "normal" };
    }
  }
}
