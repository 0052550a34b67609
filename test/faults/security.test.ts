/**
 * docs/faults.md: Security under faults: no token, key, connection string or identity secret in any log
 * line (CLI stderr, the Functions invocation log, the error a failed invocation hands the host),
 * even when an upstream error echoes one; the HTTP export never registers anonymously; CSV and HTML
 * injection are neutralised in every file and in the email.
 */
jest.mock('@azure/functions', () => {
  const actual = jest.requireActual('@azure/functions');
  return { ...actual, app: { ...actual.app, timer: jest.fn(), http: jest.fn(), setup: jest.fn() } };
});

import { app, HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import { dailyDigest } from '../../src/functions/dailyDigest';
import { httpExport } from '../../src/functions/httpExport';
import { monthlyArchive } from '../../src/functions/monthlyArchive';
import { DEVSTORE_KEY } from '../../tools/azurite';
import { fakeAccessToken } from '../../tools/msi-simulator';
import { generateTenant, HOSTILE_STRINGS } from '../../tools/tenant/generate';
import { ActivationFeed, at, Clock, folderOf, LogBook } from '../support/faults';
import { parseCsv } from '../support/expected';
import { leakedSecrets } from '../support/secrets';
import { startWorld, type World } from '../support/world';

const DAY = '2026-11-20';
const logs = new LogBook();
const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

describe('security under faults', () => {
  let world: World;
  const clock = new Clock(at(DAY));

  beforeAll(async () => {
    const tenant = generateTenant({
      seed: 'security',
      now: new Date(at(DAY)),
      users: 40,
      groups: 4,
      eligible: 40,
      active: 20,
      auditDays: 3,
      hostile: true,
    });
    // ACS through its connection string: its access key must not leak either.
    world = await startWorld(tenant, {
      auditRateLimit: { requests: 1000, perMs: 1000 },
      now: clock.now,
      email: 'connectionString',
    });
    logs.knowSecretsOf(world);
    new ActivationFeed(world, 'security').add(at('2026-11-19'), at(DAY, 5), 8);
  });
  afterAll(async () => {
    await world?.stop();
  });

  /** An upstream error that echoes the request's secrets, as a misbehaving proxy or gateway might. */
  function echoingError() {
    const token = fakeAccessToken({ aud: 'https://graph.microsoft.com' }).token;
    return {
      error: {
        code: 'BadRequest',
        message: `Rejected. Authorization: Bearer ${token}; connection AccountKey=${DEVSTORE_KEY}; endpoint=${world.email.endpoint}/;accesskey=${world.email.accessKey}; sas ?sv=2024&sig=abc%2Bdef123456`,
      },
    };
  }

  it('the CLI logs no secret, even when Graph echoes them in an error', async () => {
    world.graph.inject({ path: /roleDefinitions/, status: 400, times: 1, body: echoingError() });
    const failed = await world.cli(['daily', '--now', at(DAY)]);
    logs.add(failed.stderr, failed.stdout);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /error: Graph 400 BadRequest on \/roleManagement\/directory\/roleDefinitions: Rejected\. Authorization: Bearer \[redacted/,
    );
    const ok = await world.cli(['daily', '--now', at(DAY)]);
    logs.add(ok.stderr, ok.stdout);
    expect(ok.code).toBe(0);
    expect(logs.leaks()).toEqual([]);
  });

  it('a failed timer invocation logs no secret, and hands the host an error without one', async () => {
    world.useProcessEnv();
    const lines: string[] = [];
    const context = () =>
      new InvocationContext({
        invocationId: 'sec',
        functionName: 'dailyDigest',
        logHandler: (_level, ...args) => lines.push(args.map(String).join(' ')),
      });
    world.graph.inject({ path: /directoryAudits/, status: 400, times: 1, body: echoingError() });
    const thrown = await dailyDigest(timer, context()).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(thrown).toBeInstanceOf(Error);
    expect(lines.length).toBeGreaterThan(0);
    const known = [world.identity.header, world.email.accessKey];
    expect(leakedSecrets(`${thrown!.message}\n${thrown!.stack ?? ''}`, known)).toEqual([]);
    expect(leakedSecrets(lines.join('\n'), known)).toEqual([]);

    world.graph.inject({ path: /directoryAudits/, status: 400, times: 1, body: echoingError() });
    const monthly = await monthlyArchive(timer, context()).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(monthly).toBeInstanceOf(Error);
    expect(leakedSecrets(`${monthly!.message}\n${monthly!.stack ?? ''}`, known)).toEqual([]);
    expect(leakedSecrets(lines.join('\n'), known)).toEqual([]);
  });

  it('a failed HTTP export answers and logs no secret', async () => {
    world.useProcessEnv();
    const lines: string[] = [];
    const context = new InvocationContext({
      invocationId: 'sec-http',
      functionName: 'export',
      logHandler: (_level, ...args) => lines.push(args.map(String).join(' ')),
    });
    world.graph.inject({ path: /roleEligibilitySchedules/, status: 400, times: 1, body: echoingError() });
    const response = await httpExport(
      new HttpRequest({ method: 'GET', url: 'http://localhost:7071/api/export?dataset=eligible' }),
      context,
    );
    expect(response.status).toBe(502);
    const known = [world.identity.header, world.email.accessKey];
    expect(leakedSecrets(JSON.stringify(response.jsonBody), known)).toEqual([]);
    expect(JSON.stringify(response.jsonBody)).toContain('Bearer [redacted');
    expect(leakedSecrets(lines.join('\n'), known)).toEqual([]);
  });

  it('the HTTP export never registers anonymously', () => {
    const http = (app.http as jest.Mock).mock.calls;
    expect(http.map(([name]) => name)).toEqual(['export']);
    for (const [, options] of http) expect(options.authLevel).toBe('function');
  });

  it('CSV and HTML injection are neutralised: every file, the stored digest and the email', async () => {
    const folder = folderOf(DAY);
    if (!(await world.read(world.reports, `${folder}manifest.json`)))
      expect((await world.cli(['daily', '--now', at(DAY)])).code).toBe(0);
    for (const name of ['eligible-assignments.csv', 'active-assignments.csv', 'activations.csv']) {
      const cells = parseCsv((await world.read(world.reports, `${folder}${name}`))!).flat();
      // No cell a spreadsheet would run; and the hostile values are there, neutralised.
      expect([name, cells.filter((c) => /^[=+\-@\t\r]/.test(c))]).toEqual([name, []]);
    }
    const allCells = (
      await Promise.all(
        ['eligible-assignments.csv', 'active-assignments.csv', 'activations.csv'].map((n) =>
          world.read(world.reports, `${folder}${n}`),
        ),
      )
    ).join('\n');
    expect(allCells).toContain(`"'=HYPERLINK(""http://evil"",""click"")"`);
    expect(allCells).toContain("'+SUM(1)");

    const html = (await world.read(world.reports, `${folder}digest.html`))!;
    const mail = world.email.sent.find((m) => m.content.subject.startsWith(`PIM digest ${DAY}`))!;
    expect(mail.content.html).toBe(html);
    for (const hostile of HOSTILE_STRINGS.filter((h) => /[<>"&]/.test(h))) expect(html).not.toContain(hostile);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/href="http:\/\/evil/i);
    // The hostile justification reached the digest, escaped.
    expect(html).toMatch(/=HYPERLINK\((&#34;|&quot;)http:\/\/evil(&#34;|&quot;),(&#34;|&quot;)click(&#34;|&quot;)\)/);
  });
});
