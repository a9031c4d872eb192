#!/usr/bin/env node
// Publishes one strata invalidation from Node.js, the way a strata node's
// Cache.Remove (or Expire, RemoveByTag, ExpireByTag, Clear) does on Redis:
// first the L2 record (a tombstone for a key; tags and Clear are messages
// only here), then the backplane message, HMAC-signed when
// STRATA_SIGNING_KEYS is set. The bytes are those of docs/wire-format.md;
// docs/cli.md explains the flags.
//
//   STRATA_SIGNING_KEYS=<hex key> node publish.js \
//     --backplane redis://127.0.0.1:6379 --l2 redis://127.0.0.1:6379 \
//     --cache users --key-prefix app: --key user:42
//
// Exit status 0 when everything was written and published, 1 otherwise,
// 2 for bad usage.
'use strict';

const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const { createClient } = require('redis');

// Actions of the backplane message (docs/wire-format.md).
const ACTIONS = { remove: 2, expire: 3, remove_tag: 4, expire_tag: 5, clear_remove: 6, clear_expire: 7 };
const FLAG_SIGNED = 0x01;
const MAX_CACHE_NAME_LEN = 80;

// channelName is backplane.ChannelName: "strata.v1." and the cache name with
// every byte but ASCII letters, digits and '-' escaped ('_' as "__", others
// as '_' and two upper-case hex digits).
function channelName(cache) {
  const bytes = Buffer.from(cache, 'utf8');
  if (bytes.length === 0) return 'strata.v1._';
  let out = 'strata.v1.';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9-]/.test(c)) out += c;
    else if (c === '_') out += '__';
    else out += '_' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

// str returns a length-prefixed byte string (u8 or u16 little-endian length).
function str(s, lenBytes, field, max) {
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new Error(`${field} is ${b.length} bytes, at most ${max}`);
  const len = Buffer.alloc(lenBytes);
  if (lenBytes === 1) len.writeUInt8(b.length);
  else len.writeUInt16LE(b.length);
  return Buffer.concat([len, b]);
}

// encodeMessage returns a version 1 backplane message, unsigned.
function encodeMessage({ action, seq, timestamp, cache, source, traceparent, key }) {
  const head = Buffer.alloc(19);
  head.writeUInt8(1, 0); // version
  head.writeUInt8(0, 1); // flags
  head.writeUInt8(action, 2);
  head.writeBigUInt64LE(seq, 3);
  head.writeBigInt64LE(timestamp, 11);
  return Buffer.concat([
    head,
    str(cache, 1, 'cache', MAX_CACHE_NAME_LEN),
    str(source, 1, 'source', 255),
    str(traceparent, 1, 'traceparent', 255),
    str(key, 2, 'key', 65535),
  ]);
}

// seal sets the signed flag and appends HMAC-SHA256(key, every byte before).
function seal(msg, key) {
  msg.writeUInt8(msg.readUInt8(1) | FLAG_SIGNED, 1);
  return Buffer.concat([msg, crypto.createHmac('sha256', key).update(msg).digest()]);
}

// tombstone returns the L2 envelope of a Remove or Expire at version: flags
// 0x02 (tombstone), created = expires = version, no tags, ETag or value.
function tombstone(version) {
  const b = Buffer.alloc(42);
  b.writeUInt8(1, 0);
  b.writeUInt8(0x02, 1);
  b.writeBigInt64LE(version, 2);
  b.writeBigInt64LE(version, 10);
  // eager refresh, tag count, ETag length, last modified, value length: 0
  return b;
}

// redisEntry frames an envelope as strata's Redis L2 stores it: 16
// lower-case hex digits of the version with its sign bit flipped, so that
// the text order is the version order, then the envelope.
function redisEntry(version, envelope) {
  const u = BigInt.asUintN(64, version) ^ (1n << 63n);
  return Buffer.concat([Buffer.from(u.toString(16).padStart(16, '0')), envelope]);
}

// The conditional write of strata's Redis L2 (l2/redisl2): store only over
// nothing, a foreign value, or an entry of a lower version.
const SET_IF_NEWER = `
local stored = 1
local old = redis.pcall('GETRANGE', KEYS[1], 0, 15)
if type(old) == 'string' and #old == 16 and not string.find(old, '[^0-9a-f]') then
	local new = ARGV[1]
	local oh, ol = tonumber(string.sub(old, 1, 8), 16), tonumber(string.sub(old, 9, 16), 16)
	local nh, nl = tonumber(string.sub(new, 1, 8), 16), tonumber(string.sub(new, 9, 16), 16)
	if oh and ol and (oh > nh or (oh == nh and ol >= nl)) then
		stored = 0
	end
end

if stored == 1 then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return stored
`;

