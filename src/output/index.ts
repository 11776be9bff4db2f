export { LogPathOutput } from './logPath';
