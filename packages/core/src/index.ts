/**
 * @rlhf/core: tensors, autograd, models, tokenizers, generation and trainers, over @rlhf/native.
 */
export { info as nativeInfo } from '@rlhf/native';

// tensors and autograd (core)
export { Tensor, CpuStorage, DeviceStorage, parameter, shapeSize } from './tensor/tensor';
export type { DType, Device, GradNode, Storage } from './tensor/tensor';
export { defineOp, noGrad, isGradEnabled, tidy, discardGraph, ForwardCtx, BackwardCtx, setBackwardHooks, ensureLeafGrad } from './tensor/autograd';
export type { OpDef, BackwardHooks } from './tensor/autograd';
export * as ops from './tensor/ops';
export { lmHeadLogprobs, lmHeadCrossEntropy, setLmHeadChunkBytes, lmHeadChunkBytes } from './tensor/lm-head';
export { loraLinear } from './tensor/lora-linear';
export { autocast, autocastState, Bf16WeightCache, MIXED_PRECISION_MODES } from './tensor/autocast';
export type { AutocastState, MixedPrecision } from './tensor/autocast';
export type { LoraDropout } from './tensor/lora-linear';
export type { LmHeadCrossEntropyOptions } from './tensor/lm-head';
export { acquireF32, releaseF32, poolStats, resetPoolStats, clearPool, setPoolEnabled, setPoolLimit, poolLimit } from './tensor/pool';
export type { PoolStats } from './tensor/pool';
export { kernels, kernelSources, kernelTimings, setKernelTiming, type KernelSource, type KernelTiming } from './backend/cpu';
export type { Kernels, KernelName } from './backend/kernels';
export { kernelsFor } from './backend/backends';
export { registerBackend, backendFor, transferCounts, resetTransferCounts, deviceMemoryStats, resetDeviceMemoryPeak, DEVICES } from './backend/device';
export type { DeviceMemoryStats } from './backend/device';
export type { DeviceBackend, DeviceBuffer, TransferCategory, TransferCount, F32Buf, I32Buf, Bf16Buf } from './backend/device';
export { Rng } from './util/rng';

