/**
 * RFC 4180 CSV: fields separated by commas, optionally quoted with "…" (a doubled "" inside is one quote,
 * and a quoted field may span lines). Each row carries the 1-based line where it starts, for error messages.
 */
import { EvalDataError } from './errors';

export interface CsvRow {
  line: number;
  fields: string[];
}

export function parseCsv(text: string, file: string): CsvRow[] {
  const rows: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1, rowLine = 1, i = 0, quoted = false, fieldStarted = false;
  const endRow = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !fieldStarted)) rows.push({ line: rowLine, fields });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1; // byte-order mark
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
          throw new EvalDataError(file, line, `column ${fields.length + 1}`, 'text after a closing quote');
        }
        continue;
      }
      if (ch === '\n') line++;
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
      fieldStarted = true;
      i++;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
      i++;
    } else if (ch === '\r' || ch === '\n') {
      endRow();
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      rowLine = line;
    } else {
      field += ch;
      fieldStarted = true;
      i++;
    }
  }
  if (quoted) throw new EvalDataError(file, rowLine, `column ${fields.length + 1}`, 'a quoted field is not closed before the end of the file');
  if (field !== '' || fields.length || fieldStarted) endRow();
  return rows;
}
