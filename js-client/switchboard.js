// switchboard.js: the browser client of Switchboard. WAMP v2 (JSON) over WebSocket, or over HTTP long-poll
// where WebSocket is absent or cannot connect; reconnecting with backoff, live model collections and presence.
// One ES module, no dependencies. Types: switchboard.d.ts.
const HELLO = 1, WELCOME = 2, ABORT = 3, CHALLENGE = 4, AUTHENTICATE = 5, GOODBYE = 6, ERROR = 8,
  PUBLISH = 16, PUBLISHED = 17, SUBSCRIBE = 32, SUBSCRIBED = 33, UNSUBSCRIBE = 34, UNSUBSCRIBED = 35,
  EVENT = 36, CALL = 48, CANCEL = 49, RESULT = 50, REGISTER = 64, REGISTERED = 65, UNREGISTER = 66,
  UNREGISTERED = 67, INVOCATION = 68, YIELD = 70;
const ANSWERS = new Set([PUBLISHED, SUBSCRIBED, UNSUBSCRIBED, RESULT, REGISTERED, UNREGISTERED]);

const ROLES = {
  publisher: { features: { publisher_exclusion: true, publisher_identification: true } },
  subscriber: { features: { pattern_based_subscription: true, publisher_identification: true } },
  caller: { features: { progressive_call_results: true, call_canceling: true, call_timeout: true } },
  callee: { features: {} },
};

const JSON_SERIALIZER = { protocol: 'wamp.2.json', encode: JSON.stringify, decode: JSON.parse };

/** An error carrying a WAMP error URI (`uri`, also as `error`), `args` and `kwargs`. */
export class WampError extends Error {
  constructor(uri, args = [], kwargs = {}) {
    super(typeof args[0] === 'string' ? `${uri}: ${args[0]}` : uri);
    this.name = 'WampError';
    this.uri = this.error = uri;
    this.args = args;
    this.kwargs = kwargs;
  }
}

/** What a procedure handler returns to answer with several positional and/or keyword results. */
export class Result {
  constructor(args = [], kwargs = {}) {
    this.args = args;
    this.kwargs = kwargs;
  }
}

/**
 * Reconnect delay in ms before retry number `attempt` (0-based): exponential backoff with full jitter,
 * uniform in [0, min(cap, base * 2^attempt)), so clients dropped together do not come back together.
 */
export function backoff(attempt, { base = 1000, cap = 30000, random = Math.random } = {}) {
  return Math.floor(random() * Math.min(cap, base * 2 ** attempt));
}

const payload = (args, kwargs) =>
  kwargs && Object.keys(kwargs).length ? [args || [], kwargs] : args && args.length ? [args] : [];

const norm = (pk) => (pk !== null && typeof pk === 'object' ? JSON.stringify(pk) : pk);

class Emitter {
  constructor() { this._l = {}; }
  /** Calls `fn` on every `event`; returns a function that stops it. */
  on(event, fn) {
    (this._l[event] ||= new Set()).add(fn);
    return () => this._l[event].delete(fn);
  }
  _emit(event, ...a) {
    for (const fn of this._l[event] || []) {
      try { fn(...a); } catch (e) { console.error(e); }
    }
  }
}

/**
 * The transports a client tries, in order: `transport` is `"auto"` (WebSocket, then long-poll when WebSocket is
 * absent or cannot connect), `"websocket"` or `"longpoll"`. Long-poll speaks JSON only.
 */
function transportsFor(transport, WS, ser, noLongPoll) {
  const lp = !noLongPoll && ser.protocol === JSON_SERIALIZER.protocol && typeof fetch === 'function';
  if (transport === 'websocket' || transport === 'longpoll') {
    if (transport === 'longpoll' && !lp) {
      throw new Error('transport "longpoll" needs the JSON serializer, fetch() and longpoll not false');
    }
    if (transport === 'websocket' && !WS) throw new Error('transport "websocket" needs a WebSocket constructor');
    return [transport];
  }
  if (transport !== 'auto') throw new Error(`unknown transport ${transport}: auto, websocket or longpoll`);
  const list = [...(WS ? ['websocket'] : []), ...(lp ? ['longpoll'] : [])];
  if (!list.length) throw new Error('no transport: WebSocket is absent and long-poll needs fetch() and JSON');
  return list;
}

/** The long-poll endpoint beside a WebSocket URL: `ws://host:port/ws` (or `/`) -> `http://host:port/lp`. */
export function longPollUrl(url) {
  const u = new URL(url, globalThis.location && globalThis.location.href);
  u.protocol = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : 'http:';
  u.pathname = u.pathname.replace(/\/(ws)?$/, '') + '/lp';
  u.search = u.hash = '';
  return u.href;
}

