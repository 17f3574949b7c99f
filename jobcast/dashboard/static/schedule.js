// The schedule form: deployment, framework, a pipeline from GET /pipelines and tags; it
// schedules (POST /schedule) and opens the job's live view.

import { api } from "./api.js";
import { el } from "./dom.js";

export class ScheduleForm {
  constructor({ form, error, fnNames }) {
    this.form = form;
    this.error = error;
    this.fnNames = fnNames;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  async loadPipelines() {
    const names = await api.pipelines();
    const select = this.form.elements.fn;
    select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
    this.fnNames.replaceChildren(...names.map((name) => el("option", { value: name })));
  }

  async submit() {
    const fields = this.form.elements;
    const request = {
      deployment: fields.deployment.value.trim(),
      framework: fields.framework.value.trim(),
      fn: fields.fn.value,
    };
    const tags = fields.tags.value.split(/[\s,]+/).filter(Boolean);
    if (tags.length) request.tags = tags; // NOTE: no tags: the original request, unchanged
    this.error.textContent = "";
    const button = this.form.querySelector("button");
    button.disabled = true;
    try {
      const accepted = await api.schedule(request);
      window.location.hash = `#/jobs/${accepted.offset}`;
    } catch (error) {
      this.error.textContent = `Not scheduled: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }
}
