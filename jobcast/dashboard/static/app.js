// The page's entry point: which view the address shows (#/ the jobs, #/schedule the form,
// #/jobs/42 one job, a link that can be shared), and the parts that fill it.

import { apiKey, forgetKey, onRefused, rememberKey } from "./auth.js";
import { Fleet } from "./fleet.js";
import { JobView } from "./job.js";
import { JobList } from "./jobs.js";
import { ScheduleForm } from "./schedule.js";

const $ = (id) => document.getElementById(id);

const live = $("live");
// true: a feed is open; false: it is reconnecting; null: nothing to follow (a job that ended).
function onLive(connected) {
  live.textContent = connected === null ? "" : connected ? "● live" : "○ reconnecting…";
  live.dataset.live = String(connected);
}

const list = new JobList({ rows: $("job-rows"), empty: $("jobs-empty"), more: $("more"), onLive });
const job = new JobView({
  title: $("job-title"),
  outcome: $("job-outcome"),
  request: $("job-request"),
  timeline: $("timeline"),
  progress: $("job-progress"),
  cancel: $("job-cancel"),
  cancelError: $("job-cancel-error"),
  onLive,
});
// NOTE: a job shows in the feed with its first reply; one still queued (or scheduled for
// later) shows when the fleet's figures say the number of jobs changed.
let jobsCounted = null;
function onStats(stats) {
  const total = Object.values(stats.counts ?? {}).reduce((sum, count) => sum + count, 0);
  if (jobsCounted !== null && total !== jobsCounted && !$("jobs").hidden) list.reloadSoon();
  jobsCounted = total;
}
const fleet = new Fleet({ figures: $("figures"), chart: $("chart"), caption: $("chart-caption"), onStats });
const schedule = new ScheduleForm({ form: $("schedule-form"), error: $("schedule-error"), fnNames: $("fn-names") });
const filters = $("filters");

function currentFilters() {
  const fields = filters.elements;
  return { state: fields.state.value, fn: fields.fn.value.trim(), tag: fields.tag.value.trim() };
}

let filterTimer = null;
filters.addEventListener("input", () => {
  // NOTE: typing in a filter reads the list once the typing pauses, not at every key.
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => list.start(currentFilters()), 200);
});
filters.addEventListener("submit", (event) => {
  event.preventDefault();
  list.start(currentFilters());
});

function show(...ids) {
  for (const section of ["fleet", "schedule", "jobs", "job"]) $(section).hidden = !ids.includes(section);
}

function route() {
  const match = /^#\/jobs\/(\d+)$/.exec(window.location.hash);
  if (match) {
    list.stop();
    show("job");
    document.title = `jobcast · job #${match[1]}`;
    job.open(match[1]);
    $("job-title").focus({ preventScroll: true });
    return;
  }
  job.close();
  show("fleet", "schedule", "jobs");
  document.title = "jobcast";
  list.start(currentFilters());
  if (window.location.hash === "#/schedule") $("schedule-form").elements.deployment.focus();
}

// The API key (JOBCAST_AUTH=on): asked for once the gateway refuses a call, kept in this
// tab's sessionStorage; using or forgetting one reads the page again with it.
const keyForm = $("key-form");
function showKeyForm(words) {
  keyForm.hidden = false;
  $("sign-out").hidden = apiKey() === null;
  if (words) $("key-status").textContent = words;
}
onRefused((error) => showKeyForm(error.message));
if (apiKey() !== null) showKeyForm("");
keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  $("api-key").value = "";
  if (!key) return showKeyForm("Enter an API key");
  rememberKey(key);
  window.location.reload();
});
$("sign-out").addEventListener("click", () => {
  forgetKey();
  $("api-key").value = "";
  window.location.reload();
});

$("job-title").tabIndex = -1;
window.addEventListener("hashchange", route);
fleet.start();
schedule.loadPipelines().catch((error) => {
  $("schedule-error").textContent = `Pipelines unavailable: ${error.message}`;
});
route();
