/** The Functions surface: what each thin file registers with the host
 * (https://learn.microsoft.com/azure/azure-functions/functions-reference-node). */
function registrations(env: Record<string, string | undefined>) {
  let calls: { timer: jest.Mock; http: jest.Mock; setup: jest.Mock } | undefined;
  const saved = { ...process.env };
  Object.assign(process.env, env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  try {
    jest.isolateModules(() => {
      jest.doMock('@azure/functions', () => {
        const actual = jest.requireActual('@azure/functions');
        return { ...actual, app: { ...actual.app, timer: jest.fn(), http: jest.fn(), setup: jest.fn() } };
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { app } = require('@azure/functions');
      /* eslint-disable @typescript-eslint/no-require-imports */
      require('../../src/index');
      require('../../src/functions/dailyDigest');
      require('../../src/functions/monthlyArchive');
      require('../../src/functions/httpExport');
      /* eslint-enable @typescript-eslint/no-require-imports */
      calls = app;
    });
  } finally {
    process.env = saved;
  }
  return calls!;
}

describe('function registrations', () => {
  it('registers the two timers on the schedule settings, and the export behind a function key', () => {
    const app = registrations({ DAILY_SCHEDULE: '0 30 5 * * *', MONTHLY_SCHEDULE: '0 0 4 1 * *' });
    expect(app.setup).toHaveBeenCalledWith({ enableHttpStream: true });
    expect(app.timer).toHaveBeenCalledWith('dailyDigest', expect.objectContaining({ schedule: '0 30 5 * * *' }));
    expect(app.timer).toHaveBeenCalledWith('monthlyArchive', expect.objectContaining({ schedule: '0 0 4 1 * *' }));
    expect(app.http).toHaveBeenCalledWith(
      'export',
      expect.objectContaining({ route: 'export', methods: ['GET'], authLevel: 'function' }),
    );
    for (const [, options] of app.timer.mock.calls) expect(options.runOnStartup).toBeFalsy();
  });

  it('falls back to the documented UTC defaults when the schedule settings are absent', () => {
    const app = registrations({ DAILY_SCHEDULE: undefined, MONTHLY_SCHEDULE: undefined });
    expect(app.timer).toHaveBeenCalledWith('dailyDigest', expect.objectContaining({ schedule: '0 0 6 * * *' }));
    expect(app.timer).toHaveBeenCalledWith('monthlyArchive', expect.objectContaining({ schedule: '0 0 3 1 * *' }));
  });

  it('a malformed schedule stops the worker from loading, naming the setting', () => {
    expect(() => registrations({ DAILY_SCHEDULE: '0 6 * * *' })).toThrow(/DAILY_SCHEDULE.*six-field/);
    expect(() => registrations({ MONTHLY_SCHEDULE: '0 0 3 1 13 *' })).toThrow(/MONTHLY_SCHEDULE/);
  });
});
