/**
 * @rlhf/data: demonstration and comparison records, format adapters, validation, ranking-to-pairs and
 * chat helpers. Plain Node, no native code.
 */
export { findSharedDir, sharedDirForTests, sharedPath } from './shared-dir';
export * from './schemas';
export * from './ranking';
export * from './chat';
