import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatLatency, parseStatus, renderStatus, shortModelName } from "../status";

describe("parseStatus", () => {
  it("accepts the server's payload", () => {
    assert.deepEqual(
      parseStatus({ state: "ready", model: "/m/tiny", device: "cpu", lastLatencyMs: 12.4, message: "" }),
      { state: "ready", model: "/m/tiny", device: "cpu", lastLatencyMs: 12.4, message: undefined },
    );
  });

  it("rejects what is not a status", () => {
    assert.equal(parseStatus(null), undefined);
    assert.equal(parseStatus({ state: "bogus" }), undefined);
    assert.equal(parseStatus("ready"), undefined);
  });

  it("drops fields of the wrong type", () => {
    assert.deepEqual(parseStatus({ state: "loading", model: 3, lastLatencyMs: "fast" }), {
      state: "loading",
      model: undefined,
      device: undefined,
      lastLatencyMs: undefined,
      message: undefined,
    });
  });
});

describe("renderStatus", () => {
  it("shows model, device and latency when ready", () => {
    const v = renderStatus("ready", { state: "ready", model: "/a/b/smollm2-135m", device: "cuda", lastLatencyMs: 1530 });
    assert.equal(v.text, "$(zap) smollm2-135m · cuda · 1.5 s");
    assert.equal(v.severity, "normal");
    assert.match(v.tooltip, /Model: \/a\/b\/smollm2-135m\nDevice: cuda\nLast generation: 1\.5 s/);
  });

  it("shows loading and error states", () => {
    assert.equal(renderStatus("loading", { state: "loading" }).text, "$(loading~spin) codegen: loading");
    const err = renderStatus("error", { state: "error", message: "no model at /x" });
    assert.equal(err.severity, "error");
    assert.match(err.tooltip, /no model at \/x/);
  });

  it("says what is running", () => {
    assert.deepEqual(parseStatus({ state: "busy", message: "generating 3 bodies: f (1/3)" })?.state, "busy");
    const v = renderStatus("busy", { state: "busy", message: "generating 3 bodies: f (1/3)" });
    assert.equal(v.text, "$(sync~spin) codegen: generating 3 bodies: f (1/3)");
    assert.ok(renderStatus("busy", { state: "busy", message: "x".repeat(80) }).text.endsWith("…"));
  });

  it("shows a plain ready item before the first status", () => {
    assert.equal(renderStatus("ready").text, "$(zap) codegen");
    assert.equal(renderStatus("stopped").severity, "warning");
  });

  it("formats helpers", () => {
    assert.equal(formatLatency(87.6), "88 ms");
    assert.equal(shortModelName("C:\\m\\tiny\\"), "tiny");
  });
});
