// Types for switchboard.js, Switchboard's browser client.

export type Args = unknown[];
export type Kwargs = Record<string, unknown>;
export type Details = Record<string, unknown>;
export type State = 'connecting' | 'open' | 'closed';

/**
 * A predicate over an event's kwargs that the gateway applies (sent as the SUBSCRIBE option `_filter`), e.g.
 * `{"data.total": {"$lt": 100}}`: operators `$eq $ne $gt $gte $lt $lte $in $like $exists $and $or $not`,
 * dotted paths. The gateway refuses a malformed one with `wamp.error.invalid_argument`.
 */
export type Filter = Record<string, unknown>;

/** A serializer other than the default JSON one (`wamp.2.json`). */
export interface Serializer {
  protocol: string;
  binary?: boolean;
  encode(message: unknown[]): string | ArrayBuffer | Uint8Array;
  decode(data: string | ArrayBuffer): unknown[];
}

export interface RetryOptions {
  /** First retry delay bound in ms (default 1000). */
  base?: number;
  /** Largest delay bound in ms (default 30000). */
  cap?: number;
  random?: () => number;
}

export interface ConnectOptions {
  /** `ws://host:port/ws`, or several nodes of one cluster (`[cluster]`): tried in turn (round robin) when
   * one cannot connect or its connection is lost. Throws at construction when empty or not strings. */
  url: string | string[];
  realm: string;
  authid?: string;
  /** A ticket minted by the web app, or a function that fetches a fresh one for every (re)join. */
  ticket?: string | (() => string | Promise<string>);
  /** "json" (default) or a custom serializer. */
  serializer?: 'json' | Serializer;
  /** A WebSocket constructor (e.g. the `ws` package in Node); default `globalThis.WebSocket`. */
  WebSocket?: new (url: string, protocols: string[]) => WebSocket;
  /** `"auto"` (default): WebSocket, then HTTP long-poll when WebSocket is absent or cannot connect;
   * `"websocket"` or `"longpoll"` alone. Long-poll speaks JSON only. */
  transport?: 'auto' | 'websocket' | 'longpoll';
  /** The long-poll endpoint (default: `url` with `http(s)` and the path's `/ws` replaced by `/lp`; with
   * several URLs, an array with one endpoint per URL), or false for no long-poll fallback. */
  longpoll?: string | string[] | false;
  /** HELLO authmethods (default `["ticket"]` when a ticket is given). */
  authmethods?: string[];
  /** Answers a CHALLENGE for methods other than ticket (e.g. wampcra); returns the signature. */
  onChallenge?: (method: string, extra: Details) => string | Promise<string>;
  /** Reconnect schedule options, or false for no reconnect. */
  retry?: RetryOptions | false;
  /** Most requests that may wait for the connection (default 1000). */
  queueLimit?: number;
  /** How long a request waits for the connection before it fails with `switchboard.error.timeout` (ms, default 10000). */
  queueTimeout?: number;
}

export interface SubscribeOptions {
  match?: 'exact' | 'prefix' | 'wildcard';
  /** Only events whose kwargs match, filtered by the gateway (`_filter`). */
  filter?: Filter;
  /** Deliver the topic's last retained event right after subscribing (EVENT details `retained: true`). */
  getRetained?: boolean;
  /** Conflation by the gateway (`_rate_ms`, 10 to 3600000): at most one event per window, the newest; on
   * model topics the newest per row, so no row's last state is skipped. */
  rateMs?: number;
  [option: string]: unknown;
}

export interface PublishOptions {
  /** Resolve with the publication id once the router took the event. */
  acknowledge?: boolean;
  exclude_me?: boolean;
  disclose_me?: boolean;
  eligible?: number[];
  exclude?: number[];
  eligible_authid?: string[];
  eligible_authrole?: string[];
  exclude_authid?: string[];
  [option: string]: unknown;
}

export interface CallOptions {
  /** Router-side call timeout in ms (`wamp.error.timeout`/`wamp.error.canceled`). */
  timeout?: number;
  disclose_me?: boolean;
  /** Receives progressive results. */
  onProgress?: (args: Args, kwargs: Kwargs) => void;
  /** Aborting cancels the call (CANCEL, mode killnowait). */
  signal?: AbortSignal;
  [option: string]: unknown;
}

