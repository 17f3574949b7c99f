// The public HTTP API the page stands on (the same one documented at /docs), called with the
// API key when the page holds one (auth.js).

import { refused, refusalText, withKey } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// Query parameters without the empty ones.
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && String(value).trim() !== "") {
      search.set(name, String(value).trim());
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((error) => `${(error.loc ?? []).slice(1).join(".")}: ${error.msg}`).join("; ");
    }
    return JSON.stringify(body);
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

// `what` says what the call does, for a refusal in words ("This key cannot list jobs").
async function call(url, what, options = {}) {
  const { headers = { accept: "application/json" }, ...rest } = options;
  const response = await fetch(url, { headers: withKey(headers), ...rest });
  if (response.ok) return response.json();
  const words = await detail(response);
  if (response.status === 401 || response.status === 403) {
    const error = new ApiError(response.status, refusalText(response.status, words, what));
    refused(error);
    throw error;
  }
  throw new ApiError(response.status, words);
}

export const api = {
  jobs: (filters, cursor) => call(`/jobs${query({ ...filters, cursor, limit: 100 })}`, "list jobs"),
  job: (offset) => call(`/jobs/${offset}`, "read this job"),
  stats: () => call("/stats", "read the fleet's figures"),
  pipelines: () => call("/pipelines", "list the pipelines"),
  cancel: (offset) => call(`/jobs/${offset}/cancel`, "cancel this job", { method: "POST" }),
  schedule: (request) =>
    call("/schedule", "schedule jobs", {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify(request),
    }),
};

// The kinds of reply a stream's events are named after (SSE `event:`).
export const REPLY_KINDS = ["result", "done", "error", "cancelled"];
