/** @edgefarm/mapper: the mapper SDK (runtime.ts) and the mappers built on it (modbus.ts). docs/devices.md. */
export * from './runtime.js';
export * from './modbus.js';
