// The jobs list: newest first, filtered by state, fn and tag, kept live by one feed of every
// reply (GET /jobs/stream); each row shows its steps so far and how long the job took.

import { ApiError, api, query, REPLY_KINDS } from "./api.js";
import { clear, el } from "./dom.js";
import { openStream } from "./sse.js";
import { between, clock, FINAL_STATES, seconds, STATE_AFTER, stateLabel } from "./format.js";

const RELOAD_DELAY_MS = 250;
const LATEST_KEPT = 2000;
const REOPEN_DELAY_MS = 3000;

export class JobList {
  constructor({ rows, empty, more, onLive }) {
    this.rows = rows;
    this.empty = empty;
    this.more = more;
    this.onLive = onLive;
    this.byOffset = new Map();
    this.filters = {};
    this.next = null;
    this.feed = null;
    this.reloading = null;
    this.reopening = null;
    this.refused = false;
    this.again = false;
    this.latest = new Map();
    this.generation = 0;
    this.more.addEventListener("click", () =>
      this.loadMore().catch((error) => {
        this.empty.textContent = `Cannot list older jobs: ${error.message}`;
        this.empty.hidden = false;
      }),
    );
  }

  // Show the jobs matching `filters` and follow them live.
  start(filters) {
    this.stop();
    this.filters = filters;
    this.latest.clear();
    // NOTE: the feed opens before the list is read, so no reply recorded in between is
    // missed; one that was already counted in the list changes nothing when applied again.
    this.openFeed();
    this.reload();
  }

  stop() {
    this.generation += 1;
    if (this.feed) this.feed.close();
    this.feed = null;
    this.refused = false;
    clearTimeout(this.reopening);
    clearTimeout(this.reloading);
    this.reloading = null;
    this.again = false;
  }

  openFeed() {
    const { fn, tag } = this.filters;
    // NOTE: not filtered by state on the server: a job leaves a state with its next reply,
    // which this list must see to move or drop the row.
    const feed = openStream(`/jobs/stream${query({ fn, tag })}`, {
      what: "follow jobs",
      onOpen: () => this.onLive(true),
      onDrop: () => this.onLive(false), // it resumes by itself
      onClosed: (error) => {
        // NOTE: a stream answered with an error status (a 503 while the ledger is down) is
        // given up, as a browser's EventSource does: this list tries again, unless the
        // filters or the key were refused.
        if (error.status === 401 || error.status === 403) this.refused = true;
        this.onLive(this.refused ? null : false);
        const generation = this.generation;
        this.reopening = setTimeout(() => {
          if (generation !== this.generation || this.refused) return;
          // NOTE: as at the start: the feed first, then the list, which brings in whatever
          // was recorded while neither was open.
          this.openFeed();
          this.reloadSoon();
        }, REOPEN_DELAY_MS);
      },
      onEvent: (kind, data) => {
        if (REPLY_KINDS.includes(kind)) this.apply(JSON.parse(data));
      },
    });
    this.feed = feed;
  }

  async reload() {
    const generation = this.generation;
    let page;
    try {
      page = await api.jobs(this.filters);
    } catch (error) {
      if (generation !== this.generation) return;
      this.refused = error instanceof ApiError && [401, 403, 422].includes(error.status);
      if (this.refused) {
        this.byOffset.clear();
        clear(this.rows);
        this.more.hidden = true;
        this.onLive(null);
      }
      this.empty.textContent = `Cannot list these jobs: ${error.message}`;
      this.empty.hidden = false;
      return;
    }
    if (generation !== this.generation) return; // the filters changed meanwhile
    this.byOffset.clear();
    clear(this.rows);
    this.empty.textContent = "No jobs match.";
    this.append(page);
  }

  async loadMore() {
    if (!this.next) return;
    const generation = this.generation;
    const page = await api.jobs(this.filters, this.next);
    if (generation === this.generation) this.append(page);
  }