// signingKey returns the first (signing) key of STRATA_SIGNING_KEYS, in the
// strata CLI's format: hex, or base64 after "base64:"; null when unset.
function signingKey(env) {
  const first = (env || '').split(/[\s,]+/).find((s) => s && !s.startsWith('#'));
  if (!first) return null;
  const key = first.startsWith('base64:') ? Buffer.from(first.slice(7), 'base64') : Buffer.from(first, 'hex');
  if (key.length < 16 || (!first.startsWith('base64:') && key.length * 2 !== first.length)) {
    throw new Error('STRATA_SIGNING_KEYS: key 1 is not a hex or base64: key of at least 16 bytes');
  }
  return key;
}

// now returns the time in Unix nanoseconds, to about a microsecond.
function now() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

// Fail fast rather than retry: the exit status says whether it worked.
const SOCKET = { connectTimeout: 5000, reconnectStrategy: false };

function usage(msg) {
  console.error(`publish.js: ${msg}
usage: node publish.js --backplane URL [--l2 URL] --cache NAME [--key-prefix P]
       (--key K | --tag T | --clear) [--expire] [--source ID] [--tombstone-ttl-ms N]`);
  process.exit(2);
}

async function main() {
  let a;
  try {
    a = parseArgs({
      options: {
        backplane: { type: 'string' },
        l2: { type: 'string' },
        cache: { type: 'string' },
        'key-prefix': { type: 'string', default: '' },
        key: { type: 'string' },
        tag: { type: 'string' },
        clear: { type: 'boolean', default: false },
        expire: { type: 'boolean', default: false },
        source: { type: 'string', default: 'node-publisher' },
        traceparent: { type: 'string', default: '' },
        'tombstone-ttl-ms': { type: 'string', default: '600000' },
      },
    }).values;
  } catch (err) {
    usage(err.message);
  }
  if (!a.backplane) usage('--backplane is required');
  if (!a.cache) usage('--cache is required');
  if ([a.key, a.tag, a.clear || undefined].filter((v) => v !== undefined).length !== 1) {
    usage('give exactly one of --key, --tag and --clear');
  }
  const ttl = Number(a['tombstone-ttl-ms']);
  if (!Number.isInteger(ttl) || ttl <= 0) usage(`--tombstone-ttl-ms ${a['tombstone-ttl-ms']}: want a positive integer`);
  let key;
  try {
    key = signingKey(process.env.STRATA_SIGNING_KEYS);
  } catch (err) {
    usage(err.message);
  }

  let action, subject;
  if (a.key !== undefined) [action, subject] = [a.expire ? 'expire' : 'remove', a.key];
  else if (a.tag !== undefined) [action, subject] = [a.expire ? 'expire_tag' : 'remove_tag', a.tag];
  else [action, subject] = [a.expire ? 'clear_expire' : 'clear_remove', ''];
  const clients = [];
  const connect = async (url) => {
    const c = createClient({ url, socket: SOCKET });
    c.on('error', () => {}); // reported by the calls below
    clients.push(c);
    await c.connect();
    return c;
  };
  try {
    const bp = await connect(a.backplane);
    const l2 = a.l2 && a.key !== undefined ? await connect(a.l2) : null;
    if (a.l2 && !l2) console.error('publish.js: tag and Clear markers are not written by this example; only the message is sent');

    const version = now();
    // A source of its own per run (InstanceID/run id, as core writes it),
    // so that its sequence numbers start at 1 without looking like a replay.
    const source = `${a.source}/${crypto.randomBytes(8).toString('hex')}`;
    let msg = encodeMessage({
      action: ACTIONS[action], seq: 1n, timestamp: version, cache: a.cache, source,
      traceparent: a.traceparent, key: subject,
    });
    if (key) msg = seal(msg, key);

    // L2 first: a node told about the change must find it there.
    if (l2) {
      const entry = redisEntry(version, tombstone(version));
      await l2.eval(SET_IF_NEWER, { keys: [a['key-prefix'] + a.key], arguments: [entry, String(ttl)] });
    }
    const channel = channelName(a.cache);
    const receivers = await bp.publish(channel, msg);
    console.log(`published ${action} ${JSON.stringify(subject)} on ${channel} ` +
      `(${msg.length} bytes, ${key ? 'signed' : 'unsigned'}, version ${version}, ${receivers} receivers)`);
  } finally {
    await Promise.allSettled(clients.map((c) => c.quit()));
  }
}

main().catch((err) => {
  console.error(`publish.js: ${err.message}`);
  process.exit(1);
});
