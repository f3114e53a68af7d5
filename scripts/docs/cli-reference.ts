import type { Argument, Command, Option } from 'commander';
import { z } from 'zod';
import { buildProgram, EXIT, EXIT_MEANINGS, USAGE_CODES } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/commands/run.js';
import { configSchema } from '../../src/config/schema.js';

// The reference in docs/cli.md is rendered from the same objects the CLI runs on: the commander program
// (every registered command, found by walking it, so a new command or option appears without touching
// this file), the zod config schema (as JSON Schema, with its .describe() texts) and the exit-code table.

/** The line that closes every generated region. */
export const REGION_END = '<!-- /generated -->';
const REGION = /<!-- generated:([^>]+?) -->\n[\s\S]*?<!-- \/generated -->/g;
const OPTIONS_PREFIX = 'options:';

/** A program built only to be read: its actions never run. */
function readOnlyProgram(): Command {
  const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  const io: Io = { cwd: process.cwd(), stdout: sink, stderr: sink, signal: new AbortController().signal };
  return buildProgram(io, () => undefined);
}

/** Every command under `program`, depth first, with its path of names (`['deploy']`, `['backfill', 'status']`). */
function commandsOf(command: Command, path: string[] = []): { path: string[]; command: Command }[] {
  return command.commands.flatMap((sub) => [{ path: [...path, sub.name()], command: sub }, ...commandsOf(sub, [...path, sub.name()])]);
}

/** Plain text (commander's descriptions) as markdown: `<file>` would otherwise vanish as an HTML tag. */
function prose(text: string): string {
  return text.replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A default as written in a description: a value (`inside`, `"public, max-age=…"`) as code, words as words. */
function defaultCell(text: string): string {
  const quoted = /^"(.*)"$/.exec(text);
  if (quoted) return code(quoted[1]!);
  return /\s/.test(text) ? prose(text) : code(text);
}

/** Text for a table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

function code(text: string): string {
  return `\`${text}\``;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`)].join('\n');
}

/**
 * An option's description and default: commander's own default, or the "(default X)" that closes the
 * description, which is where flags whose default comes from the config schema say it.
 */
function describeOption(option: Option): { description: string; defaultText: string } {
  const choices = option.argChoices ? ` (one of ${option.argChoices.map(code).join(', ')})` : '';
  if (option.defaultValue !== undefined) {
    return { description: prose(option.description) + choices, defaultText: code(option.defaultValueDescription ?? String(option.defaultValue)) };
  }
  const inline = /^(.*?)\s*\(default:? ([^()]*)\)$/.exec(option.description);
  if (!inline) return { description: prose(option.description) + choices, defaultText: '' };
  return { description: prose(inline[1]!) + choices, defaultText: defaultCell(inline[2]!) };
}

function argumentsTable(args: readonly Argument[]): string {
  const name = (arg: Argument) => code(`${arg.required ? '<' : '['}${arg.name()}${arg.variadic ? '...' : ''}${arg.required ? '>' : ']'}`);
  return table(['argument', 'description'], args.map((arg) => [name(arg), prose(arg.description)]));
}

/** The options of a command, one table per help group, in the order --help shows them. */
function optionTables(command: Command): string {
  const groups = new Map<string, Option[]>();
  const visible = command.options.filter((option) => !option.hidden);
  for (const option of visible) {
    const heading = (option.helpGroupHeading ?? 'Options:').replace(/:$/, '');
    groups.set(heading, [...(groups.get(heading) ?? []), option]);
  }
  return [...groups].map(([heading, options]) => {
    const rows = options.map((option) => {
      const { description, defaultText } = describeOption(option);
      return [code(option.flags), description, defaultText];
    });
    return `**${heading}**\n\n${table(['option', 'description', 'default'], rows)}`;
  }).join('\n\n');
}

function renderCommand(path: readonly string[], command: Command): string {
  const parts = [`\`img-pipeline ${path.join(' ')} ${command.usage()}\`: ${prose(command.description())}`];
  if (command.registeredArguments.length > 0) parts.push(argumentsTable(command.registeredArguments));
  if (command.commands.length > 0) {
    parts.push(table(['command', 'description'], command.commands.map((sub) => [code(`${[...path, sub.name()].join(' ')}`), prose(sub.description())])));
  }
  if (command.options.some((option) => !option.hidden)) parts.push(optionTables(command));
  return parts.join('\n\n');
}

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  minLength?: number;
  maxLength?: number;
  format?: string;
  required?: string[];
  default?: unknown;
  description?: string;
  defaultDescription?: string;
};

