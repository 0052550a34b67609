import { app } from '@azure/functions';

// The export streams its body instead of buffering a whole tenant:
// https://learn.microsoft.com/azure/azure-functions/functions-reference-node#http-streams
app.setup({ enableHttpStream: true });
