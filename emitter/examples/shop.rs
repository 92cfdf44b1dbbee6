//! A small shop back-end: the demo of a page that shows the web app's data as it is now and stays right.
//! Its order handlers write the row, then tell every browser watching `models.shop.order`; `GET /`
//! serves `js-client/examples/orders.html` with the rows it has right now and the publication they are
//! consistent with, and the page keeps them current from there (recovering what it missed after a
//! reconnect, reloading from the gateway's model view or from here when history cannot tell).
//!
//! ```sh
//! switchboard gateway --config emitter/examples/shop.toml &
//! cargo run -p switchboard-emitter --example shop -- emitter/examples/shop.toml 127.0.0.1:3000
//! open http://127.0.0.1:3000/                                                 # the live order list
//! curl -X POST localhost:3000/orders -d '{"status": "new", "total": 30}'      # -> {"id": 1}
//! curl -X PUT localhost:3000/orders/1 -d '{"status": "paid"}'                # emits changed = [status]
//! curl -X DELETE localhost:3000/orders/1
//! curl localhost:3000/orders.json                                            # the "database"
//! ```
//!
//! The emitter comes from the same `switchboard.toml` as the gateway, so `[emitter] transport` picks
//! JSON-RPC, ZeroMQ or AMQP; whatever it is, `[ingest.jsonrpc]` must be there too, for
//! `last_publication`. Over AMQP, changes made while the gateway is down wait in RabbitMQ and reach the
//! pages once it is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Map, Value};
use switchboard_config::Config;
use switchboard_emitter::{EmitError, Emitter, EmitterBuilder};

/// The page, served with the rows filled in (it also works opened as a file: then it loads them from
/// the gateway's model view).
const PAGE: &str = include_str!("../../js-client/examples/orders.html");
/// The page's placeholder for what the server knows; `null` when the page is opened on its own.
const PAGE_DATA: &str = r#"<script type="application/json" id="shop-data">null</script>"#;
const TOPIC: &str = "models.shop.order";

/// The app's state: its "database", the emitter, and what the page needs to reach the gateway.
struct Shop {
    emitter: Emitter,
    orders: Mutex<HashMap<u64, Map<String, Value>>>,
    next_id: AtomicU64,
    /// `host:port` of the gateway's HTTP listener, as the browser reaches it.
    gateway: String,
    realm: String,
}

type Reply = (StatusCode, String);

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, body.to_string())
}

/// The change is stored; if the gateway did not take the event, say so instead of hiding it.
fn emitted(result: Result<switchboard_emitter::Receipt, EmitError>, ok: Value) -> Reply {
    match result {
        Ok(_) => reply(StatusCode::OK, ok),
        Err(error) => reply(
            StatusCode::BAD_GATEWAY,
            json!({"stored": true, "emitted": false, "error": error.to_string()}),
        ),
    }
}

fn object(body: &str) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_str(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "expected a JSON object"}),
        )),
    }
}

async fn create(State(shop): State<Arc<Shop>>, body: String) -> Reply {
    let row = match object(&body) {
        Ok(row) => row,
        Err(refusal) => return refusal,
    };
    let id = shop.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    lock(&shop).insert(id, row.clone());
    let result = shop.emitter.model("shop.order").created(id, &row).await;
    emitted(result, json!({"id": id}))
}

async fn update(State(shop): State<Arc<Shop>>, Path(id): Path<u64>, body: String) -> Reply {
    let fields = match object(&body) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    let (row, changed) = {
        let mut orders = lock(&shop);
        let Some(row) = orders.get_mut(&id) else {
            return reply(StatusCode::NOT_FOUND, json!({"error": "no such order"}));
        };
        let changed: Vec<String> = fields
            .iter()
            .filter(|(key, value)| row.get(*key) != Some(value))
            .map(|(key, _)| key.clone())
            .collect();
        row.extend(fields);
        (row.clone(), changed)
    };
    if changed.is_empty() {
        return reply(StatusCode::OK, json!({"id": id, "changed": []}));
    }
    let result = shop
        .emitter
        .model("shop.order")
        .updated(id, &row, &changed)
        .await;
    emitted(result, json!({"id": id, "changed": changed}))
}

async fn delete(State(shop): State<Arc<Shop>>, Path(id): Path<u64>) -> Reply {
    if lock(&shop).remove(&id).is_none() {
        return reply(StatusCode::NOT_FOUND, json!({"error": "no such order"}));
    }
    let result = shop.emitter.model("shop.order").deleted(id).await;
    emitted(result, json!({"id": id, "deleted": true}))
}

