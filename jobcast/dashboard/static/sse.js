// Server-Sent Events read with fetch (an EventSource cannot send the API key's header): the
// same events, the same resuming with Last-Event-ID after a drop, with auth on or off.

import { ApiError, detail } from "./api.js";
import { refused, refusalText, withKey } from "./auth.js";

const DEFAULT_RETRY_MS = 3000; // NOTE: a browser's EventSource waits about as long

// Follow `url`: onOpen() once answered, onEvent(type, data) per event, onDrop() when the
// connection is lost (it resumes by itself), onClosed(error) when answered with an error
// status (it gives up, as an EventSource does; the caller may open it again).
export function openStream(url, { what, onOpen, onEvent, onDrop, onClosed }) {
  const controller = new AbortController();
  let lastEventId = null;
  let retryMs = DEFAULT_RETRY_MS;
  let closed = false;
  let timer = null;

  async function connect() {
    let response;
    try {
      const headers = withKey({ accept: "text/event-stream", "cache-control": "no-cache" });
      if (lastEventId !== null) headers["last-event-id"] = lastEventId;
      response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
    } catch {
      return dropped();
    }
    if (closed) return;
    const type = response.headers.get("content-type") ?? "";
    if (!response.ok || !type.startsWith("text/event-stream")) {
      const words = await detail(response);
      const error = new ApiError(response.status, words);
      if (response.status === 401 || response.status === 403) {
        error.message = refusalText(response.status, words, what);
        refused(error);
      }
      closed = true;
      return onClosed(error);
    }
    onOpen();
    try {
      await read(response.body);
    } catch {
      // NOTE: a dropped connection, or close() aborting the read
    }
    dropped();
  }

  function dropped() {
    if (closed) return;
    onDrop();
    timer = setTimeout(connect, retryMs);
  }

  async function read(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let event = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      // NOTE: a line ends at \r\n, \r or \n; a \r last in a chunk may be half of a \r\n.
      const lines = buffer.split(/\r\n|\r(?!$)|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (closed) return;
        if (line === "") {
          if (data.length) onEvent(event || "message", data.join("\n"));
          data = [];
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue; // a comment (the gateway's pings)
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "event") event = text;
        else if (field === "id" && !text.includes("\0")) lastEventId = text;
        else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
      }
    }
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      controller.abort();
    },
  };
}
