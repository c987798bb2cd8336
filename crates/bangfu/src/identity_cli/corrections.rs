//! Correcting a mistyped citizen ID: one person proposes, another reviews (four eyes), and
//! both steps are audited.

use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call, print_rows};
use crate::format::{enum_label, enum_wire, or_dash, resource_name, stamp_json, stamp_text};

#[derive(Debug, Args)]
pub struct CorrectIdArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person whose citizen ID is wrong: persons/… or the bare id.
    #[arg(required_unless_present = "approve", conflicts_with = "approve")]
    person: Option<String>,
    /// The right citizen ID (18 characters), as the document shows it.
    #[arg(long, required_unless_present = "approve", conflicts_with = "approve")]
    citizen_id: Option<String>,
    /// Review a proposed correction instead (persons/…/citizenIdCorrections/…) and apply it.
    /// The reviewer needs identity.pii.read and must not be the proposer.
    #[arg(long, value_name = "CORRECTION_NAME")]
    approve: Option<String>,
    /// With --approve: refuse the correction instead of applying it.
    #[arg(long, requires = "approve")]
    reject: bool,
    /// Why, 1 to 500 characters: for a proposal, why the ID is wrong and which document shows
    /// the right one; for a review, the reviewer's reason.
    #[arg(long)]
    reason: String,
    /// A unique id making a retry of a proposal safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

pub(super) async fn correct_id(args: CorrectIdArgs) -> Result<(), Failure> {
    let mut identity = connect_identity(&args.client).await?;
    let correction = match (args.approve, args.person, args.citizen_id) {
        (Some(name), _, _) => {
            call(
                identity.approve_citizen_id_correction(pb::ApproveCitizenIdCorrectionRequest {
                    name,
                    approve: !args.reject,
                    reason: args.reason,
                }),
            )
            .await?
            .correction
        }
        (None, Some(person), Some(new_citizen_id)) => {
            call(identity.correct_citizen_id(pb::CorrectCitizenIdRequest {
                person: resource_name("persons", &person),
                correction: Some(pb::CitizenIdCorrection {
                    new_citizen_id,
                    reason: args.reason,
                    ..Default::default()
                }),
                request_id: args.request_id,
            }))
            .await?
            .correction
        }
        _ => {
            return Err(Failure::usage(
                "give PERSON and --citizen-id to propose a correction, or --approve CORRECTION_NAME to review one",
            ));
        }
    };
    let correction = correction.unwrap_or_default();
    if args.client.json {
        say!(
            "{}",
            serde_json::json!({
                "name": correction.name,
                "new_citizen_id": correction.new_citizen_id,
                "reason": correction.reason,
                "state": enum_wire::<pb::CorrectionState>(correction.state),
                "propose_subject": correction.propose_subject,
                "propose_time": stamp_json(correction.propose_time.as_ref().map(|t| t.seconds)),
                "review_subject": correction.review_subject,
                "review_time": stamp_json(correction.review_time.as_ref().map(|t| t.seconds)),
            })
        );
    } else {
        print_rows(&[
            ("correction", correction.name.clone()),
            ("new citizen id", correction.new_citizen_id.clone()),
            ("state", enum_label::<pb::CorrectionState>(correction.state)),
            ("reason", correction.reason.clone()),
            ("proposed by", correction.propose_subject.clone()),
            (
                "proposed at",
                stamp_text(correction.propose_time.as_ref().map(|t| t.seconds)),
            ),
            ("reviewed by", or_dash(&correction.review_subject).to_string()),
            (
                "reviewed at",
                stamp_text(correction.review_time.as_ref().map(|t| t.seconds)),
            ),
        ]);
    }
    Ok(())
}
