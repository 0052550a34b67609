/**
 * Seeded random tenants, from a handful of rows to benchmark size (50k eligible, 20k active, 3k groups).
 * Everything is plain data in Graph's shape (model.ts); the same seed and options give the same tenant.
 */
import {
  activationEvents,
  adminAssignmentEvents,
  groupActivationEvents,
  outsidePimEvents,
  type AuditContext,
  type AuditPrincipal,
  type AuditRole,
} from './audit';
import {
  CISA_ROLES,
  GLOBAL_ADMINISTRATOR,
  OTHER_BUILTIN_ROLES,
  type ExpirationType,
  type SimDirectoryAudit,
  type SimGroup,
  type SimGroupEligibilitySchedule,
  type SimRoleDefinition,
  type SimRoleSchedule,
  type SimScheduleInfo,
  type SimTenant,
  type SimUser,
} from './model';
import { Rng } from './random';
import { DAY_MS, HOUR_MS, graphTime, timeKey } from './time';

// ---------------------------------------------------------------------------------------------------------
// Building blocks (also used by demo.ts)
// ---------------------------------------------------------------------------------------------------------

/** The 8 CISA roles plus the other built-ins the bench uses (id === templateId for built-ins). */
export function builtInRoleDefinitions(): SimRoleDefinition[] {
  return [...Object.entries(CISA_ROLES), ...Object.entries(OTHER_BUILTIN_ROLES)].map(([id, displayName]) => ({
    id,
    displayName,
    templateId: id,
    isBuiltIn: true,
    description: `Built-in role: ${displayName}.`,
  }));
}

export function scheduleInfo(
  start: string | null,
  expiration: { type: ExpirationType; endDateTime?: string | null; duration?: string | null },
): SimScheduleInfo {
  return {
    startDateTime: start,
    recurrence: null,
    expiration: {
      type: expiration.type,
      endDateTime: expiration.endDateTime ?? null,
      duration: expiration.duration ?? null,
    },
  };
}

export const permanent = (start: string | null) => scheduleInfo(start, { type: 'noExpiration' });
export const until = (start: string | null, end: string) =>
  scheduleInfo(start, { type: 'afterDateTime', endDateTime: end });
export const forDuration = (start: string | null, duration: string) =>
  scheduleInfo(start, { type: 'afterDuration', duration });

/** A role schedule created through PIM (createdUsing = the schedule id, as in the docs samples). */
export function pimSchedule(
  fields: Pick<SimRoleSchedule, 'id' | 'principalId' | 'roleDefinitionId' | 'directoryScopeId' | 'scheduleInfo'> &
    Partial<
      Pick<SimRoleSchedule, 'assignmentType' | 'memberType' | 'createdUsing' | 'createdDateTime' | 'modifiedDateTime'>
    >,
): SimRoleSchedule {
  return {
    id: fields.id,
    principalId: fields.principalId,
    roleDefinitionId: fields.roleDefinitionId,
    directoryScopeId: fields.directoryScopeId,
    appScopeId: null,
    createdUsing: fields.createdUsing === undefined ? fields.id : fields.createdUsing,
    createdDateTime: fields.createdDateTime === undefined ? fields.scheduleInfo.startDateTime : fields.createdDateTime,
    modifiedDateTime: fields.modifiedDateTime ?? null,
    status: 'Provisioned',
    ...(fields.assignmentType ? { assignmentType: fields.assignmentType } : {}),
    memberType: fields.memberType ?? 'Direct',
    scheduleInfo: fields.scheduleInfo,
  };
}

/**
 * An active assignment made directly in the directory, outside PIM: createdUsing/createdDateTime null,
 * an id like `lAPpYvVpN0KRkAEhdxReEAWz5Gtet_xOv8wxvTtTpfg-1` (https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentschedules, response example).
 */
export function outsidePimAssignment(
  rng: Rng,
  fields: { principalId: string; roleDefinitionId: string; directoryScopeId?: string; start: string },
): SimRoleSchedule {
  return {
    id: `${rng.base64url(43)}-1`,
    principalId: fields.principalId,
    roleDefinitionId: fields.roleDefinitionId,
    directoryScopeId: fields.directoryScopeId ?? '/',
    appScopeId: null,
    createdUsing: null,
    createdDateTime: null,
    modifiedDateTime: null,
    status: 'Provisioned',
    assignmentType: 'Assigned',
    memberType: 'Direct',
    scheduleInfo: permanent(fields.start),
  };
}

