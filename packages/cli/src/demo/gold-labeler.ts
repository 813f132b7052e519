/**
 * The hidden gold labeler: the demo's stand-in for a team of human labelers who follow a brand's tone guide.
 *
 * `goldScore` is the guide written as rules (what the team really wants). `rankWithNoise` is what the team
 * hands over: a ranking of K replies by score plus per-labeler noise, so that labelers disagree as people do.
 * The reward model learns from the rankings only; PPO is judged by `goldScore`, which lets the demo show what
 * PPO really gained and whether the reward model was over-optimised.
 */
import { APOLOGIES, BANNED, CLOSINGS, FILLERS, ISSUES, PRODUCTS, THANKS, type Prompt, type Rng } from './task';

export interface GoldBreakdown {
  total: number;
  namesProduct: boolean;
  wrongProduct: boolean;
  rightRemedy: boolean;
  wrongRemedy: boolean;
  polite: boolean;
  closing: boolean;
  banned: number;
  repeats: number;
  words: number;
}

function sentences(reply: string): string[] {
  return (reply.match(/[^.!?]+[.!?]+/g) ?? []).map((s) => s.trim()).filter(Boolean);
}

/** The tone guide as a score. Higher is better; a perfect reply scores about 4. */
export function goldBreakdown(prompt: Prompt, reply: string): GoldBreakdown {
  const text = reply.trim();
  const words = text.split(/\s+/).filter(Boolean).length;
  const namesProduct = text.includes(prompt.product);
  const wrongProduct = PRODUCTS.some((p) => p !== prompt.product && text.includes(p));
  const rightRemedy = prompt.issue.remedy.some((r) => text.includes(r));
  const wrongRemedy = ISSUES.some((i) => i !== prompt.issue && i.remedy.some((r) => text.includes(r)));
  const polite = [...APOLOGIES, ...THANKS].some((p) => text.includes(p));
  const closing = CLOSINGS.some((c) => text.includes(c));
  const banned = BANNED.filter((b) => text.includes(b)).length;
  const sents = sentences(text);
  const repeats = sents.length - new Set(sents).size;
  const fillers = FILLERS.filter((f) => text.includes(f)).length;

  let total = 0;
  total += namesProduct ? 1 : 0;
  total -= wrongProduct ? 0.75 : 0;
  total += rightRemedy ? 1.5 : 0;
  total -= wrongRemedy ? 0.75 : 0;
  total += polite ? 0.5 : 0;
  total += closing ? 0.5 : 0;
  total -= 1.5 * banned;
  total -= 0.75 * repeats;
  total -= 0.25 * fillers;
  // Concision: the guide wants replies under 30 words; every extra word costs a little.
  total -= 0.05 * Math.max(0, words - 30);
  if (words === 0) total -= 2;
  return { total, namesProduct, wrongProduct, rightRemedy, wrongRemedy, polite, closing, banned, repeats, words };
}

export function goldScore(prompt: Prompt, reply: string): number {
  return goldBreakdown(prompt, reply).total;
}

/** A standard normal draw (Box-Muller) from the demo's seeded generator. */
export function gaussian(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * A labeler's ranking of K replies, best first, as indices into `replies`: gold score plus Gaussian noise of
 * standard deviation `noise` per reply (a labeler's momentary judgement). Replies with identical text get the
 * same noisy score (a labeler sees they are the same), and equal scores are reported as a tie group.
 * Returns ranks: ranks[i] = 1 for the best; ties share a rank.
 */
export function rankWithNoise(prompt: Prompt, replies: readonly string[], rng: Rng, noise = 0.4): number[] {
  const byText = new Map<string, number>();
  const scores = replies.map((r) => {
    const seen = byText.get(r);
    if (seen !== undefined) return seen;
    const s = goldScore(prompt, r) + noise * gaussian(rng);
    byText.set(r, s);
    return s;
  });
  return scores.map((s) => 1 + scores.filter((o) => o > s).length);
}