export interface Subscription {
  topic: string;
  /** The router's subscription id (it changes with every re-join). */
  readonly id: number;
  unsubscribe(): Promise<void>;
}

export interface Registration {
  procedure: string;
  unregister(): Promise<void>;
}

export interface CallResult {
  args: Args;
  kwargs: Kwargs;
}

/** A WAMP error: `uri` (also `error`), `args`, `kwargs`. Client-side failures use `switchboard.error.*` URIs. */
export class WampError extends Error {
  constructor(uri: string, args?: Args, kwargs?: Kwargs);
  uri: string;
  error: string;
  args: Args;
  kwargs: Kwargs;
}

/** Return this from a procedure handler to answer with several positional and/or keyword results. */
export class Result {
  constructor(args?: Args, kwargs?: Kwargs);
  args: Args;
  kwargs: Kwargs;
}

export interface ModelChange<Row> {
  /** `synced`: the emitter resynced the model; every row was replaced (no pk, row or previous). */
  action: 'created' | 'updated' | 'deleted' | 'synced';
  pk?: unknown;
  /** The row after the change (undefined when deleted). */
  row?: Row;
  /** The row before the change (undefined when new). */
  previous?: Row;
  changed: string[];
}

/** Why a live collection could not recover the events it missed, and whether it reloaded its rows. */
export interface LiveReset {
  /**
   * `switchboard.error.history_gap` (the position was evicted, expired or is unknown, e.g. after a gateway
   * restart), `switchboard.error.no_history` (the topic keeps no history) or `switchboard.error.no_position`
   * (nothing to recover from).
   */
  reason: string;
  error: WampError;
  /**
   * True: the rows were reloaded from the model view. False: no view (`switchboard.error.no_such_model`) or one
   * not seeded since the gateway started (`switchboard.error.view_incomplete`): the rows may be stale
   * (`stale` is true) until a `synced` event; reload the page (or the rows from the web app).
   */
  reloaded: boolean;
}

export interface LiveCollection<Row = Record<string, unknown>> extends Iterable<Row> {
  /** The current rows: the first rows' order, then arrival order. */
  items(): IterableIterator<Row>;
  get(pk: unknown): Row | undefined;
  readonly size: number;
  /** The last publication applied (or the one the first rows are consistent with); null when unknown. */
  readonly position: number | null;
  /** The view's total row count at the last load from the view (not kept current). */
  readonly total?: number;
  /**
   * True while rows or changes may be missing: opened while the model view was not seeded yet
   * (`switchboard.error.view_incomplete`), or reset without a view to reload from. A reload from the view or a
   * `synced` model event clears it.
   */
  readonly stale: boolean;
  on(event: 'change', fn: (change: ModelChange<Row>) => void): () => void;
  /** Missed events could not be recovered; the rows were reloaded from the view, or the app should reload them. */
  on(event: 'reset', fn: (reset: LiveReset) => void): () => void;
  /** A recovery after a re-join failed for another reason (e.g. `wamp.error.not_authorized`). */
  on(event: 'error', fn: (error: WampError) => void): () => void;
  close(): Promise<void>;
}

export interface LiveOptions {
  /** The field identifying a row, read from the event's kwargs, else from its data (default "pk"). */
  key?: string;
  /** First rows rendered by the web app (with `after`); without them the rows come from the model view. */
  rows?: Record<string, unknown>[];
  /** The publication id `rows` are consistent with: the events since are recovered at once. */
  after?: number;
  /** Model view query (`switchboard.model.rows`): order, direction, page size. */
  order_by?: string;
  desc?: boolean;
  limit?: number;
  /** Only rows and events matching (the view's `filter` and the subscription's `_filter`). */
  filter?: Filter;
  /** Conflation by the gateway (`_rate_ms`): per window only each row's newest state. */
  rateMs?: number;
  /** Topic prefix of model events (default "models."). */
  prefix?: string;
  /** Events per get_events call while recovering (default 1000, at most 10000). */
  pageSize?: number;
}

