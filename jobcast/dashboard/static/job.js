// One job: its request, then its steps as a timeline that grows live (GET /jobs/{offset},
// then /messages/{offset}/stream after the last step shown), ending in a clear mark.

import { ApiError, api, REPLY_KINDS } from "./api.js";
import { clear, el } from "./dom.js";
import { openStream } from "./sse.js";
import { between, firstLine, isLong, seconds, stateLabel, valueText } from "./format.js";

const REOPEN_DELAY_MS = 3000;

export class JobView {
  constructor({ title, outcome, request, timeline, progress, cancel, cancelError, onLive }) {
    this.title = title;
    this.cancelButton = cancel;
    this.cancelError = cancelError;
    cancel.addEventListener("click", () => this.cancel());
    this.progress = progress;
    this.outcome = outcome;
    this.request = request;
    this.timeline = timeline;
    this.onLive = onLive;
    this.stream = null;
    this.generation = 0;
  }

  async open(offset) {
    this.close();
    const generation = this.generation;
    this.offset = offset;
    this.lastSeq = -1;
    this.previousAt = null;
    clear(this.timeline);
    clear(this.request);
    this.progress.hidden = true;
    this.cancelButton.hidden = true;
    this.cancelError.textContent = "";
    this.title.textContent = `Job #${offset}`;
    this.showOutcome("queued", "waiting for its first step");
    let record;
    try {
      record = await api.job(offset);
    } catch (error) {
      if (generation !== this.generation) return;
      const missing = error instanceof ApiError && error.status === 404;
      // NOTE: a refusal's message says what to do (enter a key), in words
      this.showOutcome("unknown", missing ? `job #${offset} does not exist` : error.message);
      return;
    }
    if (generation !== this.generation) return;
    this.createdAt = record.created_at;
    this.previousAt = record.created_at;
    this.showRequest(record);
    this.showOutcome(record.state, waiting(record));
    for (const reply of record.replies) this.add(reply);
    if (record.replies.some(isFinal)) return;
    this.cancelButton.hidden = false;
    this.follow(offset);
    if (record.progress) this.showProgress(record.progress.seq, record.progress);
  }

  close() {
    this.generation += 1;
    if (this.stream) this.stream.close();
    this.stream = null;
  }

  follow(offset) {
    // NOTE: `after` starts where the record ended; after a drop the stream resumes with
    // Last-Event-ID (the last seq it got), which the gateway resumes after.
    const stream = openStream(`/messages/${offset}/stream?after=${this.lastSeq}`, {
      what: "follow this job",
      onOpen: () => this.onLive(true),
      onDrop: () => this.onLive(false),
      onClosed: (error) => {
        if (error.status === 401 || error.status === 403) {
          this.onLive(null);
          this.showOutcome("unknown", error.message);
          return;
        }
        this.onLive(false);
        // NOTE: a stream answered with an error status (a 503 while the ledger is down) is
        // given up, as a browser's EventSource does; this view opens it again, after the
        // last step it shows.
        const generation = this.generation;
        setTimeout(() => {
          if (generation === this.generation && this.stream === stream) this.follow(offset);
        }, REOPEN_DELAY_MS);
      },
      onEvent: (kind, data) => {
        if (REPLY_KINDS.includes(kind)) this.add(JSON.parse(data));
        else if (kind === "progress") {
          const reply = JSON.parse(data);
          this.showProgress(reply.seq, reply.value);
        }
      },
    });
    this.stream = stream;
  }

