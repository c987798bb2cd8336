//! ImportPersons on the wire: the first message names the export, then rows arrive in messages
//! of at most 1,000 and each message's results go back before the next is read. The use case
//! (parsing, checking and writing a chunk) is `app::Importer`; this module pumps the stream
//! and stops it when the client finishes, goes away, or the server drains.

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

/// Reads chunks and answers each until the client finishes, goes away, or the server drains.
async fn run_import(
    importer: Importer,
    mut inbound: Streaming<pb::ImportPersonsRequest>,
    mut rows: Vec<pb::ImportRow>,
    sender: mpsc::Sender<Result<pb::ImportPersonsResponse, Status>>,
    shutdown: Shutdown,
) {
    let mut total = 0usize;
    loop {
        if rows.len() > ROWS_PER_MESSAGE {
            let _ = sender.send(Err(batch_too_large("rows").into())).await;
            return;
        }
        if !rows.is_empty() {
            total += rows.len();
            let answer = importer
                .chunk(std::mem::take(&mut rows))
                .await
                .map(|results| pb::ImportPersonsResponse {
                    results: results.into_iter().map(row_result_to_wire).collect(),
                })
                .map_err(Status::from);
            let failed = answer.is_err();
            if sender.send(answer).await.is_err() || failed {
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
            Ok(Some(message)) => rows = message.rows,
            Ok(None) => {
                importer.finish(total).await;
                break;
            }
            Err(status) => {
                tracing::info!(import = %importer.id(), %status, "the importing client went away");
                return;
            }
        }
    }
    tracing::info!(import = %importer.id(), rows = total, "import finished");
}
