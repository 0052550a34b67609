/** Stored snapshots (state/snapshots/, state/azure-snapshots/) rewritten as earlier versions of the app wrote them. */
import type { World } from './world';

/**
 * Rewrites the value-lines snapshot `name` as keyed JSON lines (one object a line, no header), the
 * format written before the header existed, and returns the header it had and its number of rows.
 * Done by hand here, not with the product's reader, so a reader bug cannot hide in both.
 */
export async function rewriteAsKeyedLines(
  world: World,
  name: string,
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
  await world.blobs.getContainerClient(world.reports).getBlockBlobClient(name).upload(keyed, Buffer.byteLength(keyed));
  return { header, rows: lines.length };
}
