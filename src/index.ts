import { app } from '@azure/functions';

// The export streams its body instead of buffering a whole tenant (azure-functions.md section 1.4).
app.setup({ enableHttpStream: true });
