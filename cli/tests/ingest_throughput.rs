//! Ingestion throughput, emitter to subscriber, for each transport (DESIGN.md section 10, issue 3's
//! closing note). Ignored by default (it measures, it does not check behaviour); run with
//! `cargo test -p switchboard --test ingest_throughput -- --ignored --nocapture`
//! (add `--release` for numbers worth comparing).

mod ingest_support;
mod support;

use std::time::{Duration, Instant};

use ingest_support::{amqp_names, Subscriber, AMQP_URL, SECRET};
use serde_json::json;
use support::{Gateway, OPEN_REALM};
use switchboard_emitter::{Emitter, EmitterBuilder, Event};

/// Events per transport.
const EVENTS: usize = 5000;

async fn measure(name: &str, gateway: &Gateway, builder: EmitterBuilder) -> f64 {
    let topic = format!("com.example.throughput.{name}");
    let mut subscriber = Subscriber::join(&gateway.url()).await;
    subscriber.subscribe(&topic).await;
    let emitter: Emitter = builder
        .secret(SECRET)
        .buffer(EVENTS)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("emitter");
    // ~200-byte events, as in DESIGN.md section 10.
    let data =
        json!({"status": "paid", "customer": "c".repeat(60), "total": 1234.5, "items": [1, 2, 3]});
    let events: Vec<Event> = (0..EVENTS)
        .map(|i| {
            Event::new(topic.as_str())
                .with_kwarg("i", i)
                .with_kwarg("data", data.clone())
        })
        .collect();
    // Warm up the connection so that connecting is not measured.
    emitter
        .emit(Event::new(topic.as_str()))
        .await
        .expect("warm-up");
    subscriber.event().await;
    let started = Instant::now();
    let sending = tokio::spawn({
        let emitter = emitter.clone();
        async move {
            let results = emitter.emit_batch(events).await;
            (results, started.elapsed())
        }
    });
    for i in 0..EVENTS {
        let event = subscriber.event().await;
        assert_eq!(event[5]["i"], i, "{name}: in order, none lost");
    }
    let elapsed = started.elapsed();
    let (results, confirmed) = sending.await.expect("task");
    assert!(results.expect("buffered").iter().all(Result::is_ok));
    let rate = EVENTS as f64 / elapsed.as_secs_f64();
    println!(
        "{name:>8}: {EVENTS} events delivered in {:>7.1} ms = {rate:>6.0} events/s (emitter done after {:.1} ms)",
        elapsed.as_secs_f64() * 1000.0,
        confirmed.as_secs_f64() * 1000.0
    );
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn events_per_second_per_transport() {
    let (exchange, queue) = amqp_names("throughput");
    let config = format!(
        "[security]\nsecret = \"{SECRET}\"\n[ingest.jsonrpc]\nlisten = \"127.0.0.1:0\"\n\
         [ingest.zmq]\nendpoint = \"tcp://127.0.0.1:0\"\n\
         [ingest.amqp]\nurl = \"{AMQP_URL}\"\nexchange = \"{exchange}\"\nqueue = \"{queue}\"\n{OPEN_REALM}"
    );
    // A queue deep enough for the whole run: this measures ingestion, not the slow-consumer policy (a
    // subscriber reading one event at a time falls behind ZeroMQ's bursts).
    let gateway = Gateway::start("outbound_queue = 65536\nslow_consumer_ms = 60000", &config);
    let (rpc, zmq) = (gateway.jsonrpc_port(), gateway.zmq_port());
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("ingestion throughput, emitter -> gateway -> one WAMP subscriber ({build} build):");
    measure(
        "jsonrpc",
        &gateway,
        Emitter::builder().jsonrpc(format!("http://127.0.0.1:{rpc}")),
    )
    .await;
    measure(
        "zmq",
        &gateway,
        Emitter::builder().zmq(format!("tcp://127.0.0.1:{zmq}")),
    )
    .await;
    measure(
        "amqp",
        &gateway,
        Emitter::builder().amqp(AMQP_URL, &exchange, &queue),
    )
    .await;
    drop(gateway);
    delete_amqp_names(&exchange, &queue).await;
}

/// Removes this run's exchanges and queues from RabbitMQ.
async fn delete_amqp_names(exchange: &str, queue: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("channel");
    for queue in [queue.to_string(), format!("{queue}.dead-letter")] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [exchange.to_string(), format!("{exchange}.dead-letter")] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}