/** The node URLs of the `url` option: one string, or a non-empty array of them (tried in turn). */
function nodeUrls(url) {
  const urls = Array.isArray(url) ? url : [url];
  if (!urls.length) throw new Error('url: an empty array; give at least one ws:// or wss:// URL');
  for (const u of urls) {
    if (typeof u !== 'string' || !u) {
      throw new Error(`url: ${Array.isArray(url) ? 'every entry' : 'the URL'} must be a non-empty string (ws://host:port/ws), got ${JSON.stringify(u) ?? String(u)}`);
    }
  }
  return urls;
}

/** The long-poll endpoint of each node: from `longpoll` (one string for one node, an array with one per
 * node), else beside each WebSocket URL. */
function longPollUrls(urls, longpoll) {
  if (!longpoll) return urls.map((u) => longPollUrl(u));
  const given = Array.isArray(longpoll) ? longpoll : [longpoll];
  if (given.length !== urls.length || given.some((u) => typeof u !== 'string' || !u)) {
    throw new Error(`longpoll: give one endpoint per url (${urls.length}), or leave it out to use each url's /lp`);
  }
  return given;
}

/** How long one receive may stay unanswered before the transport counts as lost (the gateway answers sooner). */
const LP_REQUEST_TIMEOUT_MS = 60000;

/**
 * WAMP over HTTP long-poll (the gateway's `/lp`), shaped like a WebSocket (`onopen`, `onmessage`, `onclose`,
 * `send`, `close`) so the client drives either the same way. Messages go out one POST each, in order; one
 * receive is always pending; a failed request closes the transport (the client reconnects as after a cut socket).
 * Requests are CORS "simple" (text/plain bodies), so a page on another origin needs no preflight.
 */
export class LongPoll {
  constructor(url, protocols) {
    this.url = url.replace(/\/$/, '');
    this._out = [];
    this._sending = false;
    this._closed = false;
    this._abort = new AbortController();
    // The batched variant first: several messages per request each way.
    const offered = protocols.flatMap((p) => (p === 'wamp.2.json' ? ['wamp.2.json.batched', p] : [p]));
    this._post('/open', JSON.stringify({ protocols: offered }))
      .then((text) => {
        const { transport, protocol } = JSON.parse(text);
        if (typeof transport !== 'string' || !offered.includes(protocol)) throw new Error('bad open answer');
        this._id = encodeURIComponent(transport);
        this._batched = protocol.endsWith('.batched');
        this.protocol = protocol.replace(/\.batched$/, '');
        if (this._closed) return this._post(`/${this._id}/close`, '').catch(() => {});
        if (this.onopen) this.onopen();
        this._receive();
        this._flush();
      })
      .catch(() => this._end());
  }

  async _post(path, body) {
    const timer = setTimeout(() => this._abort.abort(), LP_REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(this.url + path, {
        method: 'POST', body, signal: this._abort.signal, headers: { 'Content-Type': 'text/plain' },
      });
      if (res.status !== 200 && res.status !== 204) throw new Error(`HTTP ${res.status}`);
      return res.status === 204 ? '' : await res.text();
    } finally {
      clearTimeout(timer);
    }
  }

  async _receive() {
    while (!this._closed) {
      let text;
      try { text = await this._post(`/${this._id}/receive`, ''); } catch { return this._end(); }
      // A JSON text never holds a raw 0x1E, so batched answers split safely.
      for (const data of text.split('\x1e')) {
        if (data && !this._closed && this.onmessage) this.onmessage({ data });
      }
    }
  }

  send(data) {
    if (this._closed) return;
    this._out.push(data);
    this._flush();
  }

  /** Sends what is queued, in order: everything in one request when batched, else one request each. */
  async _flush() {
    if (this._sending || this._id === undefined) return;
    this._sending = true;
    while (this._out.length && !this._closed) {
      const body = this._batched ? this._out.splice(0).map((m) => m + '\x1e').join('') : this._out.shift();
      try { await this._post(`/${this._id}/send`, body); } catch { return this._end(); }
    }
    this._sending = false;
  }

  close() {
    if (this._closed) return;
    if (this._id !== undefined) {
      // Whatever was sent last (a GOODBYE) goes before the close.
      const last = this._flushed();
      last.then(() => fetch(`${this.url}/${this._id}/close`, { method: 'POST', body: '' })).catch(() => {});
    }
    this._end();
  }

  _flushed() {
    const pending = this._out.splice(0);
    if (!pending.length) return Promise.resolve();
    const body = this._batched ? pending.map((m) => m + '\x1e').join('') : null;
    const send = (data) => fetch(`${this.url}/${this._id}/send`,
      { method: 'POST', body: data, headers: { 'Content-Type': 'text/plain' } });
    return body !== null ? send(body) : pending.reduce((p, data) => p.then(() => send(data)), Promise.resolve());
  }

