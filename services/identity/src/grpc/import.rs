//! ImportPersons on the wire: the first message names the export, then rows arrive in messages
//! of at most 1,000, and each message is answered in order once its rows are written. Messages
//! already waiting when one is taken (a client keeps a few in flight) are written with it in
//! one transaction, up to [`ROWS_PER_TRANSACTION`] rows. The use case (parsing, checking and
//! writing a chunk) is `app::Importer`; this module pumps the stream and stops it when the
//! client finishes, goes away, or the server drains.

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::server::Shutdown;
use bangfu_platform::wire;
use bangfu_proto::identity::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::BoxStream;
use super::wire::row_result_to_wire;
use crate::app::{Identity, Importer, batch_too_large};

/// Rows per message, at most.
const ROWS_PER_MESSAGE: usize = 1000;

/// Rows written in one transaction, at most. Each commit of a chunk rewrote the index pages its
/// rows touched and, on SQLite, fsynced the journal and often checkpointed it: taking the
/// messages a pipelining client already sent together commits a quarter as often. Memory stays
/// bounded by what the client keeps in flight, and a bad row still costs only itself (the
/// write splits on failure).
const ROWS_PER_TRANSACTION: usize = 4 * ROWS_PER_MESSAGE;

impl Identity {
    pub(super) async fn import_persons_stream(
        &self,
        caller: Arc<Principal>,
        mut inbound: Streaming<pb::ImportPersonsRequest>,
    ) -> Result<BoxStream<pb::ImportPersonsResponse>, Problem> {
        let first = inbound
            .message()
            .await
            .map_err(|status| {
                Problem::new(
                    tonic::Code::InvalidArgument,
                    ErrorReason::MessageMalformed,
                    status.message().to_string(),
                    "导入请求无法读取",
                )
            })?
            .ok_or_else(|| Problem::required("export_date", "导出日期"))?;
        let export_date = wire::date("export_date", first.export_date.as_ref())?;
        let importer = self.start_import(caller, export_date, &first.source_document).await?;
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(run_import(
            importer,
            inbound,
            first.rows,
            sender,
            self.shutdown().clone(),
        ));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver)))
    }
}

/// How reading stopped: the next message is awaited, or the stream is over.
#[derive(PartialEq)]
enum After {
    More,
    Finished,
    Gone,
    Oversized,
}

/// Reads chunks and answers each until the client finishes, goes away, or the server drains.
async fn run_import(
    importer: Importer,
    mut inbound: Streaming<pb::ImportPersonsRequest>,
    first: Vec<pb::ImportRow>,
    sender: mpsc::Sender<Result<pb::ImportPersonsResponse, Status>>,
    shutdown: Shutdown,
) {
    let mut total = 0usize;
    let mut after = if first.len() > ROWS_PER_MESSAGE {
        After::Oversized
    } else {
        After::More
    };
    let mut messages = if after == After::More { vec![first] } else { Vec::new() };
    loop {
        // The messages in hand and those already waiting, up to a transaction's rows.
        while after == After::More && messages.iter().map(Vec::len).sum::<usize>() < ROWS_PER_TRANSACTION {
            let waiting = tokio::select! {
                biased;
                next = inbound.message() => Some(next),
                () = std::future::ready(()) => None,
            };
            match waiting {
                Some(Ok(Some(message))) if message.rows.len() > ROWS_PER_MESSAGE => after = After::Oversized,
                Some(Ok(Some(message))) => messages.push(message.rows),
                Some(Ok(None)) => after = After::Finished,
                Some(Err(status)) => {
                    tracing::info!(import = %importer.id(), %status, "the importing client went away");
                    after = After::Gone;
                }
                None => break,
            }
        }
        // What came before an oversized message or the client's leaving is still written and
        // answered, as it would have been message by message.
        let sizes: Vec<usize> = messages.iter().map(Vec::len).filter(|size| *size > 0).collect();
        let rows: Vec<pb::ImportRow> = messages.drain(..).flatten().collect();
        if !rows.is_empty() {
            total += rows.len();
            match importer.chunk(rows).await {
                Ok(results) => {
                    let mut results = results.into_iter();
                    for size in sizes {
                        let answer = pb::ImportPersonsResponse {
                            results: results.by_ref().take(size).map(row_result_to_wire).collect(),
                        };
                        if sender.send(Ok(answer)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(problem) => {
                    let _ = sender.send(Err(Status::from(problem))).await;
                    return;
                }
            }
        }
        match after {
            After::More => {}
            After::Finished => break,
            After::Gone => return,
            After::Oversized => {
                let _ = sender.send(Err(batch_too_large("rows").into())).await;
                return;
            }
        }
        let next = tokio::select! {
            next = inbound.message() => next,
            () = shutdown.triggered() => {
                let problem = Problem::new(
                    tonic::Code::Unavailable,
                    ErrorReason::ShuttingDown,
                    "the server is shutting down; the rows answered so far are stored, send the file again",
                    "服务正在停止：已返回结果的行已保存，请重新导入该文件（不会重复登记）",
                );
                let _ = sender.send(Err(problem.into())).await;
                return;
            }
        };
        match next {
            Ok(Some(message)) if message.rows.len() > ROWS_PER_MESSAGE => after = After::Oversized,
            Ok(Some(message)) => messages.push(message.rows),
            Ok(None) => break,
            Err(status) => {
                tracing::info!(import = %importer.id(), %status, "the importing client went away");
                return;
            }
        }
    }
    importer.finish(total).await;
    tracing::info!(import = %importer.id(), rows = total, "import finished");
}
