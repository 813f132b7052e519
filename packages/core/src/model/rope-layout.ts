/**
 * The two row orders of a Llama q / k projection: llama2.c and Meta checkpoints rotate interleaved pairs (2i, 2i+1)
 * of each head, transformers rotates (i, i + D/2) (rotate_half). Files for other tools (savePretrained, PEFT
 * adapters) are written in transformers' order; a model that computes interleaved RoPE keeps its own order in memory.
 */

/**
 * Rows (rows, cols) of a q or k projection (heads of D rows) moved from interleaved RoPE pairs (2i, 2i+1), as llama2.c
 * and Meta checkpoints order them, to rotate_half's (i, i + D/2), as transformers orders them; `inverse` moves them
 * back. The same function either way (each rotation is computed from the same two values).
 */
export function rotateHalfRows(src: Float32Array, rows: number, cols: number, D: number, inverse = false): Float32Array {
  const dst = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    const h = Math.floor(r / D), j = r % D; // row j of head h: pair j/2, first or second of it
    const to = h * D + (j % 2 === 0 ? j / 2 : (j - 1) / 2 + D / 2);
    if (inverse) dst.set(src.subarray(to * cols, (to + 1) * cols), r * cols);
    else dst.set(src.subarray(r * cols, (r + 1) * cols), to * cols);
  }
  return dst;
}

/** The head width of a Llama config.json (head_dim, else hidden_size / num_attention_heads). */
export function headDimOf(config: Record<string, unknown>): number {
  return (config.head_dim as number | undefined) ?? (config.hidden_size as number) / (config.num_attention_heads as number);
}
