//! The one permission table of the suite. Two lists live here and nowhere else:
//! - `PLATFORM_METHODS`: the RPCs every server has, with the permission each needs (or `Public`
//!   for health and reflection). A service lists its own RPCs the same way in its crate
//!   (`METHODS`, given in its descriptor), naming permissions from this file. An RPC that is
//!   not listed is denied to everyone, so a new method is closed until it is named.
//! - `GRANTS` and `SERVICE_GRANTS`: which permissions a (department, role) pair, or a calling
//!   service, holds.
//!
//! Auditors read this file to know who may do what (and `bangfu permissions`, or PERMISSIONS.md,
//! for every method with the roles and services that may call it); services never check roles
//! themselves.

use super::{Department, Role};

macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// A permission an RPC needs. The name is what `WhoAmI` shows and the audit records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($(#[$doc])* $variant,)+
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)+
                }
            }
        }
    };
}

permissions! {
    /// See one's own verified identity.
    DiagnosticsWhoAmI => "diagnostics.whoami",
    /// See the server's version and limits.
    DiagnosticsServerInfo => "diagnostics.server_info",

    /// Read persons and households (masked).
    IdentityPersonsRead => "identity.persons.read",
    /// Create and change persons and households.
    IdentityPersonsWrite => "identity.persons.write",
    /// Find a person by citizen ID (audited, rate-limited).
    IdentityPersonsLookup => "identity.persons.lookup",
    /// Import persons from the national monitoring system's export.
    IdentityPersonsImport => "identity.persons.import",
    /// Read citizen IDs, names and phones in clear, with a stated purpose (audited).
    IdentityPiiRead => "identity.pii.read",
    /// Propose a citizen-ID correction.
    IdentityCitizenIdPropose => "identity.citizen_id.propose",
    /// Approve a citizen-ID correction (a different subject from the proposer).
    IdentityCitizenIdApprove => "identity.citizen_id.approve",
    /// Certify, revoke and annul category certifications.
    IdentityCategoriesCertify => "identity.categories.certify",
    /// Confirm pending certifications in bulk.
    IdentityCategoriesConfirm => "identity.categories.confirm",
    /// Record employment and income.
    IdentityEmploymentWrite => "identity.employment.write",
    /// Read and acknowledge monitoring alerts.
    IdentityAlertsManage => "identity.alerts.manage",
    /// Follow the person change feed.
    IdentityFeedWatch => "identity.feed.watch",
    /// Read monitoring statistics.
    IdentityStatsRead => "identity.stats.read",
    /// Read identity's rule parameters.
    IdentityParametersRead => "identity.parameters.read",
    /// Change identity's rule parameters.
    IdentityParametersWrite => "identity.parameters.write",
    /// Read identity's audit log.
    IdentityAuditRead => "identity.audit.read",

    /// Read employers, postings, seekers, placements and export batches.
    JobsRead => "jobs.read",
    /// Create and change employers, postings, applications and placements.
    JobsWrite => "jobs.write",
    /// Approve carriers' certification and organized export batches.
    JobsApprove => "jobs.approve",
    /// Read job matching's aggregate counts (附件1's carriers, placements, training, events).
    JobsStatsRead => "jobs.stats.read",
    JobsParametersRead => "jobs.parameters.read",
    JobsParametersWrite => "jobs.parameters.write",
    JobsAuditRead => "jobs.audit.read",

    /// Read posts, applications, contracts and evaluations.
    WelfarePostRead => "welfare_post.read",
    /// Create posts, announcements, applications, evaluations and exits.
    WelfarePostWrite => "welfare_post.write",
    /// Approve hires after the public notice.
    WelfarePostApprove => "welfare_post.approve",
    /// Read the posts' aggregate counts (posts by type and funding, persons placed and on post).
    WelfarePostStatsRead => "welfare_post.stats.read",
    WelfarePostParametersRead => "welfare_post.parameters.read",
    WelfarePostParametersWrite => "welfare_post.parameters.write",
    WelfarePostAuditRead => "welfare_post.audit.read",

    /// Read projects, rosters and payrolls.
    WorkReliefRead => "work_relief.read",
    /// Create projects, enrol workers, enter payrolls.
    WorkReliefWrite => "work_relief.write",
    /// Approve a monthly payroll.
    WorkReliefApprove => "work_relief.approve",
    /// Read work relief's aggregate counts and the project list (附件2).
    WorkReliefStatsRead => "work_relief.stats.read",
    WorkReliefParametersRead => "work_relief.parameters.read",
    WorkReliefParametersWrite => "work_relief.parameters.write",
    WorkReliefAuditRead => "work_relief.audit.read",

    /// Read policies, budgets, claims, batches and the ledger.
    SubsidyRead => "subsidy.read",
    /// Enter claims.
    SubsidyClaimsWrite => "subsidy.claims.write",
    /// Approve claims and payment batches.
    SubsidyApprove => "subsidy.approve",
    /// Send batches to the bank and reconcile.
    SubsidyPay => "subsidy.pay",
    /// Change the policy catalog and budgets.
    SubsidyPoliciesWrite => "subsidy.policies.write",
    SubsidyParametersRead => "subsidy.parameters.read",
    SubsidyParametersWrite => "subsidy.parameters.write",
    SubsidyAuditRead => "subsidy.audit.read",

    /// Verify a person's status across the province line (minimized answer): a partner asking
    /// us, or our desk asking a partner.
    ExchangeVerifyPerson => "exchange.verify_person",
    /// Share and read job postings across the province line.
    ExchangePostings => "exchange.postings",
    /// Send and receive employment confirmations.
    ExchangeConfirmations => "exchange.confirmations",
    /// A partner reads who we are to it (ids, keys, what it may ask, our clock).
    ExchangePartnerInfo => "exchange.partner_info",
    /// Read the partners, their postings, the message log and the cooperation statistics.
    ExchangeRead => "exchange.read",
    /// Read the cooperation statistics (partner workers employed here, against the targets).
    ExchangeStatsRead => "exchange.stats.read",
    ExchangeParametersRead => "exchange.parameters.read",
    ExchangeParametersWrite => "exchange.parameters.write",
    ExchangeAuditRead => "exchange.audit.read",

    /// Read the quarterly progress forms and project lists and their sign-off.
    ReportsRead => "reports.read",
    /// Generate a region's forms from the services and submit them to the level above.
    ReportsWrite => "reports.write",
    /// Approve or return a submitted form of the level below.
    ReportsApprove => "reports.approve",
    ReportsParametersRead => "reports.parameters.read",
    ReportsParametersWrite => "reports.parameters.write",
    ReportsAuditRead => "reports.audit.read",
}