/** One authid present on a topic (however many of its sessions subscribed), with its public state. */
export interface PresenceMember<State = Record<string, unknown>> {
  authid: string;
  /** The state its most recently updated session set (`setState`); null when none did. */
  state: State | null;
}

/**
 * Who holds an exact subscription to a topic, one member per authid, kept current (see `Client.presence`).
 * "join" comes when an authid's first session subscribes, "leave" when its last one unsubscribes or leaves,
 * "state" when its public state changes.
 */
export interface Presence<State = Record<string, unknown>> {
  readonly topic: string;
  readonly members: ReadonlyMap<string, PresenceMember<State>>;
  readonly size: number;
  /** The members, by authid. */
  list(): PresenceMember<State>[];
  on(event: 'join' | 'leave' | 'state', fn: (member: PresenceMember<State>) => void): () => void;
  /** Reloading the list after a re-join failed. */
  on(event: 'error', fn: (error: WampError) => void): () => void;
  close(): Promise<void>;
}

export class Client {
  readonly state: State | null;
  /** The transport of the current (or last) connection attempt. */
  readonly transport: 'websocket' | 'longpoll';
  /** The URL (one of `url`) of the node the session is joined to; null while not joined. */
  readonly connectedUrl: string | null;
  /** The joined session: id and WELCOME.Details (authid, authrole, authmethod, roles). */
  readonly session: { id: number; details: Details } | null;
  readonly ready: Promise<Client>;
  /** `publication` is the event's publication id. */
  subscribe(
    topic: string,
    handler: (args: Args, kwargs: Kwargs, details: Details, publication: number) => void,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  publish(topic: string, args?: Args, kwargs?: Kwargs, options?: PublishOptions): Promise<number | undefined>;
  call(procedure: string, args?: Args, kwargs?: Kwargs, options?: CallOptions): Promise<CallResult>;
  register(
    procedure: string,
    handler: (args: Args, kwargs: Kwargs, details: Details) => unknown,
    options?: Record<string, unknown>,
  ): Promise<Registration>;
  /**
   * Rows of `model` kept current from the model events on `models.<model>`; after every re-join it recovers
   * the events it missed from the gateway's history, or emits `reset`. Rejects when the first load fails.
   */
  live<Row = Record<string, unknown>>(model: string, options?: LiveOptions): Promise<LiveCollection<Row>>;
  /**
   * Who is on `topic` (`switchboard.presence.list`), kept current from `switchboard.presence.<topic>` and
   * reloaded after every re-join. The role needs subscribe on `topic` and on `switchboard.presence.<topic>`.
   */
  presence<State = Record<string, unknown>>(topic: string): Promise<Presence<State>>;
  /** Sets this session's public state (at most 4 KiB as JSON), shown by presence; set again after re-joins. */
  setState(state: Record<string, unknown>): Promise<void>;
  on(event: 'state', fn: (state: State, detail?: unknown) => void): () => void;
  /** Re-subscribe or re-register failures after a reconnect. */
  on(event: 'error', fn: (error: WampError) => void): () => void;
  close(): Promise<void>;
}

/** Connects and joins; resolves once the session is joined, rejects on ABORT (e.g. a bad ticket). */
export function connect(options: ConnectOptions): Promise<Client>;

/** The long-poll endpoint beside a WebSocket URL: `ws://host:port/ws` (or `/`) -> `http://host:port/lp`. */
export function longPollUrl(url: string): string;

/** WAMP over the gateway's HTTP long-poll (`/lp`), shaped like a WebSocket; JSON only. */
export class LongPoll {
  constructor(url: string, protocols: string[]);
  readonly protocol?: string;
  onopen: (() => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  onclose: (() => void) | null;
  send(data: string): void;
  close(): void;
}

/** Reconnect delay in ms before retry `attempt` (0-based): uniform in [0, min(cap, base * 2^attempt)). */
export function backoff(attempt: number, options?: RetryOptions): number;