// weights I/O: safetensors, HF checkpoint folders, llama2.c checkpoints, atomic writes (weights-tokenizers)
export { ensureWritableDir, writableDirProblem, writeFileAtomic, writeFolderAtomic } from './io/atomic-write';
export type { AtomicWriteData } from './io/atomic-write';
export { DTYPE_BYTES, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from './io/dtypes';
export type { DType as WeightDType, StateDict, TensorData, TensorEntry } from './io/dtypes';
export {
  MAX_SAFETENSORS_HEADER_BYTES,
  openSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  readFileToBuffer,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from './io/safetensors';
export type { ReadSafetensorsOptions, SafetensorsFile, SafetensorsHeaderEntry, SafetensorsReader } from './io/safetensors';
export { loadHfCheckpoint, readJsonFile, saveHfCheckpoint } from './io/hf-checkpoint';
export type { HfCheckpoint, SaveHfCheckpointOptions } from './io/hf-checkpoint';
export {
  llama2cToHfConfig,
  parseLlama2cCheckpoint,
  readLlama2cCheckpoint,
  serializeLlama2cCheckpoint,
  writeLlama2cCheckpoint,
} from './io/llama2c';
export type { Llama2cCheckpoint, Llama2cConfig, Llama2cShape } from './io/llama2c';

// data parallelism over MPI: collectives, gradient buckets, shards of a global batch
export * from './distributed/index';

// trainers: configs, SFT / reward / PPO / DPO, and their pure helpers (trainers)
export * from './trainers/index';

// models and heads (core)
export { Module, copyParameters } from './model/module';
export { KVCache, lastTokenIndex, preparePositions } from './model/common';
export type { BlockContext, CausalLM, ModelInput } from './model/common';
export { GPT2, gpt2ConfigFromHf } from './model/gpt2';
export type { GPT2Config } from './model/gpt2';
export { Llama } from './model/llama';
export { DECODER_SPECS, decoderConfigFromHf, decoderConfigToHf, decoderParameterCount, llamaConfigFromHf } from './model/decoder-config';
export type { DecoderModelType, LlamaConfig } from './model/decoder-config';
export { MODEL_FAMILIES, familyOf } from './model/families';
export type { ModelFamily } from './model/families';
export { hfConfigReader, INERT_CONFIG_KEYS } from './model/hf-config';
export type { HfConfigReadOptions } from './model/hf-config';
export { readRope, ropeFrequencies, ropeToHf } from './model/rope-scaling';
export type { RopeScaling, RopeSpec, RopeType } from './model/rope-scaling';
export { ValueHead, RewardHead, CausalLMWithValueHead, RewardModel } from './model/heads';
export { lmHeadTokenLogprobs, lmHeadLoss, selectRows } from './model/lm-head';
export { fromPretrained, hfLayout, loadTokenizerFile, savePretrained } from './model/pretrained';
export { exportGguf, type ExportGgufOptions, type GgufDType } from './model/gguf-export';
export { GGML_TYPE, GGUF_TYPE, gguf, parseGgufHeader, readGgufHeader, serializeGguf, writeGguf, type GgufHeader, type GgufTensor, type GgufTensorInfo, type GgufValue } from './io/gguf';
export { rotateHalfRows } from './model/rope-layout';
export { ALL_LINEAR, LoraAdapters, adaptersDisabled, addLora, loraParameterCount, loraTargets, resolveLoraSpec, withoutAdapters } from './model/lora';
export type { LoraAdapter, LoraFieldName, LoraSpec, ResolvedLoraSpec } from './model/lora';
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adapterBasePath,
  adapterConfigJson,
  isAdapterDir,
  loadAdapter,
  loadPeftStateDict,
  peftStateDict,
  readAdapterConfig,
  saveAdapter,
} from './model/peft';
export type { AdapterConfig, PeftTaskType } from './model/peft';
export type { Pretrained, FromPretrainedOptions, SaveDType, SavePretrainedOptions } from './model/pretrained';

// optimizer (core)
export { AdamW, paramGroups, gradNorm } from './optim/adamw';
export type { AdamWOptions, ParamGroup } from './optim/adamw';

// generation (core)
export { generate } from './generation/generate';
export type { GenerateOptions, GenerateResult, LoadedModel } from './generation/generate';
export { sampleToken } from './generation/sampling';
export type { SamplingOptions } from './generation/sampling';

// tokenizers: one interface over llama2.c tok*.bin, HF tokenizer.json, and our byte-level BPE (weights-tokenizers)
export type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizers/types';
export { Llama2cTokenizer, parseLlama2cVocab, readLlama2cTokenizer, serializeLlama2cVocab } from './tokenizers/llama2c-tokenizer';
export type { Llama2cVocab } from './tokenizers/llama2c-tokenizer';
export { ByteLevelBpeTokenizer, UnsupportedTokenizerError } from './tokenizers/byte-level-bpe';
export type { TokenizerConfig } from './tokenizers/byte-level-bpe';
export type { AddedTokenSpec } from './tokenizers/byte-level';
export { DEFAULT_CHAT_TEMPLATE, DEFAULT_SPECIAL_TOKENS, trainByteLevelBpe } from './tokenizers/bpe-trainer';
export type { BpeTrainOptions } from './tokenizers/bpe-trainer';
export { HfTokenizer } from './tokenizers/hf-tokenizer';
export { loadTokenizer, resolveChatTemplate, saveTokenizer, tokenizerFiles } from './tokenizers/load-tokenizer';
export type { LoadTokenizerOptions } from './tokenizers/load-tokenizer';
export { BUILTIN_CHAT_TEMPLATES, HH_CHAT_TEMPLATE, chatTemplateFor, checkChatTemplate, encodeChat, renderChat, withChatTemplate } from './tokenizers/chat-template';
export type { ChatMessage, ChatTemplateOptions, EncodedChat } from './tokenizers/chat-template';
