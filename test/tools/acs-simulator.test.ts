/** The ACS Email simulator with the real EmailClient, in both auth modes, and its failure modes
 * (https://learn.microsoft.com/rest/api/communication/dataplane/email/send). */
import { EmailClient, type EmailMessage } from '@azure/communication-email';
import { ManagedIdentityCredential } from '@azure/identity';
import { createMailer } from '../../src/io/email';
import { startEmailSimulator, type EmailSimulator } from '../../tools/acs-simulator';
import { startManagedIdentitySimulator, type ManagedIdentitySimulator } from '../../tools/msi-simulator';
import { testTls } from '../../tools/tls';

let email: EmailSimulator;
let msi: ManagedIdentitySimulator;

const message: EmailMessage = {
  senderAddress: 'DoNotReply@0f1e2d3c.azurecomm.net',
  content: {
    subject: 'PIM digest 2026-03-15: 1 new, 0 expiring, 2 permanent',
    plainText: 'text part',
    html: '<p>html part</p>',
  },
  recipients: {
    to: [{ address: 'secops@contoso.com', displayName: 'SecOps' }],
    bcc: [{ address: 'audit@contoso.com' }],
  },
  attachments: [
    { name: 'eligible.csv', contentType: 'text/csv', contentInBase64: Buffer.from('a,b\r\n').toString('base64') },
  ],
};

const send = async (client: EmailClient, msg: EmailMessage = message) =>
  (await client.beginSend(msg, { updateIntervalInMs: 50 })).pollUntilDone();

beforeAll(async () => {
  email = await startEmailSimulator({ tls: testTls() });
  msi = await startManagedIdentitySimulator();
  Object.assign(process.env, msi.env());
});

afterAll(async () => {
  await email.stop();
  await msi.stop();
});

beforeEach(() => email.clearFaults());

test('connection string (HMAC, signature verified): send, Running, then Succeeded; recorded once', async () => {
  const before = email.sent.length;
  const result = await send(new EmailClient(email.connectionString));
  expect(result.status).toBe('Succeeded');
  expect(email.sent).toHaveLength(before + 1);
  const sent = email.sent[email.sent.length - 1];
  expect(sent).toEqual(
    expect.objectContaining({
      senderAddress: message.senderAddress,
      content: message.content,
      authMode: 'hmac',
      operationId: result.id,
    }),
  );
  expect(sent.recipients.bcc).toEqual([{ address: 'audit@contoso.com' }]);
  expect(sent.attachments?.[0].name).toBe('eligible.csv');
});

test('Entra token through ManagedIdentityCredential (aud https://communication.azure.com)', async () => {
  const result = await send(new EmailClient(email.endpoint, new ManagedIdentityCredential()));
  expect(result.status).toBe('Succeeded');
  expect(email.sent[email.sent.length - 1].authMode).toBe('bearer');
  expect(msi.requests.some((r) => r.query.resource === 'https://communication.azure.com/')).toBe(true);
});

test('a wrong access key is 401; an invalid message is 400 naming the field', async () => {
  const wrong = `endpoint=${email.endpoint}/;accesskey=${Buffer.from('x'.repeat(32)).toString('base64')}`;
  await expect(new EmailClient(wrong).beginSend(message)).rejects.toMatchObject({ statusCode: 401 });
  const client = new EmailClient(email.connectionString);
  await expect(client.beginSend({ ...message, recipients: { to: [] } })).rejects.toMatchObject({ statusCode: 400 });
  await expect(
    client.beginSend({ ...message, recipients: { to: [{ address: 'not-an-address' }] } }),
  ).rejects.toMatchObject({ statusCode: 400 });
  await expect(
    client.beginSend({ ...message, content: { subject: 'x' } as EmailMessage['content'] }),
  ).rejects.toMatchObject({ statusCode: 400 });
  await expect(client.beginSend({ ...message, senderAddress: '' })).rejects.toMatchObject({ statusCode: 400 });
});

test('faults: a failed operation rejects pollUntilDone and records nothing; a 403 on send rejects beginSend', async () => {
  const client = new EmailClient(email.connectionString);
  const before = email.sent.length;
  email.inject({
    on: 'operation',
    status: 'Failed',
    error: { code: 'InvalidRecipient', message: 'Recipient rejected' },
    times: 1,
  });
  await expect(send(client)).rejects.toThrow(/InvalidRecipient/);
  email.inject({ on: 'send', status: 403, times: 1 });
  await expect(client.beginSend(message)).rejects.toMatchObject({ statusCode: 403 });
  expect(email.sent).toHaveLength(before);
  expect((await send(client)).status).toBe('Succeeded');
});

test('a 503 on send is retried by the SDK', async () => {
  email.inject({ on: 'send', status: 503, times: 1, retryAfterSeconds: 0 });
  const before = email.requests.length;
  expect((await send(new EmailClient(email.connectionString))).status).toBe('Succeeded');
  expect(email.requests.slice(before).map((r) => r.status)).toEqual([503, 202, 200, 200]);
});

test('every accepted send is delivered on the 202, polled or not; the operation id the client chose; its status GET, 404 when unknown', async () => {
  const client = new EmailClient(email.connectionString);
  const before = email.sent.length;
  const operationId = '0b7c7a1e-52f6-4c6e-9d3a-6f1f2a9e4c11';
  // beginSend posts, then polls once: stop there, as a process that dies while polling does.
  const poller = await client.beginSend(message, { operationId, updateIntervalInMs: 50 });
  poller.stopPolling();
  expect(email.sent).toHaveLength(before + 1);
  expect(email.sent[email.sent.length - 1].operationId).toBe(operationId);

  const mailer = createMailer(
    {
      transport: { kind: 'connectionString', connectionString: email.connectionString },
      sender: message.senderAddress,
      recipients: ['secops@contoso.com'],
    },
    new ManagedIdentityCredential(),
    { pollIntervalMs: 20 },
  );
  expect(await mailer.status(operationId)).toEqual({ state: 'succeeded' });
  expect(await mailer.status('5d7c1b1e-0000-4c6e-9d3a-6f1f2a9e4c11')).toEqual({ state: 'unknown' });
  expect(email.requests[email.requests.length - 1]).toEqual(expect.objectContaining({ method: 'GET', status: 404 }));
});
