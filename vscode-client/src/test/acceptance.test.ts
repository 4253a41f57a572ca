import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACCEPT_COMMAND, partialAccept, suggestionId, wireItem } from "../acceptance";

describe("suggestionId", () => {
  it("reads the id from the server's accept command", () => {
    assert.equal(suggestionId({ command: ACCEPT_COMMAND, arguments: ["abc"] }), "abc");
    assert.equal(suggestionId({ command: "other", arguments: ["abc"] }), undefined);
    assert.equal(suggestionId({ command: ACCEPT_COMMAND, arguments: [3] }), undefined);
    assert.equal(suggestionId(undefined), undefined);
  });

  it("round-trips through the notification's item", () => {
    assert.equal(suggestionId(wireItem("id1", "x").command), "id1");
  });
});

describe("partialAccept", () => {
  const shown = { id: "a", insertText: "\n    return a + b", accepted: 5 };

  it("reports a word taken from the suggestion", () => {
    assert.equal(partialAccept(shown, "\n    return", "return"), 11);
  });

  it("ignores single typed characters, other text, and the whole suggestion", () => {
    assert.equal(partialAccept(shown, "\n    r", "r"), undefined);
    assert.equal(partialAccept(shown, "\n    yield", "yield"), undefined);
    assert.equal(partialAccept(shown, "\n    return a + b", "return a + b"), undefined);
  });

  it("never reports less than already reported", () => {
    assert.equal(partialAccept({ ...shown, accepted: 13 }, "\n    return", "return"), undefined);
  });
});
