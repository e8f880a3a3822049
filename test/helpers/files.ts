/** Reading what the job's commands write. */
import { readFile } from 'node:fs/promises';

/** A JSON-lines file (JSONEachRow), whole. */
export async function readJsonLines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}
