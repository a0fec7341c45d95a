// flask-toucan refresh script: keeps the auth-token of every <tc-dashboard> and
// <tc-ai-assistant> rendered by the Jinja kit fresh, for as long as the page is
// open. Plain ES module, no build step, nothing inline (strict CSP friendly).
// Loaded by {{ toucan_scripts() }}; documented in docs/embedding.md.
//
// It reads the kit's attributes on each element:
//   data-toucan-kind          dashboard | chart | assistant (what the token is for)
//   data-toucan-scope         a name for the token's permission set (one refresh per scope)
//   data-toucan-expires-in    seconds the token had left when the page was generated
//   data-toucan-refresh-url   the POST {prefix}/token endpoint
//   data-toucan-csrf          the session's CSRF token (sent in a header, never a cookie)
//   data-toucan-csrf-header   the header name (TOUCAN_CSRF_HEADER)
//   data-toucan-session       a digest of the login session: tabs with the same one share tokens
//
// Classic Toucan 3 embeds ({{ tc_embed() }}: <div data-toucan-embed="script|iframe"> around the
// launcher script or the iframe) carry the token in that URL instead of auth-token: a new token
// re-mounts the embed (see remount() below).
//
// Timing is measured on the monotonic clock (performance.now()) from the moment
// the token arrived; the server's expires_at is never compared with Date.now(),
// so a browser clock minutes off changes nothing.
//
// Events, dispatched on document:
//   toucan:token-refreshed  {kind, expires_in, source: "server" | "tab"}
//   toucan:refresh-failed   {kind, status, retry_in, expired, attempt, permanent}  (status 0: network);
//                           once more with at_expiry: true when the token expires before a retry.
//                           permanent: false for a transient failure (retried with backoff);
//                           permanent: true, retry_in: null, upstream_code when Toucan rejected the
//                           request for good (502 "upstream_rejected"): that scope is stopped, never retried
//   toucan:session-expired  {kind, status}                              (401: stopped)

const SELECTOR = "tc-dashboard[data-toucan-kind], tc-ai-assistant[data-toucan-kind], div[data-toucan-embed][data-toucan-kind]";
const MAX_MARGIN = 30; // seconds: refresh at most this long before expiry...
const MARGIN_SHARE = 0.2; // ...or a fifth of the token's lifetime, whichever is less
const JITTER_SHARE = 0.1; // up to 10% of the margin earlier, so tabs and users spread out
const BACKOFF_BASE = 1; // seconds, doubled per failed attempt
const BACKOFF_MAX = 60;
const LOCK_PREFIX = "flask-toucan-refresh:";
const CHANNEL = "flask-toucan-refresh";
const HANDOVER_MS = 50; // the lock is held this long after broadcasting a new token

/** @type {Map<string, Group>} */
const groups = new Map();
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
const endedSessions = new Set(); // session tags that answered 401

// When the HTML (and so the server-rendered tokens) arrived, on the monotonic clock.
function pageArrival() {
  const nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
  return nav && nav.responseStart > 0 ? nav.responseStart : 0;
}

