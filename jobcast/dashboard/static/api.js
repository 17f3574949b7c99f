// The public HTTP API the page stands on (the same one documented at /docs).

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

async function detail(response) {
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

async function call(url, options = {}) {
  const response = await fetch(url, { headers: { accept: "application/json" }, ...options });
  if (!response.ok) throw new ApiError(response.status, await detail(response));
  return response.json();
}

export const api = {
  jobs: (filters, cursor) => call(`/jobs${query({ ...filters, cursor, limit: 100 })}`),
  job: (offset) => call(`/jobs/${offset}`),
  stats: () => call("/stats"),
  pipelines: () => call("/pipelines"),
  cancel: (offset) => call(`/jobs/${offset}/cancel`, { method: "POST" }),
  schedule: (request) =>
    call("/schedule", {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify(request),
    }),
};

// The kinds of reply a stream's events are named after (SSE `event:`).
export const REPLY_KINDS = ["result", "done", "error", "cancelled"];
