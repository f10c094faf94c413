export * from './session.ts';
export * from './options.ts';
