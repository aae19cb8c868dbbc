// What a job's metrics.jsonl says at a glance: progress, ETA, the headline metric.
import {get} from "./api.js";

const HEADLINES = ["top1", "map", "map50", "miou", "ap", "accuracy"];

// Follows one job's events incrementally (the `since` cursor); keeps the latest value per name.
export class MetricsFollower {
  constructor(jobId) {
    this.jobId = jobId;
    this.next = 0;
    this.latest = {};  // "phase/name" -> event
  }

  async update() {
    for (;;) {
      const page = await get(`/jobs/${this.jobId}/metrics?since=${this.next}&limit=20000`);
      for (const event of page.events) this.latest[`${event.phase}/${event.name}`] = event;
      const more = page.next !== this.next && page.events.length === 20000;
      this.next = page.next;
      if (!more) return this;
    }
  }

  value(phase, name) {
    const event = this.latest[`${phase}/${name}`];
    return event ? event.value : undefined;
  }

  headline() {
    for (const phase of ["test", "val"]) {
      for (const name of HEADLINES) {
        const value = this.value(phase, name);
        if (value !== undefined) return {name, phase, value};
      }
    }
    const loss = this.value("train", "loss");
    return loss === undefined ? null : {name: "loss", phase: "train", value: loss};
  }

  // Metric summary rows: [phase, name, value, step], validation first.
  rows() {
    const order = {test: 0, val: 1, train: 2};
    return Object.values(this.latest)
      .filter((e) => !["max_iters"].includes(e.name))
      .sort((a, b) => (order[a.phase] ?? 3) - (order[b.phase] ?? 3) || a.name.localeCompare(b.name))
      .map((e) => [e.phase, e.name, e.value, e.step]);
  }
}