  _end() {
    if (this._closed) return;
    this._closed = true;
    this._abort.abort();
    if (this.onclose) this.onclose();
  }
}

/** Connects and joins; resolves with the client once the session is joined. */
export async function connect(options) {
  const client = new Client(options);
  await client.ready;
  return client;
}

export class Client extends Emitter {
  constructor({ url, realm, authid, ticket, serializer, WebSocket: WS, authmethods, onChallenge, retry = {},
    queueLimit = 1000, queueTimeout = 10000, transport = 'auto', longpoll }) {
    super();
    Object.assign(this, { url, realm, authid, ticket, authmethods, onChallenge, retry, queueLimit, queueTimeout });
    this.WS = WS || globalThis.WebSocket;
    this.ser = !serializer || serializer === 'json' ? JSON_SERIALIZER : serializer;
    if (typeof this.ser !== 'object') throw new Error(`unsupported serializer ${serializer}`);
    this._urls = nodeUrls(url);
    this._transports = transportsFor(transport, this.WS, this.ser, longpoll === false);
    this._lpUrls = longPollUrls(this._urls, longpoll);
    /** The transport of the current (or last) connection attempt: `"websocket"` or `"longpoll"`. */
    this.transport = this._transports[0];
    /** The URL (one of `url`) of the node the client is joined to; null while it is not joined. */
    this.connectedUrl = null;
    this._u = 0; // index in _urls of the node of the current (or next) attempt
    this._tried = 0; // how many of this node's transports have failed to open
    this._failed = 0; // how many nodes of this round have failed (none of its transports joined)
    this.state = null;
    this.session = null;
    this._req = 0;
    this._pending = new Map(); // request id -> {resolve, reject, m, sent, keep?, done?, progress?}
    this._subs = new Set(); // live subscription records
    this._bySub = new Map(); // subscription id -> Set of records
    this._regs = new Map(); // registration id -> record
    this._regRecs = new Set();
    this._waiting = [];
    this._attempt = 0;
    this.ready = new Promise((res, rej) => { this._ready = [res, rej]; });
    this.ready.catch(() => {});
    this._open();
  }

  _set(state, detail) {
    if (state !== this.state) this._emit('state', (this.state = state), detail);
  }

