/**
 * The demo's second task (`rlhf demo --task arithmetic`): short arithmetic word problems whose answer a function
 * checks, a verifiable reward (core's answerMatch) instead of a reward model.
 *
 * A problem adds or subtracts two one-digit numbers in one of a few phrasings ("Ann has 7 coins and gets 5 more.
 * How many coins does Ann have now?"): answers 1 to 18, each one BPE token of the demo's tokenizer (see the
 * test), so that the small model has a table to learn, not carries. Everything is generated from the seed: a
 * "web" corpus of problems whose answers are as often wrong as right (the base model learns the format and the
 * numbers), and "contractor" demonstrations with a contractor's systematic slips: a subtraction is often added
 * (more often than not, so that the SFT model's likeliest answer to a subtraction is wrong, not only its samples),
 * an addition is sometimes one off. GRPO with the exact-match reward then has something to fix; it is judged on
 * held-out problems whose text no stage trained on.
 */
import { pick, type Rng } from './task';

export type Operation = '+' | '-';

export interface Problem {
  /** the prompt: "Question: … Answer:" */
  text: string;
  answer: number;
  a: number;
  b: number;
  op: Operation;
}

const NAMES = ['Ann', 'Ben', 'Cara', 'Dev', 'Eli', 'Fay', 'Gus', 'Hana', 'Ivo', 'Jo', 'Kai', 'Lea'] as const;
const THINGS = ['apples', 'books', 'coins', 'cards', 'pens', 'shells', 'stamps', 'marbles', 'eggs', 'keys'] as const;

/** Phrasings: an operation and the question with its numbers. */
const TEMPLATES: ReadonlyArray<{ op: Operation; text: (n: string, a: number, b: number, t: string) => string }> = [
  { op: '+', text: (n, a, b, t) => `${n} has ${a} ${t} and gets ${b} more. How many ${t} does ${n} have now?` },
  { op: '+', text: (_n, a, b, t) => `There are ${a} ${t} in a box and ${b} ${t} in a bag. How many ${t} are there in all?` },
  { op: '-', text: (n, a, b, t) => `${n} has ${a} ${t} and gives away ${b}. How many ${t} does ${n} have left?` },
  { op: '-', text: (n, a, b, t) => `${n} had ${a} ${t} and lost ${b} of them. How many ${t} are left?` },
];

/** The largest operand: one digit. */
export const MAX_OPERAND = 9;

/** One problem drawn from the whole problem space: a + b with a, b in 1..9, or a - b with 1 <= b < a <= 9. */
export function drawProblem(rng: Rng): Problem {
  const tpl = pick(rng, TEMPLATES);
  const name = pick(rng, NAMES);
  const thing = pick(rng, THINGS);
  let a: number;
  let b: number;
  if (tpl.op === '+') {
    a = 1 + Math.floor(rng() * MAX_OPERAND);
    b = 1 + Math.floor(rng() * MAX_OPERAND);
  } else {
    a = 2 + Math.floor(rng() * (MAX_OPERAND - 1));
    b = 1 + Math.floor(rng() * (a - 1));
  }
  return { text: `Question: ${tpl.text(name, a, b, thing)}\nAnswer:`, answer: tpl.op === '+' ? a + b : a - b, a, b, op: tpl.op };
}

/**
 * `held` distinct problems for evaluation, and a generator of training problems that never repeats a held-out
 * problem's text. A held-out problem's numbers do come up in training in other words (there are 81 additions
 * and 36 subtractions): the held-out set tests the policy on unseen questions, not recall of their text.
 */
export function splitProblems(rng: Rng, held: number): { held: Problem[]; drawTrain: (rng: Rng, n: number) => Problem[] } {
  const seen = new Set<string>();
  const heldOut: Problem[] = [];
  while (heldOut.length < held) {
    const p = drawProblem(rng);
    if (seen.has(p.text)) continue;
    seen.add(p.text);
    heldOut.push(p);
  }
  const drawTrain = (r: Rng, n: number) => {
    const out: Problem[] = [];
    while (out.length < n) {
      const p = drawProblem(r);
      if (!seen.has(p.text)) out.push(p);
    }
    return out;
  };
  return { held: heldOut, drawTrain };
}

/** A problem answered with `answer`, as a demonstration (and a web page) holds it: the number after "Answer:". */
export function answered(p: Problem, answer: number): { prompt: string; completion: string } {
  return { prompt: p.text, completion: ` ${answer}` };
}

/** A web page's answer: right half of the time, else any number from 0 to twice the largest operand. */
export function webAnswer(rng: Rng, p: Problem): number {
  return rng() < 0.5 ? p.answer : Math.floor(rng() * (2 * MAX_OPERAND + 1));
}

/** How often a contractor slips, by operation: the other operation's result, or one off. */
export interface Slips {
  otherOperation: number;
  oneOff: number;
}

/**
 * The contractors' slips: a subtraction is added half of the time (skimming the question for its two numbers),
 * an addition is one off 30% of the time. Right on 60% of additions and 35% of subtractions.
 */
export const CONTRACTOR_SLIPS: Readonly<Record<Operation, Slips>> = {
  '+': { otherOperation: 0.1, oneOff: 0.3 },
  '-': { otherOperation: 0.55, oneOff: 0.1 },
};

/** A contractor's answer to p: right, or (at the rates of `slips`) the other operation's result or one off. */
export function contractorAnswer(rng: Rng, p: Problem, slips: Readonly<Record<Operation, Slips>> = CONTRACTOR_SLIPS): number {
  const s = slips[p.op];
  const u = rng();
  if (u < s.otherOperation) return p.op === '+' ? Math.abs(p.a - p.b) : p.a + p.b;
  if (u < s.otherOperation + s.oneOff) return p.answer + (rng() < 0.5 ? -1 : 1);
  return p.answer;
}
