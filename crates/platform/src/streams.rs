//! Bounds for streaming calls. The unary time limit would cut a long import or a change-feed
//! watch short, so streams are bounded differently: a server stream ends when the server
//! drains (else graceful shutdown waits for it forever), and a client stream that sends
//! nothing for the idle limit is ended with DEADLINE_EXCEEDED.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_stream::Stream;

use crate::error::{ErrorReason, Problem};
use crate::server::Shutdown;

/// A stream that ends, cleanly, once the server starts shutting down.
pub struct UntilShutdown<S> {
    stream: Pin<Box<S>>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

/// Ends `stream` when `shutdown` is triggered; the client sees the stream close with OK and
/// resumes from its last cursor on another replica.
pub fn until_shutdown<S: Stream>(stream: S, shutdown: Shutdown) -> UntilShutdown<S> {
    UntilShutdown {
        stream: Box::pin(stream),
        shutdown: Box::pin(async move { shutdown.triggered().await }),
        done: false,
    }
}

impl<S: Stream> Stream for UntilShutdown<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(None);
        }
        self.stream.as_mut().poll_next(cx)
    }
}

/// Reads a client stream, failing with DEADLINE_EXCEEDED when no message arrives for `idle`.
pub struct IdleBounded<S> {
    stream: Pin<Box<S>>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

pub fn idle_bounded<S>(stream: S, idle: Duration) -> IdleBounded<S> {
    IdleBounded {
        stream: Box::pin(stream),
        idle,
        timer: Box::pin(tokio::time::sleep(idle)),
        expired: false,
    }
}

impl<S, T> Stream for IdleBounded<S>
where
    S: Stream<Item = Result<T, tonic::Status>>,
{
    type Item = Result<T, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.stream.as_mut().poll_next(cx) {
            let deadline = tokio::time::Instant::now() + self.idle;
            self.timer.as_mut().reset(deadline);
            return Poll::Ready(item);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.expired = true;
            let seconds = self.idle.as_secs();
            return Poll::Ready(Some(Err(Problem::new(
                tonic::Code::DeadlineExceeded,
                ErrorReason::Timeout,
                format!("no message arrived for {seconds} s; the stream was ended"),
                "长时间未收到数据，连接已结束，请重新提交",
            )
            .into())));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn a_watch_ends_when_the_server_drains() {
        let shutdown = Shutdown::new();
        let endless = tokio_stream::iter(0..).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            i
        });
        let mut stream = until_shutdown(endless, shutdown.clone());
        assert_eq!(stream.next().await, Some(0));
        shutdown.trigger();
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_stream_is_ended_with_deadline_exceeded() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<u32, tonic::Status>>(4);
        let mut stream = idle_bounded(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
            Duration::from_secs(30),
        );
        sender.send(Ok(1)).await.expect("send");
        assert_eq!(stream.next().await.map(|r| r.ok()), Some(Some(1)));
        // Nothing more arrives; paused time jumps ahead to the idle limit.
        let ended = stream.next().await.expect("an error item");
        let status = ended.expect_err("idle");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(stream.next().await.is_none());
        drop(sender);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_sending_is_never_cut() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<u32, tonic::Status>>(4);
        let mut stream = idle_bounded(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
            Duration::from_secs(30),
        );
        for i in 0..10 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            sender.send(Ok(i)).await.expect("send");
            assert_eq!(stream.next().await.map(|r| r.ok()), Some(Some(i)));
        }
    }
}