  _open() {
    this._set('connecting');
    this.transport = this._transports[this._tried];
    let ws;
    try {
      ws = this.transport === 'longpoll'
        ? new LongPoll(this._lpUrls[this._u], [this.ser.protocol])
        : new this.WS(this._urls[this._u], [this.ser.protocol]);
    } catch (e) {
      return this._fail(new WampError('switchboard.error.connect_failed', [String(e && e.message)]));
    }
    this._ws = ws;
    let opened = false;
    if (this.ser.binary) ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      opened = true;
      // Opened: this transport is tried first from now on (a page behind a proxy that blocks WebSocket
      // goes straight to long-poll when it reconnects).
      if (this._tried) this._transports.unshift(...this._transports.splice(this._tried, 1));
      this._tried = 0;
      const details = { roles: ROLES };
      if (this.authid) details.authid = this.authid;
      const methods = this.authmethods || (this.ticket && ['ticket']);
      if (methods) details.authmethods = methods;
      this._send([HELLO, this.realm, details]);
    };
    ws.onmessage = (e) => {
      let m;
      try { m = this.ser.decode(e.data); } catch { return ws.close(); }
      this._onMessage(m, ws);
    };
    ws.onclose = () => this._onClose(ws, opened);
    ws.onerror = () => {};
  }

  _send(m) {
    if (this._ws) this._ws.send(this.ser.encode(m));
  }

  async _onMessage(m, ws) {
    const [type] = m;
    if (type === WELCOME) {
      this.session = { id: m[1], details: m[2] };
      this._attempt = 0;
      this.joined = true;
      this.connectedUrl = this._urls[this._u];
      this._failed = 0;
      const lost = (e) => this._emit('error', e);
      // The public state first, so that the join events of the re-subscriptions carry it.
      if (this._publicState) this._request([CALL, 0, {}, SET_STATE, [this._publicState]]).catch(lost);
      for (const rec of this._subs) this._subscribe(rec).catch(lost);
      for (const rec of this._regRecs) this._register(rec).catch(lost);
      for (const p of this._pending.values()) if (!p.sent) { p.sent = true; this._send(p.m); }
      for (const w of this._waiting.splice(0)) { clearTimeout(w.timer); w.resolve(); }
      this._set('open', this.session);
      this._ready[0](this);
    } else if (type === CHALLENGE) {
      try {
        const t = typeof this.ticket === 'function' ? await this.ticket() : this.ticket;
        const sig = m[1] === 'ticket' && t ? t : await this.onChallenge(m[1], m[2]);
        if (this._ws === ws) this._send([AUTHENTICATE, sig, {}]);
      } catch (e) {
        this._fatal = new WampError('wamp.error.authentication_failed', [`cannot answer the ${m[1]} challenge`]);
        ws.close();
      }
    } else if (type === ABORT) {
      const error = new WampError(m[2], m[1] && m[1].message ? [m[1].message] : [], m[1]);
      // Refused at HELLO: retrying cannot help. Aborted once joined (switchboard.error.slow_consumer: the
      // page did not keep up and the gateway closed it rather than skip events): reconnect, and say why.
      if (!this.joined) this._fatal = error;
      else this._lost = error;
      ws.close();
    } else if (type === GOODBYE) {
      if (this._bye) return this._bye();
      this._send([GOODBYE, {}, 'wamp.close.goodbye_and_out']);
      this.joined = false;
      ws.close();
    } else if (type === EVENT) {
      for (const rec of this._bySub.get(m[1]) || []) {
        try { rec.handler(m[4] || [], m[5] || {}, m[3], m[2]); } catch (e) { console.error(e); }
      }
    } else if (type === INVOCATION) {
      this._invoke(m);
    } else if (type === ERROR || ANSWERS.has(type)) {
      const req = type === ERROR ? m[2] : m[1];
      const p = this._pending.get(req);
      if (!p) return;
      if (type === RESULT && m[2].progress && p.progress) return p.progress(m[3] || [], m[4] || {});
      this._pending.delete(req);
      if (type === ERROR) p.reject(new WampError(m[4], m[5] || [], m[6] || {}));
      else p.resolve(p.done ? p.done(m) : m);
    }
  }

  _onClose(ws, opened) {
    if (this._ws !== ws) return;
    this._ws = null;
    this.joined = false;
    this.connectedUrl = null;
    this._bySub.clear();
    this._regs.clear();
    for (const [id, p] of this._pending) {
      if (p.keep) p.sent = false;
      else {
        this._pending.delete(id);
        p.reject(new WampError('switchboard.error.connection_lost', ['the connection closed before an answer']));
      }
    }
    if (this._closed) return;
    if (this._fatal) return this._fail(this._fatal);
    // A transport that could not open: the node's next one at once (WebSocket blocked -> long-poll), then the
    // next node's. A connection closed once open (lost, or never joined): the next node at once (its node
    // may be gone), this one counting as failed. A retry with backoff only once every node of the round has
    // failed (a join resets the round); it goes on from the next node (round robin).
    if (opened || ++this._tried >= this._transports.length) {
      this._tried = 0;
      this._failed++;
      this._u = (this._u + 1) % this._urls.length;
    }
    const why = this._lost;
    this._lost = null;
    if (this._failed < this._urls.length) {
      this._set('connecting', why);
      return this._open();
    }
    this._failed = 0;
    if (this.retry === false) return this._fail(new WampError('switchboard.error.connection_lost', ['no retries']));
    this._set('connecting', why);
    this._timer = setTimeout(() => this._open(), backoff(this._attempt++, this.retry));
  }

  _fail(error) {
    this._closed = true;
    this.joined = false;
    clearTimeout(this._timer);
    for (const p of this._pending.values()) p.reject(error);
    this._pending.clear();
    for (const w of this._waiting.splice(0)) { clearTimeout(w.timer); w.reject(error); }
    this._ready[1](error);
    this._set('closed', error);
  }

  /** Waits (bounded queue, with a timeout) until the session is joined. */
  _whenOpen() {
    if (this._closed) return Promise.reject(new WampError('switchboard.error.closed', ['the client is closed']));
    if (this.joined) return Promise.resolve();
    if (this._waiting.length >= this.queueLimit) {
      return Promise.reject(new WampError('switchboard.error.queue_full', [`${this.queueLimit} requests already wait for the connection`]));
    }
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      w.timer = setTimeout(() => {
        this._waiting.splice(this._waiting.indexOf(w), 1);
        reject(new WampError('switchboard.error.timeout', [`not connected within ${this.queueTimeout} ms`]));
      }, this.queueTimeout);
      this._waiting.push(w);
    });
  }

  /** Sends a request (message with a 0 request id) and resolves with the answer message. */
  _request(m, extra = {}) {
    const id = (m[1] = ++this._req);
    return new Promise((resolve, reject) => {
      const sent = this.joined;
      if (!sent && !extra.keep) return reject(new WampError('switchboard.error.connection_lost', ['not connected']));
      this._pending.set(id, { resolve, reject, m, sent, ...extra });
      if (sent) this._send(m);
      if (extra.signal) {
        extra.signal.addEventListener('abort', () => {
          if (this._pending.has(id) && this.joined) this._send([CANCEL, id, { mode: 'killnowait' }]);
        }, { once: true });
      }
    });
  }

  // Bookkeeping runs as the answer arrives (`done`), before the next frame, which may use the new id.
  _subscribe(rec) {
    return this._request([SUBSCRIBE, 0, rec.options, rec.topic], { keep: true, done: (m) => {
      if (!rec.active) return;
      rec.id = m[2];
      this._subs.add(rec);
      if (!this._bySub.has(rec.id)) this._bySub.set(rec.id, new Set());
      this._bySub.get(rec.id).add(rec);
      if (rec.onSubscribed) rec.onSubscribed(rec.id);
    } });
  }

  /**
   * Subscribes `handler(args, kwargs, details, publication)` to `topic` (`match`: exact|prefix|wildcard;
   * `filter`: a predicate over kwargs the gateway applies, sent as `_filter`; `getRetained`: deliver the
   * topic's retained event first; `rateMs`: the gateway conflates, at most one event per window, the newest
   * per model row, sent as `_rate_ms`). Kept across reconnects. Resolves with `{topic, id, unsubscribe()}`.
   */
  subscribe(topic, handler, options = {}) {
    return this._follow(topic, handler, options);
  }

  // `onSubscribed(id)` runs as each SUBSCRIBED (first and after every re-join) arrives, before the next frame.
  async _follow(topic, handler, { match, filter, getRetained, rateMs, ...rest } = {}, onSubscribed) {
    const options = { ...rest };
    if (match && match !== 'exact') options.match = match;
    if (filter) options._filter = filter;
    if (rateMs) options._rate_ms = rateMs;
    if (getRetained) options.get_retained = true;
    const rec = { topic, handler, options, onSubscribed, active: true };
    await this._whenOpen();
    await this._subscribe(rec);
    return {
      topic,
      get id() { return rec.id; },
      unsubscribe: async () => {
        if (!rec.active) return;
        rec.active = false;
        this._subs.delete(rec);
        const set = this._bySub.get(rec.id);
        if (!set) return;
        set.delete(rec);
        if (!set.size) {
          this._bySub.delete(rec.id);
          if (this.joined) await this._request([UNSUBSCRIBE, 0, rec.id]);
        }
      },
    };
  }

  /** Publishes; with `{acknowledge: true}` resolves with the publication id once the router took it. */
  async publish(topic, args, kwargs, options = {}) {
    await this._whenOpen();
    const m = [PUBLISH, 0, options, topic, ...payload(args, kwargs)];
    if (options.acknowledge) return (await this._request(m))[2];
    m[1] = ++this._req;
    this._send(m);
  }

  /**
   * Calls `procedure`; resolves with `{args, kwargs}`. Options go to CALL (e.g. `timeout` ms), plus
   * `onProgress(args, kwargs)` for progressive results and `signal` (AbortSignal) to cancel.
   */
  async call(procedure, args, kwargs, options = {}) {
    const { onProgress, signal, ...o } = options;
    if (onProgress) o.receive_progress = true;
    await this._whenOpen();
    const m = await this._request([CALL, 0, o, procedure, ...payload(args, kwargs)], { progress: onProgress, signal });
    return { args: m[3] || [], kwargs: m[4] || {} };
  }

  _register(rec) {
    return this._request([REGISTER, 0, rec.options, rec.procedure], { keep: true, done: (m) => {
      if (!rec.active) return;
      rec.id = m[2];
      this._regs.set(rec.id, rec);
      this._regRecs.add(rec);
    } });
  }

  /**
   * Registers `handler(args, kwargs, details)` for `procedure`: its return value (or a Result, or a promise
   * of either) answers; a thrown WampError answers with its URI. Kept across reconnects.
   */
  async register(procedure, handler, options = {}) {
    const rec = { procedure, handler, options, active: true };
    await this._whenOpen();
    await this._register(rec);
    return {
      procedure,
      unregister: async () => {
        if (!rec.active) return;
        rec.active = false;
        this._regRecs.delete(rec);
        if (this._regs.delete(rec.id) && this.joined) await this._request([UNREGISTER, 0, rec.id]);
      },
    };
  }

  async _invoke([, req, regId, details, args = [], kwargs = {}]) {
    const rec = this._regs.get(regId);
    const ws = this._ws;
    let answer;
    try {
      if (!rec) throw new WampError('wamp.error.no_such_registration');
      const r = await rec.handler(args, kwargs, details);
      answer = r instanceof Result ? [YIELD, req, {}, ...payload(r.args, r.kwargs)]
        : [YIELD, req, {}, ...(r === undefined ? [] : [[r]])];
    } catch (e) {
      answer = e instanceof WampError ? [ERROR, INVOCATION, req, {}, e.uri, ...payload(e.args, e.kwargs)]
        : [ERROR, INVOCATION, req, {}, 'wamp.error.runtime_error', [String(e && e.message || e)]];
    }
    if (this._ws === ws && this.joined) this._send(answer);
  }

  /**
   * A collection of `model` rows (e.g. "shop.order") kept current from the model events on
   * `models.<model>` (`key`: the row's identity, read from the event's kwargs, else from its data).
   * First rows: `rows` with `after` (the publication id they are consistent with, from the web app), else
   * the gateway's model view (`switchboard.model.rows` with `order_by`, `desc`, `limit`, `filter`), else
   * none. After every re-join it recovers the events it missed from history (`get_events`), or, when
   * history cannot tell, reloads from the view and emits `reset`.
   */
  async live(model, { key = 'pk', rows, after, order_by, desc, limit, filter, rateMs, prefix = 'models.', pageSize = 1000 } = {}) {
    const view = { model };
    for (const [k, v] of Object.entries({ order_by, desc, limit, filter })) if (v !== undefined) view[k] = v;
    const live = new Live(this, { key, view, pageSize, given: rows !== undefined });
    if (rows) live._replace(rows);
    if (after != null) live.position = after;
    const sub = await this._follow(prefix + model, (args, kw, details, publication) => live._event(publication, kw),
      { filter, rateMs }, (id) => live._subscribed(id));
    live._sub = sub;
    try {
      await live._first;
    } catch (e) {
      live._closed = true;
      await sub.unsubscribe().catch(() => {});
      throw e;
    }
    return live;
  }

  /**
   * Who is on `topic`: the authids holding an exact subscription to it, one entry per authid however many
   * tabs it has open, with the public state it set (`setState`). Loaded by `switchboard.presence.list`,
   * kept current by the join, leave and state events on `switchboard.presence.<topic>` (subscribed first,
   * events buffered until the list arrives), and reloaded after every re-join (emitting the differences).
   * Needs the role to be allowed to subscribe to `topic` and to `switchboard.presence.<topic>`.
   */
  async presence(topic) {
    const presence = new Presence(this, topic);
    const sub = await this._follow(PRESENCE_PREFIX + topic, (args, kw) => presence._event(kw), {},
      () => presence._subscribed());
    presence._sub = sub;
    try {
      await presence._first;
    } catch (e) {
      presence._closed = true;
      await sub.unsubscribe().catch(() => {});
      throw e;
    }
    return presence;
  }

  /**
   * Sets this session's public state (a plain object, at most 4 KiB as JSON), which presence lists and
   * state events show for its authid; set again after every re-join.
   */
  async setState(state = {}) {
    await this.call(SET_STATE, [state]);
    this._publicState = state;
  }

  /** Leaves the realm (GOODBYE) and closes for good: no reconnect, state closed. */
  async close() {
    if (this._closed) return;
    this._closed = true;
    const ws = this._ws;
    if (ws && this.joined) {
      let timer;
      await new Promise((r) => {
        this._bye = r;
        timer = setTimeout(r, 1000);
        this._send([GOODBYE, {}, 'wamp.close.normal']);
      });
      clearTimeout(timer);
    }
    this._ws = null;
    if (ws) ws.close();
    this._fail(new WampError('switchboard.error.closed', ['the client is closed']));
  }
}