/** The member of a `X or null` union that is not null. */
function nonNull(node: JsonSchema): JsonSchema | undefined {
  return node.anyOf?.find((member) => member.type !== 'null');
}

/** Past this, a bound is the "any safe integer" zod adds, not a limit worth printing. */
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

function typeOf(node: JsonSchema): string {
  const inner = nonNull(node);
  if (inner) return `${typeOf(inner)} or \`null\``;
  if (node.enum) return node.enum.map((value) => code(JSON.stringify(value))).join(' | ');
  if (node.type === 'array') return `list of ${node.minItems ? `at least ${node.minItems}, each ` : ''}${typeOf(node.items ?? {})}`;
  if (node.type === 'object') return typeof node.additionalProperties === 'object' ? 'object: name → box' : 'object';
  if (node.type === 'integer' || node.type === 'number') {
    const min = node.exclusiveMinimum !== undefined ? `> ${node.exclusiveMinimum}` : node.minimum !== undefined ? `≥ ${node.minimum}` : '';
    const max = node.maximum !== undefined && node.maximum < NO_LIMIT ? `≤ ${node.maximum}` : '';
    return [node.type, [min, max].filter(Boolean).join(', ')].filter(Boolean).join(' ');
  }
  if (node.type === 'string') {
    if (node.format === 'uri') return 'URL';
    if (node.maxLength !== undefined) return `string, ${node.minLength ?? 0} to ${node.maxLength} characters`;
    return 'string';
  }
  return node.type ?? 'any';
}

/** The value at a dotted path of the parsed defaults (`limits.maxPixels`), if there is one. */
function defaultAt(defaults: unknown, name: string): unknown {
  return name.split('.').reduce<unknown>((value, key) => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), defaults);
}

/**
 * Rows for a config field and, below it, its own fields (`limits.maxPixels`, `sizes.<name>.fit`). The
 * default is the JSON Schema's, or else the parsed one: zod leaves out the default of a field that
 * transforms its input (`formats`: `jpg` becomes `jpeg`).
 */
function configRows(name: string, node: JsonSchema, required: boolean, defaults: unknown): string[][] {
  const inner = nonNull(node) ?? node;
  const fields = inner.properties ?? (typeof inner.additionalProperties === 'object' ? inner.additionalProperties.properties : undefined);
  const childPrefix = inner.properties ? name : `${name}.<name>`;
  const childRequired = new Set((inner.properties ? inner.required : (inner.additionalProperties as JsonSchema | undefined)?.required) ?? []);
  // An object whose fields each show their own default would only repeat them, except when it has none.
  const value = node.default ?? defaultAt(defaults, name);
  const shownDefault = node.defaultDescription ?? (value === undefined || (inner.properties && value !== null) ? (required ? 'required' : '') : code(JSON.stringify(value)));
  const row = [code(name), typeOf(node), shownDefault, node.description ?? ''];
  return [row, ...Object.entries(fields ?? {}).flatMap(([field, child]) => configRows(`${childPrefix}.${field}`, child, childRequired.has(field), defaults))];
}

/** The JSON Schema of what a config file may contain (before defaults). */
function configJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchema;
}

function renderConfigTable(): string {
  const root = configJsonSchema();
  return table(['field', 'type', 'default', 'description'], Object.entries(root.properties ?? {}).flatMap(([field, node]) => configRows(field, node, false, configSchema.parse({}))));
}

