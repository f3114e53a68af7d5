import type { StepResult, StepStatus } from './aws.js';
import type { Account } from './plan.js';

/** What a resource entry of the JSON plan says happens to it. */
export type PlanAction = 'create' | 'update' | 'unchanged' | 'delete';

const ACTIONS: Record<StepStatus, PlanAction> = {
  'created': 'create', 'would create': 'create',
  'updated': 'update', 'would update': 'update',
  'deleted': 'delete', 'would delete': 'delete',
  'unchanged': 'unchanged', 'absent': 'unchanged', 'kept': 'unchanged', 'passed': 'unchanged',
};

export interface ResourceEntry {
  /** The kind of resource, as a stable slug: iam-role, lambda-function, s3-trigger, ... */
  type: string;
  name: string;
  arn: string | null;
  action: PlanAction;
  /** The step's own word: would create, absent, kept, ... */
  status: StepStatus;
  detail: string | null;
  settings: Record<string, unknown> | null;
}

/** The one JSON document `deploy --json` and `destroy --json` print, meant to be diffed between runs. */
export interface PlanDocument {
  tool: 'img-pipeline';
  command: 'deploy' | 'destroy';
  dryRun: boolean;
  functionName: string;
  account: Account;
  /** False without credentials: nothing was read, every resource shows what a first run would do. */
  checked: boolean;
  offline?: string;
  warnings: string[];
  resources: ResourceEntry[];
}

function slug(resource: string): string {
  return resource.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** One entry per step, with the step's ARN and exact settings. Keys always present, so diffs stay aligned. */
function resourceEntry(step: StepResult): ResourceEntry {
  return { type: slug(step.resource), name: step.name, arn: step.arn ?? null, action: ACTIONS[step.status], status: step.status, detail: step.detail ?? null, settings: step.settings ?? null };
}

/** The document for `steps`; `offline` says why nothing could be checked. Pure. */
export function planDocument(fields: { command: 'deploy' | 'destroy'; dryRun: boolean; functionName: string; account: Account; offline?: string | undefined; warnings: string[] }, steps: readonly StepResult[]): PlanDocument {
  const { offline, ...rest } = fields;
  return { tool: 'img-pipeline', ...rest, checked: offline === undefined, ...(offline === undefined ? {} : { offline }), resources: steps.map(resourceEntry) };
}
