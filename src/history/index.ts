/** The activation history across runs (docs/architecture.md): what jobs use of it. */
export * from './approvals';
export * from './calendar';
export * from './coverage';
export * from './read';
export * from './store';
export * from './unused';
