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

/// The answers of a bulk call, one per message of the client's stream.
pub type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// Answers a bulk call's client stream one message at a time, in order, until the client
/// finishes or goes away, or the server drains. `answer` handles one message; its error ends the
/// stream with that error. The rows of a bulk call are idempotent, so a drain ends the stream
/// with UNAVAILABLE telling the client to send the rest again: the answered messages are stored.
pub fn answer_each<In, Req, Resp, F, Fut>(inbound: In, shutdown: Shutdown, mut answer: F) -> Answers<Resp>
where
    In: Stream<Item = Result<Req, tonic::Status>> + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    F: FnMut(Req) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Resp, Problem>> + Send,
{
    use tokio_stream::StreamExt;
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut inbound = Box::pin(inbound);
        loop {
            // A drain wins over a message waiting: nothing new is started once it begins.
            let next = tokio::select! {
                biased;
                () = shutdown.triggered() => {
                    let problem = Problem::new(
                        tonic::Code::Unavailable,
                        ErrorReason::ShuttingDown,
                        "the server is shutting down; what was answered so far is stored, send the rest again",
                        "服务正在停止：已返回结果的部分已保存，请重新提交其余部分（不会重复登记）",
                    );
                    let _ = sender.send(Err(problem.into())).await;
                    return;
                }
                next = inbound.next() => next,
            };
            let request = match next {
                Some(Ok(request)) => request,
                None => return,
                // A message that could not be read (too large, malformed) ends the call with
                // that error; a client gone away reads nothing of it.
                Some(Err(status)) => {
                    tracing::debug!(status = %status.message(), "a bulk call's stream ended in error");
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            };
            let answered = answer(request).await.map_err(tonic::Status::from);
            let failed = answered.is_err();
            if sender.send(answered).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
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

    #[tokio::test]
    async fn bulk_messages_are_answered_in_order_and_an_error_ends_the_stream() {
        let inbound = tokio_stream::iter(vec![Ok(1u32), Ok(2), Ok(0), Ok(4)]);
        let answers = answer_each(inbound, Shutdown::new(), |n: u32| async move {
            if n == 0 { Err(Problem::internal()) } else { Ok(n * 10) }
        });
        let got: Vec<Result<u32, tonic::Code>> = answers.map(|a| a.map_err(|s| s.code())).collect().await;
        assert_eq!(got, vec![Ok(10), Ok(20), Err(tonic::Code::Internal)]);
    }

    #[tokio::test]
    async fn a_drain_ends_a_bulk_call_with_unavailable() {
        let shutdown = Shutdown::new();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<u32, tonic::Status>>(4);
        let mut answers = answer_each(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
            shutdown.clone(),
            |n: u32| async move { Ok(n) },
        );
        sender.send(Ok(7)).await.expect("send");
        assert_eq!(answers.next().await.map(|a| a.ok()), Some(Some(7)));
        shutdown.trigger();
        let ended = answers.next().await.expect("an error item").expect_err("drained");
        assert_eq!(ended.code(), tonic::Code::Unavailable);
        assert!(answers.next().await.is_none());
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
