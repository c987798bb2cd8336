//! Who is calling and what they may do. A JWT (EdDSA) names the subject, department, roles and
//! region scope; one table (`permissions`) turns department and role — or, for a service
//! token, the service's name — into permissions; one tower layer (`layer`) checks every RPC's
//! permission before the handler runs and hands the handler a verified [`Principal`].

pub mod client;
pub mod keys;
pub mod layer;
pub mod permissions;
pub mod token;
pub mod verify;

use std::fmt;
use std::sync::Arc;

pub use permissions::{Access, CallKind, MethodRule, Permission, PermissionSet};

use crate::error::{ErrorReason, Problem};

/// The metadata key that carries the user's token when a service calls on the user's behalf.
pub const ON_BEHALF_OF_HEADER: &str = "x-bangfu-on-behalf-of";

/// A department that owns part of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Department {
    /// Human resources and social security (人社).
    Hr,
    /// Development and reform (发改).
    Ndrc,
    /// Agriculture and rural affairs / rural revitalization (农业农村 / 乡村振兴).
    Agri,
    /// Finance (财政).
    Finance,
}

impl Department {
    pub const ALL: [Department; 4] = [Self::Hr, Self::Ndrc, Self::Agri, Self::Finance];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hr => "hr",
            Self::Ndrc => "ndrc",
            Self::Agri => "agri",
            Self::Finance => "finance",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// A role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Enters and changes records (经办).
    Clerk,
    /// Approves what a clerk proposed (审核); never the same subject as the maker.
    Reviewer,
    /// Reads records and the audit log (审计).
    Auditor,
    /// Administers the suite.
    Admin,
    /// A bangfu service calling another.
    Service,
    /// The partner province's exchange desk.
    Partner,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Self::Clerk,
        Self::Reviewer,
        Self::Auditor,
        Self::Admin,
        Self::Service,
        Self::Partner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clerk => "clerk",
            Self::Reviewer => "reviewer",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
            Self::Service => "service",
            Self::Partner => "partner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Which persons and records a caller sees: a leading part of the 12-digit division code, or
/// the whole country.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegionScope {
    /// `*`: the whole country, said explicitly.
    Country,
    /// A division-code prefix of 2, 4, 6, 9 or 12 digits.
    Prefix(String),
    /// Two scopes that do not overlap: nothing is visible.
    Nothing,
}

impl RegionScope {
    /// Parses `*` or a 2, 4, 6, 9 or 12 digit division-code prefix.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self::Country);
        }
        let valid_length = matches!(text.len(), 2 | 4 | 6 | 9 | 12);
        (valid_length && text.bytes().all(|b| b.is_ascii_digit())).then(|| Self::Prefix(text.to_string()))
    }

    /// Whether a record in `region_code` (a 12-digit code or a prefix) lies inside the scope.
    pub fn contains(&self, region_code: &str) -> bool {
        match self {
            Self::Country => true,
            Self::Prefix(prefix) => region_code.starts_with(prefix.as_str()),
            Self::Nothing => false,
        }
    }

    /// The prefix a listing is narrowed to: this scope and the asked prefix (empty: all),
    /// whichever is narrower ("" for the whole country); None when they do not overlap.
    pub fn narrowed(&self, asked: &str) -> Option<String> {
        let asked_scope = if asked.is_empty() {
            Self::Country
        } else {
            Self::Prefix(asked.to_string())
        };
        match self.intersect(&asked_scope) {
            Self::Country => Some(String::new()),
            Self::Prefix(prefix) => Some(prefix),
            Self::Nothing => None,
        }
    }

    /// What both scopes see: a service acting for a user gets only the overlap.
    pub fn intersect(&self, other: &RegionScope) -> RegionScope {
        match (self, other) {
            (Self::Nothing, _) | (_, Self::Nothing) => Self::Nothing,
            (Self::Country, scope) | (scope, Self::Country) => scope.clone(),
            (Self::Prefix(a), Self::Prefix(b)) => {
                if a.starts_with(b.as_str()) {
                    Self::Prefix(a.clone())
                } else if b.starts_with(a.as_str()) {
                    Self::Prefix(b.clone())
                } else {
                    Self::Nothing
                }
            }
        }
    }
}

