/** Data parallelism over MPI: collectives, gradient buckets, shards of a global batch. */
export {
  SingleProcess,
  MpiCollective,
  worldCollective,
  describeWorld,
  collectiveTimeoutSeconds,
  broadcastJson,
  averageMetrics,
} from './collective';
export type { Collective, CollectiveBackend, PendingReduce, ReduceOp } from './collective';
export { GradientSync } from './grad-sync';
export type { OnDeviceSync } from './grad-sync';
export { deviceAllReduceFor, hostAllReduce, checkDeviceAllReduceMode } from './device-all-reduce';
export type { DeviceAllReduce, DeviceAllReduceMode } from './device-all-reduce';
export type { GradientSyncOptions } from './grad-sync';
export { shardRange, broadcastTrainingState, broadcastWeights } from './data-parallel';
