// Starts the Portkey open-source gateway (@portkey-ai/gateway from npm) headless
// for the benchmark, bound to 127.0.0.1 only. Its start script listens on every
// interface and has no host flag, so the listen call is narrowed here before the
// script is imported; the script itself runs unmodified.
//   node tests/bench/portkey.mjs --port=NNNN
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args[1] === undefined || typeof args[1] === 'function')) {
    args.splice(1, args[1] === undefined ? 1 : 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};

if (!process.argv.includes('--headless')) process.argv.push('--headless');
await import('./node_modules/@portkey-ai/gateway/build/start-server.js');
