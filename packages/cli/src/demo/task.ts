/**
 * The built-in demo's task: customer-support replies that should follow a brand's tone guide.
 *
 * A customer writes about a product and a problem; a good reply names the product, offers the remedy that fits
 * the problem, apologises or thanks, closes politely, stays concise, never repeats itself and never uses the
 * phrases the guide bans. Everything here is generated from a seed: the prompts, the base corpus (replies of
 * every quality, as found on the web), the "contractor" demonstrations for SFT (decent but inconsistent), and
 * the hidden gold labeler (gold-labeler.ts) that stands in for a labeling team. The reward model only ever
 * sees the labeler's noisy rankings, never these rules.
 */

export type Rng = () => number;

/** mulberry32: small, fast, seedable; the demo's only source of randomness. */
export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}

export const PRODUCTS = [
  'AeroKettle',
  'PixelPad',
  'SkyRouter',
  'BrewMate',
  'TrailWatch',
  'SoundPod',
  'GlowLamp',
  'CoolBox',
] as const;

/** A problem, the phrasings customers use for it, and the remedy a good agent offers for it. */
export interface Issue {
  id: string;
  phrasings: readonly string[];
  remedy: readonly string[]; // any of these sentences is the right remedy
}

export const ISSUES: readonly Issue[] = [
  {
    id: 'dead',
    phrasings: ["won't turn on", 'does not power up', 'stays dark when I press the button'],
    remedy: ['Please hold the power button for ten seconds to reset it.', 'Please reset it by holding the power button for ten seconds.'],
  },
  {
    id: 'damaged',
    phrasings: ['arrived broken', 'came with a cracked case', 'was damaged in the box'],
    remedy: ['We will send you a free replacement today.', 'A free replacement is on its way to you.'],
  },
  {
    id: 'billing',
    phrasings: ['was charged twice', 'shows two payments on my card', 'cost me double'],
    remedy: ['We have refunded the extra charge to your card.', 'The double charge has been refunded to your card.'],
  },
  {
    id: 'slow',
    phrasings: ['is very slow', 'keeps freezing', 'lags all the time'],
    remedy: ['Please install the latest update from our app.', 'The latest update in our app will fix the lag.'],
  },
  {
    id: 'late',
    phrasings: ['has not arrived yet', 'is two weeks late', 'never showed up'],
    remedy: ['Your parcel ships by express tomorrow at no cost.', 'We have sent it again by express at no cost.'],
  },
  {
    id: 'noise',
    phrasings: ['makes a loud noise', 'buzzes all night', 'rattles when it runs'],
    remedy: ['Please place it on a flat surface and tighten the base.', 'Tightening the base on a flat surface stops the noise.'],
  },
];

const OPENERS = ['Hi,', 'Hello,', 'Hey there,', 'Good morning,', ''] as const;
const EXTRAS = ['', 'I need it this week.', 'This is really annoying.', 'Please help.', 'I bought it last month.', 'What can you do?'] as const;

export const APOLOGIES = ["I'm sorry to hear that.", 'Sorry about the trouble.', 'I apologize for this.'] as const;
export const THANKS = ['Thank you for reaching out.', 'Thanks for letting us know.'] as const;
export const CLOSINGS = ['Have a great day!', 'Best regards, the support team.', 'Let us know if we can help further.'] as const;
/** Phrases the tone guide bans outright. */
export const BANNED = ['Calm down.', 'That is not our problem.', 'Read the manual.', 'Whatever.'] as const;
/** Padding that sounds nice and says nothing: a reward model may learn to like it; the guide wants concision. */
export const FILLERS = [
  'We value every customer and we always do our best.',
  'Our team works very hard to make great products.',
  'Customer happiness is our top priority at all times.',
] as const;
const NEUTRAL_OPENERS = ['Okay.', 'Hello.', 'I see.'] as const;
const GENERIC_REFS = ['your device', 'it', 'the item'] as const;

export interface Prompt {
  /** The text the model sees: the customer's message, then the cue for the agent. */
  text: string;
  product: string;
  issue: Issue;
}

export function formatPrompt(message: string): string {
  return `Customer: ${message}\nAgent:`;
}

export function samplePrompt(rng: Rng): Prompt {
  const product = pick(rng, PRODUCTS);
  const issue = pick(rng, ISSUES);
  const parts = [pick(rng, OPENERS), `my ${product} ${pick(rng, issue.phrasings)}.`, pick(rng, EXTRAS)].filter(Boolean);
  let message = parts.join(' ');
  message = message.charAt(0).toUpperCase() + message.slice(1);
  return { text: formatPrompt(message), product, issue };
}

