//! The two file streams: ExportPaymentBatch (header, chunks of the file's bytes, trailer with
//! the control totals and the SHA-256 of every byte sent) and ImportBankResults (header, then
//! the file's bytes; line results back in chunks, then the reconciliation report).

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_proto::subsidy::v1 as pb;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::{BoxStream, wire};
use crate::app::{Export, ResultFile, Subsidy};
use crate::domain::files::Encoding;

/// The largest result file accepted: a province's payroll file is tens of megabytes.
const MAX_RESULT_FILE_BYTES: usize = 256 * 1024 * 1024;

/// Line results per response message.
const RESULTS_PER_MESSAGE: usize = 1000;

pub(super) fn export_stream(
    subsidy: Arc<Subsidy>,
    export: Export,
    encoding: Encoding,
    wire_encoding: i32,
    wire_format: i32,
) -> BoxStream<pb::ExportPaymentBatchResponse> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let batch = export.batch;
        let header = pb::ExportPaymentBatchResponse {
            item: Some(pb::export_payment_batch_response::Item::Header(pb::ExportFileHeader {
                file_name: export.file_name.clone(),
                format: wire_format,
                encoding: wire_encoding,
                payment_batch: batch.name(),
                export_number: i32::try_from(export.export_number).unwrap_or_default(),
            })),
        };
        if sender.send(Ok(header)).await.is_err() {
            return;
        }
        let mut hasher = Sha256::new();
        let mut size = 0i64;
        let mut after = 0;
        loop {
            let (text, last) = match subsidy.export_rows(&batch, after).await {
                Ok(rows) => rows,
                Err(problem) => {
                    let _ = sender.send(Err(problem.into())).await;
                    return;
                }
            };
            let done = last.is_none();
            let text = if done { subsidy.export_trailer(&batch) } else { text };
            let bytes = encoding.encode(&text);
            hasher.update(&bytes);
            size += bytes.len() as i64;
            let chunk = pb::ExportPaymentBatchResponse {
                item: Some(pb::export_payment_batch_response::Item::Chunk(bytes)),
            };
            if sender.send(Ok(chunk)).await.is_err() {
                return;
            }
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        let trailer = pb::ExportPaymentBatchResponse {
            item: Some(pb::export_payment_batch_response::Item::Trailer(
                pb::ExportFileTrailer {
                    line_count: batch.control_count,
                    total_amount: Some(wire::money_to_wire(batch.control_amount)),
                    file_sha256: hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
                    file_size: size,
                },
            )),
        };
        let _ = sender.send(Ok(trailer)).await;
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

fn malformed(message: &str, message_zh: &str) -> Problem {
    Problem::new(
        tonic::Code::InvalidArgument,
        ErrorReason::MessageMalformed,
        message,
        message_zh,
    )
}

pub(super) async fn import(
    subsidy: Arc<Subsidy>,
    caller: Arc<Principal>,
    mut inbound: Streaming<pb::ImportBankResultsRequest>,
) -> Result<BoxStream<pb::ImportBankResultsResponse>, Problem> {
    let first = inbound
        .message()
        .await
        .map_err(|status| malformed(status.message(), "结果文件无法读取"))?
        .ok_or_else(|| Problem::required("header", "结果文件说明"))?;
    let Some(pb::import_bank_results_request::Item::Header(header)) = first.item else {
        return Err(malformed(
            "the first message is the header",
            "第一条消息应为结果文件说明",
        ));
    };
    let id = wire::resource_id("header.payment_batch", &header.payment_batch, "paymentBatches")?;
    if header.format != pb::BankResultFileFormat::Csv as i32 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "header.format",
            "CSV is the layout served",
            "结果文件格式请选择CSV",
        ));
    }
    let encoding = wire::file_encoding("header.encoding", header.encoding)?;
    let file_name = header.file_name.trim().to_string();
    let bank_name = header.bank_name.trim().to_string();
    if file_name.is_empty() || bank_name.is_empty() {
        return Err(Problem::required(
            if file_name.is_empty() {
                "header.file_name"
            } else {
                "header.bank_name"
            },
            "文件名和银行名称",
        ));
    }
    let mut bytes = Vec::new();
    while let Some(message) = inbound
        .message()
        .await
        .map_err(|status| malformed(status.message(), "结果文件无法读取"))?
    {
        match message.item {
            Some(pb::import_bank_results_request::Item::Chunk(chunk)) => {
                if bytes.len() + chunk.len() > MAX_RESULT_FILE_BYTES {
                    return Err(malformed("the file is larger than 256 MiB", "结果文件超过256MB"));
                }
                bytes.extend_from_slice(&chunk);
            }
            _ => {
                return Err(malformed(
                    "only the first message is a header",
                    "只有第一条消息可以是文件说明",
                ));
            }
        }
    }
    let (results, report) = subsidy
        .import_bank_results(
            &caller,
            &id,
            ResultFile {
                file_name,
                bank_name,
                encoding,
                bytes,
            },
        )
        .await?;
    let mut messages: Vec<Result<pb::ImportBankResultsResponse, Status>> = results
        .chunks(RESULTS_PER_MESSAGE)
        .map(|chunk| {
            Ok(pb::ImportBankResultsResponse {
                item: Some(pb::import_bank_results_response::Item::LineResults(
                    pb::BankLineResults {
                        results: chunk.iter().map(wire::row_result_to_wire).collect(),
                    },
                )),
            })
        })
        .collect();
    messages.push(Ok(pb::ImportBankResultsResponse {
        item: Some(pb::import_bank_results_response::Item::Report(
            wire::reconciliation_to_wire(&report),
        )),
    }));
    Ok(Box::pin(tokio_stream::iter(messages)))
}
