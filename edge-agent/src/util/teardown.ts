/**
 * Teardown: how a start() that brings parts up one after another takes them down again. Each part's stop is added
 * right after the part started, so run() stops exactly what was started, last first, whether the start finished or
 * failed half-way.
 *
 * Contract: run() runs every step once, in reverse order of add(), and waits for each; a step that throws is logged
 * (`part` names it) and the others still run; run() never rejects. A step added after run() began (a start still
 * going on while the agent is stopped) runs at once.
 */
import type { Logger } from 'pino';
import { errorMessage } from './time.js';

interface Step {
  part: string;
  stop: () => unknown;
}

export class Teardown {
  private steps: Step[] = [];
  private ran = false;

  constructor(private readonly log: Logger) {}

  /** `stop` takes `part` down (it may return a promise). */
  add(part: string, stop: () => unknown): void {
    if (this.ran) void this.runStep({ part, stop });
    else this.steps.push({ part, stop });
  }

  async run(): Promise<void> {
    this.ran = true;
    const steps = this.steps.reverse();
    this.steps = [];
    for (const step of steps) await this.runStep(step);
  }

  private async runStep(step: Step): Promise<void> {
    try {
      await step.stop();
    } catch (err) {
      this.log.warn({ err: errorMessage(err), part: step.part }, 'error while stopping');
    }
  }
}