impl fmt::Display for RegionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Country => f.write_str("*"),
            Self::Prefix(prefix) => f.write_str(prefix),
            Self::Nothing => f.write_str("(none)"),
        }
    }
}

/// The verified caller of an RPC, as the handler receives it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The subject whose action this is: the user's, when a service acts for one.
    pub subject: String,
    pub issuer: String,
    /// The user's department; `None` for a service acting on its own.
    pub department: Option<Department>,
    pub roles: Vec<Role>,
    /// The effective scope: the overlap of the service's and the user's, when both are present.
    pub scope: RegionScope,
    /// The service that made the call for the user, or that acts on its own.
    pub acting_service: Option<String>,
    /// The token id(s), for the audit trail.
    pub token_id: String,
    pub permissions: PermissionSet,
}

impl Principal {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// The one scope check services call on every record they touch: a record is visible when
    /// any of its regions (registered, residence, …) lies in the caller's scope. Anything else is
    /// NOT_FOUND, exactly as if it did not exist.
    pub fn ensure_sees<'a>(
        &self,
        resource: &str,
        record_regions: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Problem> {
        if record_regions.into_iter().any(|region| self.scope.contains(region)) {
            Ok(())
        } else {
            Err(Problem::not_found(resource))
        }
    }

    /// Refuses a check by the subject who made the change (maker ≠ checker).
    pub fn ensure_not_maker(&self, maker_subject: &str) -> Result<(), Problem> {
        if self.subject == maker_subject {
            Err(Problem::new(
                tonic::Code::PermissionDenied,
                ErrorReason::SameMakerAndChecker,
                "the subject who made a change may not approve it",
                "经办人不能审核自己提交的事项，请由其他审核人员办理",
            ))
        } else {
            Ok(())
        }
    }
}

/// The principal the auth layer attached to a request, shared, so a handler can keep it after
/// taking the request's message.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Arc<Principal>, tonic::Status> {
    principal(request).map(|_| ()).and_then(|()| {
        request
            .extensions()
            .get::<Arc<Principal>>()
            .cloned()
            .ok_or_else(|| tonic::Status::unauthenticated("no verified caller"))
    })
}

/// The principal the auth layer attached to a request.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request
        .extensions()
        .get::<Arc<Principal>>()
        .map(Arc::as_ref)
        .ok_or_else(|| {
            // Reached only if a service is mounted without the auth layer: refuse rather than serve.
            tonic::Status::from(Problem::new(
                tonic::Code::Unauthenticated,
                ErrorReason::TokenMissing,
                "no verified caller on this request",
                "未能识别调用者身份，请重新登录后再试",
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_county_scope_sees_its_villages_only() {
        let scope = RegionScope::parse("370402").expect("scope");
        assert!(scope.contains("370402001001"));
        assert!(!scope.contains("370403001001"));
        assert!(RegionScope::Country.contains("500101001001"));
    }

    #[test]
    fn scopes_of_odd_length_or_with_letters_are_refused() {
        assert_eq!(RegionScope::parse("3704021"), None);
        assert_eq!(RegionScope::parse("37a4"), None);
        assert_eq!(RegionScope::parse(""), None);
    }

    #[test]
    fn a_service_acting_for_a_user_sees_only_the_overlap() {
        let city = RegionScope::parse("3704").expect("city");
        let county = RegionScope::parse("370402").expect("county");
        let other = RegionScope::parse("5001").expect("other");
        assert_eq!(city.intersect(&county), county);
        assert_eq!(county.intersect(&city), county);
        assert_eq!(RegionScope::Country.intersect(&county), county);
        assert_eq!(city.intersect(&other), RegionScope::Nothing);
        assert!(!RegionScope::Nothing.contains("370402001001"));
    }
}
