//! Latency: a fan-out at a fixed publish rate for a fixed time, reporting publish-to-delivery
//! percentiles from the sampled subscribers.

use std::time::Duration;

use anyhow::bail;

use crate::fanout::{flow, FanoutOptions};
use crate::report::FlowReport;
use crate::wire::Serializer;

/// Settings of a latency run.
#[derive(Debug, Clone)]
pub struct LatencyOptions {
    /// Gateway WebSocket URL (the subscribers', and the publisher's unless `publish_url` is set).
    pub url: String,
    /// Further subscriber URLs, as in [`FanoutOptions::spread_urls`].
    pub spread_urls: Vec<String>,
    /// The publisher's URL when it is not `url`.
    pub publish_url: Option<String>,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Events per second.
    pub rate: f64,
    /// Seconds of publishing.
    pub duration_s: f64,
    /// EVENT frame size in bytes.
    pub size: usize,
    /// Serializer for every connection.
    pub serializer: Serializer,
    /// Every K-th subscriber (and the first) measures latency.
    pub sample_every: usize,
    /// The topic.
    pub topic: String,
    /// How long deliveries may take after the first publish, beyond `duration_s`.
    pub timeout: Duration,
}

impl Default for LatencyOptions {
    fn default() -> Self {
        let fanout = FanoutOptions::default();
        LatencyOptions {
            url: fanout.url,
            spread_urls: fanout.spread_urls,
            publish_url: fanout.publish_url,
            subscribers: 1000,
            rate: 500.0,
            duration_s: 10.0,
            size: fanout.size,
            serializer: fanout.serializer,
            sample_every: fanout.sample_every,
            topic: fanout.topic,
            timeout: fanout.timeout,
        }
    }
}

/// Runs the fixed-rate scenario and reports it.
pub async fn run(options: &LatencyOptions) -> anyhow::Result<FlowReport> {
    if !(options.rate > 0.0 && options.duration_s > 0.0) {
        bail!("rate and duration must be positive");
    }
    let events = (options.rate * options.duration_s).round().max(1.0) as u64;
    let fanout = FanoutOptions {
        url: options.url.clone(),
        spread_urls: options.spread_urls.clone(),
        publish_url: options.publish_url.clone(),
        subscribers: options.subscribers,
        events,
        size: options.size,
        serializer: options.serializer,
        rate: Some(options.rate),
        sample_every: options.sample_every,
        topic: options.topic.clone(),
        timeout: options.timeout + Duration::from_secs_f64(options.duration_s),
        ..FanoutOptions::default()
    };
    flow("latency", &fanout).await
}
