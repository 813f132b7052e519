/**
 * @rlhf/core: tensors, autograd, models, tokenizers, generation and trainers, over @rlhf/native.
 */
export { info as nativeInfo } from '@rlhf/native';
