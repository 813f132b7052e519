/**
 * The frozen reference model of PPO, GRPO and DPO, and what it may cost in memory. A copy of a 0.5B policy in
 * float32 is 2 GB; with `refModelDtype: 'bf16'` its weight matrices are kept in bf16 (half), read directly by
 * the GEMMs (@rlhf/native gemmBf16), at the price of bf16 rounding in the reference log-probs (see
 * Module.keepFrozenInBf16; packages/core/bench/README.md gives the measured log-prob difference).
 *
 * On a device the reference lives where the policy does: a copy of a policy there is made there by kernels
 * (copyF32, castF32ToBf16: no transfer), and a reference model given on the cpu is moved there (after its bf16
 * conversion: half the upload).
 */
import type { Device } from '../backend/device';
import type { CausalLM } from '../model/common';
import { adaptersDisabled } from '../model/lora';
import type { FieldSpec } from './config';

export type RefModelDtype = 'f32' | 'bf16';
export const REF_MODEL_DTYPES: readonly RefModelDtype[] = ['f32', 'bf16'];

/** The config field every trainer with a reference model shares (group set by the trainer). */
export function refModelDtypeSpec(group: string): FieldSpec {
  return {
    group,
    type: 'enum',
    values: REF_MODEL_DTYPES,
    default: 'f32',
    doc: "the reference model's weight matrices in memory: f32, or bf16 (half the memory; its log-probs then carry bf16 rounding). A reference model given in code is converted in place",
  };
}

/**
 * The frozen reference: `given`, else a copy of `policy` as it is now; frozen, and with its weight matrices in
 * bf16 when dtype is 'bf16' (a model given is converted in place). A policy training LoRA adapters needs no copy:
 * its reference is the base under the adapters, the policy with them off (adaptersDisabled), whose weights stay as
 * they are (lora.baseDtype, not refModelDtype, keeps them in bf16).
 */
export function frozenReference(policy: CausalLM, given: CausalLM | undefined, dtype: RefModelDtype): CausalLM {
  if (!given && policy.lora) {
    if (dtype === 'bf16') {
      throw new Error("refModelDtype 'bf16': with LoRA the reference is the policy's own base (no copy); keep the base in bf16 with lora.baseDtype 'bf16' instead");
    }
    return adaptersDisabled(policy);
  }
  if (!given) return dtype === 'bf16' ? policy.frozenBf16Copy() : policy.clone().freeze();
  const device = deviceOf(policy), refDevice = deviceOf(given);
  if (device !== refDevice && refDevice !== 'cpu') throw new Error(`the reference model given is on ${refDevice} and the policy on ${device}: give it on the cpu or on ${device}`);
  given.freeze();
  if (dtype === 'bf16') given.keepFrozenInBf16();
  // a reference given on the cpu goes where the policy is (as the trainer moves the policy): one upload per tensor, once
  return device === refDevice ? given : given.to(device);
}

/** The device of a model's parameters (the first one's: Module.to moves them all). */
export function deviceOf(model: CausalLM): Device {
  return model.namedParameters()[0]?.[1].device ?? 'cpu';
}

/**
 * The reference of a trainer that scores the reference before any update and keeps no copy (DPO): the policy
 * itself, or with LoRA the policy with its adapters off (the base; the same at step 0, and still the base when a
 * run resumes with trained adapters).
 */
export function policyAsReference(policy: CausalLM): CausalLM {
  return policy.lora ? adaptersDisabled(policy) : policy;
}
