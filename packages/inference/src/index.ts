export * from './rng.js';
export * from './schedule.js';
export * from './sampler.js';
export * from './manifest.js';
export * from './onnx.js';
export * from './png.js';
export * from './prior-service.js';
