/**
 * @rlhf/data: demonstration and comparison records, format adapters, validation, ranking-to-pairs and
 * chat helpers. Plain Node, no native code.
 */
export { findSharedDir, sharedDirForTests, sharedPath } from './shared-dir';
export * from './schemas';
export * from './ranking';
export * from './chat';
export { type Issue, type IssueCode, type Severity, type Summary, Report, formatIssue } from './issues';
export { readLines, DEFAULT_MAX_LINE_BYTES, type LineEvent, type LineOptions } from './lines';
export { checkRecord, isEmptyText, DuplicateTracker, type RecordProblem } from './validate';
export { FORMATS, FORMAT_NAMES, getFormat, detectLayout, type FormatOptions, type JsonFormat, type LabelboxNames } from './formats/index';
export type { Decoded, FormatProblem } from './formats/types';
export { extractPrompt, joinText } from './formats/trl';
export { parseTranscript, renderTranscript } from './formats/hh-rlhf';
export { DataError, detect, openRecords, readAll, validateFile, type Container, type Detection, type OpenedRecords, type ReadOptions, type SourcedRecord } from './read';
export { containerFor, openSink, type OutputContainer, type Sink } from './write';
export { convertFile, writeRecords, type ConvertOptions, type ConvertResult } from './convert';
export { ParquetWriter, readParquetRows, isParquetFile, type ParquetCell, type ParquetRowEvent } from './parquet';
export { splitSide, type Side } from './split';
export { dedupe, type DedupeStats } from './dedupe';
export { preferredDemonstration, preferredDemonstrations } from './preferred';
export { collectStats, kendallTauB, StatsCollector, type Agreement, type DataStats, type Distribution, type Tokenizer } from './stats';
export { hash52, unitHash } from './hash';
