//! `bangfu token issue`: a signed user token from a department issuer's key, for trying the
//! suite and for operators who hand tokens to department systems.

use std::path::PathBuf;
use std::time::Duration;

use bangfu_platform::auth::keys::{DEVELOPMENT_DEPARTMENT_KID, DEVELOPMENT_ISSUER, signing_key_path};
use bangfu_platform::auth::token::{TokenSigner, UserIdentity, unix_now};
use bangfu_platform::auth::{Department, RegionScope, Role};
use clap::Subcommand;

use crate::Failure;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed token for a department, role(s) and region scope.
    Issue {
        /// Department: hr, ndrc, agri or finance.
        #[arg(long)]
        dept: String,
        /// Role: clerk, reviewer, auditor or admin; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Region scope: a division-code prefix (2, 4, 6, 9 or 12 digits), or `*` for the whole country.
        #[arg(long)]
        region: String,
        /// Lifetime, e.g. 30m, 8h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The subject (user id) the token names, as the audit log will name every call made
        /// with it. Required with a deployment key; a development key (`bangfu up`) defaults
        /// to dev-user.
        #[arg(long)]
        subject: Option<String>,
        /// The keys directory.
        #[arg(long, env = "BANGFU_KEYS_DIR", default_value = "data/keys")]
        keys: PathBuf,
        /// The key id of the department issuer's signing key.
        #[arg(long, default_value = DEVELOPMENT_DEPARTMENT_KID)]
        key_id: String,
        /// A signing key file, instead of --keys and --key-id (a deployment's
        /// operator/signing.json from `bangfu keys init`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// The audience the token is for.
        #[arg(long, env = "BANGFU_TOKEN_AUDIENCE", default_value = "bangfu")]
        audience: String,
    },
}

pub fn run(command: TokenCommand) -> Result<(), Failure> {
    let TokenCommand::Issue {
        dept,
        roles,
        region,
        ttl,
        subject,
        keys,
        key_id,
        key,
        audience,
    } = command;
    let department = Department::parse(&dept)
        .ok_or_else(|| Failure::usage(format!("--dept {dept:?} is not one of hr, ndrc, agri, finance")))?;
    let roles = roles
        .iter()
        .map(|r| match Role::parse(r) {
            Some(Role::Service | Role::Partner) => Err(Failure::usage(format!(
                "--role {r}: service tokens are minted by the services themselves, partner tokens by the partner's issuer"
            ))),
            Some(role) => Ok(role),
            None => Err(Failure::usage(format!("--role {r:?} is not one of clerk, reviewer, auditor, admin"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let scope = RegionScope::parse(&region).ok_or_else(|| {
        Failure::usage(format!(
            "--region {region:?} must be a 2, 4, 6, 9 or 12 digit division code, or '*' for the whole country"
        ))
    })?;
    let ttl = parse_duration(&ttl)
        .ok_or_else(|| Failure::usage(format!("--ttl {ttl:?} is not a duration like 30m, 8h or 7d")))?;
    let key = key.unwrap_or_else(|| signing_key_path(&keys, &key_id));
    let signer = TokenSigner::load(&key).map_err(|e| Failure::usage(e.to_string()))?;
    let subject = subject_for(subject, signer.issuer())?;
    let user = UserIdentity {
        subject,
        department,
        roles,
        scope,
    };
    let claims = signer.user_claims(&user, &audience, unix_now(), ttl);
    let token = signer.sign(&claims).map_err(|e| Failure::failed(e.to_string()))?;
    say!("{token}");
    Ok(())
}

/// The subject to sign: the one given, or for a development key only, `dev-user`. A deployment's
/// token names a person, because the audit log names that person for every call made with it.
fn subject_for(given: Option<String>, issuer: &str) -> Result<String, Failure> {
    match given {
        Some(subject) if subject.trim().is_empty() => Err(Failure::usage("--subject is empty")),
        Some(subject) => Ok(subject),
        None if issuer == DEVELOPMENT_ISSUER => Ok("dev-user".into()),
        None => Err(Failure::usage(format!(
            "--subject is required with a deployment key (issuer {issuer}): name the person the token is for, as the audit log will name them for every call"
        ))),
    }
}

/// Parses `90s`, `30m`, `8h`, `7d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0m"), None);
        assert_eq!(parse_duration("1 hour"), None);
        assert_eq!(parse_duration("h"), None);
    }
}
