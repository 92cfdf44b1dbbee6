//! Micro-benchmark of the fan-out encode: one EVENT with 200 bytes of Arguments and a small ArgumentsKw,
//! encoded with both serializers. It exists to compare the encode path before and after a codec change;
//! it asserts nothing. Run with `cargo run --release -p switchboard-gateway --example encode_event`.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use switchboard_gateway::wamp::{Dict, Message, Payload, Serializer};

/// Encodes per measurement; three measurements per serializer, the best reported.
const ROUNDS: u32 = 200_000;

fn main() {
    let mut kwargs = Dict::new();
    kwargs.insert("source".into(), json!("bench"));
    kwargs.insert("seq".into(), json!(12345));
    let mut details = Dict::new();
    details.insert("topic".into(), json!("com.switchboard.bench.events"));
    let event = Message::Event {
        subscription: 4_503_599_627_370_496,
        publication: 1_234_567,
        details,
        payload: Payload::ArgsKwargs(vec![Value::String("x".repeat(200))], kwargs),
    };
    for serializer in [Serializer::Json, Serializer::Msgpack] {
        let size = serializer.encode(&event).len();
        let best = (0..3)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..ROUNDS {
                    black_box(serializer.encode(black_box(&event)));
                }
                start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "{serializer:?}: {size} B per EVENT, {best:.0} ns per encode (best of 3 x {ROUNDS})"
        );
    }
}
