/**
 * The `lora` group every trainer config has (TrainingArgs.lora): null trains every weight; an object trains LoRA
 * adapters on the model's projections instead (model/lora.ts, PEFT's semantics), with heads (a reward model's
 * score, PPO's value head) trained whole. On the command line: `--lora-r 16 --lora-alpha 32
 * --lora-target-modules q_proj,v_proj` (any `--lora-*` flag turns it on; `--lora true` with every default).
 */
import type { ConfigSpec, FieldSpec } from './config';
import type { RefModelDtype } from './reference-model';

export interface LoraConfig {
  /** rank of every adapter */
  r: number;
  /** updates scaled by alpha / r (alpha / sqrt(r) with useRslora) */
  alpha: number;
  /** dropout on the adapters' input while training */
  dropout: number;
  /** PEFT's target_modules: names (a module matches when its name ends in one), 'all-linear', or a regular expression; null: PEFT's default for the family */
  targetModules: string[] | string | null;
  /** rsLoRA: scale by alpha / sqrt(r) */
  useRslora: boolean;
  /** PEFT's modules_to_save: modules of the model trained whole beside the adapters (a token embedding, a norm); null: none */
  modulesToSave: string[] | null;
  /** the frozen base weight matrices in memory: f32, or bf16 (half the memory; policy and reference then compute with bf16 weights) */
  baseDtype: RefModelDtype;
}

export const LORA_CONFIG_SPEC: ConfigSpec<LoraConfig> = {
  r: { group: 'lora', type: 'integer', min: 1, default: 8, doc: 'rank of every adapter (PEFT r)' },
  alpha: { group: 'lora', type: 'number', gt: 0, default: 8, doc: 'scaling numerator: updates are scaled by alpha / r (PEFT lora_alpha)' },
  dropout: { group: 'lora', type: 'number', min: 0, lt: 1, default: 0, doc: "dropout on the adapters' input while training (PEFT lora_dropout)" },
  targetModules: {
    group: 'lora',
    type: 'strings',
    nullable: true,
    default: null,
    doc: "projections to adapt (PEFT target_modules): names such as q_proj,v_proj or c_attn (a module matches when its name ends in one), all-linear, or regex:PATTERN on the whole module name; null: PEFT's default for the family (q_proj,v_proj; GPT-2 c_attn)",
  },
  useRslora: { group: 'lora', type: 'boolean', default: false, doc: 'rank-stabilised scaling alpha / sqrt(r) (PEFT use_rslora)' },
  modulesToSave: {
    group: 'lora',
    type: 'strings',
    nullable: true,
    default: null,
    doc: "modules of the model trained whole beside the adapters (PEFT modules_to_save), e.g. wte or embed_tokens (a tied LM head follows its embedding: ensure_weight_tying) or a norm; null: none",
  },
  baseDtype: { group: 'lora', type: 'enum', values: ['f32', 'bf16'], default: 'f32', doc: 'the frozen base weights in memory: f32, or bf16 (half the memory; the policy and its reference compute with bf16 weights)' },
};

/** TrainingArgs.lora's spec. */
export const LORA_FIELD_SPEC: FieldSpec = {
  group: 'lora',
  type: 'object',
  fields: LORA_CONFIG_SPEC as Record<string, FieldSpec>,
  nullable: true,
  default: null,
  doc: 'train LoRA adapters instead of every weight: { r, alpha, dropout, targetModules, useRslora, modulesToSave, baseDtype }; null: full fine-tuning',
};
