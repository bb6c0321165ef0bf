/** @edgefarm/settings: typed settings from the environment, declared once per binary, and the reference built from them. */
export * from './settings.js';
export * from './reference.js';
