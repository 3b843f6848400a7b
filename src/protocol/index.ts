export * from './errors.js'
export * from './events.js'
export * from './routes.js'
export * from './types.js'
