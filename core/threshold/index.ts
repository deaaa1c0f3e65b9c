/** Ring threshold signatures, certificates, heartbeats and resharing: the public surface. */
export * from './errors.ts';
export * from './scalar.ts';
export * from './points.ts';
export * from './dealer.ts';
export * from './signing.ts';
export * from './batch-merkle.ts';
export * from './statements.ts';
export * from './certificate.ts';
export * from './certificate-verifier.ts';
export * from './certificate-codec.ts';
export * from './resharing.ts';
export * from './resharing-codec.ts';
