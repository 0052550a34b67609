/** The app settings that point the product at this machine's simulators and Azurite (demo and bench). */
export function simulatedAppSettings(parts: {
  certPath: string;
  graphUrl: string;
  identity: { endpoint: string; header: string };
  storageConnectionString: string;
  reportsContainer: string;
}): Record<string, string> {
  // Only what the app reads, so a developer's own settings cannot leak in.
  return {
    PATH: process.env.PATH ?? '',
    NODE_EXTRA_CA_CERTS: parts.certPath,
    GRAPH_ENDPOINT: parts.graphUrl,
    IDENTITY_ENDPOINT: parts.identity.endpoint,
    IDENTITY_HEADER: parts.identity.header,
    REPORTS_STORAGE_CONNECTION_STRING: parts.storageConnectionString,
    REPORTS_CONTAINER: parts.reportsContainer,
  };
}