function emit(name, detail) {
  document.dispatchEvent(new CustomEvent(name, { detail }));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Group {
  // One per (refresh URL, permission scope, session): its elements share one token.
  // The POST names the kind of the first element (any kind of the scope gets the same set).
  constructor(key, el) {
    this.key = key;
    this.kind = el.getAttribute("data-toucan-kind");
    this.url = el.getAttribute("data-toucan-refresh-url");
    this.csrf = el.getAttribute("data-toucan-csrf") || "";
    this.session = el.getAttribute("data-toucan-session") || this.csrf;
    this.header = el.getAttribute("data-toucan-csrf-header") || "X-Toucan-CSRF";
    this.elements = new Set();
    this.token = null;
    this.arrivedAt = 0; // performance.now() when this.token arrived
    this.expiresIn = 0; // seconds it had left then
    this.lifetime = 0; // the longest expires_in seen: what the margin is a share of
    this.version = 0; // bumped on every new token (own fetch or another tab's)
    this.timer = null;
    this.expiryTimer = null;
    this.attempt = 0;
    this.sameStreak = 0;
    this.notBefore = 0; // honour Retry-After even when asked to refresh at once
    this.running = false;
    this.stopped = false;
  }

  get expiresAt() {
    return this.arrivedAt + this.expiresIn * 1000;
  }

  get margin() {
    return Math.min(MAX_MARGIN, this.lifetime * MARGIN_SHARE);
  }

  remaining(now = performance.now()) {
    return (this.expiresAt - now) / 1000;
  }

  live() {
    for (const el of this.elements) if (!el.isConnected) this.elements.delete(el);
    return this.elements.size > 0;
  }

  // Take a token (from the page, our own fetch or another tab) if it lasts longer.
  offer(token, expiresIn, arrivedAt, source) {
    const same = token === this.token;
    if (same && source === "page") return true; // one more element with the token we hold
    if (!same && this.token !== null && arrivedAt + expiresIn * 1000 <= this.expiresAt) return false;
    this.sameStreak = same && source === "server" ? this.sameStreak + 1 : 0;
    this.token = token;
    this.expiresIn = expiresIn;
    this.arrivedAt = arrivedAt;
    this.lifetime = Math.max(this.lifetime, expiresIn);
    this.version += 1;
    this.attempt = 0;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    for (const el of this.elements) {
      if (el.isConnected && tokenOf(el) !== token) setToken(el, token);
    }
    if (source !== "page") emit("toucan:token-refreshed", { kind: this.kind, expires_in: expiresIn, source });
    this.schedule();
    return true;
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || !this.live()) return;
    const jitter = Math.random() * this.margin * JITTER_SHARE;
    let delay = (this.remaining() - this.margin - jitter) * 1000;
    // The server's cache answered with the token we already had: do not spin on it.
    if (this.sameStreak > 0) delay = Math.max(delay, Math.min(2 ** this.sameStreak, BACKOFF_MAX) * 1000);
    this.arm(Math.max(0, delay));
  }

  arm(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), ms);
  }

  async refresh() {
    if (this.stopped || this.running) return;
    const wait = this.notBefore - performance.now();
    if (wait > 0) {
      this.arm(wait);
      return;
    }
    clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    const seen = this.version;
    try {
      if (navigator.locks && navigator.locks.request) {
        // One refresh per kind and session across tabs: whoever holds the lock
        // fetches; the others wait, then reuse the token it broadcast.
        await navigator.locks.request(LOCK_PREFIX + this.key, async () => {
          await sleep(0); // let a broadcast queued while we waited be delivered
          if (this.version !== seen && this.remaining() > this.margin) {
            this.schedule();
            return;
          }
          if (await this.fetchToken()) await sleep(HANDOVER_MS);
        });
      } else {
        await this.fetchToken();
      }
    } catch (err) {
      this.failed(0, null); // a lock or script error must not end the loop
    } finally {
      this.running = false;
    }
  }

  // One POST to the refresh endpoint; true when a token came back.
  async fetchToken() {
    let resp;
    let body = null;
    try {
      resp = await fetch(this.url, {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        // The page may say Referrer-Policy: no-referrer (docs/security.md); under it the
        // Fetch spec serializes a POST's Origin as "null" (Chromium sends the real one
        // anyway). strict-origin for this one request keeps the real Origin for our own
        // endpoint and sends at most the origin, never the page's path, as Referer.
        referrerPolicy: "strict-origin",
        headers: { "Content-Type": "application/json", [this.header]: this.csrf },
        body: JSON.stringify({ kind: this.kind }),
      });
      body = await resp.json().catch(() => null);
    } catch (err) {
      this.failed(0, null);
      return false;
    }
    const arrived = performance.now();
    if (resp.ok && body && typeof body.token === "string" && typeof body.expires_in === "number") {
      this.offer(body.token, body.expires_in, arrived, "server");
      if (channel) channel.postMessage({ type: "token", key: this.key, token: body.token, expires_in: body.expires_in });
      return true;
    }
    const error = body && body.error;
    if (resp.status === 502 && error === "upstream_rejected") {
      // Toucan refused for good (e.g. NO_ACTIVE_SUBSCRIPTION): retrying cannot help.
      this.rejected(resp.status, typeof body.upstream_code === "string" ? body.upstream_code : null);
      return false;
    }
    if (resp.status === 401 || (resp.status === 403 && error === "csrf_failed")) {
      // Logged out (here or in another tab), or the session changed under us.
      endSession(this.session, this.kind, resp.status, true);
      return false;
    }
    this.failed(resp.status, parseRetryAfter(resp.headers.get("Retry-After")));
    return false;
  }

  // Back off (exponential, jittered, never sooner than Retry-After) and re-arm: always.
  failed(status, retryAfter) {
    this.attempt += 1;
    const backoff = Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (this.attempt - 1));
    let delay = backoff * (0.5 + Math.random() * 0.5);
    if (retryAfter !== null) {
      delay = Math.max(delay, retryAfter);
      this.notBefore = performance.now() + retryAfter * 1000;
    }
    const left = this.remaining();
    emit("toucan:refresh-failed", {
      kind: this.kind, status, retry_in: delay, expired: left <= 0, attempt: this.attempt, permanent: false,
    });
    if (left > 0 && left < delay && !this.expiryTimer) {
      // The token will expire before the next attempt: tell the page when it does.
      const at = performance.now() + delay * 1000;
      this.expiryTimer = setTimeout(() => {
        this.expiryTimer = null;
        emit("toucan:refresh-failed", {
          kind: this.kind, status, retry_in: Math.max(0, (at - performance.now()) / 1000),
          expired: true, attempt: this.attempt, at_expiry: true, permanent: false,
        });
      }, left * 1000);
    }
    if (!this.stopped) this.arm(delay * 1000);
  }

  // A permanent refusal: stop this scope (no re-arm, no backoff loop) and say so once,
  // then once more when the token the page holds runs out.
  rejected(status, upstreamCode) {
    this.attempt += 1;
    this.stop();
    const left = this.remaining();
    const detail = {
      kind: this.kind, status, retry_in: null, expired: left <= 0, attempt: this.attempt,
      permanent: true, upstream_code: upstreamCode,
    };
    emit("toucan:refresh-failed", detail);
    if (left > 0) {
      this.expiryTimer = setTimeout(() => {
        this.expiryTimer = null;
        emit("toucan:refresh-failed", { ...detail, expired: true, at_expiry: true });
      }, left * 1000);
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    this.timer = this.expiryTimer = null;
  }
}