export function groupEligibility(
  rng: Rng,
  fields: {
    groupId: string;
    principalId: string;
    accessId: 'member' | 'owner';
    scheduleInfo: SimScheduleInfo;
    createdDateTime?: string | null;
  },
): SimGroupEligibilitySchedule {
  const createdUsing = rng.guid();
  return {
    id: `${fields.groupId}_${fields.accessId}_${rng.guid()}`,
    groupId: fields.groupId,
    principalId: fields.principalId,
    accessId: fields.accessId,
    memberType: 'direct',
    status: 'Provisioned',
    createdDateTime: fields.createdDateTime === undefined ? fields.scheduleInfo.startDateTime : fields.createdDateTime,
    createdUsing,
    modifiedDateTime: '0001-01-01T08:00:00Z',
    scheduleInfo: fields.scheduleInfo,
  };
}

/** Display names and justifications that attack CSV/HTML consumers (docs/files.md, "Encoding"). */
export const HOSTILE_STRINGS: readonly string[] = [
  "=cmd|' /C calc'!A0",
  '+SUM(1)',
  '@x',
  '-1',
  '<script>alert(1)</script>',
  'Dana "The Boss" O\'Neil',
  'Smith, John',
  'Two\r\nLines',
  '\tTabbed Name',
  '\rCarriage Return',
  'Zoë Ångström-Łukasiewicz 山田太郎',
  '=HYPERLINK("http://evil","click")',
];

const FIRST_NAMES = [
  'Adele',
  'Alex',
  'Allan',
  'Bianca',
  'Brian',
  'Carlos',
  'Chen',
  'Christie',
  'Dana',
  'Debra',
  'Diego',
  'Elena',
  'Emily',
  'Enrico',
  'Fatima',
  'Grady',
  'Hana',
  'Henrietta',
  'Isaiah',
  'Ivan',
  'Jessica',
  'Johanna',
  'Joni',
  'Kenji',
  'Lee',
  'Lidia',
  'Lynne',
  'Megan',
  'Miriam',
  'Nestor',
  'Noah',
  'Olga',
  'Patti',
  'Pradeep',
  'Priya',
  'Raul',
  'Sara',
  'Sofia',
  'Tomas',
  'Yuki',
];
const LAST_NAMES = [
  'Vance',
  'Wilber',
  'Deyoung',
  'Ortiz',
  'Johnson',
  'Silva',
  'Wei',
  'Cline',
  'Holt',
  'Berry',
  'Ramos',
  'Petrova',
  'Braun',
  'Rossi',
  'Haddad',
  'Archie',
  'Sato',
  'Mueller',
  'Thomas',
  'Novak',
  'Lopez',
  'Lindqvist',
  'Sherman',
  'Tanaka',
  'Gu',
  'Holloway',
  'Robbins',
  'Bowen',
  'Caldwell',
  'Wilke',
  'Kowalski',
  'Smirnova',
  'Fernandez',
  'Gupta',
  'Nair',
  'Moreno',
  'Davis',
  'Costa',
  'Dvorak',
  'Yamamoto',
];
const APP_NAMES = [
  'Backup Service',
  'CI Pipeline',
  'HR Sync',
  'Ticketing Connector',
  'SIEM Collector',
  'Provisioning Engine',
  'Mail Relay',
  'Inventory Scanner',
  'Terraform Runner',
  'Identity Bridge',
];
const TEAMS = [
  'Tier0',
  'Helpdesk',
  'Identity',
  'Messaging',
  'Collaboration',
  'Security Ops',
  'Cloud Apps',
  'Endpoint',
  'Audit',
];
const OFFICES = [
  'Paris Office',
  'Berlin Office',
  'Madrid Office',
  'Seattle Office',
  'Tokyo Office',
  'Sydney Office',
  'Nairobi Office',
  'Lima Office',
];
const JUSTIFICATIONS = [
  'Monthly patching window',
  'Investigating incident INC-1234',
  'User onboarding batch',
  'Mailbox migration',
  'Reset MFA for travelling user',
  'Quarterly access review follow-up',
  'Conditional Access change CHG-2201',
  'Licence assignment clean-up',
  'Break-fix: sync errors',
  'Vendor escalation',
];
const TICKET_SYSTEMS = ['ServiceNow', 'Jira', 'Remedy'];

/** Roles an administrative unit can scope (the others are tenant-wide only). */
const AU_SCOPABLE = new Set([
  'fe930be7-5e62-47db-91af-98c3a49a38b1', // User Administrator
  '729827e3-9c14-49f7-bb1b-9608f156bbb8', // Helpdesk Administrator
  'fdd7a751-b60b-444a-984c-02652fe8fa1c', // Groups Administrator
  'c4e39bd9-1100-46d3-8c65-fb160da0071f', // Authentication Administrator
]);

function asciiSlug(text: string): string {
  return (
    text
      .normalize('NFKD')
      .replace(/[^A-Za-z0-9]/g, '')
      .toLowerCase() || 'user'
  );
}

