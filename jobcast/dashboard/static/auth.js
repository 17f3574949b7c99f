// The API key the page sends (JOBCAST_AUTH=on): kept in this tab's sessionStorage only (never
// localStorage, the address or a cookie), sent as `Authorization: Bearer <key>` on every call.

const STORED = "jobcast.apiKey";

export function apiKey() {
  try {
    return sessionStorage.getItem(STORED) || null;
  } catch {
    return null; // NOTE: storage refused (a private window's policy): no key
  }
}

export function rememberKey(key) {
  sessionStorage.setItem(STORED, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORED);
}

// The headers every request carries: the key, when there is one.
export function withKey(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, authorization: `Bearer ${key}` } : headers;
}

// A refusal (401, 403) in words: what to do about it.
export function refusalText(status, detail, what) {
  if (status === 401) {
    return apiKey() ? "Enter an API key: the gateway does not know this one" : "Enter an API key: this gateway asks for one";
  }
  return `This key cannot ${what} (${detail})`;
}

const listeners = [];

// Called with each refusal (401, 403) any call or stream meets.
export function onRefused(listener) {
  listeners.push(listener);
}

export function refused(error) {
  for (const listener of listeners) listener(error);
}
