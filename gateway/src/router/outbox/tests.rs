use super::*;

fn frame(bytes: usize) -> Frame {
    Frame::Text("x".repeat(bytes).into())
}

fn limits(max_bytes: usize, max_frames: usize, slow_consumer: Duration) -> QueueLimits {
    QueueLimits {
        max_bytes,
        max_frames,
        slow_consumer,
    }
}

fn abort_reason(rx: &mut OutboxReceiver) -> Option<(String, String)> {
    match rx.closing.get() {
        Some(Closing::Abort { reason, message }) => Some((reason, message)),
        _ => None,
    }
}

#[test]
fn passing_the_byte_bound_closes_instead_of_dropping() {
    let (outbox, mut rx) =
        Outbox::new(Serializer::Json, limits(1000, 100, Duration::from_secs(60)));
    for _ in 0..9 {
        assert!(outbox.send(frame(100)));
    }
    assert!(!outbox.is_closing());
    assert!(!outbox.send(frame(101)), "1001 bytes do not fit");
    let (reason, message) = abort_reason(&mut rx).expect("closed with ABORT");
    assert_eq!(reason, SLOW_CONSUMER);
    assert!(message.contains("900 bytes queued"), "{message}");
    assert!(message.contains("bound of 1000 bytes"), "{message}");
    assert!(rx.frames.try_recv().is_none(), "the queue was discarded");
    assert_eq!(outbox.queued_bytes(), 0);
    assert!(!outbox.send(frame(1)), "nothing after the close: no gap");
}

#[test]
fn the_frame_count_is_a_second_guard() {
    let (outbox, mut rx) = Outbox::new(
        Serializer::Json,
        limits(1 << 20, 3, Duration::from_secs(60)),
    );
    for _ in 0..3 {
        assert!(outbox.send(frame(1)));
    }
    assert!(!outbox.send(frame(1)));
    let (_, message) = abort_reason(&mut rx).expect("closed");
    assert!(message.contains("bound of 3 messages"), "{message}");
}

#[test]
fn written_frames_make_room_and_reset_the_low_water_clock() {
    let (outbox, rx) = Outbox::new(Serializer::Json, limits(1000, 100, Duration::from_secs(60)));
    assert!(outbox.stalled_at().is_none());
    for _ in 0..3 {
        assert!(outbox.send(frame(100)));
    }
    assert!(
        outbox.is_backed_up(),
        "300 bytes are above a quarter of 1000"
    );
    assert!(outbox.stalled_at().is_some());
    let mut batch = VecDeque::new();
    assert!(rx.frames.take_batch(&mut batch));
    assert_eq!(
        outbox.queued_bytes(),
        300,
        "taken but not written still counts"
    );
    for frame in batch.drain(..) {
        rx.frames.written(frame.len());
    }
    assert_eq!(outbox.queued_bytes(), 0);
    assert!(!outbox.is_backed_up());
    assert!(outbox.stalled_at().is_none(), "below low water again");
    for _ in 0..9 {
        assert!(outbox.send(frame(100)), "room again");
    }
}

#[test]
fn a_queue_above_low_water_for_the_limit_is_stalled() {
    let (outbox, mut rx) = Outbox::new(Serializer::Json, limits(1000, 100, Duration::ZERO));
    assert!(outbox.send(frame(100)));
    assert!(!outbox.check_stalled(), "below low water: never stalled");
    assert!(outbox.send(frame(200)));
    assert!(outbox.check_stalled());
    let (reason, message) = abort_reason(&mut rx).expect("closed");
    assert_eq!(reason, SLOW_CONSUMER);
    assert!(message.contains("300 bytes queued"), "{message}");
    assert!(
        message.contains("low-water mark for more than 0 ms"),
        "{message}"
    );
}

#[test]
fn the_first_close_request_wins() {
    let (outbox, rx) = Outbox::new(Serializer::Json, limits(1000, 1, Duration::from_secs(1)));
    assert!(outbox.close(Closing::Silent));
    assert!(!outbox.close(Closing::Abort {
        reason: "a".into(),
        message: "b".into()
    }));
    assert_eq!(rx.closing.get(), Some(Closing::Silent));
}

#[tokio::test]
async fn crossing_the_low_water_mark_is_signalled_both_ways() {
    let (outbox, rx) = Outbox::new(Serializer::Json, limits(1000, 100, Duration::from_secs(60)));
    assert!(outbox.send(frame(300)));
    tokio::time::timeout(Duration::from_secs(1), outbox.level_changed())
        .await
        .expect("going above signalled");
    let frame = rx.frames.try_recv().expect("queued");
    assert_eq!(frame.len(), 300);
    tokio::time::timeout(Duration::from_secs(1), outbox.level_changed())
        .await
        .expect("going below signalled");
}

#[test]
fn a_queue_with_nothing_written_between_two_checks_is_stalled() {
    let (outbox, mut rx) = Outbox::new(
        Serializer::Json,
        limits(1 << 20, 100, Duration::from_secs(60)),
    );
    let mut progress = Progress::default();
    assert!(
        !outbox.check_progress(&mut progress),
        "idle: nothing queued"
    );
    assert!(outbox.send(frame(10)));
    assert!(
        !outbox.check_progress(&mut progress),
        "first check with a frame queued: it may just have arrived"
    );
    let written = rx.frames.try_recv().expect("queued");
    assert_eq!(written.len(), 10);
    assert!(outbox.send(frame(10)));
    assert!(
        !outbox.check_progress(&mut progress),
        "something was written since"
    );
    assert!(
        outbox.check_progress(&mut progress),
        "queued at two checks, nothing written in between: stalled, though far below low water"
    );
    let (reason, message) = abort_reason(&mut rx).expect("closed");
    assert_eq!(reason, SLOW_CONSUMER);
    assert!(message.contains("nothing was written"), "{message}");
}