const GET_EVENTS = 'wamp.subscription.get_events';
const PRESENCE_PREFIX = 'switchboard.presence.';
const PRESENCE_LIST = 'switchboard.presence.list';
const SET_STATE = 'switchboard.session.set_state';
const MODEL_ROWS = 'switchboard.model.rows';
const TOO_LARGE = 'switchboard.error.answer_too_large';
// History cannot recover from the position: reload from the view (or tell the app to).
const RESET = new Set(['switchboard.error.history_gap', 'switchboard.error.no_history', 'switchboard.error.no_position']);
// No model view to load rows from.
const NO_VIEW = new Set(['switchboard.error.no_such_model', 'wamp.error.no_such_procedure']);
// A view not seeded (synced by the web app) since the gateway started: it cannot answer yet.
const INCOMPLETE = 'switchboard.error.view_incomplete';
const STALE = Symbol('stale');
const SEEN_LIMIT = 10000;

/**
 * Rows of one model (view order, then arrival order), kept current by model events and recovered after
 * reconnects; emits "change", "reset" and "error".
 */
class Live extends Emitter {
  constructor(client, { key, view, pageSize, given }) {
    super();
    Object.assign(this, { _client: client, _key: key, _view: view, _pageSize: pageSize, _given: given });
    this._rows = new Map();
    /** The last publication applied (or the one the first rows are consistent with). */
    this.position = null;
    /** True while rows or changes may be missing (no view to reload from); a reload or a `synced` event clears it. */
    this.stale = false;
    this._seen = new Set(); // publication ids applied lately: none is applied twice
    this._buffer = null; // [publication, kwargs] received while (re)synchronizing
    this._gen = 0;
    this._loaded = false;
    this._why = null;
    this._first = new Promise((res, rej) => { this._opened = [res, rej]; });
    this._first.catch(() => {});
  }