use Permission::*;

// The set below holds 128 permissions; a longer list needs a wider set.
const _: () = assert!(Permission::ALL.len() <= 128);

/// A set of permissions as bits: built and intersected on every call without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PermissionSet(u128);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & (1u128 << permission as u32) != 0
    }

    pub fn insert(&mut self, permission: Permission) {
        self.0 |= 1u128 << permission as u32;
    }

    /// What both sets hold.
    pub fn intersection(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions in table order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

/// How a method is called; the unary time limit applies to unary and server-streaming set-up,
/// never to a stream's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidirectional,
}

/// What a method requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token: health checks and reflection, which probes and tools call without one.
    Public,
    /// A verified local token (a user's or a service's) whose permissions include this one;
    /// a partner province's token is refused (CALLER_KIND_REFUSED).
    Requires(Permission),
    /// A partner province's token (role partner, its own issuer) whose permissions include this
    /// one; every other token is refused (CALLER_KIND_REFUSED). Only the exchange's
    /// partner-facing methods say this.
    Partner(Permission),
}

impl Access {
    /// The permission the method needs, if any.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Self::Public => None,
            Self::Requires(permission) | Self::Partner(permission) => Some(permission),
        }
    }
}

/// One RPC and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodRule {
    /// The gRPC path, `/package.Service/Method`.
    pub path: &'static str,
    pub access: Access,
    pub kind: CallKind,
}

pub const fn rule(path: &'static str, access: Access, kind: CallKind) -> MethodRule {
    MethodRule { path, access, kind }
}

