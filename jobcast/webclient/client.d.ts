// Types of jobcast's browser client (/client.js beside this file).

/** Any JSON value (what a step returns). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One reply of a job: a step's result, or its final reply (done, error, cancelled). */
export interface Reply {
  /** The job's offset. */
  offset: number;
  /** 0, 1, 2, ...: the step (a result) or the end (the final reply). */
  seq: number;
  kind: "result" | "done" | "error" | "cancelled";
  /** The step's result; the final reply's value (`error`: why the job failed). */
  value: Json;
  /** ISO 8601, UTC. */
  produced_at: string;
}

/** How far a running step got: `seq` is that step's, `value` its figures. */
export interface Progress {
  offset: number;
  seq: number;
  kind: "progress";
  value: { current: number; total: number | null; message: string | null };
  produced_at: string;
}

/** What POST /schedule takes (the gateway's /docs has every field). */
export interface JobRequest {
  fn: string;
  deployment: string;
  framework: string;
  /** At most 8, each 1-64 of A-Z a-z 0-9 _ . : / - */
  tags?: string[];
  /** Start this many seconds from now. */
  delay_seconds?: number;
  /** Start at this time (ISO 8601 with a time zone). */
  run_at?: string;
}

export interface Scheduled {
  /** The job's offset: what followJob takes. */
  offset: number;
  /** With JOBCAST_AUTH=on: a token that reads this job only, until it expires. */
  read_token?: string;
}

export interface ScheduleOptions {
  /** An API key (jck_...): only on a page you trust with it. None with JOBCAST_AUTH=off. */
  key?: string;
  /** The gateway; by default the one this module was loaded from. */
  baseUrl?: string;
  /** The same key twice schedules one job (the second call gets the first's offset). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface FollowOptions {
  /** A read token (jcr_...) naming this job; none with JOBCAST_AUTH=off. Sent as ?token=. */
  token?: string;
  /** The gateway; by default the one this module was loaded from. */
  baseUrl?: string;
  /** Each reply once, in seq order, the final one included. */
  onReply?: (reply: Reply) => void;
  /** How far the running step got, when its pipeline reports it: never after that step's
   * result, and some ticks may be skipped (never the last). Not a step: it has no reply of its
   * own among onReply's. */
  onProgress?: (progress: Progress) => void;
  /** The final reply (done, error or cancelled), once, after its onReply. */
  onDone?: (reply: Reply) => void;
  /** Stops following (the EventSource is closed); the promise rejects with its reason. */
  signal?: AbortSignal;
}

/** A refusal: `status` is the gateway's HTTP status (401, 403, 404, 410, 422, 429, ...), or 0
 * when the browser gave the page none (the gateway does not allow this page's origin). */
export class JobcastError extends Error {
  readonly name: "JobcastError";
  readonly status: number;
  /** The gateway's own words, or why no answer could be read. */
  readonly detail: string;
  /** Set when status is 0: whether the gateway answered at all. */
  readonly reachable?: boolean;
}

/** POST /schedule; rejects with a JobcastError when the gateway refuses. */
export function schedule(request: JobRequest, options?: ScheduleOptions): Promise<Scheduled>;

/** Follow a job to its final reply (resolved), across dropped connections and gateway restarts,
 * without a gap or a repeat; rejects with a JobcastError on 401, 403, 404, 410 or a refused
 * origin. */
export function followJob(offset: number | string, options?: FollowOptions): Promise<Reply>;
