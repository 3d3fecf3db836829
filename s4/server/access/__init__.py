"""Access control: who may do what, decided as AWS decides it.

The decision engine is pure (no HTTP, no store): ``policy`` parses bucket and identity policies,
``conditions`` holds their Condition operators, ``evaluation`` runs one policy against one request,
``acl_permissions`` maps actions to ACL permissions, ``public_access`` says what is public and applies
PublicAccessBlock, ``canned`` has the canned identity policies, and ``decision`` weighs them all.
"""

from s4.server.access.acl_permissions import ACL_PERMISSIONS, acl_allows, acl_permission, is_public_acl
from s4.server.access.canned import CANNED_POLICIES, canned_identity_policy
from s4.server.access.decision import Decision, decide
from s4.server.access.evaluation import AccessRequest, Effect, evaluate
from s4.server.access.policy import (
    USER_ARN_PREFIX,
    Policy,
    PolicyError,
    Statement,
    kept_bucket_policy,
    parse_bucket_policy,
    parse_identity_policy,
    principal_name,
)
from s4.server.access.public_access import PublicAccessBlock, is_public_policy

__all__ = [
    "ACL_PERMISSIONS",
    "CANNED_POLICIES",
    "USER_ARN_PREFIX",
    "AccessRequest",
    "Decision",
    "Effect",
    "Policy",
    "PolicyError",
    "PublicAccessBlock",
    "Statement",
    "acl_allows",
    "acl_permission",
    "canned_identity_policy",
    "decide",
    "evaluate",
    "is_public_acl",
    "is_public_policy",
    "kept_bucket_policy",
    "parse_bucket_policy",
    "parse_identity_policy",
    "principal_name",
]