// ---------------------------------------------------------------- classic embeds
const SWAP_TIMEOUT_MS = 10000; // swap in a new mount that never said it loaded, after this long
const HIDDEN = { position: "absolute", visibility: "hidden", pointerEvents: "none", left: "0", top: "0" };

function isEmbed(el) {
  return el.hasAttribute("data-toucan-embed");
}

// The element whose URL carries the embed's token: the launcher script or the iframe of the
// newest mount (a re-mount in progress does not count until it is swapped in).
function mountOf(el) {
  const tag = el.getAttribute("data-toucan-embed") === "iframe" ? "iframe" : "script";
  for (const node of el.querySelectorAll(tag + "[src]")) {
    if (!node.closest("[data-toucan-embed-next]")) return node;
  }
  return null;
}

function tokenOf(el) {
  if (!isEmbed(el)) return el.getAttribute("auth-token") || "";
  if (typeof el._toucanToken === "string") return el._toucanToken;
  const mount = mountOf(el);
  try {
    return (mount && new URL(mount.src).searchParams.get("token")) || "";
  } catch (err) {
    return "";
  }
}

function setToken(el, token) {
  if (isEmbed(el)) remount(el, token);
  else el.setAttribute("auth-token", token);
}

// Build the new mount out of sight (absolute, hidden, the old one's size, so it lays out as it
// will be shown), then drop the old mount and show the new one: no blank frame in between.
function hide(node, size) {
  Object.assign(node.style, HIDDEN, { width: size.offsetWidth + "px", height: size.offsetHeight + "px" });
}

function reveal(node) {
  for (const name of [...Object.keys(HIDDEN), "width", "height"]) node.style[name] = "";
  if (!node.getAttribute("style")) node.removeAttribute("style");
}

function remount(el, token) {
  const mount = mountOf(el);
  if (!mount) return;
  el._toucanToken = token;
  if (el._toucanNext) el._toucanNext.cancel(); // a newer token than the mount still loading
  const url = new URL(mount.src);
  url.searchParams.set("token", token);
  el._toucanNext = el.getAttribute("data-toucan-embed") === "iframe"
    ? swapFrame(el, mount, url.href)
    : swapScript(el, mount, url.href);
}

// Call done() once, on the first of: ready() said so, or the timeout.
function whenReady(arm, done) {
  let finished = false;
  let timer = null;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done();
  };
  timer = setTimeout(finish, SWAP_TIMEOUT_MS);
  arm(finish);
  return () => {
    finished = true;
    clearTimeout(timer);
  };
}

// iframe form: the same frame with the new src, hidden next to the old one; on load, the swap.
// (A frame moved in the DOM reloads, so the new one is built where it will stay.)
function swapFrame(el, old, src) {
  const next = old.cloneNode(false);
  next.setAttribute("src", src);
  next.setAttribute("data-toucan-embed-next", "");
  hide(next, old);
  const stop = whenReady((finish) => next.addEventListener("load", finish, { once: true }), () => {
    for (const node of [...el.children]) if (node !== next) node.remove();
    next.removeAttribute("data-toucan-embed-next");
    reveal(next);
    el._toucanNext = null;
  });
  old.after(next);
  return { cancel: () => { stop(); next.remove(); } };
}

