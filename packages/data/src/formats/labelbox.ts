/**
 * Labelbox NDJSON exports (Export v2: one data row per line, `{data_row, projects: {<id>: {labels: [...]}}}`),
 * for the three LLM project types, following Labelbox's published export and import documentation
 * (docs.labelbox.com: "Export LLM human preference annotations", "Export multimodal chat annotations",
 * "Import multimodal chat data", "Import prompt and response data"). Each label (one labeler's work on the
 * row) becomes one record, with `labeler` = the label's `created_by`, so that several labelers of the same
 * prompt can be compared (see stats.ts).
 *
 * 1. LLM human preference: `row_data` is the conversational v1 JSON (`messages`, `modelOutputs[{title,
 *    content}]`). A radio classification whose answer names an output title is the pairwise choice (that
 *    output first, the others tied below it). Radio classifications named like /likert|rating|score/ whose
 *    name (or `message_id`) points at an output, with a numeric answer, are Likert scores. Free-text
 *    classifications named like /reason|why|explain/ and /rewrite|improve|better/ are the reason and the
 *    rewritten response.
 * 2. Prompt and response creation: free-text classifications named like /prompt/ and /response/ give a
 *    demonstration (a plain-text `row_data` stands in for a missing prompt).
 * 3. Model chat evaluation (`row_data` of type ...conversational.model-chat-evaluation, version 2: `actors`,
 *    `messages` keyed by id with `childMessageIds`): a `message-ranking` task
 *    (`messageEvaluationTask: {format: "message-ranking", data: {parentMessageId, rankedMessages: [{messageId,
 *    order}]}}`) ranks the replies to `parentMessageId` (order 1 = best; equal orders are a tie). The prompt
 *    is the conversation from the root down to that parent.
 *
 * Exports where `row_data` is a URL (cloud-hosted JSON) are reported as such: this reader does not fetch.
 * The writer produces layout 3 for comparisons and preferences and layout 2 for demonstrations.
 */
import type { FormatOptions, FormatProblem, JsonFormat, LabelboxNames } from './types';
import { tiersFromRanks } from '../ranking';
import type { Comparison, DataRecord, Demonstration, Message, Text } from '../schemas';

const DEFAULT_NAMES: LabelboxNames = {
  prompt: /prompt/i,
  response: /response|completion|answer/i,
  reason: /reason|why|explain|justif/i,
  rewrite: /rewrit|improv|better response|correct/i,
  choice: /best|prefer|choose|choice|which/i,
  likert: /likert|rating|score|scale/i,
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

interface Classification {
  name: string;
  messageId?: string;
  radio?: string; // the chosen answer's name (or value)
  radioValue?: string;
  text?: string;
  path: string;
}

function classifications(list: unknown, base: string): Classification[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((c, i): Classification[] => {
    if (!isObj(c)) return [];
    const radio = isObj(c.radio_answer) ? c.radio_answer : isObj(c.conversational_radio_answer) ? c.conversational_radio_answer : undefined;
    const text = isObj(c.text_answer) ? c.text_answer : isObj(c.conversational_text_answer) ? c.conversational_text_answer : undefined;
    return [{
      name: String(c.name ?? c.value ?? ''),
      messageId: typeof c.message_id === 'string' ? c.message_id : undefined,
      radio: radio ? String(radio.name ?? radio.value ?? '') : undefined,
      radioValue: radio && radio.value !== undefined ? String(radio.value) : undefined,
      text: text && typeof text.content === 'string' ? text.content : undefined,
      path: `${base}[${i}]`,
    }];
  });
}

/** Message content in the v1 (string) or v2 (list of {type: "text", content}) shape. */
function contentText(c: unknown): string | undefined {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    const parts = c.filter((p) => isObj(p) && (p.type === 'text' || p.type === undefined) && typeof p.content === 'string').map((p) => (p as Obj).content as string);
    return parts.length === c.length ? parts.join('') : undefined;
  }
  return undefined;
}

function parseRowData(rd: unknown): Obj | string | undefined {
  if (isObj(rd)) return rd;
  if (typeof rd === 'string') {
    const t = rd.trim();
    if (t.startsWith('{')) {
      try {
        const o = JSON.parse(t) as unknown;
        return isObj(o) ? o : undefined;
      } catch {
        return undefined;
      }
    }
    return rd;
  }
  return undefined;
}