/// The RPCs every bangfu server serves: health, reflection and diagnostics. Each service's own
/// rules are in its crate (`bangfu_identity::METHODS`), listed in its descriptor, and join these
/// when the service is hosted.
pub const PLATFORM_METHODS: &[MethodRule] = &[
    rule("/grpc.health.v1.Health/Check", Access::Public, CallKind::Unary),
    rule(
        "/grpc.health.v1.Health/Watch",
        Access::Public,
        CallKind::ServerStreaming,
    ),
    rule(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Access::Public,
        CallKind::Bidirectional,
    ),
    rule(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Access::Public,
        CallKind::Bidirectional,
    ),
    rule(
        "/bangfu.diagnostics.v1.DiagnosticsService/WhoAmI",
        Access::Requires(DiagnosticsWhoAmI),
        CallKind::Unary,
    ),
    rule(
        "/bangfu.diagnostics.v1.DiagnosticsService/GetServerInfo",
        Access::Requires(DiagnosticsServerInfo),
        CallKind::Unary,
    ),
    rule(
        "/bangfu.diagnostics.v1.DiagnosticsService/CheckPeers",
        Access::Requires(DiagnosticsServerInfo),
        CallKind::Unary,
    ),
];

/// Who holds what. `None` as department means any department. Roles accumulate: a token with
/// two roles holds the union.
pub const GRANTS: &[(Option<Department>, Role, &[Permission])] = &[
    // Everyone may ask who they are.
    (None, Role::Clerk, &[DiagnosticsWhoAmI]),
    (None, Role::Reviewer, &[DiagnosticsWhoAmI]),
    (None, Role::Auditor, &[DiagnosticsWhoAmI]),
    (
        None,
        Role::Partner,
        &[
            ExchangeVerifyPerson,
            ExchangePostings,
            ExchangeConfirmations,
            ExchangePartnerInfo,
        ],
    ),
    // HR (人社) owns the person registry, job matching and the exchange desk.
    (
        Some(Department::Hr),
        Role::Clerk,
        &[
            IdentityPersonsRead,
            IdentityPersonsWrite,
            IdentityPersonsLookup,
            IdentityPersonsImport,
            IdentityCitizenIdPropose,
            IdentityEmploymentWrite,
            IdentityAlertsManage,
            IdentityStatsRead,
            IdentityParametersRead,
            JobsRead,
            JobsWrite,
            JobsStatsRead,
            JobsParametersRead,
            ExchangeRead,
            ExchangeVerifyPerson,
            ExchangeConfirmations,
            ExchangeStatsRead,
            ExchangeParametersRead,
            SubsidyRead,
            SubsidyClaimsWrite,
            // HR leads the employment campaign: a county's desk fills and submits the forms,
            // reading the other departments' counts (never their records).
            WelfarePostStatsRead,
            WorkReliefStatsRead,
            ReportsRead,
            ReportsWrite,
            ReportsParametersRead,
        ],
    ),
    (
        Some(Department::Hr),
        Role::Reviewer,
        &[
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityPiiRead,
            IdentityCitizenIdApprove,
            IdentityCategoriesCertify,
            IdentityCategoriesConfirm,
            IdentityAlertsManage,
            IdentityStatsRead,
            IdentityParametersRead,
            IdentityParametersWrite,
            JobsRead,
            JobsApprove,
            JobsStatsRead,
            JobsParametersRead,
            JobsParametersWrite,
            ExchangeRead,
            ExchangeVerifyPerson,
            ExchangeStatsRead,
            ExchangeParametersRead,
            ExchangeParametersWrite,
            SubsidyRead,
            // The city's and the province's HR approve or return the level below's forms.
            WelfarePostStatsRead,
            WorkReliefStatsRead,
            ReportsRead,
            ReportsApprove,
            ReportsParametersRead,
            ReportsParametersWrite,
        ],
    ),
    // Agriculture and rural affairs / rural revitalization (乡村振兴) certify categories and own posts.
    (
        Some(Department::Agri),
        Role::Clerk,
        &[
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityStatsRead,
            // A holder's exit is recorded in identity's employment history.
            IdentityEmploymentWrite,
            WelfarePostRead,
            WelfarePostWrite,
            WelfarePostStatsRead,
            WelfarePostParametersRead,
            SubsidyRead,
            SubsidyClaimsWrite,
        ],
    ),
    (
        Some(Department::Agri),
        Role::Reviewer,
        &[
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityPiiRead,
            IdentityCategoriesCertify,
            IdentityCategoriesConfirm,
            IdentityStatsRead,
            // A confirmed hire is recorded in identity's employment history.
            IdentityEmploymentWrite,
            WelfarePostRead,
            WelfarePostApprove,
            WelfarePostStatsRead,
            WelfarePostParametersRead,
            WelfarePostParametersWrite,
            SubsidyRead,
            // The forms HR files carry the posts' numbers.
            ReportsRead,
        ],
    ),
    // Development and reform (发改) own work relief.
    (
        Some(Department::Ndrc),
        Role::Clerk,
        &[
            IdentityPersonsRead,
            IdentityPersonsLookup,
            // An enrolment, and its end, are recorded in identity's employment history.
            IdentityEmploymentWrite,
            WorkReliefRead,
            WorkReliefWrite,
            WorkReliefStatsRead,
            WorkReliefParametersRead,
            // A project's remuneration policy is checked against subsidy payment's catalog.
            SubsidyRead,
        ],
    ),
    (
        Some(Department::Ndrc),
        Role::Reviewer,
        &[
            IdentityPersonsRead,
            WorkReliefRead,
            WorkReliefApprove,
            WorkReliefStatsRead,
            WorkReliefParametersRead,
            WorkReliefParametersWrite,
            // The forms HR files carry work relief's numbers and project list.
            ReportsRead,
            // An approved payroll's lines go to subsidy payment as claims, acting for the approver.
            SubsidyRead,
            SubsidyClaimsWrite,
        ],
    ),
    // Finance (财政) owns the policy catalog, budgets and payment.
    (
        Some(Department::Finance),
        Role::Clerk,
        &[
            IdentityPersonsRead,
            SubsidyRead,
            SubsidyClaimsWrite,
            SubsidyPay,
            SubsidyParametersRead,
        ],
    ),
    (
        Some(Department::Finance),
        Role::Reviewer,
        &[
            IdentityPersonsRead,
            SubsidyRead,
            SubsidyApprove,
            SubsidyPoliciesWrite,
            SubsidyParametersRead,
            SubsidyParametersWrite,
        ],
    ),
    // Auditors of every department read records and every service's audit log.
    (
        None,
        Role::Auditor,
        &[
            IdentityPersonsRead,
            IdentityStatsRead,
            IdentityParametersRead,
            IdentityAuditRead,
            JobsRead,
            JobsStatsRead,
            JobsParametersRead,
            JobsAuditRead,
            WelfarePostRead,
            WelfarePostStatsRead,
            WelfarePostParametersRead,
            WelfarePostAuditRead,
            WorkReliefRead,
            WorkReliefStatsRead,
            WorkReliefParametersRead,
            WorkReliefAuditRead,
            SubsidyRead,
            SubsidyParametersRead,
            SubsidyAuditRead,
            ExchangeRead,
            ExchangeStatsRead,
            ExchangeParametersRead,
            ExchangeAuditRead,
            ReportsRead,
            ReportsParametersRead,
            ReportsAuditRead,
        ],
    ),
    // The administrator holds everything; real deployments issue per-department tokens instead.
    (None, Role::Admin, Permission::ALL),
];

