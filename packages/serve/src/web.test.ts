import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { bundledDataDir, loadConfig, workdirPaths, type OperationContext } from "@ats-lora/core";
import { chromiumPath } from "@ats-lora/core/testing";
import { buildTrainingPairs } from "@ats-lora/dataset-builder";
import { evaluateModels, readTestData } from "@ats-lora/evaluator";
import { feedbackStats, importFeedback, listInteractions, type FeedbackStats } from "@ats-lora/feedback";
import { testModelFile } from "@ats-lora/inference/test-support";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./serve.js";

// The reviewer page in real headless Chromium against a real server (with a bearer token, so the page signs in)
// on the bundled sample interactions: reviewing by keyboard only, the overview, and nothing loaded from elsewhere.

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "docs");
const DANA = "Dana Reviewer";

let context: OperationContext;
let server: RunningServer;
let browser: Browser;
let token: string;
let statsBefore: FeedbackStats;
/** Every URL each page asked for. */
const requested: string[] = [];

beforeAll(async () => {
  const modelFile = await testModelFile();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-web-"));
  context = { paths: workdirPaths(path.join(dir, "workdir")), config: loadConfig({ env: {} }) };
  await importFeedback({ files: [path.join(bundledDataDir(), "samples", "interactions.jsonl")] }, context);
  statsBefore = await feedbackStats({}, context);
  token = crypto.randomBytes(24).toString("hex");
  server = await startServer({ host: "127.0.0.1", port: 0, base: { name: "smollm2", base: modelFile, adapters: [] }, adapters: [], token, version: "test" }, context);
  browser = await puppeteer.launch({ executablePath: chromiumPath(), args: ["--no-sandbox", "--headless=new"] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's WCAG 2 A/AA audit of the page as it is: each violation's rule and how many elements break it. */
async function accessibilityViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(`axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })`)) as {
    violations: Array<{ id: string; nodes: Array<{ target: string[] }> }>;
  };
  return result.violations.map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(" ")).join(", ")}`);
}

/** A new browser profile (its own cookies and storage), signed in with the token, reviewing as `name`. */
async function signedInPage(name: string): Promise<Page> {
  const profile = await browser.createBrowserContext();
  const page = await profile.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.on("request", (request) => requested.push(request.url()));
  await page.goto(`${server.url}/`, { waitUntil: "networkidle0" });
  expect(new URL(page.url()).pathname).toBe("/login");
  // The token field has the focus: type and press Enter, as a keyboard user does.
  await page.keyboard.type(token);
  await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.keyboard.press("Enter")]);
  await page.waitForSelector("#reviewer-name");
  await page.keyboard.type(name);
  await page.keyboard.press("Enter");
  await page.waitForSelector("article.item");
  return page;
}

async function waitForItem(page: Page, id: string): Promise<void> {
  await page.waitForSelector(`article.item[data-interaction-id="${id}"]`, { timeout: 10_000 });
}

async function shownItem(page: Page): Promise<string | null> {
  return page.$eval("article.item", (element) => element.getAttribute("data-interaction-id"));
}

async function reviewsOf(id: string): Promise<Array<{ reviewer: string; rating: number }>> {
  const response = await fetch(`${server.url}/api/interactions/${id}`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { feedback: Array<{ reviewer: string; rating: number }> }).feedback;
}

async function press(page: Page, ...keys: string[]): Promise<void> {
  for (const key of keys) await page.keyboard.press(key as Parameters<Page["keyboard"]["press"]>[0]);
}

async function selectAll(page: Page): Promise<void> {
  await page.keyboard.down("Control");
  await page.keyboard.press("a");
  await page.keyboard.up("Control");
}

async function saveWithCtrlEnter(page: Page): Promise<void> {
  await page.keyboard.down("Control");
  await page.keyboard.press("Enter");
  await page.keyboard.up("Control");
}

describe("the reviewer page", () => {
  it("guards the page with the server's token: a sign-in form sets a session cookie, which the API then takes", async () => {
    const unsigned = await fetch(`${server.url}/`, { redirect: "manual" });
    expect(unsigned.status).toBe(303);
    expect(unsigned.headers.get("location")).toBe("/login");
    expect((await fetch(`${server.url}/api/stats`)).status).toBe(401);
    const form = (value: string) => fetch(`${server.url}/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ token: value }) });
    const refused = await form("not-the-token-at-all");
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("That is not this server's token.");
    const accepted = await form(token);
    expect(accepted.status).toBe(303);
    const cookie = accepted.headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).not.toContain(token);
    const session = cookie.split(";")[0]!;
    const page = await fetch(`${server.url}/`, { headers: { cookie: session } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(await page.text()).toContain('<div id="root"></div>');
    expect((await fetch(`${server.url}/api/stats`, { headers: { cookie: session } })).status).toBe(200);
    expect((await fetch(`${server.url}/api/stats`, { headers: { cookie: "ats_session=forged" } })).status).toBe(401);
  });

  it("reviews three items by keyboard only, skips one and undoes one; refuses an ideal answer that is not JSON for a JSON task", async () => {
    const page = await signedInPage(DANA);
    // The oldest unreviewed interactions of the sample come first: ra-019, iq-035, ra-036, iq-040, iq-042.
    await waitForItem(page, "ra-019");
    await press(page, "4", "c");
    await page.keyboard.type("Names the NMC registration");
    await press(page, "Enter", "Enter", "i");
    await page.keyboard.type("Misses the gap between the two posts");
    await press(page, "Escape", "e");
    await page.keyboard.down("Control");
    await page.keyboard.press("End");
    await page.keyboard.up("Control");
    await page.keyboard.type("\n\nAsk about the gap between the two posts.");
    await press(page, "Escape");
    // The diff shows what was added to the model's answer.
    expect(await page.$eval(".diff ins", (element) => element.textContent)).toContain("Ask about the gap");
    await press(page, "s");
    await waitForItem(page, "iq-035");

    await press(page, "2", "s");
    await waitForItem(page, "ra-036");
    await press(page, "n");
    await waitForItem(page, "iq-040");
    await press(page, "3", "c");
    await page.keyboard.type("Asks for evidence");
    await press(page, "Enter", "Escape", "s");
    await waitForItem(page, "iq-042");
    expect(await reviewsOf("iq-040")).toHaveLength(1);

    // Undo: the last review is taken back, and its item comes back with the form as it was saved.
    await press(page, "u");
    await waitForItem(page, "iq-040");
    await page.waitForFunction(`document.querySelector('input[name="rating"][value="3"]')?.checked === true`);
    expect(await page.$$eval(".point-list.good li span", (spans) => spans.map((span) => span.textContent))).toEqual(["Asks for evidence"]);
    expect(await reviewsOf("iq-040")).toEqual([]);

    // T focuses the task filter; four steps down is match_score; Enter goes back to its first item.
    await press(page, "t", "ArrowDown", "ArrowDown", "ArrowDown", "ArrowDown", "Enter");
    await waitForItem(page, "ms-041");
    expect(await page.$eval(".answer .json-fields", (element) => element.textContent)).toContain("match score");
    await press(page, "1", "e");
    await selectAll(page);
    await page.keyboard.type('{"match_score": 0.3, "reasoning": "too eager');
    await saveWithCtrlEnter(page);
    const alert = await page.waitForSelector('.review [role="alert"]');
    expect(await alert!.evaluate((element) => element.textContent)).toContain("The ideal answer is not valid JSON, so nothing was saved");
    expect(await alert!.isVisible()).toBe(true);
    expect(await shownItem(page)).toBe("ms-041");
    expect(await reviewsOf("ms-041")).toEqual([]);

    const ideal = { match_score: 0.55, reasoning: "Meets the language requirement, but has led no team." };
    await selectAll(page);
    await page.keyboard.type(JSON.stringify(ideal, null, 2));
    await press(page, "Escape");
    await page.waitForFunction(`document.querySelector("#ideal-state")?.textContent.includes("Edited, valid JSON")`);
    expect(await accessibilityViolations(page)).toEqual([]);
    fs.mkdirSync(DOCS, { recursive: true });
    await page.screenshot({ path: path.join(DOCS, "review-queue.png"), fullPage: true });
    await press(page, "s");
    await page.waitForFunction(`document.querySelector(".status")?.textContent.includes("ms-041 rated 1")`);

    // The store holds exactly these reviews under the reviewer's name, and collect stats counts them at once.
    const danas = (await listInteractions({ status: "reviewed" }, context)).flatMap(({ interaction, feedback }) =>
      feedback.filter((review) => review.reviewer === DANA).map((review) => ({ ...review, id: interaction.id })),
    );
    expect(danas.map(({ id, rating, correct_points, incorrect_points }) => ({ id, rating, correct_points, incorrect_points }))).toEqual([
      { id: "ra-019", rating: 4, correct_points: ["Names the NMC registration"], incorrect_points: ["Misses the gap between the two posts"] },
      { id: "iq-035", rating: 2, correct_points: [], incorrect_points: [] },
      { id: "ms-041", rating: 1, correct_points: [], incorrect_points: [] },
    ]);
    expect(danas[0]!.ideal_response).toMatch(/\n\nAsk about the gap between the two posts\.$/);
    expect(danas[1]!.ideal_response).toBeNull();
    // The model wrote its JSON on one line; the ideal keeps that layout.
    expect(danas[2]!.ideal_response).toBe(JSON.stringify(ideal));
    const stats = await feedbackStats({}, context);
    expect(stats.feedback).toBe(statsBefore.feedback + 3);
    expect(stats.reviewers).toBe(statsBefore.reviewers + 1);
    await page.browserContext().close();
  }, 120_000);

  it("shows another reviewer's review on an item, through a link to it; on a tablet too, with a focus order that follows the form", async () => {
    const page = await signedInPage("Lee");
    await page.goto(`${server.url}/#/review/ra-019`, { waitUntil: "networkidle0" });
    await waitForItem(page, "ra-019");
    const others = await page.$eval(".others", (element) => element.textContent);
    expect(others).toContain(`${DANA} rated it 4/5`);
    expect(others).toContain("Names the NMC registration");

    // On a tablet held upright, the input and the answer stack in one column, and the page stays accessible.
    await page.setViewport({ width: 820, height: 1180, isMobile: true, hasTouch: true });
    const [input, answer] = await page.$$eval(".columns > section", (sections) => sections.map((section) => section.getBoundingClientRect().toJSON() as { top: number; bottom: number; width: number }));
    expect(answer!.top).toBeGreaterThanOrEqual(input!.bottom);
    expect(answer!.width).toBeGreaterThan(700);
    expect(await accessibilityViolations(page)).toEqual([]);
    // Tab follows the form from the points to the ideal answer and the actions.
    await press(page, "c");
    const focused = `document.activeElement?.id || document.activeElement?.textContent`;
    const order: unknown[] = [await page.evaluate(focused)];
    for (let i = 0; i < 4; i += 1) {
      await press(page, "Tab");
      order.push(await page.evaluate(focused));
    }
    expect(order).toEqual(["new-correct", "new-incorrect", "ideal-answer", "Save review S", "Skip N"]);
    await page.browserContext().close();
  }, 60_000);

  it("shows the loop at a glance: reviews per task and rating, progress, drift of corrections, eval verdicts with their reports", async () => {
    await buildTrainingPairs({}, context);
    const testFile = path.join(context.paths.trainingPairs, "sft", "test.jsonl");
    const examples = readTestData(testFile);
    const predictions = path.join(context.paths.workdir, "ats-api-v1.jsonl");
    // Half the answers as the reviewers wanted them, half cut short.
    fs.writeFileSync(predictions, examples.map((example, i) => JSON.stringify({ prompt: example.prompt, prediction: i % 2 === 0 ? example.completion : example.completion.slice(0, 40) })).join("\n") + "\n");
    await evaluateModels(
      {
        systems: [
          { name: "ats-api-v1", role: "predictions", file: predictions },
          { name: "baseline-tfidf", role: "baseline", method: "tfidf" },
        ],
        testData: testFile,
        metadata: () => undefined,
      },
      context,
    );

    const profile = await browser.createBrowserContext();
    const page = await profile.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    page.on("request", (request) => requested.push(request.url()));
    await page.setCookie({ name: "ats_session", value: await sessionCookie(), url: server.url });
    await page.evaluateOnNewDocument(`localStorage.setItem("ats-lora.reviewer", ${JSON.stringify(DANA)})`);
    await page.goto(`${server.url}/#/overview`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#drift-title");
    const stats = await feedbackStats({}, context);
    expect(await page.$eval("#min-samples", (element) => [element.getAttribute("value"), element.getAttribute("max")])).toEqual([
      String(Math.min(stats.min_samples.reviewed, stats.min_samples.target)),
      String(stats.min_samples.target),
    ]);
    const rows = await page.$$eval("table tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("th, td")].slice(0, 4).map((cell) => cell.textContent)));
    expect(rows).toContainEqual(["match score", String(stats.by_task.match_score!.interactions), String(stats.by_task.match_score!.reviewed), String(stats.by_task.match_score!.pending_review)]);
    const manifest = JSON.parse(fs.readFileSync(path.join(context.paths.trainingPairs, "manifest.json"), "utf8")) as { drift: { corrections: number } };
    expect(manifest.drift.corrections).toBeGreaterThan(0);
    expect(await page.$eval("#drift-title", (element) => element.parentElement!.textContent)).toContain(`${manifest.drift.corrections} corrections`);
    const verdict = await page.$eval(".verdict", (element) => element.textContent);
    expect(verdict).toContain("ats-api-v1 against baseline-tfidf");
    const reportLink = await page.$eval(".verdict a", (element) => element.getAttribute("href")!);
    const report = await fetch(new URL(reportLink, server.url), { headers: { authorization: `Bearer ${token}` } });
    expect(report.status).toBe(200);
    expect(report.headers.get("content-type")).toContain("text/html");
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.screenshot({ path: path.join(DOCS, "review-overview.png"), fullPage: true });
    await profile.close();

    // Nothing any page asked for came from outside the server.
    expect(requested.length).toBeGreaterThan(5);
    expect(requested.filter((url) => !url.startsWith(`${server.url}/`) && !url.startsWith("data:"))).toEqual([]);
  }, 180_000);
});

/** A session cookie as the sign-in form sets it. */
async function sessionCookie(): Promise<string> {
  const response = await fetch(`${server.url}/login`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ token }) });
  return /ats_session=([^;]+)/.exec(response.headers.get("set-cookie")!)![1]!;
}