  showRequest(record) {
    const request = record.request ?? {};
    const rows = [
      ["Pipeline", request.fn],
      ["Deployment", request.deployment],
      ["Framework", request.framework],
      ["Tags", (request.tags ?? []).join(", ") || "—"],
      ["Scheduled", new Date(record.created_at).toLocaleString()],
    ];
    this.request.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value ?? "—"))]));
  }

  showOutcome(state, words) {
    this.outcome.className = `outcome state-${state}`;
    this.outcome.dataset.state = state;
    this.outcome.replaceChildren(el("strong", {}, stateLabel(state)), words ? ` — ${words}` : "");
  }

  // One reply, once, in seq order: a step of the timeline, or the job's end.
  add(reply) {
    if (reply.seq <= this.lastSeq) return; // already shown (a resumed stream repeats none)
    this.lastSeq = reply.seq;
    this.progress.hidden = true;
    const took = this.previousAt ? between(this.previousAt, reply.produced_at) : null;
    this.previousAt = reply.produced_at;
    const text = valueText(reply.value);
    const final = isFinal(reply);
    const heading = final ? stateLabel(stateOf(reply)) : `Step ${reply.seq + 1}`;
    const timing = reply.seq === 0 ? `${seconds(took)} after scheduling` : `took ${seconds(took)}`;
    const item = el(
      "li",
      { class: `step kind-${reply.kind}`, "data-seq": reply.seq, "data-kind": reply.kind },
      el("div", { class: "step-head" }, el("span", { class: "step-name" }, heading), el("span", { class: "step-time" }, timing)),
      valueBlock(text),
    );
    this.timeline.append(item);
    if (final) this.finish(reply, text);
    else this.running();
  }

  // How far the running step got (a `progress` event, or the record's latest): a line under
  // the timeline until that step's result arrives.
  showProgress(seq, value) {
    if (seq <= this.lastSeq || this.stream === null) return; // old news, or the job has ended
    const parts = [`Step ${seq + 1} running`];
    const bar = el("progress", { max: value.total ?? null, value: value.total ? value.current : null });
    const amount = value.total ? `${value.current} of ${value.total}` : `${value.current}`;
    parts.push(amount);
    if (value.message) parts.push(value.message);
    this.progress.replaceChildren(bar, ` ${parts.join(" · ")}`);
    this.progress.hidden = false;
    this.running();
  }

  // A step reported or returned: the job runs, whatever the record said when it was read.
  running() {
    if (this.outcome.dataset.state !== "running") this.showOutcome("running", "steps stream in as they run");
  }

  // Ask for the job to be cancelled (POST /jobs/{offset}/cancel): its stream then brings the
  // final `cancelled` reply (a running step finishes first).
  async cancel() {
    const offset = this.offset;
    this.cancelButton.disabled = true;
    this.cancelError.textContent = "";
    try {
      const answer = await api.cancel(offset);
      if (offset === this.offset && answer.state !== "cancelled") {
        this.showOutcome(answer.state, "cancelling: the running step finishes first");
      }
    } catch (error) {
      this.cancelError.textContent = `Not cancelled: ${error.message}`;
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  finish(reply, text) {
    this.cancelButton.hidden = true;
    this.close();
    this.onLive(null);
    const total = between(this.createdAt, reply.produced_at);
    const state = stateOf(reply);
    const steps = `${reply.seq} step${reply.seq === 1 ? "" : "s"}`;
    if (state === "failed") this.showOutcome(state, `${firstLine(text, 200)} (after ${steps}, ${seconds(total)})`);
    else this.showOutcome(state, `${steps} in ${seconds(total)}`);
  }
}

function waiting(record) {
  if (record.state === "running") return "steps stream in as they run";
  if (record.state === "scheduled" && record.due_at) return `starts at ${new Date(record.due_at).toLocaleString()}`;
  return "";
}

function isFinal(reply) {
  return reply.kind === "done" || reply.kind === "error" || reply.kind === "cancelled";
}

function stateOf(reply) {
  return { done: "done", error: "failed", cancelled: "cancelled" }[reply.kind] ?? "running";
}

// A value readably: short ones in full, long ones folded (the first line shows).
function valueBlock(text) {
  const pre = el("pre", { class: "value" }, text);
  if (!isLong(text)) return pre;
  return el("details", { class: "long" }, el("summary", {}, `${firstLine(text)} (${text.length} characters)`), pre);
}
