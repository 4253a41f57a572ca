// Drives a running code-server with headless Chromium: opens a Python file, types a function
// signature and docstring, waits for the extension's inline (ghost text) suggestion, accepts it
// with Tab and saves. The caller (test_vscode.py) starts code-server and checks the saved file.
//
// Then opens STUB_NAME and runs the extension's "Generate Bodies for All Stubs in File" command.
//
// env: CODE_SERVER_URL, WORKSPACE, FILE_NAME, STUB_NAME, CHROMIUM, PLAYWRIGHT_CORE (module path),
//      SCREENSHOT (path), SIGNATURE, DOCSTRING, GHOST_TIMEOUT_MS, PARTIAL_ACCEPT ("1": take the first
//      word with Ctrl+Right before accepting the rest with Tab)
"use strict";

const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const url = process.env.CODE_SERVER_URL;
const workspace = process.env.WORKSPACE;
const fileName = process.env.FILE_NAME;
const stubName = process.env.STUB_NAME;
const screenshot = process.env.SCREENSHOT;
const ghostTimeout = Number(process.env.GHOST_TIMEOUT_MS || "60000");

function log(msg) {
  process.stderr.write(`[vscode_drive ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

const STATUS = '[id$="codegenLsp.status"]';

async function statusBarText(page) {
  const item = page.locator(STATUS);
  return (await item.count()) > 0 ? (await item.first().innerText()).trim() : "<no codegen-lsp status item>";
}

async function statusBarTooltip(page) {
  const item = page.locator(`${STATUS} a, ${STATUS}`);
  return (await item.count()) > 0 ? (await item.first().getAttribute("aria-label")) || "" : "";
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (e) => log(`page error: ${e.message}`));
  let ok = false;
  try {
    log("open workbench");
    await page.goto(`${url}/?folder=${encodeURIComponent(workspace)}`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
    // The explorer shows the workspace once the remote file system is up.
    await page.waitForSelector(`.explorer-folders-view .monaco-list-row[aria-label*="${fileName}"]`, {
      timeout: 60000,
    });

    log(`open ${fileName}`);
    await page.locator(`.explorer-folders-view .monaco-list-row[aria-label*="${fileName}"]`).first().dblclick();
    const editor = page.locator(".editor-instance .monaco-editor").first();
    await editor.waitFor({ timeout: 30000 });
    await page.waitForSelector(`.tab.active[aria-label*="${fileName}"]`, { timeout: 30000 });
    await editor.locator(".view-lines").click();
    await page.keyboard.press("Control+End");

    // The extension activates on the Python language; wait until it reports ready so the
    // ghost-text wait below measures generation, not server start-up.
    log("wait for the status bar item");
    const state = await page.waitForFunction(
      () => {
        const el = document.querySelector('[id$="codegenLsp.status"]');
        if (el === null) return false;
        if (el.querySelector(".codicon-error")) return "error";
        return el.querySelector(".codicon-zap") ? "ready" : false;
      },
      null,
      { timeout: 120000, polling: 250 },
    );
    if ((await state.jsonValue()) === "error") {
      throw new Error(`the extension reports an error: ${await statusBarTooltip(page)}`);
    }
    log(`status: ${await statusBarText(page)}`);

    log("type signature and docstring");
    await page.keyboard.type(process.env.SIGNATURE, { delay: 15 });
    await page.keyboard.press("Enter");
    await page.keyboard.type(process.env.DOCSTRING, { delay: 15 });
    await page.keyboard.press("Enter");

    log("wait for ghost text");
    const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text");
    const deadline = Date.now() + ghostTimeout;
    let triggers = 0;
    while ((await ghost.count()) === 0) {
      if (Date.now() > deadline) {
        throw new Error(`no ghost text after ${ghostTimeout} ms; status bar: ${await statusBarText(page)}`);
      }
      // Inline suggestions are requested on typing; ask again explicitly if none came (e.g. the
      // first request raced model loading).
      if (triggers < 10) {
        await page.keyboard.press("Alt+Backslash");
        triggers += 1;
      }
      await page.waitForTimeout(1500);
    }
    log(`ghost text: ${JSON.stringify(await ghost.allInnerTexts())}`);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-ghost.png") });

    // Press a key that changes the ghost text (another candidate, or its first word taken) and wait for the change.
    const changeGhost = async (key, what, suffix) => {
      const before = (await ghost.allInnerTexts()).join("");
      log(`${what} (${key})`);
      await page.keyboard.press(key);
      await page.waitForFunction(
        (prev) => {
          const els = document.querySelectorAll(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text");
          const now = [...els].map((e) => e.textContent).join("");
          return els.length > 0 && now !== prev;
        },
        before,
        { timeout: 15000, polling: 100 },
      );
      log(`ghost text after: ${JSON.stringify(await ghost.allInnerTexts())}`);
      await page.screenshot({ path: screenshot.replace(/\.png$/, `-${suffix}.png`) });
    };
    if (process.env.CYCLE === "1") {
      // "Show Next Inline Suggestion": another candidate replaces the ghost text.
      await changeGhost("Alt+BracketRight", "show the next suggestion", "cycle");
    }
    if (process.env.PARTIAL_ACCEPT === "1") {
      // VS Code's "Accept Next Word": the word lands, the rest stays as ghost text.
      await changeGhost("Control+ArrowRight", "accept the next word", "partial");
    }

    log("accept with Tab and save");
    await page.keyboard.press("Tab");
    await page.waitForFunction(
      () => document.querySelectorAll(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text").length === 0,
      null,
      { timeout: 10000 },
    );
    await page.keyboard.press("Control+S");
    await page.waitForSelector(`.tab.active:not(.dirty)[aria-label*="${fileName}"]`, { timeout: 15000 });
    log(`status after accept: ${await statusBarText(page)}`);

    if (stubName) {
      log(`open ${stubName} and run "Generate Bodies for All Stubs in File"`);
      await page.locator(`.explorer-folders-view .monaco-list-row[aria-label*="${stubName}"]`).first().dblclick();
      await page.waitForSelector(`.tab.active[aria-label*="${stubName}"]`, { timeout: 30000 });
      await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
      await page.keyboard.press("F1");
      await page.waitForSelector(".quick-input-widget input", { timeout: 10000 });
      await page.keyboard.type("codegen-lsp: Generate Bodies for All Stubs", { delay: 5 });
      await page.waitForSelector('.quick-input-list .monaco-list-row[aria-label*="Generate Bodies for All Stubs"]', {
        timeout: 10000,
      });
      await page.keyboard.press("Enter");
      // Either the server's edit lands (dirty tab) or the extension says nothing was generated.
      const outcome = await page.waitForFunction(
        (name) => {
          if (document.querySelector(`.tab.active.dirty[aria-label*="${name}"]`)) return "edited";
          const toasts = [...document.querySelectorAll(".notification-toast")].map((t) => t.innerText);
          // (the "Generating…" toast is the command's own progress, with its Cancel button)
          return toasts.find((t) => t.includes("codegen-lsp") && !t.includes("Generating")) || false;
        },
        stubName,
        { timeout: ghostTimeout, polling: 200 },
      );
      const what = await outcome.jsonValue();
      if (what !== "edited") {
        throw new Error(`"Generate Bodies for All Stubs in File" did not edit ${stubName}: ${what}`);
      }
      await page.keyboard.press("Control+S");
      await page.waitForSelector(`.tab.active:not(.dirty)[aria-label*="${stubName}"]`, { timeout: 15000 });
    }
    ok = true;
  } finally {
    await page.screenshot({ path: screenshot }).catch((e) => log(`screenshot failed: ${e.message}`));
    await browser.close();
  }
  return ok;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err) => {
    log(`FAILED: ${err.stack || err}`);
    process.exit(1);
  },
);