async fn show(State(shop): State<Arc<Shop>>, Path(id): Path<u64>) -> Reply {
    match lock(&shop).get(&id) {
        Some(row) => reply(StatusCode::OK, Value::Object(row.clone())),
        None => reply(StatusCode::NOT_FOUND, json!({"error": "no such order"})),
    }
}

/// Every order as a row (`pk` plus its fields), by id.
fn rows(shop: &Shop) -> Vec<(u64, Map<String, Value>)> {
    let mut rows: Vec<_> = lock(shop)
        .iter()
        .map(|(id, row)| (*id, row.clone()))
        .collect();
    rows.sort_by_key(|(id, _)| *id);
    rows
}

fn with_pk(id: u64, row: &Map<String, Value>) -> Value {
    let mut row = row.clone();
    row.insert("pk".into(), json!(id));
    Value::Object(row)
}

/// `GET /orders.json`: the whole "database", as the page shows it.
async fn list(State(shop): State<Arc<Shop>>) -> Response {
    let rows: Vec<Value> = rows(&shop)
        .iter()
        .map(|(id, row)| with_pk(*id, row))
        .collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        Value::Array(rows).to_string(),
    )
        .into_response()
}

/// Seeds (or reseeds) the gateway's view of `shop.order` with these rows.
///
/// Model views live in the gateway's memory: a gateway that (re)started has an unseeded view, which
/// answers `switchboard.error.view_incomplete` until the web app syncs it. A real app syncs at start
/// and after each gateway restart; this demo does it at start and on every page render, so a page that
/// reloads after a restart (it does when it could not recover: `reset` with `reloaded: false`) leaves a
/// seeded view behind for the next page to reload from.
async fn seed(shop: &Shop, rows: &[(u64, Map<String, Value>)]) {
    let rows = rows.iter().map(|(id, row)| (*id, row));
    if let Err(error) = shop.emitter.model("shop.order").sync(rows).await {
        eprintln!("shop: could not sync the view of shop.order: {error}");
    }
}

/// `GET /`: the order page with the rows as they are now and the position to follow them from.
///
/// The order matters: read the topic's last publication first, then the database. Every change
/// committed after that read is published after that position, so the page recovers it (it may see a
/// change that is already in its rows again: model events are idempotent). The other way round, a
/// change committed between the two reads would be in neither.
async fn page(State(shop): State<Arc<Shop>>) -> Response {
    let after = match shop.emitter.last_publication(TOPIC).await {
        Ok(after) => after,
        Err(error) => {
            eprintln!("shop: last_publication failed: {error}");
            let retry = "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=2>\
                         <title>Orders</title><p>The gateway is not reachable; retrying…";
            return (StatusCode::SERVICE_UNAVAILABLE, Html(retry)).into_response();
        }
    };
    let rows = rows(&shop);
    seed(&shop, &rows).await;
    let data = json!({
        "rows": rows.iter().map(|(id, row)| with_pk(*id, row)).collect::<Vec<_>>(),
        "after": after,
        "gateway": shop.gateway,
        "realm": shop.realm,
    });
    // Inside <script>, "</script>" or "<!--" in a string would end or derail it: escape every '<'.
    let data = data.to_string().replace('<', "\\u003c");
    let html = PAGE.replacen(
        PAGE_DATA,
        &format!(r#"<script type="application/json" id="shop-data">{data}</script>"#),
        1,
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn lock(shop: &Shop) -> std::sync::MutexGuard<'_, HashMap<u64, Map<String, Value>>> {
    shop.orders.lock().unwrap_or_else(|e| e.into_inner())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_else(|| "switchboard.toml".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    assert!(
        PAGE.contains(PAGE_DATA),
        "orders.html lost its shop-data placeholder"
    );
    let settings = Config::load(std::path::Path::new(&config))?;
    let mut gateway = settings.gateway.listen;
    if gateway.ip().is_unspecified() {
        gateway.set_ip([127, 0, 0, 1].into());
    }
    let realm = settings
        .realms
        .first()
        .map_or_else(|| "realm1".to_owned(), |realm| realm.name.clone());
    let shop = Arc::new(Shop {
        emitter: EmitterBuilder::from_config(&settings)?.build()?,
        orders: Mutex::default(),
        next_id: AtomicU64::new(0),
        gateway: gateway.to_string(),
        realm,
    });
    // Seed the view now (empty: this demo's database starts empty) so that standalone pages can load.
    seed(&shop, &[]).await;
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/orders.json", get(list))
        .route("/orders", post(create))
        .route("/orders/{id}", get(show).put(update).delete(delete))
        .with_state(shop);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("shop listening on http://{listen}, emitting per {config}");
    axum::serve(listener, app).await?;
    Ok(())
}