interface LabelCtx {
  labeler?: string;
  id?: string;
  classifications: Classification[];
  objects: Obj[];
  base: string;
}

/** Likert score from an answer like "4", "4 - good", "score_4". */
function leadingNumber(s: string | undefined): number | undefined {
  const m = s?.match(/-?\d+(\.\d+)?/);
  return m ? Number(m[0]) : undefined;
}

function humanPreference(row: Obj, label: LabelCtx, names: LabelboxNames): { record?: DataRecord; problems: FormatProblem[] } {
  const problems: FormatProblem[] = [];
  const msgs = Array.isArray(row.messages) ? row.messages : [];
  const prompt: Message[] = [];
  msgs.forEach((m, i) => {
    if (!isObj(m)) return;
    const content = contentText(m.content);
    if (content === undefined) {
      problems.push({ path: `data_row.row_data.messages[${i}].content`, code: 'schema', message: 'expected text content' });
      return;
    }
    const who = isObj(m.user) ? `${m.user.name ?? ''} ${m.user.userId ?? ''}` : String(m.role ?? '');
    prompt.push({ role: /bot|assistant|model|\bai\b|system/i.test(who) ? (/system/i.test(who) ? 'system' : 'assistant') : 'user', content });
  });
  const outputs = (row.modelOutputs as unknown[]).map((o, i) => {
    const ob = isObj(o) ? o : {};
    const content = contentText(ob.content);
    if (content === undefined) problems.push({ path: `data_row.row_data.modelOutputs[${i}].content`, code: 'schema', message: 'expected the output text' });
    return { title: String(ob.title ?? `output ${i}`), messageId: typeof ob.messageId === 'string' ? ob.messageId : undefined, content: content ?? '' };
  });
  if (problems.length) return { problems };
  const k = outputs.length;
  const find = (s: string | undefined) => (s === undefined ? -1 : outputs.findIndex((o) => o.title.toLowerCase() === s.trim().toLowerCase() || o.messageId === s));
  const mentioned = (s: string) => outputs.findIndex((o) => new RegExp(`\\b${o.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'i').test(s));

  let best = -1;
  const likert: Array<number | null> = new Array(k).fill(null);
  let anyLikert = false;
  let reason: string | undefined;
  let rewrite: string | undefined;
  for (const c of label.classifications) {
    if (c.radio !== undefined) {
      const idx = find(c.radio) >= 0 ? find(c.radio) : find(c.radioValue);
      if (idx >= 0 && (names.choice.test(c.name) || !names.likert.test(c.name))) {
        best = idx;
        continue;
      }
      if (names.likert.test(c.name)) {
        const target = c.messageId !== undefined ? find(c.messageId) : mentioned(c.name);
        const score = leadingNumber(c.radio) ?? leadingNumber(c.radioValue);
        if (target < 0 || score === undefined) {
          problems.push({ path: c.path, code: 'layout', message: `the scale "${c.name}" names no model output (${outputs.map((o) => o.title).join(', ')}) or has no numeric answer`, severity: 'warning' });
          continue;
        }
        likert[target] = score;
        anyLikert = true;
      }
    } else if (c.text !== undefined) {
      if (names.rewrite.test(c.name)) rewrite = c.text;
      else if (names.reason.test(c.name)) reason = c.text;
    }
  }
  if (best < 0) {
    return { problems: [...problems, { path: `${label.base}.annotations.classifications`, code: 'layout', message: `no radio classification chooses one of the model outputs (${outputs.map((o) => o.title).join(', ')})` }] };
  }
  const rest = outputs.map((_, i) => i).filter((i) => i !== best);
  const c: Comparison = {
    kind: 'comparison',
    prompt,
    completions: outputs.map((o) => [{ role: 'assistant' as const, content: o.content }]),
    ranking: rest.length ? [[best], rest] : [[best]],
  };
  decorate(c, label, { likert: anyLikert ? likert : undefined, reason, rewrite });
  return { record: c, problems };
}

function decorate(c: Comparison, label: LabelCtx, extra: { likert?: Array<number | null>; reason?: string; rewrite?: string }) {
  if (label.id !== undefined) c.id = label.id;
  if (label.labeler !== undefined) c.labeler = label.labeler;
  if (extra.likert) c.likert = extra.likert;
  if (extra.reason !== undefined) c.reason = extra.reason;
  if (extra.rewrite !== undefined) c.rewrite = [{ role: 'assistant', content: extra.rewrite }];
}

function chatEvaluation(row: Obj, label: LabelCtx, names: LabelboxNames): { records: DataRecord[]; problems: FormatProblem[] } {
  const problems: FormatProblem[] = [];
  const actors = isObj(row.actors) ? row.actors : {};
  const messages = isObj(row.messages) ? row.messages : {};
  const parent = new Map<string, string>();
  for (const [id, m] of Object.entries(messages)) {
    if (isObj(m) && Array.isArray(m.childMessageIds)) for (const ch of m.childMessageIds) parent.set(String(ch), id);
  }
  const roleOf = (m: Obj): Message['role'] => {
    const a = actors[String(m.actorId)];
    const r = isObj(a) ? String(a.role) : '';
    return r === 'human' || r === 'user' ? 'user' : r === 'system' ? 'system' : 'assistant';
  };
  const textOf = (id: string, path: string): string | undefined => {
    const m = messages[id];
    if (!isObj(m)) {
      problems.push({ path, code: 'layout', message: `message ${JSON.stringify(id)} is not in data_row.row_data.messages` });
      return undefined;
    }
    const t = contentText(m.content);
    if (t === undefined) problems.push({ path: `data_row.row_data.messages.${id}.content`, code: 'schema', message: 'expected text content ([{type: "text", content}])' });
    return t;
  };
  const records: DataRecord[] = [];
  let reason: string | undefined;
  let rewrite: string | undefined;
  for (const c of label.classifications) {
    if (c.text === undefined) continue;
    if (names.rewrite.test(c.name)) rewrite = c.text;
    else if (names.reason.test(c.name)) reason = c.text;
  }
  label.objects.forEach((o, oi) => {
    const task = isObj(o.messageEvaluationTask) ? o.messageEvaluationTask : isObj(o.message_evaluation_task) ? o.message_evaluation_task : undefined;
    if (!task || task.format !== 'message-ranking') return;
    const path = `${label.base}.annotations.objects[${oi}].messageEvaluationTask.data`;
    const data = isObj(task.data) ? task.data : {};
    const parentId = String(data.parentMessageId ?? data.parent_message_id ?? '');
    const ranked = Array.isArray(data.rankedMessages) ? data.rankedMessages : Array.isArray(data.ranked_messages) ? data.ranked_messages : undefined;
    if (!ranked) {
      problems.push({ path: `${path}.rankedMessages`, code: 'schema', message: 'missing field (expected a list of {messageId, order})' });
      return;
    }
    // The prompt: the conversation from the root down to the parent of the ranked replies.
    const chain: string[] = [];
    const onChain = new Set<string>();
    for (let id: string | undefined = parentId; id !== undefined; id = parent.get(id)) {
      if (onChain.has(id)) {
        problems.push({ path: `${path}.parentMessageId`, code: 'layout', message: `the messages' childMessageIds form a cycle through ${JSON.stringify(id)}: there is no root to read the conversation from` });
        return;
      }
      onChain.add(id);
      chain.push(id);
    }
    chain.reverse();
    const prompt: Message[] = [];
    for (const id of chain) {
      const t = textOf(id, `${path}.parentMessageId`);
      if (t === undefined) return;
      prompt.push({ role: roleOf(messages[id] as Obj), content: t });
    }
    const completions: Text[] = [];
    const orders: number[] = [];
    for (let i = 0; i < ranked.length; i++) {
      const r = ranked[i];
      if (!isObj(r) || typeof (r.messageId ?? r.message_id) !== 'string' || typeof r.order !== 'number') {
        problems.push({ path: `${path}.rankedMessages[${i}]`, code: 'schema', message: 'expected {messageId: string, order: number}' });
        return;
      }
      const t = textOf(String(r.messageId ?? r.message_id), `${path}.rankedMessages[${i}].messageId`);
      if (t === undefined) return;
      completions.push([{ role: 'assistant', content: t }]);
      orders.push(r.order);
    }
    // Likert scales attached to a ranked reply (`message_id`) give that reply's score.
    const ids = ranked.map((r) => String((r as Obj).messageId ?? (r as Obj).message_id));
    const likert: Array<number | null> = new Array(ids.length).fill(null);
    let anyLikert = false;
    for (const cl of label.classifications) {
      if (cl.radio === undefined || cl.messageId === undefined || !names.likert.test(cl.name)) continue;
      const at = ids.indexOf(cl.messageId);
      const score = leadingNumber(cl.radio) ?? leadingNumber(cl.radioValue);
      if (at >= 0 && score !== undefined) {
        likert[at] = score;
        anyLikert = true;
      }
    }
    const c: Comparison = { kind: 'comparison', prompt, completions, ranking: tiersFromRanks(orders) };
    decorate(c, label, { reason, rewrite, likert: anyLikert ? likert : undefined });
    records.push(c);
  });
  if (!records.length && !problems.length) problems.push({ path: `${label.base}.annotations.objects`, code: 'layout', message: 'no message-ranking task in this label' });
  return { records, problems };
}