/** Transitive members of a group (users, groups, SPs, each once; cycles tolerated). */
export function transitiveMemberIds(groupsById: ReadonlyMap<string, SimGroup>, groupId: string): Set<string> {
  const seen = new Set<string>();
  const queue = [...(groupsById.get(groupId)?.members ?? [])];
  while (queue.length) {
    const id = queue.shift() as string;
    if (id === groupId || seen.has(id)) continue;
    seen.add(id);
    const nested = groupsById.get(id);
    if (nested) queue.push(...nested.members);
  }
  return seen;
}

// ---------------------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------------------

export interface GenerateOptions {
  seed: number | string;
  /** The tenant's "now": schedules are current at this instant and audit events end before it. */
  now: Date;
  users?: number;
  servicePrincipals?: number;
  groups?: number;
  administrativeUnits?: number;
  /** Number of roleEligibilitySchedules (plus a few deliberate edge cases). */
  eligible?: number;
  /** Number of roleAssignmentSchedules (Assigned via PIM, Assigned outside PIM, Activated). */
  active?: number;
  /** Days of audit history before `now` (Graph itself keeps 30; more lets tests see retention). */
  auditDays?: number;
  /** Completed Entra-role activations per day in the audit history. */
  activationsPerDay?: number;
  /** Fraction of role-holding groups that get PIM-for-Groups eligible members. */
  pimGroupShare?: number;
  /** Put hostile display names and justifications in (default true). */
  hostile?: boolean;
  tenantId?: string;
  tenantName?: string;
  domain?: string;
}