/** How likely each part of a reply is, for a given writer (web text, a contractor, ...). */
export interface ReplyStyle {
  apology: number;
  thanks: number;
  nameProduct: number; // else a generic reference
  wrongProduct: number; // names another product instead
  rightRemedy: number;
  wrongRemedy: number; // a remedy for another problem
  closing: number;
  banned: number;
  filler: number; // per filler sentence, up to two
  repeat: number; // repeats one of its sentences
}

/** The web: anything goes. The base model learns the vocabulary of the domain from this. */
export const WEB_STYLE: ReplyStyle = {
  apology: 0.4, thanks: 0.3, nameProduct: 0.4, wrongProduct: 0.2, rightRemedy: 0.3, wrongRemedy: 0.4,
  closing: 0.4, banned: 0.25, filler: 0.3, repeat: 0.15,
};

/** Contractors writing demonstrations: polite and mostly on topic, but inconsistent about the guide. */
export const CONTRACTOR_STYLE: ReplyStyle = {
  apology: 0.6, thanks: 0.35, nameProduct: 0.55, wrongProduct: 0.05, rightRemedy: 0.55, wrongRemedy: 0.2,
  closing: 0.5, banned: 0.03, filler: 0.25, repeat: 0.05,
};

/** One reply written in a style: a list of sentences joined by spaces. */
export function sampleReply(rng: Rng, prompt: Prompt, style: ReplyStyle): string {
  const s: string[] = [];
  if (rng() < style.banned) s.push(pick(rng, BANNED));
  if (rng() < style.apology) s.push(pick(rng, APOLOGIES));
  else if (rng() < 0.3) s.push(pick(rng, NEUTRAL_OPENERS));
  if (rng() < style.thanks) s.push(pick(rng, THANKS));
  const u = rng();
  let ref: string;
  if (u < style.nameProduct) ref = `your ${prompt.product}`;
  else if (u < style.nameProduct + style.wrongProduct) ref = `your ${pick(rng, PRODUCTS.filter((p) => p !== prompt.product))}`;
  else ref = pick(rng, GENERIC_REFS);
  s.push(`We checked ${ref} for you.`);
  const r = rng();
  if (r < style.rightRemedy) s.push(pick(rng, prompt.issue.remedy));
  else if (r < style.rightRemedy + style.wrongRemedy) s.push(pick(rng, pick(rng, ISSUES.filter((i) => i !== prompt.issue)).remedy));
  for (let i = 0; i < 2; i++) if (rng() < style.filler) s.push(pick(rng, FILLERS));
  if (rng() < style.closing) s.push(pick(rng, CLOSINGS));
  if (s.length > 1 && rng() < style.repeat) {
    const j = Math.floor(rng() * s.length);
    s.splice(j + 1, 0, s[j]);
  }
  return s.join(' ');
}

/** The reply the tone guide describes: what a perfect agent writes. Not shown to any model. */
export function idealReply(rng: Rng, prompt: Prompt): string {
  return [pick(rng, APOLOGIES), `We checked your ${prompt.product} for you.`, pick(rng, prompt.issue.remedy), pick(rng, CLOSINGS)].join(' ');
}

/** Prompts split by their text so that evaluation prompts never appear in training. */
export function samplePrompts(rng: Rng, n: number, exclude: ReadonlySet<string> = new Set()): Prompt[] {
  const out: Prompt[] = [];
  let guard = 0;
  while (out.length < n && guard++ < n * 200) {
    const p = samplePrompt(rng);
    if (!exclude.has(p.text)) out.push(p);
  }
  return out;
}

/** Every prompt the task can produce (a few thousand), in a fixed order. */
export function allPrompts(): Prompt[] {
  const out: Prompt[] = [];
  for (const opener of OPENERS)
    for (const product of PRODUCTS)
      for (const issue of ISSUES)
        for (const phrasing of issue.phrasings)
          for (const extra of EXTRAS) {
            let message = [opener, `my ${product} ${phrasing}.`, extra].filter(Boolean).join(' ');
            message = message.charAt(0).toUpperCase() + message.slice(1);
            out.push({ text: formatPrompt(message), product, issue });
          }
  return out;
}

/**
 * The prompt space split once per seed: `held` prompts that no training stage ever sees (evaluation), and the
 * rest, from which every training stage draws. Splitting the space (rather than excluding what training
 * happened to draw) keeps evaluation prompts unseen even when training draws more prompts than exist.
 */
export function splitPromptSpace(rng: Rng, held: number): { train: Prompt[]; held: Prompt[] } {
  const all = allPrompts();
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  if (held >= all.length) throw new RangeError(`splitPromptSpace: ${held} held-out prompts of ${all.length}`);
  return { held: all.slice(0, held), train: all.slice(held) };
}
