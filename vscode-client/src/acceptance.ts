/**
 * Acceptance events for the server's local statistics, shaped like the Copilot language server's
 * (codegen_lsp/features/acceptance.py): shown, partially accepted (with the accepted length).
 * A whole accept runs the item's own command, which VS Code executes by itself. Pure so it is
 * unit-tested; extension.ts feeds it VS Code's inline items and document changes.
 */

export const DID_SHOW = "codegenLsp/didShowCompletion";
export const DID_PARTIALLY_ACCEPT = "codegenLsp/didPartiallyAcceptCompletion";
export const ACCEPT_COMMAND = "codegen-lsp.didAcceptCompletion";

export interface CommandLike {
  command: string;
  arguments?: unknown[];
}

/** The suggestion id the server put in an item's command; undefined for anything else. */
export function suggestionId(command: CommandLike | undefined): string | undefined {
  if (command?.command !== ACCEPT_COMMAND) {
    return undefined;
  }
  const id = command.arguments?.[0];
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** The `item` of a notification: what the server needs to find the suggestion again. */
export function wireItem(id: string, insertText: string): { insertText: string; command: Required<CommandLike> & { title: string } } {
  return { insertText, command: { title: "", command: ACCEPT_COMMAND, arguments: [id] } };
}

/** A suggestion on screen: its id, text, and how much of the text the document held at the last event. */
export interface ShownSuggestion {
  id: string;
  insertText: string;
  accepted: number;
}

/**
 * Whether a document change took part of the shown suggestion: the new accepted length, or
 * undefined. `textFromStart` is the document from the item's range start to the end of the
 * change; `inserted` is the change's text. Typing one character is typing, not accepting (an
 * accept inserts a word or a line at once); taking all of it is a whole accept (its command).
 */
export function partialAccept(shown: ShownSuggestion, textFromStart: string, inserted: string): number | undefined {
  if (!shown.insertText.startsWith(textFromStart)) {
    return undefined;
  }
  const n = textFromStart.length;
  if (n <= shown.accepted || n >= shown.insertText.length) {
    return undefined;
  }
  if (inserted.length < 2 && !inserted.includes("\n")) {
    return undefined;
  }
  return n;
}