  // At each SUBSCRIBED (before the next frame): buffer live events, then synchronize.
  _subscribed(id) {
    if (this._closed) return;
    this._subId = id;
    this._buffer = [];
    const gen = ++this._gen;
    const first = !this._loaded;
    this._sync(gen, first).then(() => {
      if (gen !== this._gen) return;
      this._loaded = true;
      if (first) this._opened[0]();
    }, (e) => {
      if (e === STALE || gen !== this._gen) return;
      this._buffer = null;
      if (first) this._opened[1](e);
      else if (e.uri !== 'switchboard.error.connection_lost') this._emit('error', e);
    });
  }

  async _call(gen, procedure, args, kwargs) {
    let r;
    try {
      r = await this._client.call(procedure, args, kwargs);
    } catch (e) {
      throw gen !== this._gen ? STALE : e;
    }
    if (gen !== this._gen) throw STALE;
    return r;
  }

  async _sync(gen, first) {
    if (first && !this._given) {
      let mark;
      try {
        mark = await this._loadView(gen);
      } catch (e) {
        if (e.uri === INCOMPLETE) this.stale = true; // start empty until the web app syncs the model
        else if (!NO_VIEW.has(e.uri)) throw e;
        return this._fromNewest(gen); // no view: start empty
      }
      return this._recoverAfterView(gen, mark);
    }
    if (first && this.position == null) return this._fromNewest(gen); // rows without `after`
    try {
      if (this.position == null) {
        throw this._why || new WampError('switchboard.error.no_position', ['no publication to recover from']);
      }
      await this._recover(gen, this.position, 0);
    } catch (e) {
      if (e === STALE || !RESET.has(e.uri)) throw e;
      await this._reset(gen, e);
    }
  }

