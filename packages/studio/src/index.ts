/**
 * @rlhf/studio: the labeling studio (`rlhf label`): a local web app where a team writes demonstrations and
 * ranks model completions, stored in SQLite in the project folder, exported to @rlhf/data's formats.
 */
export const STUDIO_PACKAGE = '@rlhf/studio';
export { StudioStore, hashToken, DB_FILE, type Item, type Labeler, type NewItem, type StoredSubmission } from './store';
export { TASK_TYPES, TASK_LABELS, type TaskType, type Submission, InvalidSubmission, validateSubmission, needsPrompt, completionCount, MAX_TEXT, K_MIN, K_MAX } from './tasks';
export { EXPORT_KINDS, type ExportKind, exportRecords, exportToFile } from './export';
export { agreement, type AgreementSummary, type ItemAgreement } from './agreement';
export { CONFIG_FILE, ProjectConfigSchema, type ProjectConfig, type CompletionProvider, completionProvider, readProjectConfig } from './completions';
export { startStudio, ensureAdmin, LOOPBACK_HOSTS, type Studio, type StudioOptions } from './server';