  append(page) {
    for (const job of page.jobs) {
      if (this.byOffset.has(job.offset)) continue;
      const row = { job, tr: el("tr") };
      this.byOffset.set(job.offset, row);
      const latest = this.latest.get(job.offset);
      if (latest) this.update(row, latest);
      this.render(row);
      if (this.byOffset.has(job.offset)) this.rows.append(row.tr);
    }
    this.next = page.next;
    this.more.hidden = !page.next;
    this.empty.hidden = this.byOffset.size > 0;
  }

  // One reply from the feed: update its job's row, or read the list again for a new job.
  apply(reply) {
    const state = STATE_AFTER[reply.kind];
    if (!state) return;
    this.remember(reply);
    const row = this.byOffset.get(reply.offset);
    if (!row) {
      if (!this.filters.state || this.filters.state === state) this.reloadSoon();
      return;
    }
    this.update(row, reply);
  }

  // NOTE: a page read while replies arrive can be older than they are: each row it brings is
  // brought up to the latest reply the feed gave for its job (applying one twice is harmless).
  remember(reply) {
    this.latest.delete(reply.offset);
    this.latest.set(reply.offset, reply);
    if (this.latest.size > LATEST_KEPT) this.latest.delete(this.latest.keys().next().value);
  }

  update(row, reply) {
    const job = row.job;
    // NOTE: once a job's end is known nothing newer can come: a reply is older news.
    if (!FINAL_STATES.has(job.state) && reply.seq + 1 >= (job.steps ?? 0)) {
      // NOTE: `steps` counts the steps recorded, not the final reply (whose seq follows them).
      job.steps = Math.max(job.steps ?? 0, reply.kind === "result" ? reply.seq + 1 : reply.seq);
      job.state = STATE_AFTER[reply.kind];
      job.updated_at = reply.produced_at;
      if (reply.kind === "error") job.error = reply.value;
      if (FINAL_STATES.has(job.state)) job.duration_seconds = between(job.created_at, reply.produced_at);
    }
    if (this.filters.state && job.state !== this.filters.state) {
      row.tr.remove();
      this.byOffset.delete(reply.offset);
      this.empty.hidden = this.byOffset.size > 0;
      return;
    }
    this.render(row);
  }

  reloadSoon() {
    // NOTE: at most one read at a time, RELOAD_DELAY_MS after the first new job: a burst of
    // new jobs is read in one request, and a steady stream of them still shows every so often.
    if (this.reloading) {
      this.again = true;
      return;
    }
    this.reloading = setTimeout(async () => {
      await this.reload().catch(() => {});
      this.reloading = null;
      if (this.again) {
        this.again = false;
        this.reloadSoon();
      }
    }, RELOAD_DELAY_MS);
  }

  render({ job, tr }) {
    const took = FINAL_STATES.has(job.state)
      ? job.duration_seconds
      : between(job.created_at, job.updated_at ?? job.created_at);
    const stateCell = el("td", {}, el("span", { class: `state state-${job.state}` }, stateLabel(job.state)));
    if (job.state === "failed" && job.error !== null && job.error !== undefined) {
      stateCell.append(el("span", { class: "reason" }, errorText(job.error)));
    }
    tr.dataset.offset = String(job.offset);
    tr.dataset.state = job.state;
    stateCell.dataset.label = "State";
    // NOTE: data-label names each cell where a narrow screen shows a row as a card.
    tr.replaceChildren(
      el("th", { scope: "row" }, el("a", { href: `#/jobs/${job.offset}` }, `#${job.offset}`)),
      el("td", { class: "fn", "data-label": "Pipeline" }, job.fn),
      stateCell,
      el("td", { class: "steps", "data-label": "Steps" }, String(job.steps ?? 0)),
      el("td", { class: "took", "data-label": "Took" }, FINAL_STATES.has(job.state) ? seconds(took) : `${seconds(took)} so far`),
      el("td", { class: "created", "data-label": "Created" }, clock(job.created_at)),
      el("td", { class: "tags", "data-label": "Tags" }, el("span", {}, ...(job.tags ?? []).map((tag) => el("span", { class: "tag" }, tag)))),
    );
  }
}

function errorText(error) {
  return typeof error === "string" ? error : JSON.stringify(error);
}
