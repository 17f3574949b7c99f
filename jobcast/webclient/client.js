// jobcast's browser client, served by the gateway at /client.js (types: /client.d.ts): schedule
// a job and follow it live from a web page on any origin the gateway allows
// (JOBCAST_CORS_ORIGINS). One ES module, no build step, no dependency:
//
//   import { schedule, followJob } from "https://jobs.example.com/client.js";
//
// followJob reads GET /messages/{offset}/stream with an EventSource (a read token goes in
// ?token=, since an EventSource sends no headers). Each event's id is the reply's seq: after a
// dropped connection the browser reconnects with Last-Event-ID and the gateway resumes after
// it; replies are also deduplicated by seq, so none is shown twice. When the browser gives up
// (an error status, a refused origin), the client asks the gateway why: a 401/403/404 rejects
// with a JobcastError saying so, a gateway that is down or busy is retried (?after=<last seq>).

const FINAL_KINDS = new Set(["done", "error", "cancelled"]);
const REPLY_KINDS = ["result", ...FINAL_KINDS];
const RETRY_MS = [500, 1000, 2000, 4000, 8000]; // then every 8 s, until the job ends or aborts

export class JobcastError extends Error {
  constructor(status, detail, message) {
    super(message);
    this.name = "JobcastError";
    this.status = status; // the gateway's HTTP status; 0 when it gave none this page may read
    this.detail = detail; // the gateway's own words (its JSON `detail`), or why none came
  }
}

const WHY = {
  401: "the API key or read token is missing, unknown or expired",
  403: "the API key or read token may not do this: a read token only reads its own jobs, a revoked key nothing",
  404: "no such job, or not one this key or read token may read",
  410: "the job was purged",
  429: "too many jobs scheduled: wait and try again",
};

// The gateway this module was served by, unless `baseUrl` names another.
function gatewayOf(baseUrl) {
  return String(baseUrl ?? new URL(".", import.meta.url)).replace(/\/+$/, "");
}