export function generateTenant(options: GenerateOptions): SimTenant {
  const rng = new Rng(options.seed);
  const now = options.now.getTime();
  const hostile = options.hostile ?? true;
  const nUsers = Math.max(options.users ?? 120, 12);
  const nSps = options.servicePrincipals ?? Math.max(4, Math.round(nUsers / 25));
  const nGroups = Math.max(options.groups ?? 12, 2);
  const nAus = options.administrativeUnits ?? 4;
  const nEligible = options.eligible ?? 150;
  const nActive = options.active ?? 80;
  const auditDays = options.auditDays ?? 30;
  const activationsPerDay = options.activationsPerDay ?? Math.min(150, Math.max(2, Math.round(nEligible / 40)));
  const domain = options.domain ?? 'contoso.onmicrosoft.com';
  const tenantId = options.tenantId ?? rng.guid();
  const tenantName = options.tenantName ?? 'Contoso';

  const past = (minMs: number, maxMs: number) => now - rng.int(minMs, maxMs);
  const t3 = (ms: number) => graphTime(ms, 3);

  // Roles: built-ins plus custom roles (custom roles: id === templateId too, isBuiltIn false).
  const roleDefinitions = builtInRoleDefinitions();
  const customId = rng.guid();
  roleDefinitions.push(
    {
      id: customId,
      displayName: hostile ? 'Tier-1 Helpdesk, "EMEA"' : 'Tier-1 Helpdesk EMEA',
      templateId: customId,
      isBuiltIn: false,
    },
    (() => {
      const id = rng.guid();
      return { id, displayName: 'Password Reset Operator', templateId: id, isBuiltIn: false };
    })(),
  );
  const roleIds = roleDefinitions.map((r) => r.id);
  const rolesById = new Map(roleDefinitions.map((r) => [r.id, r]));

  // Users, with a sprinkling of hostile display names.
  const users: SimUser[] = [];
  for (let i = 0; i < nUsers; i++) {
    const first = FIRST_NAMES[i % FIRST_NAMES.length];
    const last = LAST_NAMES[Math.floor(i / FIRST_NAMES.length) % LAST_NAMES.length];
    const userPrincipalName = `${asciiSlug(first)}.${asciiSlug(last)}${i}@${domain}`;
    // Most users have a mailbox; every ninth has none (`mail` null), as cloud-only admin accounts often do.
    users.push({
      id: rng.guid(),
      displayName: `${first} ${last}`,
      userPrincipalName,
      mail: i % 9 === 8 ? null : userPrincipalName,
    });
  }
  if (hostile) {
    const slots = rng
      .shuffle(users.map((_, i) => i))
      .slice(0, Math.min(HOSTILE_STRINGS.length, Math.floor(nUsers / 3)));
    slots.forEach((slot, k) => (users[slot].displayName = HOSTILE_STRINGS[k]));
    // UPNs may start with '-', which spreadsheets also read as a formula.
    users[slots[0]].userPrincipalName = `-ops.admin${slots[0]}@${domain}`;
  }

  const servicePrincipals = Array.from({ length: nSps }, (_, i) => ({
    id: rng.guid(),
    displayName: `${APP_NAMES[i % APP_NAMES.length]}${i >= APP_NAMES.length ? ` ${Math.floor(i / APP_NAMES.length) + 1}` : ''}`,
    appId: rng.guid(),
  }));
  if (hostile && servicePrincipals.length) servicePrincipals[servicePrincipals.length - 1].displayName = '@x';

  const administrativeUnits = Array.from({ length: nAus }, (_, i) => ({
    id: rng.guid(),
    displayName: `${OFFICES[i % OFFICES.length]}${i >= OFFICES.length ? ` ${Math.floor(i / OFFICES.length) + 1}` : ''}`,
  }));

  // Groups: random users and SPs, and nested groups pointing only "forward" (a DAG: no cycles, bounded depth).
  const groups: SimGroup[] = Array.from({ length: nGroups }, (_, i) => ({
    id: rng.guid(),
    displayName: `PIM ${TEAMS[i % TEAMS.length]} ${Math.floor(i / TEAMS.length) + 1}`,
    members: [],
    isAssignableToRole: true,
  }));
  if (hostile) groups[nGroups - 1].displayName = '+SUM(1)';
  groups.forEach((g, i) => {
    const members = new Set<string>();
    const n = rng.int(1, Math.min(20, nUsers));
    while (members.size < n) members.add(rng.pick(users).id);
    if (servicePrincipals.length && rng.chance(0.15)) members.add(rng.pick(servicePrincipals).id);
    if (i + 1 < nGroups && rng.chance(0.25)) {
      const children = rng.int(1, 2);
      for (let k = 0; k < children; k++) members.add(groups[rng.int(i + 1, Math.min(nGroups - 1, i + 50))].id);
    }
    g.members = [...members];
  });
  const groupsById = new Map(groups.map((g) => [g.id, g]));
  const roleGroups = rng.shuffle([...groups]).slice(0, Math.max(1, Math.round(nGroups * 0.3)));

  const pickRole = () => (rng.chance(0.08) ? GLOBAL_ADMINISTRATOR : rng.pick(roleIds));
  /** Tenant-wide mostly; AU-scopable roles are sometimes scoped to an administrative unit. */
  const pickScope = (roleId: string) => {
    const auShare = roleId === customId ? 0.5 : AU_SCOPABLE.has(roleId) ? 0.3 : 0;
    return administrativeUnits.length && rng.chance(auShare)
      ? `/administrativeUnits/${rng.pick(administrativeUnits).id}`
      : '/';
  };

  /** A PIM-made schedule's timing: created in the past, permanent or time-bound, sometimes future-dated. */
  const pimTiming = (kind: 'eligible' | 'assigned'): { created: number; info: SimScheduleInfo } => {
    const created = past(HOUR_MS, 700 * DAY_MS);
    const futureStart = rng.chance(0.04);
    const startMs = futureStart ? now + rng.int(HOUR_MS, 10 * DAY_MS) : created;
    const start = t3(startMs);
    const type = rng.weighted<ExpirationType>([
      ['noExpiration', kind === 'eligible' ? 0.35 : 0.4],
      ['afterDateTime', 0.5],
      ['afterDuration', 0.1],
      ['notSpecified', 0.03],
    ]);
    if (type === 'afterDateTime') {
      // Current schedules end in the future; about 1 in 8 within the 14-day "expiring" window.
      const endMs =
        Math.max(startMs, now) +
        (rng.chance(0.12) ? rng.int(HOUR_MS, 14 * DAY_MS) : rng.int(15 * DAY_MS, 400 * DAY_MS));
      // Half end at a midnight (as admins pick dates in the portal): round up so the end stays in the future.
      const end = rng.chance(0.5) ? graphTime(Math.ceil(endMs / DAY_MS) * DAY_MS, 0) : t3(endMs);
      return { created, info: until(start, end) };
    }
    if (type === 'afterDuration') {
      const days = rng.pick([30, 90, 180, 365]);
      // Keep start + duration in the future: Graph drops expired schedules.
      const s = futureStart ? startMs : now - rng.int(HOUR_MS, (days - 1) * DAY_MS);
      return { created: Math.min(created, s), info: forDuration(t3(s), `P${days}D`) };
    }
    return { created, info: scheduleInfo(start, { type }) };
  };

  const eligibilitySchedules: SimRoleSchedule[] = [];
  const assignmentSchedules: SimRoleSchedule[] = [];
  const usedEligible = new Set<string>();
  const usedActive = new Set<string>();
  const pickPrincipal = (userShare: number, groupShare: number): { id: string; kind: AuditPrincipal['kind'] } => {
    const r = rng.next();
    if (r < userShare || !servicePrincipals.length) return { id: rng.pick(users).id, kind: 'User' };
    if (r < userShare + groupShare) return { id: rng.pick(roleGroups).id, kind: 'Group' };
    return { id: rng.pick(servicePrincipals).id, kind: 'ServicePrincipal' };
  };

  // Eligible schedules.
  for (let guard = 0; eligibilitySchedules.length < nEligible && guard < nEligible * 20; guard++) {
    const principal = pickPrincipal(0.86, 0.09);
    const roleId = pickRole();
    const scope = pickScope(roleId);
    const key = `${principal.id}|${roleId}|${scope}`;
    if (usedEligible.has(key)) continue;
    usedEligible.add(key);
    const { created, info } = pimTiming('eligible');
    const id = rng.guid();
    eligibilitySchedules.push(
      pimSchedule({
        id,
        principalId: principal.id,
        roleDefinitionId: roleId,
        directoryScopeId: scope,
        scheduleInfo: info,
        createdDateTime: t3(created),
        modifiedDateTime: rng.chance(0.7) ? '0001-01-01T08:00:00Z' : null,
      }),
    );
  }

  // Active schedules: Activated (from eligibilities of users), outside PIM, and assigned through PIM.
  const usersById = new Map(users.map((u) => [u.id, u]));
  const activatable = eligibilitySchedules.filter(
    (s) =>
      usersById.has(s.principalId) &&
      s.scheduleInfo.startDateTime !== null &&
      Date.parse(s.scheduleInfo.startDateTime) < now - HOUR_MS,
  );
  const activations: { schedule: SimRoleSchedule; requestId: string; start: number; end: number }[] = [];
  const nActivated = Math.min(Math.round(nActive * 0.25), activatable.length);
  const nOutside = Math.round(nActive * 0.12);
  rng.shuffle(activatable);
  for (let i = 0; i < nActivated; i++) {
    const e = activatable[i];
    const key = `${e.principalId}|${e.roleDefinitionId}|${e.directoryScopeId}`;
    if (usedActive.has(key)) continue;
    usedActive.add(key);
    const hours = rng.pick([1, 2, 4, 8]);
    const startMs = now - rng.int(60_000, hours * HOUR_MS - 5 * 60_000);
    const endMs = startMs + hours * HOUR_MS;
    const requestId = rng.guid();
    // Activated schedules come as afterDateTime or afterDuration (e.g. PT8H); both must resolve to the same end.
    const info = rng.chance(0.6) ? until(t3(startMs), t3(endMs)) : forDuration(t3(startMs), `PT${hours}H`);
    const schedule = pimSchedule({
      id: rng.guid(),
      principalId: e.principalId,
      roleDefinitionId: e.roleDefinitionId,
      directoryScopeId: e.directoryScopeId,
      assignmentType: 'Activated',
      scheduleInfo: info,
      createdUsing: requestId,
      createdDateTime: t3(startMs - 1000),
    });
    assignmentSchedules.push(schedule);
    activations.push({ schedule, requestId, start: startMs, end: endMs });
  }
  const outside: SimRoleSchedule[] = [];
  for (let guard = 0; outside.length < nOutside && guard < nOutside * 20; guard++) {
    const principal = pickPrincipal(0.65, 0);
    const roleId = rng.chance(0.3) ? GLOBAL_ADMINISTRATOR : rng.pick(roleIds);
    const key = `${principal.id}|${roleId}|/`;
    if (usedActive.has(key)) continue;
    usedActive.add(key);
    const s = outsidePimAssignment(rng, {
      principalId: principal.id,
      roleDefinitionId: roleId,
      start: graphTime(past(DAY_MS, 900 * DAY_MS), 7, rng.int(0, 9999)),
    });
    outside.push(s);
    assignmentSchedules.push(s);
  }
  for (let guard = 0; assignmentSchedules.length < nActive && guard < nActive * 20; guard++) {
    const principal = pickPrincipal(0.8, 0.1);
    const roleId = pickRole();
    const scope = pickScope(roleId);
    const key = `${principal.id}|${roleId}|${scope}`;
    if (usedActive.has(key)) continue;
    usedActive.add(key);
    const { created, info } = pimTiming('assigned');
    const id = rng.guid();
    assignmentSchedules.push(
      pimSchedule({
        id,
        principalId: principal.id,
        roleDefinitionId: roleId,
        directoryScopeId: scope,
        assignmentType: 'Assigned',
        scheduleInfo: info,
        createdDateTime: t3(created),
      }),
    );
  }

  // Every principal kind holds a role both eligibly and actively, whatever the sizes asked for.
  for (const [list, assignmentType] of [
    [eligibilitySchedules, undefined],
    [assignmentSchedules, 'Assigned'],
  ] as const) {
    const kinds: [Map<string, unknown>, string][] = [
      [new Map(roleGroups.map((g) => [g.id, g])), 'group'],
      [new Map(servicePrincipals.map((p) => [p.id, p])), 'sp'],
    ];
    for (const [pool, kind] of kinds) {
      if (!pool.size || list.some((s) => pool.has(s.principalId))) continue;
      const principalId = kind === 'group' ? rng.pick(roleGroups).id : rng.pick(servicePrincipals).id;
      const { created, info } = pimTiming(assignmentType ? 'assigned' : 'eligible');
      list.push(
        pimSchedule({
          id: rng.guid(),
          principalId,
          roleDefinitionId: pickRole(),
          directoryScopeId: '/',
          assignmentType,
          scheduleInfo: info,
          createdDateTime: t3(created),
        }),
      );
    }
  }

  // Deliberate edge cases.
  const deletedPrincipal = rng.guid();
  const unknownAu = `/administrativeUnits/${rng.guid()}`;
  eligibilitySchedules.push(
    // A principal deleted since: Graph may expand `principal: null` (README, "What we know of Graph").
    pimSchedule({
      id: rng.guid(),
      principalId: deletedPrincipal,
      roleDefinitionId: 'fe930be7-5e62-47db-91af-98c3a49a38b1',
      directoryScopeId: '/',
      scheduleInfo: permanent(t3(past(30 * DAY_MS, 60 * DAY_MS))),
    }),
    // A scope on an administrative unit that no longer exists.
    pimSchedule({
      id: rng.guid(),
      principalId: rng.pick(users).id,
      roleDefinitionId: '729827e3-9c14-49f7-bb1b-9608f156bbb8',
      directoryScopeId: unknownAu,
      scheduleInfo: permanent(t3(past(30 * DAY_MS, 60 * DAY_MS))),
    }),
    // A scope that is neither the directory nor an AU (an application object).
    pimSchedule({
      id: rng.guid(),
      principalId: rng.pick(users).id,
      roleDefinitionId: '158c047a-c907-4556-b7ef-446551a6b5f7',
      directoryScopeId: `/${rng.guid()}`,
      scheduleInfo: permanent(t3(past(30 * DAY_MS, 60 * DAY_MS))),
    }),
  );
  assignmentSchedules.push(
    pimSchedule({
      id: rng.guid(),
      principalId: deletedPrincipal,
      roleDefinitionId: GLOBAL_ADMINISTRATOR,
      directoryScopeId: '/',
      assignmentType: 'Assigned',
      scheduleInfo: permanent(t3(past(30 * DAY_MS, 60 * DAY_MS))),
    }),
  );
  // Non-Direct rows as Graph may list them for group members (not verified: README, "What we know of Graph"); reports skip them.
  const groupHeld = eligibilitySchedules.find((s) => groupsById.has(s.principalId));
  if (groupHeld) {
    const member = groupsById.get(groupHeld.principalId)?.members.find((m) => usersById.has(m));
    if (member) eligibilitySchedules.push({ ...groupHeld, id: rng.guid(), principalId: member, memberType: 'Group' });
  }
  const groupHeldActive = assignmentSchedules.find((s) => groupsById.has(s.principalId));
  if (groupHeldActive) {
    const member = groupsById.get(groupHeldActive.principalId)?.members.find((m) => usersById.has(m));
    if (member)
      assignmentSchedules.push({ ...groupHeldActive, id: rng.guid(), principalId: member, memberType: 'Group' });
  }

  // PIM for Groups: eligible members (and owners, which must not count) of role-holding groups.
  const holders = new Set([...eligibilitySchedules, ...assignmentSchedules].map((s) => s.principalId));
  const groupEligibilitySchedules: SimGroupEligibilitySchedule[] = [];
  const pimGroups = roleGroups.filter((g) => holders.has(g.id) && rng.chance(options.pimGroupShare ?? 0.5));
  const spareGroup = groups.find((g) => !holders.has(g.id));
  for (const g of [...pimGroups, ...(spareGroup ? [spareGroup] : [])]) {
    const closure = transitiveMemberIds(groupsById, g.id);
    const chosen = new Set<string>();
    const n = rng.int(1, 4);
    for (let guard = 0; chosen.size < n && guard < 40; guard++) {
      const candidate = rng.chance(0.12)
        ? rng.pick(groups).id
        : rng.chance(0.05) && servicePrincipals.length
          ? rng.pick(servicePrincipals).id
          : rng.pick(users).id;
      // Not already a member: keeps report rows unique (a member row and an eligible row would tie).
      if (candidate === g.id || closure.has(candidate) || chosen.has(candidate)) continue;
      chosen.add(candidate);
    }
    for (const principalId of chosen) {
      const startMs = rng.chance(0.15) ? now + rng.int(HOUR_MS, 5 * DAY_MS) : past(HOUR_MS, 300 * DAY_MS);
      const r = rng.next();
      const info =
        r < 0.3
          ? permanent(t3(startMs))
          : r < 0.85
            ? until(t3(startMs), t3(Math.max(startMs, now) + rng.int(HOUR_MS, 200 * DAY_MS)))
            : forDuration(t3(Math.min(startMs, now - HOUR_MS)), rng.pick(['P30D', 'P90D']));
      groupEligibilitySchedules.push(
        groupEligibility(rng, { groupId: g.id, principalId, accessId: 'member', scheduleInfo: info }),
      );
    }
    if (rng.chance(0.6)) {
      groupEligibilitySchedules.push(
        groupEligibility(rng, {
          groupId: g.id,
          principalId: rng.pick(users).id,
          accessId: 'owner',
          scheduleInfo: permanent(t3(past(DAY_MS, 100 * DAY_MS))),
        }),
      );
    }
  }
  if (pimGroups.length) {
    groupEligibilitySchedules.push(
      groupEligibility(rng, {
        groupId: pimGroups[0].id,
        principalId: rng.guid(),
        accessId: 'member',
        scheduleInfo: permanent(t3(past(DAY_MS, 100 * DAY_MS))),
      }),
    );
  }

  // Audit history.
  const ctx: AuditContext = { rng, tenantId, tenantName, now: options.now };
  const directoryAudits: SimDirectoryAudit[] = [];
  const from = now - auditDays * DAY_MS;
  const spsById = new Map(servicePrincipals.map((s) => [s.id, s]));
  const auditPrincipal = (id: string): AuditPrincipal => {
    const u = usersById.get(id);
    if (u) return { id, displayName: u.displayName, userPrincipalName: u.userPrincipalName, kind: 'User' };
    const sp = spsById.get(id);
    if (sp) return { id, displayName: sp.displayName, kind: 'ServicePrincipal' };
    const g = groupsById.get(id);
    if (g) return { id, displayName: g.displayName, kind: 'Group' };
    return { id, displayName: 'Former Employee', userPrincipalName: `former.employee@${domain}`, kind: 'User' };
  };
  const auditRole = (id: string): AuditRole => {
    const r = rolesById.get(id);
    return { id, displayName: r?.displayName ?? 'Unknown role', isBuiltIn: r?.isBuiltIn ?? true };
  };
  const justification = () => (hostile && rng.chance(0.1) ? rng.pick(HOSTILE_STRINGS) : rng.pick(JUSTIFICATIONS));
  const ticket = () =>
    rng.chance(0.35)
      ? { number: `${rng.pick(['INC', 'CHG', 'REQ'])}-${rng.int(1000, 99999)}`, system: rng.pick(TICKET_SYSTEMS) }
      : undefined;
  const approver = () => {
    const u = rng.pick(users);
    return { id: u.id, displayName: u.displayName, userPrincipalName: u.userPrincipalName };
  };

  // The activations behind today's Activated schedules (same request id as the schedule's createdUsing).
  for (const a of activations) {
    const approved = rng.chance(0.1);
    directoryAudits.push(
      ...activationEvents(ctx, {
        principal: auditPrincipal(a.schedule.principalId),
        role: auditRole(a.schedule.roleDefinitionId),
        directoryScopeId: a.schedule.directoryScopeId,
        requestedAt: new Date(a.start - (approved ? rng.int(5, 40) * 60_000 : rng.int(2000, 50_000))),
        start: new Date(a.start),
        end: new Date(a.end),
        justification: justification(),
        ticket: ticket(),
        requestId: a.requestId,
        approver: approved ? approver() : undefined,
      }),
    );
  }
  // Historical activations, all finished before now (expired or deactivated early).
  const activationSources = activatable.length ? activatable : [];
  const totalHistorical = activationSources.length ? activationsPerDay * auditDays : 0;
  for (let i = 0; i < totalHistorical; i++) {
    const e = rng.pick(activationSources);
    const hours = rng.pick([1, 2, 4, 8]);
    const startMs = rng.int(from, now - 9 * HOUR_MS);
    const endMs = startMs + hours * HOUR_MS;
    const denied = rng.chance(0.03);
    const approved = denied || rng.chance(0.08);
    directoryAudits.push(
      ...activationEvents(ctx, {
        principal: auditPrincipal(e.principalId),
        role: auditRole(e.roleDefinitionId),
        directoryScopeId: e.directoryScopeId,
        requestedAt: new Date(startMs - (approved ? rng.int(5, 40) * 60_000 : rng.int(2000, 50_000))),
        start: new Date(startMs),
        end: new Date(endMs),
        justification: justification(),
        ticket: ticket(),
        requestId: rng.guid(),
        approver: approved ? approver() : undefined,
        outcome: denied ? 'denied' : 'completed',
        deactivatedAt: rng.chance(0.3) ? new Date(startMs + rng.int(10 * 60_000, hours * HOUR_MS - 60_000)) : undefined,
      }),
    );
  }
  // PIM-for-Groups activations: same activity name, category GroupManagement; they are not role activations.
  const memberEligibilities = groupEligibilitySchedules.filter(
    (s) => s.accessId === 'member' && usersById.has(s.principalId),
  );
  if (memberEligibilities.length) {
    const total = Math.max(1, Math.round((activationsPerDay * auditDays) / 4));
    for (let i = 0; i < total; i++) {
      const s = rng.pick(memberEligibilities);
      const g = groupsById.get(s.groupId) as SimGroup;
      const startMs = rng.int(from, now - HOUR_MS);
      directoryAudits.push(
        ...groupActivationEvents(ctx, {
          principal: auditPrincipal(s.principalId),
          group: { id: g.id, displayName: g.displayName },
          accessId: 'member',
          start: new Date(startMs),
          end: new Date(startMs + 8 * HOUR_MS),
          justification: justification(),
          requestId: rng.guid(),
          // Every fifth needs approval; chosen without the random stream, so the rest of the tenant is what the seed always gave.
          approver:
            i % 5 === 0
              ? {
                  id: users[i % users.length].id,
                  displayName: users[i % users.length].displayName,
                  userPrincipalName: users[i % users.length].userPrincipalName,
                }
              : undefined,
        }),
      );
    }
  }
  // Admin assignments made in the window, and assignments made outside PIM.
  for (const [list, eligible] of [
    [eligibilitySchedules, true],
    [assignmentSchedules, false],
  ] as const) {
    for (const s of list) {
      if (s.memberType !== 'Direct' || s.assignmentType === 'Activated' || !s.createdDateTime || !s.createdUsing)
        continue;
      const at = Date.parse(s.createdDateTime);
      if (at < from || at >= now) continue;
      const exp = s.scheduleInfo.expiration;
      directoryAudits.push(
        ...adminAssignmentEvents(ctx, {
          admin: approver(),
          principal: auditPrincipal(s.principalId),
          role: auditRole(s.roleDefinitionId),
          directoryScopeId: s.directoryScopeId,
          at: new Date(at),
          eligible,
          end: exp.type === 'afterDateTime' && exp.endDateTime ? new Date(exp.endDateTime) : null,
          justification: justification(),
          requestId: s.id,
        }),
      );
    }
  }
  for (const s of outside) {
    const at = Date.parse(s.scheduleInfo.startDateTime as string);
    if (at < from) continue;
    directoryAudits.push(
      ...outsidePimEvents(ctx, {
        admin: approver(),
        principal: auditPrincipal(s.principalId),
        role: auditRole(s.roleDefinitionId),
        at: new Date(at),
      }),
    );
  }
  // A member activating a role through a group's eligibility: their own Activated schedule has
  // memberType Group (MicrosoftDocs/azure-docs#85467: each member activates individually), and the
  // activation's records name the group as well as the user. Made last, so the rest of the tenant is
  // what the same seed always gave.
  // (A group that does not also hold the role actively: then the member's schedule adds nothing.)
  const heldActively = new Set(
    assignmentSchedules.map((s) => `${s.principalId}|${s.roleDefinitionId}|${s.directoryScopeId}`),
  );
  const groupEligible = eligibilitySchedules.find(
    (s) =>
      s.memberType === 'Direct' &&
      groupsById.has(s.principalId) &&
      !heldActively.has(`${s.principalId}|${s.roleDefinitionId}|${s.directoryScopeId}`) &&
      s.scheduleInfo.startDateTime !== null &&
      Date.parse(s.scheduleInfo.startDateTime) < now - HOUR_MS,
  );
  const viaMember = groupEligible
    ? groupsById.get(groupEligible.principalId)?.members.find((m) => usersById.has(m))
    : undefined;
  if (groupEligible && viaMember) {
    const group = groupsById.get(groupEligible.principalId) as SimGroup;
    const startMs = now - 30 * 60_000;
    const endMs = startMs + 2 * HOUR_MS;
    const requestId = rng.guid();
    assignmentSchedules.push(
      pimSchedule({
        id: rng.guid(),
        principalId: viaMember,
        roleDefinitionId: groupEligible.roleDefinitionId,
        directoryScopeId: groupEligible.directoryScopeId,
        assignmentType: 'Activated',
        memberType: 'Group',
        scheduleInfo: until(t3(startMs), t3(endMs)),
        createdUsing: requestId,
        createdDateTime: t3(startMs - 1000),
      }),
    );
    directoryAudits.push(
      ...activationEvents(ctx, {
        principal: auditPrincipal(viaMember),
        role: auditRole(groupEligible.roleDefinitionId),
        directoryScopeId: groupEligible.directoryScopeId,
        requestedAt: new Date(startMs - 5000),
        start: new Date(startMs),
        end: new Date(endMs),
        justification: justification(),
        requestId,
        viaGroup: { id: group.id, displayName: group.displayName },
      }),
    );
  }
  const keyed = directoryAudits.map((a) => ({ a, k: `${timeKey(a.activityDateTime)}|${a.id}` }));
  keyed.sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : 0));
  const sortedAudits = keyed.map((x) => x.a);

  return {
    tenantId,
    displayName: tenantName,
    users,
    servicePrincipals,
    groups,
    administrativeUnits,
    roleDefinitions,
    eligibilitySchedules,
    assignmentSchedules,
    groupEligibilitySchedules,
    directoryAudits: sortedAudits,
  };
}
