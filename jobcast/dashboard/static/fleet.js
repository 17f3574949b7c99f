// The fleet: GET /stats's figures, read every few seconds, and a small chart (inline SVG) of
// completed jobs per second over the last minutes.

import { api } from "./api.js";
import { el, svg } from "./dom.js";
import { stateLabel } from "./format.js";

const EVERY_MS = 2000;
const WIDTH = 300;
const HEIGHT = 80;

export class Fleet {
  constructor({ figures, chart, caption, onStats }) {
    this.onStats = onStats;
    this.figures = figures;
    this.chart = chart;
    this.caption = caption;
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    const read = () => this.read().catch((error) => this.failed(error));
    read();
    this.timer = setInterval(read, EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async read() {
    const stats = await api.stats();
    this.onStats(stats);
    this.showFigures(stats);
    this.showChart(stats.completed_per_minute ?? [], stats.minutes);
  }

  failed(error) {
    if (error.status === 401 || error.status === 403) this.stop(); // until a key is entered
    this.figures.replaceChildren(el("div", {}, el("dt", {}, "Figures"), el("dd", {}, `unavailable (${error.message})`)));
  }

  showFigures(stats) {
    const figure = (name, value, key) =>
      el("div", { class: "figure", "data-figure": key }, el("dt", {}, name), el("dd", {}, String(value)));
    const counts = Object.entries(stats.counts ?? {}).map(([state, count]) =>
      figure(stateLabel(state), count, state),
    );
    this.figures.replaceChildren(
      figure("waiting in jobcast.jobs", stats.jobs_waiting, "waiting"),
      figure("workers", stats.workers, "workers"),
      figure("dead letters", stats.dead_letters, "dead"),
      figure("done per second (last minute)", stats.throughput_per_second.toFixed(2), "throughput"),
      ...counts,
    );
    this.figures.setAttribute("aria-label", `Jobs of the last ${stats.minutes} minutes, by state`);
  }

  showChart(perMinute, minutes) {
    const perSecond = perMinute.map((count) => count / 60);
    const top = Math.max(...perSecond, 0.1);
    const width = WIDTH / Math.max(perSecond.length, 1);
    const bars = perSecond.map((rate, i) => {
      const height = Math.max((rate / top) * (HEIGHT - 4), rate > 0 ? 1 : 0);
      const ago = perSecond.length - 1 - i;
      return svg(
        "rect",
        { class: "bar", x: (i * width + 1).toFixed(1), y: (HEIGHT - height).toFixed(1), width: Math.max(width - 2, 1).toFixed(1), height: height.toFixed(1) },
        svg("title", {}, `${ago === 0 ? "this minute" : `${ago} min ago`}: ${rate.toFixed(2)} per second`),
      );
    });
    const latest = perSecond.at(-1) ?? 0;
    const summary = `Completed jobs per second, each of the last ${minutes} minutes (oldest left); highest ${top.toFixed(2)}, this minute ${latest.toFixed(2)}`;
    this.chart.replaceChildren(
      svg(
        "svg",
        { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary, preserveAspectRatio: "none" },
        svg("line", { class: "axis", x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5 }),
        ...bars,
      ),
      // NOTE: the labels are HTML beside the drawing, which stretches to the panel's width.
      el("div", { class: "chart-scale" }, el("span", {}, `${minutes} min ago`), el("span", {}, `top ${top.toFixed(2)}/s`), el("span", {}, "now")),
    );
    this.caption.textContent = `Completed jobs per second, last ${minutes} minutes (one bar a minute; now ${latest.toFixed(2)}/s)`;
  }
}