/// What each calling service may do on its own account; acting for a user it gets only what
/// the user holds too.
pub const SERVICE_GRANTS: &[(&str, &[Permission])] = &[
    ("identity", &[DiagnosticsWhoAmI]),
    (
        "jobs",
        &[
            DiagnosticsWhoAmI,
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityFeedWatch,
            IdentityEmploymentWrite,
            // Its subsidies go to subsidy payment as claims, and it follows their outcome.
            SubsidyRead,
            SubsidyClaimsWrite,
        ],
    ),
    (
        "welfare_post",
        &[
            DiagnosticsWhoAmI,
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityFeedWatch,
            IdentityEmploymentWrite,
            // Its subsidies go to subsidy payment as claims, and it follows their outcome.
            SubsidyRead,
            SubsidyClaimsWrite,
        ],
    ),
    (
        "work_relief",
        &[
            DiagnosticsWhoAmI,
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityFeedWatch,
            IdentityEmploymentWrite,
            // Its subsidies go to subsidy payment as claims, and it follows their outcome.
            SubsidyRead,
            SubsidyClaimsWrite,
        ],
    ),
    (
        "subsidy",
        &[
            DiagnosticsWhoAmI,
            IdentityPersonsRead,
            IdentityPersonsLookup,
            IdentityPiiRead,
            IdentityFeedWatch,
            WelfarePostRead,
            WorkReliefRead,
            JobsRead,
        ],
    ),
    (
        "exchange",
        &[
            DiagnosticsWhoAmI,
            // A partner's verification: who holds the ID, and their categories (masked).
            IdentityPersonsRead,
            IdentityPersonsLookup,
            // A partner's confirmation of our person's employment there.
            IdentityEmploymentWrite,
            // Its employment changes are followed; a confirmation names the person to their
            // home province by citizen ID, read in clear for labor cooperation (audited).
            IdentityFeedWatch,
            IdentityPiiRead,
            // Our shared postings are read from job matching's feed; the partner's are created
            // there as postings of their employers.
            JobsRead,
            JobsWrite,
        ],
    ),
    (
        "reports",
        &[
            DiagnosticsWhoAmI,
            // The forms' numbers, read acting for the clerk who generates them: counts only.
            IdentityStatsRead,
            JobsStatsRead,
            WelfarePostStatsRead,
            WorkReliefStatsRead,
            ExchangeStatsRead,
        ],
    ),
];

