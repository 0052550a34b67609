/**
 * The directory's role definitions as names by id and by template id (lower case): one short list,
 * read once a run and shared by the snapshot and the role settings
 * (https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions). Asked without
 * `$top`: the docs give this list `$filter` only, and live tenants refuse `$top` on it
 * (`refusesPageSize` in src/graph/client.ts).
 */
import type { GraphClient } from '../graph/client';

export type RoleNames = ReadonlyMap<string, string>;

const ROLE_DEFINITIONS = '/roleManagement/directory/roleDefinitions';

export async function readRoleNames(graph: GraphClient): Promise<RoleNames> {
  const names = new Map<string, string>();
  for await (const role of graph.list<{ id: string; templateId?: string; displayName?: string }>(ROLE_DEFINITIONS, {
    $select: 'id,templateId,displayName',
  })) {
    names.set(role.id.toLowerCase(), role.displayName ?? '');
    if (role.templateId) names.set(role.templateId.toLowerCase(), role.displayName ?? '');
  }
  return names;
}
