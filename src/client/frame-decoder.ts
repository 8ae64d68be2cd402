/**
 * Parses one whole incoming message. Messages with a large base64 field near their start never get
 * here: MessageAssembler decodes those while they arrive and hands them over with the decoded bytes
 * under `data` in place of the field.
 */

/** The message, or undefined when it is not a JSON object. */
export function decodeFrame(frame: Buffer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(frame.toString('utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of a base64 field, decoded on arrival (`data`) or still in the message. */
export function fieldData(holder: Record<string, unknown>, field: 'chunk' | 'dataBase64'): Buffer {
  return Buffer.isBuffer(holder.data) ? holder.data : Buffer.from(String(holder[field] ?? ''), 'base64');
}
