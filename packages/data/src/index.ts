/**
 * @rlhf/data: demonstration and comparison records, format adapters, validation, ranking-to-pairs and
 * chat templates. Plain Node, no native code.
 */
export { findSharedDir, sharedDirForTests, sharedPath } from './shared-dir';