function promptResponse(row: Obj | string | undefined, label: LabelCtx, names: LabelboxNames): { record?: DataRecord; problems: FormatProblem[] } {
  let prompt: string | undefined;
  let response: string | undefined;
  for (const c of label.classifications) {
    if (c.text === undefined) continue;
    if (names.prompt.test(c.name) && prompt === undefined) prompt = c.text;
    else if (names.response.test(c.name) && response === undefined) response = c.text;
  }
  if (prompt === undefined && typeof row === 'string') prompt = row;
  if (prompt === undefined || response === undefined) {
    return { problems: [{ path: `${label.base}.annotations.classifications`, code: 'layout', message: `no free-text ${prompt === undefined ? 'prompt' : 'response'} classification (names matched: ${prompt === undefined ? names.prompt : names.response})` }] };
  }
  const d: Demonstration = { kind: 'demonstration', prompt, completion: response };
  if (label.id !== undefined) d.id = label.id;
  if (label.labeler !== undefined) d.meta = { labeler: label.labeler };
  return { record: d, problems: [] };
}

function names(opts: FormatOptions): LabelboxNames {
  return { ...DEFAULT_NAMES, ...(opts.labelbox ?? {}) };
}

export const labelboxFormat: JsonFormat = {
  name: 'labelbox',
  description: 'Labelbox NDJSON export (v2) of LLM projects: human preference, prompt and response creation, model chat evaluation (message-ranking)',
  reads: 'comparison, demonstration',
  decode(v, opts) {
    if (!isObj(v)) return { records: [], problems: [{ path: '', code: 'schema', message: 'expected an export row object {data_row, projects}' }] };
    if (!isObj(v.data_row)) return { records: [], problems: [{ path: 'data_row', code: 'schema', message: 'missing field (expected {id, row_data})' }] };
    if (!isObj(v.projects)) return { records: [], problems: [{ path: 'projects', code: 'schema', message: 'missing field (expected {<project id>: {labels: [...]}})' }] };
    const dr = v.data_row;
    const row = parseRowData(dr.row_data);
    if (typeof row === 'string' && /^(https?|gs|s3):\/\//.test(row)) {
      return { records: [], problems: [{ path: 'data_row.row_data', code: 'layout', message: `row_data is a link (${row.slice(0, 60)}); this reader does not fetch: put each row's JSON inline in row_data` }] };
    }
    const nm = names(opts);
    const records: DataRecord[] = [];
    const problems: FormatProblem[] = [];
    for (const [pid, proj] of Object.entries(v.projects)) {
      const labels = isObj(proj) && Array.isArray(proj.labels) ? proj.labels : [];
      labels.forEach((l, li) => {
        const base = `projects.${pid}.labels[${li}]`;
        if (!isObj(l)) return problems.push({ path: base, code: 'schema', message: 'expected a label object' });
        const ann = isObj(l.annotations) ? l.annotations : {};
        const details = isObj(l.label_details) ? l.label_details : {};
        const rowId = String(dr.global_key ?? dr.id ?? '');
        const label: LabelCtx = {
          labeler: typeof details.created_by === 'string' ? details.created_by : undefined,
          id: rowId ? `${rowId}` : undefined,
          classifications: classifications(ann.classifications, `${base}.annotations.classifications`),
          objects: Array.isArray(ann.objects) ? ann.objects.filter(isObj) : [],
          base,
        };
        if (isObj(row) && String(row.type ?? '').includes('model-chat-evaluation')) {
          const r = chatEvaluation(row, label, nm);
          records.push(...r.records);
          problems.push(...r.problems);
        } else if (isObj(row) && Array.isArray(row.modelOutputs)) {
          const r = humanPreference(row, label, nm);
          if (r.record) records.push(r.record);
          problems.push(...r.problems);
        } else {
          const r = promptResponse(row, label, nm);
          if (r.record) records.push(r.record);
          problems.push(...r.problems);
        }
      });
    }
    if (!records.length && !problems.length) problems.push({ path: 'projects', code: 'layout', message: 'the row has no labels' });
    return { records, problems };
  },
  encode(r) {
    const id = r.id ?? 'row';
    const labelOf = (labeler: string | undefined, annotations: Obj) => ({
      projects: { project: { labels: [{ label_details: labeler ? { created_by: labeler } : {}, annotations: { objects: [], classifications: [], relationships: [], ...annotations } }] } },
    });
    if (r.kind === 'demonstration') {
      if (typeof r.prompt !== 'string' || typeof r.completion !== 'string') return 'a demonstration is written to Labelbox (prompt and response creation) only with a plain-text prompt and completion';
      const labeler = typeof r.meta?.labeler === 'string' ? r.meta.labeler : undefined;
      return [{
        data_row: { id, row_data: '' },
        ...labelOf(labeler, { classifications: [
          { name: 'Prompt', text_answer: { content: r.prompt } },
          { name: 'Response', text_answer: { content: r.completion } },
        ] }),
      }];
    }
    const c: Comparison | undefined = r.kind === 'comparison' ? r : r.kind === 'preference' ? { kind: 'comparison', prompt: r.prompt, completions: [r.chosen, r.rejected], ranking: [[0], [1]], ...(r.id ? { id: r.id } : {}) } : undefined;
    if (!c) return `a ${r.kind} record cannot be written as labelbox; it holds comparisons, preferences and demonstrations`;
    const asText = (t: Text) => (typeof t === 'string' ? t : t.map((m) => m.content).join('\n'));
    const prompt: Message[] = typeof c.prompt === 'string' ? [{ role: 'user', content: c.prompt }] : c.prompt;
    const messages: Obj = {};
    const actors: Obj = { human: { role: 'human' }, model: { role: 'model' }, system: { role: 'system' } };
    let prev: string | undefined;
    prompt.forEach((m, i) => {
      const mid = `m${i}`;
      messages[mid] = { actorId: m.role === 'user' ? 'human' : m.role === 'system' ? 'system' : 'model', content: [{ type: 'text', content: m.content }], childMessageIds: [] };
      if (prev) ((messages[prev] as Obj).childMessageIds as string[]).push(mid);
      prev = mid;
    });
    const order = new Array<number>(c.completions.length);
    c.ranking.forEach((tier, t) => tier.forEach((i) => (order[i] = t + 1)));
    const ranked = c.completions.map((t, i) => {
      const mid = `r${i}`;
      messages[mid] = { actorId: 'model', content: [{ type: 'text', content: asText(t) }], childMessageIds: [] };
      if (prev) ((messages[prev] as Obj).childMessageIds as string[]).push(mid);
      return { messageId: mid, order: order[i] };
    });
    const cls: Obj[] = [];
    c.likert?.forEach((score, i) => {
      if (score !== null) cls.push({ name: 'Rating', message_id: `r${i}`, radio_answer: { name: String(score), value: String(score) } });
    });
    if (c.reason !== undefined) cls.push({ name: 'Reason', text_answer: { content: c.reason } });
    if (c.rewrite !== undefined) cls.push({ name: 'Rewritten response', text_answer: { content: asText(c.rewrite) } });
    return [{
      data_row: { id, row_data: { type: 'application/vnd.labelbox.conversational.model-chat-evaluation', version: 2, actors, messages } },
      ...labelOf(c.labeler, {
        objects: [{ name: 'Ranking', messageEvaluationTask: { format: 'message-ranking', data: { parentMessageId: prev, rankedMessages: ranked } } }],
        classifications: cls,
      }),
    }];
  },
};