async function detailOf(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

async function refused(response, what) {
  const detail = await detailOf(response);
  const why = WHY[response.status] ? ` (${WHY[response.status]})` : "";
  return new JobcastError(
    response.status,
    detail,
    `jobcast: cannot ${what}: ${response.status} ${detail}${why}`,
  );
}

// A request the browser failed without an answer: the gateway is down, or it answered but
// not to this page (its origin is not allowed). An opaque (no-cors) request tells them apart.
async function unanswered(gateway, what) {
  let reachable = true;
  try {
    await fetch(`${gateway}/health`, { mode: "no-cors", cache: "no-store" });
  } catch {
    reachable = false;
  }
  const origin = globalThis.location?.origin ?? "this page's origin";
  const detail = reachable
    ? `the gateway at ${gateway} answered, but not to ${origin}: add it to JOBCAST_CORS_ORIGINS`
    : `the gateway at ${gateway} cannot be reached`;
  const error = new JobcastError(0, detail, `jobcast: cannot ${what}: ${detail}`);
  error.reachable = reachable;
  return error;
}

// POST /schedule: for pages you trust with an API key (`key`; none with JOBCAST_AUTH=off).
// Resolves to {offset, read_token} (read_token with auth on: hand it to followJob).
export async function schedule(request, { key, baseUrl, idempotencyKey, signal } = {}) {
  const gateway = gatewayOf(baseUrl);
  const headers = { accept: "application/json", "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(`${gateway}/schedule`, {
      method: "POST",
      headers,
      body: JSON.stringify(request),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw await unanswered(gateway, "schedule a job");
  }
  if (!response.ok) throw await refused(response, "schedule a job");
  const { offset, read_token } = await response.json();
  return { offset, read_token };
}

// Follow job `offset` until its final reply: onReply(reply) once per reply, in seq order, the
// final one (done, error or cancelled) included; then onDone(reply), and the promise resolves
// to it. onProgress(reply) gets how far the running step got (reply.value: {current, total,
// message}), when its pipeline reports it; rate-limited by the gateway, never after its step. Rejects with a JobcastError the gateway's refusal (401, 403, 404, 410) or a refused
// origin, with `signal`'s reason on abort. A gateway that is down is waited for (pass
// `signal: AbortSignal.timeout(ms)` to bound it).
export function followJob(offset, { token, baseUrl, onReply, onProgress, onDone, signal } = {}) {
  if (!/^\d+$/.test(String(offset))) {
    return Promise.reject(new TypeError(`jobcast: an offset is a non-negative integer, not ${offset}`));
  }
  const gateway = gatewayOf(baseUrl);
  const what = `follow job ${offset}`;
  return new Promise((resolve, reject) => {
    let last = -1; // the seq of the last reply handed to onReply
    let source = null;
    let timer = null;
    let retries = 0;
    let ended = false;

    function streamUrl() {
      const query = new URLSearchParams();
      if (token) query.set("token", token);
      if (last >= 0) query.set("after", String(last));
      const search = query.toString();
      return `${gateway}/messages/${offset}/stream${search ? `?${search}` : ""}`;
    }

    function end(error, reply) {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      source?.close();
      signal?.removeEventListener("abort", aborted);
      if (error) return reject(error);
      resolve(reply);
      onDone?.(reply);
    }

    function aborted() {
      end(signal.reason ?? new DOMException("aborted", "AbortError"));
    }

    function open() {
      source = new EventSource(streamUrl());
      source.onopen = () => {
        retries = 0;
      };
      // NOTE: a failed job's reply is an event named `error`, like the EventSource's own
      // connection errors: a MessageEvent is a reply, a plain Event a lost connection.
      for (const kind of REPLY_KINDS) source.addEventListener(kind, received);
      source.addEventListener("progress", progressed);
    }

    function progressed(event) {
      if (ended) return;
      let reply;
      try {
        reply = JSON.parse(event.data);
      } catch {
        return; // a tick is a hint: a broken one is skipped, the results still come
      }
      // NOTE: a tick carries no id and its running step's seq; one for a step already shown
      // (replayed on a resume) is stale.
      if (Number.isInteger(reply?.seq) && reply.seq > last) onProgress?.(reply);
    }

    function received(event) {
      if (ended) return;
      if (!(event instanceof MessageEvent)) return lost();
      let reply;
      try {
        reply = JSON.parse(event.data);
      } catch {
        return end(new JobcastError(0, "not JSON", `jobcast: cannot ${what}: a reply is not JSON`));
      }
      if (!Number.isInteger(reply?.seq) || reply.seq <= last) return; // seen before a reconnect
      last = reply.seq;
      onReply?.(reply);
      if (FINAL_KINDS.has(reply.kind)) end(null, reply);
    }

    function lost() {
      // NOTE: CONNECTING: the browser reconnects by itself, sending Last-Event-ID. CLOSED: it
      // gave up (an error status, a refused origin), and never says which: ask.
      if (source.readyState !== EventSource.CLOSED) return;
      source.close();
      why();
    }

    async function why() {
      const probe = new AbortController();
      let response;
      try {
        response = await fetch(streamUrl(), {
          headers: { accept: "text/event-stream" },
          cache: "no-store",
          signal: probe.signal,
        });
      } catch {
        if (ended) return;
        const error = await unanswered(gateway, what);
        return error.reachable ? end(error) : again();
      }
      if (ended) return probe.abort();
      if (response.ok || response.status >= 500) {
        probe.abort(); // only its status was wanted: the EventSource reads the stream
        return again();
      }
      end(await refused(response, what));
    }

    function again() {
      if (ended) return;
      timer = setTimeout(open, RETRY_MS[Math.min(retries, RETRY_MS.length - 1)]);
      retries += 1;
    }

    if (signal?.aborted) return aborted();
    signal?.addEventListener("abort", aborted, { once: true });
    open();
  });
}
