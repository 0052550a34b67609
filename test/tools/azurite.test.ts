/** One Azurite serves the whole run (globalSetup); startAzurite also works standalone and never outlives its parent. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../../tools/azurite';

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

test('the shared Azurite from globalSetup takes a blob round trip', async () => {
  const cs = process.env.PIM_TEST_AZURITE_CONNECTION_STRING;
  expect(cs).toMatch(
    /^DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=.+;BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;$/,
  );
  const container = BlobServiceClient.fromConnectionString(cs as string).getContainerClient(`bench-${Date.now()}`);
  await container.createIfNotExists();
  await container
    .getBlockBlobClient('a/b.csv')
    .upload('x,y\r\n', 5, { blobHTTPHeaders: { blobContentType: 'text/csv' } });
  expect((await container.getBlockBlobClient('a/b.csv').downloadToBuffer()).toString()).toBe('x,y\r\n');
  await container.delete();
});

test('startAzurite picks a free port and stop() frees it', async () => {
  const azurite = await startAzurite();
  expect(await connects(azurite.port)).toBe(true);
  expect(azurite.blobEndpoint).toBe(`http://127.0.0.1:${azurite.port}/devstoreaccount1`);
  await azurite.stop();
  expect(await connects(azurite.port)).toBe(false);
  expect(alive(azurite.pid)).toBe(false);
});

// Needs the compiled tools (npm test builds them first): a plain node child cannot load TypeScript.
const compiled = path.resolve(__dirname, '../../dist/tools/azurite.js');
(existsSync(compiled) ? test : test.skip)(
  'Azurite dies with its parent even when the parent is SIGKILLed',
  async () => {
    const script = `require(${JSON.stringify(compiled)}).startAzurite().then((a) => { console.log('PID ' + a.pid); setInterval(() => {}, 1000); });`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /PID (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      parent.once('exit', () => reject(new Error(`parent exited early: ${out}`)));
    });
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    expect(await until(() => !alive(pid), 5000)).toBe(true);
  },
);