/** JSON with a line per field, and objects or lists of plain values on one line, as people write config files. */
function formatJson(value: unknown, indent = ''): string {
  const flat = typeof value !== 'object' || value === null || Object.values(value).every((v) => typeof v !== 'object' || v === null);
  if (flat) return JSON.stringify(value).replace(/([,:])(?=["\d[{tfn-])/g, '$1 ').replace(/^\{(.+)\}$/, '{ $1 }');
  const inner = `${indent}  `;
  const entries = Array.isArray(value)
    ? value.map((v) => `${inner}${formatJson(v, inner)}`)
    : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`);
  return `${Array.isArray(value) ? '[' : '{'}\n${entries.join(',\n')}\n${indent}${Array.isArray(value) ? ']' : '}'}`;
}

/** Every default as a config file, leaving out the fields whose default depends on the machine. */
function renderConfigDefaults(): string {
  const machineDependent = Object.entries(configJsonSchema().properties ?? {}).filter(([, node]) => node.defaultDescription).map(([field]) => field);
  const defaults: Record<string, unknown> = configSchema.parse({});
  for (const field of machineDependent) delete defaults[field];
  return `\`\`\`json\n${formatJson(defaults)}\n\`\`\``;
}

function renderExitCodes(): string {
  const usageCodes = [...USAGE_CODES].sort().map(code).join(', ');
  const rows = Object.entries(EXIT).map(([name, exit]) => {
    const meaning = EXIT_MEANINGS[name as keyof typeof EXIT];
    return [code(String(exit)), exit === EXIT.usage ? `${meaning}: any config error, and ${usageCodes}` : meaning];
  });
  return table(['exit code', 'meaning'], rows);
}

/** Every generated region of docs/cli.md by id: `options:<command path>`, `config`, `config-defaults`, `exit-codes`. */
export function renderRegions(): Map<string, string> {
  const regions = new Map<string, string>();
  for (const { path, command } of commandsOf(readOnlyProgram())) regions.set(`${OPTIONS_PREFIX}${path.join(' ')}`, renderCommand(path, command));
  regions.set('config', renderConfigTable());
  regions.set('config-defaults', renderConfigDefaults());
  regions.set('exit-codes', renderExitCodes());
  return regions;
}

function region(id: string, content: string): string {
  return `<!-- generated:${id} -->\n${content}\n${REGION_END}`;
}

/**
 * Replaces each generated region of `markdown` with its new content, keeping the prose around it. A
 * command without a region gets a section of its own after the last command's; a region that names
 * nothing the code has is an error, since the prose around it needs a person.
 */
export function updateGeneratedRegions(markdown: string, regions: ReadonlyMap<string, string>): string {
  const seen = new Set<string>();
  let updated = markdown.replace(REGION, (_, id: string) => {
    const content = regions.get(id);
    if (content === undefined) throw new Error(`docs/cli.md has a generated region "${id}" that the code no longer has: remove that section by hand`);
    seen.add(id);
    return region(id, content);
  });
  for (const [id, content] of regions) {
    if (seen.has(id)) continue;
    const section = id.startsWith(OPTIONS_PREFIX) ? `## \`${id.slice(OPTIONS_PREFIX.length)}\`` : `## ${id}`;
    const lastCommand = [...updated.matchAll(new RegExp(`<!-- generated:${OPTIONS_PREFIX}[^>]*-->\\n[\\s\\S]*?${REGION_END}`, 'g'))].at(-1);
    const at = lastCommand && id.startsWith(OPTIONS_PREFIX) ? lastCommand.index + lastCommand[0].length : updated.length;
    const after = updated.slice(at).trimStart();
    updated = `${updated.slice(0, at).trimEnd()}\n\n${section}\n\n${region(id, content)}\n${after === '' ? '' : `\n${after}`}`;
  }
  return updated;
}
