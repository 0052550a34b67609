/** Stored snapshots (state/schedules/, state/azure-schedules/) moved back to where, and how, earlier versions of the app wrote them. */
import type { World } from './world';

/**
 * Rewrites the value-lines snapshot `name` as keyed JSON lines (one object a line, no header) at
 * `legacy`, the format and folder of the versions before the header, deletes `name`, and returns
 * the header it had and its number of rows.
 * Done by hand here, not with the product's reader, so a reader bug cannot hide in both.
 */
export async function rewriteAsKeyedLines(
  world: World,
  name: string,
  legacy: string,
): Promise<{ header: { format: string; version: number; keys: string[] }; rows: number }> {
  const stored = await world.read(world.reports, name);
  if (stored === undefined) throw new Error(`${name} does not exist`);
  const [first, ...lines] = stored.split('\n').filter((l) => l !== '');
  const header = JSON.parse(first) as { format: string; version: number; keys: string[] };
  const keyed = lines
    .map((l) => {
      const values = JSON.parse(l) as unknown[];
      return `${JSON.stringify(Object.fromEntries(header.keys.map((k, i) => [k, values[i]])))}\n`;
    })
    .join('');
  const container = world.blobs.getContainerClient(world.reports);
  await container.getBlockBlobClient(legacy).upload(keyed, Buffer.byteLength(keyed));
  await container.getBlockBlobClient(name).delete();
  return { header, rows: lines.length };
}