  // Events after `after` from history, page by page, then the buffered live events after `mark`.
  async _recover(gen, after, mark) {
    const recovered = [];
    let limit = this._pageSize;
    for (let from = after; ;) {
      let answer;
      try {
        answer = await this._call(gen, GET_EVENTS, [this._subId], { limit, after_publication: from });
      } catch (e) {
        // A page too large for the session's queue: ask for fewer events at a time.
        if (e && e.uri === TOO_LARGE && limit > 1) {
          limit = Math.max(1, Math.floor(limit / 2));
          continue;
        }
        throw e;
      }
      const page = answer.args[0] || [];
      recovered.push(...page);
      if (page.length < limit) break;
      from = page[page.length - 1].publication;
    }
    this._drain(recovered, mark);
  }

  // Live events buffered before the view's answer (index < mark) are in the view already; the history
  // events after the view's publication and the later buffered ones are applied once each.
  async _recoverAfterView(gen, mark) {
    if (this.position == null) return this._drain([], mark);
    try {
      await this._recover(gen, this.position, mark);
    } catch (e) {
      if (e === STALE || !RESET.has(e.uri)) throw e;
      this._why = e;
      this._drain([], mark);
    }
  }

  async _loadView(gen) {
    const { kwargs } = await this._call(gen, MODEL_ROWS, [], this._view);
    const mark = this._buffer.length;
    this._replace(kwargs.rows || []);
    this._seen.clear();
    this.position = kwargs.publication ?? null;
    this.total = kwargs.total;
    this.stale = false;
    return mark;
  }

  // No position to recover from: take the topic's newest stored publication as one, keep every live event.
  async _fromNewest(gen) {
    try {
      const { args } = await this._call(gen, GET_EVENTS, [this._subId], { limit: 1 });
      const newest = (args[0] || [])[0];
      this.position = newest ? newest.publication : null;
      this._why = null;
    } catch (e) {
      if (e === STALE || !RESET.has(e.uri)) throw e;
      this.position = null;
      this._why = e;
    }
    this._drain([], 0);
  }

  async _reset(gen, why) {
    let mark;
    try {
      mark = await this._loadView(gen);
    } catch (e) {
      if (e.uri !== INCOMPLETE && !NO_VIEW.has(e.uri)) throw e;
      // No view (or one not seeded yet): the rows may be stale; keep following, and tell the app.
      this.stale = true;
      await this._fromNewest(gen);
      this._emit('reset', { reason: why.uri, error: why, reloaded: false });
      return;
    }
    await this._recoverAfterView(gen, mark);
    this._emit('reset', { reason: why.uri, error: why, reloaded: true });
  }