/// The services of the suite, by the names their tokens carry as subject.
pub const SERVICES: &[&str] = &[
    "identity",
    "jobs",
    "welfare_post",
    "work_relief",
    "subsidy",
    "exchange",
    "reports",
];

/// The permissions a user with `department` and `roles` holds.
pub fn user_permissions(department: Option<Department>, roles: &[Role]) -> PermissionSet {
    GRANTS
        .iter()
        .filter(|(dept, role, _)| roles.contains(role) && (dept.is_none() || *dept == department))
        .flat_map(|(_, _, perms)| perms.iter().copied())
        .collect()
}

/// The permissions a service holds on its own account.
pub fn service_permissions(service: &str) -> PermissionSet {
    SERVICE_GRANTS
        .iter()
        .filter(|(name, _)| *name == service)
        .flat_map(|(_, perms)| perms.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_are_unique() {
        let mut names: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn a_clerk_of_finance_cannot_certify_categories() {
        let perms = user_permissions(Some(Department::Finance), &[Role::Clerk]);
        assert!(!perms.contains(IdentityCategoriesCertify));
        assert!(perms.contains(SubsidyClaimsWrite));
    }

    #[test]
    fn reading_ids_in_clear_needs_a_reviewer_not_a_clerk() {
        assert!(!user_permissions(Some(Department::Hr), &[Role::Clerk]).contains(IdentityPiiRead));
        assert!(user_permissions(Some(Department::Hr), &[Role::Reviewer]).contains(IdentityPiiRead));
    }

    #[test]
    fn a_permission_set_holds_exactly_what_was_put_in() {
        let set: PermissionSet = [IdentityPiiRead, ExchangeAuditRead].into_iter().collect();
        assert!(set.contains(IdentityPiiRead) && set.contains(ExchangeAuditRead));
        assert!(!set.contains(IdentityPersonsRead));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![IdentityPiiRead, ExchangeAuditRead]);
        let all: PermissionSet = Permission::ALL.iter().copied().collect();
        assert_eq!(all.iter().count(), Permission::ALL.len());
        assert_eq!(all.intersection(set), set);
    }

    #[test]
    fn an_unknown_service_holds_nothing() {
        assert!(service_permissions("billing").is_empty());
        assert!(service_permissions("subsidy").contains(IdentityPersonsLookup));
    }
}
