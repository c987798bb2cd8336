//! Correcting a mistyped citizen ID: one person proposes, another reviews (four eyes), and
//! both steps are audited.

use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call};
use crate::format::resource_name;
use crate::print::show;

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
    show(
        "bangfu.identity.v1.CitizenIdCorrection",
        &correction.unwrap_or_default(),
        args.client.output().is_json(),
    )
}