  _drain(recovered, mark) {
    const buffer = this._buffer || [];
    this._buffer = null;
    for (const ev of recovered) this._apply(ev.publication, ev.kwargs || {});
    for (let i = mark; i < buffer.length; i++) this._apply(...buffer[i]);
  }

  _event(publication, kw) {
    if (this._closed) return;
    if (this._buffer) this._buffer.push([publication, kw]);
    else this._apply(publication, kw);
  }

  _id(row) {
    return row[this._key] !== undefined ? row[this._key] : row.pk;
  }

  _replace(rows) {
    this._rows = new Map();
    for (const row of rows) this._rows.set(norm(this._id(row)), { ...row });
  }

  _apply(publication, kw) {
    if (publication != null) {
      if (this._seen.has(publication)) return;
      this._seen.add(publication);
      if (this._seen.size > SEEN_LIMIT) this._seen.delete(this._seen.values().next().value);
      this.position = publication;
    }
    const key = this._key;
    if (kw.action === 'synced') {
      this._replace(kw.rows || []);
      this.stale = false;
      return this._emit('change', { action: 'synced', changed: [] });
    }
    const data = kw.data || {};
    const pk = kw[key] !== undefined ? kw[key] : data[key];
    if (pk === undefined) return;
    const id = norm(pk);
    const previous = this._rows.get(id);
    let row;
    if (kw.action === 'deleted') this._rows.delete(id);
    else if (kw.action === 'created' || kw.action === 'updated') this._rows.set(id, (row = { ...previous, ...data, [key]: pk }));
    else return;
    this._emit('change', { action: kw.action, pk, row, previous, changed: kw.changed || [] });
  }

  /** The current rows, in order (the first rows' order, then arrival order). */
  items() { return this._rows.values(); }
  [Symbol.iterator]() { return this._rows.values(); }
  /** The row whose key is `pk`. */
  get(pk) { return this._rows.get(norm(pk)); }
  get size() { return this._rows.size; }
  /** Stops following the model. */
  close() {
    this._closed = true;
    this._gen++;
    this._buffer = null;
    return this._sub.unsubscribe();
  }
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Who is on one topic (see `Client.presence`): `members` (authid -> {authid, state}), `list()`; emits
 * "join", "leave" and "state" with the member, and "error".
 */
class Presence extends Emitter {
  constructor(client, topic) {
    super();
    this._client = client;
    this.topic = topic;
    this.members = new Map();
    this._buffer = null; // events received while (re)loading the list
    this._gen = 0;
    this._loaded = false;
    this._first = new Promise((res, rej) => { this._opened = [res, rej]; });
    this._first.catch(() => {});
  }

  // At each SUBSCRIBED (before the next frame): buffer events, load the list, then apply the buffer.
  _subscribed() {
    if (this._closed) return;
    this._buffer = [];
    const gen = ++this._gen;
    const first = !this._loaded;
    this._client.call(PRESENCE_LIST, [this.topic]).then(({ args }) => {
      if (gen !== this._gen || this._closed) return;
      const listed = new Map((args[0] || []).map((m) => [m.authid, { authid: m.authid, state: m.state ?? null }]));
      if (first) this.members = listed;
      else {
        for (const authid of [...this.members.keys()]) if (!listed.has(authid)) this._apply({ event: 'leave', authid });
        for (const m of listed.values()) this._apply({ event: 'join', ...m });
      }
      // Buffered events may already be in the list: applying them again changes nothing.
      const buffer = this._buffer;
      this._buffer = null;
      for (const kw of buffer) this._apply(kw);
      this._loaded = true;
      if (first) this._opened[0]();
    }, (e) => {
      if (gen !== this._gen) return;
      this._buffer = null;
      if (first) this._opened[1](e);
      else if (e.uri !== 'switchboard.error.connection_lost') this._emit('error', e);
    });
  }

  _event(kw) {
    if (this._closed) return;
    if (this._buffer) this._buffer.push(kw);
    else this._apply(kw);
  }

  _apply({ event, authid, state = null }) {
    if (typeof authid !== 'string') return;
    const had = this.members.get(authid);
    if (event === 'leave') {
      if (!had) return;
      this.members.delete(authid);
      return this._emit('leave', had);
    }
    if (event !== 'join' && event !== 'state') return;
    if (had && same(had.state, state)) return;
    const member = { authid, state };
    this.members.set(authid, member);
    this._emit(had ? 'state' : 'join', member);
  }

  /** The members, by authid. */
  list() {
    return [...this.members.values()].sort((a, b) => (a.authid < b.authid ? -1 : a.authid > b.authid ? 1 : 0));
  }

  get size() { return this.members.size; }

  /** Stops following the topic's presence. */
  close() {
    this._closed = true;
    this._gen++;
    this._buffer = null;
    return this._sub.unsubscribe();
  }
}
