//! A small shop back-end whose order handlers emit model changes, the way a web app uses the emitter:
//! write the row, then tell every browser watching `models.shop.order`.
//!
//! ```sh
//! switchboard gateway --config switchboard.toml &
//! cargo run -p switchboard-emitter --example shop -- switchboard.toml 127.0.0.1:3000
//! curl -X POST localhost:3000/orders -d '{"status": "new", "total": 30}'      # -> {"id": 1}
//! curl -X PUT localhost:3000/orders/1 -d '{"status": "paid"}'                # emits changed = [status]
//! curl -X DELETE localhost:3000/orders/1
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{json, Map, Value};
use switchboard_emitter::{EmitError, Emitter};

/// The app's state: its "database" and the emitter.
struct Shop {
    emitter: Emitter,
    orders: Mutex<HashMap<u64, Map<String, Value>>>,
    next_id: AtomicU64,
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

fn lock(shop: &Shop) -> std::sync::MutexGuard<'_, HashMap<u64, Map<String, Value>>> {
    shop.orders.lock().unwrap_or_else(|e| e.into_inner())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_else(|| "switchboard.toml".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let shop = Arc::new(Shop {
        emitter: Emitter::from_config(&config)?,
        orders: Mutex::default(),
        next_id: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(show).put(update).delete(delete))
        .with_state(shop);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("shop listening on http://{listen}, emitting per {config}");
    axum::serve(listener, app).await?;
    Ok(())
}
