import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import cookie from "@fastify/cookie";
import formbody from "@fastify/formbody";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

// The reviewer page: the static build of web/ (Vite, at `pnpm build`) at /, and, where the server has a bearer
// token, a sign-in form that turns the token into a session cookie, since a browser cannot send the header itself.

/** Where `pnpm build` puts the page: packages/serve/dist/web, from src/ and dist/ alike. */
export function webBuildDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "web");
}

export const SESSION_COOKIE = "ats_session";
const LOGIN_PATH = "/login";

/** The page may load nothing but the server's own files, and no other site may frame it. */
const PAGE_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The session cookie's value: derived from the token (the cookie never holds the token itself). */
function sessionValue(token: string): string {
  return crypto.createHmac("sha256", token).update("ats-lora serve: reviewer page session").digest("hex");
}

/** Compares two secrets in time that does not depend on where they differ (hashes are of equal length). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => crypto.createHash("sha256").update(text).digest();
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

/**
 * The guard of every route but /health and the sign-in form: a bearer token, or the session cookie the form set.
 * A browser that asks for the page unsigned is sent to the form; anything else gets OpenAI's 401 body.
 */
export function authGuard(token: string, unauthorized: (reply: FastifyReply, hadCredentials: boolean) => Promise<void>) {
  const session = sessionValue(token);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const route = request.url.split("?")[0]!;
    if (route === "/health" || route === LOGIN_PATH) return;
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
    if (bearer !== null && sameSecret(bearer[1]!.trim(), token)) return;
    const cookieValue = request.cookies?.[SESSION_COOKIE];
    if (cookieValue !== undefined && sameSecret(cookieValue, session)) return;
    if (request.method === "GET" && (route === "/" || route === "/index.html")) {
      await reply.redirect(LOGIN_PATH, 303);
      return;
    }
    await unauthorized(reply, request.headers.authorization !== undefined || cookieValue !== undefined);
  };
}

/** The page at /, its assets under /assets/, and with a token the sign-in form. Cookies are parsed for the guard. */
export async function registerWebPage(app: FastifyInstance, token: string | null): Promise<void> {
  const root = webBuildDir();
  await app.register(cookie);
  await app.register(formbody);
  const built = fs.existsSync(path.join(root, "index.html"));
  if (built) await app.register(fastifyStatic, { root: path.join(root, "assets"), prefix: "/assets/", index: false, wildcard: true, maxAge: "1d", immutable: true });
  const page = async (_request: FastifyRequest, reply: FastifyReply) => {
    if (!built) {
      return reply
        .code(503)
        .type("text/plain; charset=utf-8")
        .send(`the reviewer page is not built (no ${path.join(root, "index.html")}): run pnpm build in the checkout`);
    }
    return reply.header("content-security-policy", PAGE_POLICY).header("cache-control", "no-cache").type("text/html; charset=utf-8").send(fs.createReadStream(path.join(root, "index.html")));
  };
  app.get("/", { schema: { hide: true } }, page);
  app.get("/index.html", { schema: { hide: true } }, page);
  if (token === null) return;

  const session = sessionValue(token);
  app.get(LOGIN_PATH, { schema: { hide: true } }, async (_request, reply) => loginPage(reply, 200, null));
  app.post(LOGIN_PATH, { schema: { hide: true } }, async (request, reply) => {
    const field = (request.body as { token?: unknown } | undefined)?.token;
    const given = typeof field === "string" ? field.trim() : "";
    if (!sameSecret(given, token)) return loginPage(reply, 401, "That is not this server's token.");
    // SameSite=Strict: another site's form or script cannot use the session.
    return reply.setCookie(SESSION_COOKIE, session, { path: "/", httpOnly: true, sameSite: "strict", secure: request.protocol === "https" }).redirect("/", 303);
  });
}

function loginPage(reply: FastifyReply, status: number, problem: string | null): FastifyReply {
  const message = problem === null ? "" : `<p role="alert" class="problem">${problem}</p>`;
  return reply
    .code(status)
    .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .type("text/html; charset=utf-8")
    .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · ats-lora review</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:12vh auto;padding:0 1rem;color:#1d2330}
label{display:block;font-weight:600;margin-bottom:.25rem}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #8a93a6;border-radius:6px}
button{margin-top:.75rem;padding:.5rem 1rem;font:inherit;border:0;border-radius:6px;background:#2453c7;color:#fff}.problem{color:#a61b1b}</style></head>
<body><main><h1>ats-lora review</h1><p>This server asks for its bearer token.</p>${message}
<form method="post" action="${LOGIN_PATH}"><label for="token">Token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form></main></body></html>
`);
}