// Script form: a new launcher script (the page's nonce carried over) in a hidden wrapper, where
// the launcher draws; once it drew (and a frame it drew loaded), the old mount goes.
function swapScript(el, old, src) {
  const wrap = document.createElement("div");
  wrap.setAttribute("data-toucan-embed-next", "");
  hide(wrap, el);
  const script = document.createElement("script");
  script.async = true;
  script.type = "text/javascript";
  if (old.nonce) script.nonce = old.nonce;
  script.src = src;
  let observer = null;
  const stop = whenReady((finish) => {
    const drawn = () => {
      const first = [...wrap.children].find((node) => node !== script);
      if (!first) return false;
      const frame = first.tagName === "IFRAME" ? first : first.querySelector("iframe");
      if (frame) frame.addEventListener("load", finish, { once: true });
      else finish();
      return true;
    };
    observer = new MutationObserver(() => { if (drawn()) observer.disconnect(); });
    observer.observe(wrap, { childList: true });
    script.addEventListener("error", finish, { once: true });
  }, () => {
    if (observer) observer.disconnect();
    for (const node of [...el.children]) if (node !== wrap) node.remove();
    wrap.removeAttribute("data-toucan-embed-next");
    reveal(wrap);
    wrap.style.height = "100%"; // what the launcher drew is sized against the container, as before
    el._toucanNext = null;
  });
  wrap.appendChild(script);
  el.appendChild(wrap);
  return { cancel: () => { stop(); if (observer) observer.disconnect(); wrap.remove(); } };
}

function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 3600);
  const date = Date.parse(value); // HTTP-date form: only a duration is taken from it
  return Number.isFinite(date) ? Math.min(Math.max(0, (date - Date.now()) / 1000), 3600) : null;
}

// Stop every group of that session (other logins in this tab are not touched).
function endSession(session, kind, status, tellOtherTabs) {
  if (endedSessions.has(session)) return;
  endedSessions.add(session);
  let mine = false;
  for (const g of groups.values()) {
    if (g.session === session) {
      g.stop();
      mine = true;
    }
  }
  if (tellOtherTabs && channel) channel.postMessage({ type: "session-expired", session, status });
  if (mine) emit("toucan:session-expired", { kind, status });
}

// Elements with the same permission set (scope) in the same session share one token.
function keyOf(el) {
  return [el.getAttribute("data-toucan-refresh-url"),
    el.getAttribute("data-toucan-scope") || el.getAttribute("data-toucan-kind"),
    el.getAttribute("data-toucan-session") || el.getAttribute("data-toucan-csrf")].join("|");
}

// Register one element (on load, or added later by the page).
function adopt(el, arrivedAt) {
  if (!el.getAttribute("data-toucan-refresh-url") || el._toucanGroup) return;
  const key = keyOf(el);
  let group = groups.get(key);
  if (!group) {
    group = new Group(key, el);
    groups.set(key, group);
    if (endedSessions.has(group.session)) group.stop();
  }
  el._toucanGroup = group;
  group.elements.add(el);
  const token = tokenOf(el);
  const expiresIn = parseFloat(el.getAttribute("data-toucan-expires-in") || "0") || 0;
  if (!group.offer(token, expiresIn, arrivedAt, "page") && group.token && token !== group.token) {
    setToken(el, group.token); // the group already holds a fresher one
  }
}

function scan(root, arrivedAt) {
  if (root.matches && root.matches(SELECTOR)) adopt(root, arrivedAt);
  if (root.querySelectorAll) for (const el of root.querySelectorAll(SELECTOR)) adopt(el, arrivedAt);
}

function refreshNearExpiry() {
  for (const g of groups.values()) {
    if (g.live() && g.remaining() <= g.margin) g.refresh();
  }
}

function start() {
  scan(document, pageArrival());
  new MutationObserver((records) => {
    const now = performance.now();
    for (const r of records) for (const node of r.addedNodes) if (node.nodeType === 1) scan(node, now);
  }).observe(document.documentElement, { childList: true, subtree: true });

  // A component saw its token refused as expired: refresh that kind now.
  document.addEventListener("toucan:token-expired", (event) => {
    const target = event.composedPath ? event.composedPath()[0] : event.target;
    const group = target && target._toucanGroup;
    if (group) group.refresh();
  });

  // A tab waking from sleep or throttling: its timers may have fired late or not at all.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshNearExpiry();
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    for (const g of groups.values()) g.refresh(); // back from bfcache: timings are stale
  });

  if (channel) {
    channel.addEventListener("message", (event) => {
      const msg = event.data || {};
      if (msg.type === "token" && typeof msg.token === "string" && typeof msg.expires_in === "number") {
        const group = groups.get(msg.key);
        if (group && !group.stopped) group.offer(msg.token, msg.expires_in, performance.now(), "tab");
      } else if (msg.type === "session-expired" && typeof msg.session === "string") {
        endSession(msg.session, null, msg.status, false);
      }
    });
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
else start();
