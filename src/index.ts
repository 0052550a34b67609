import { app } from '@azure/functions';
import { limitHeapGrowth } from './util/heap';

// Before the first invocation allocates anything (src/util/heap.ts).
limitHeapGrowth();

// The export streams its body instead of buffering a whole tenant:
// https://learn.microsoft.com/azure/azure-functions/functions-reference-node#http-streams
app.setup({ enableHttpStream: true });
