//! CreateAcls, DescribeAcls and DeleteAcls over the broker's authorizer:
//! Kafka's requests turned into bindings and filters, and the answers
//! back. Creating and deleting write the ACL file: run them off the event
//! loops. Uses the security module and the protocol's error codes.

use crate::protocol::error_code as ec;
use crate::security::acl::{Binding, Filter};
use crate::security::Authorizer;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn owned(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_owned())
}

/// A filter from the fields DescribeAcls and DeleteAcls both carry.
macro_rules! filter_of {
    ($f:expr) => {
        Filter {
            resource_type: $f.resource_type_filter,
            name: owned(&$f.resource_name_filter),
            pattern: $f.pattern_type_filter,
            principal: owned(&$f.principal_filter),
            host: owned(&$f.host_filter),
            operation: $f.operation,
            permission: $f.permission_type,
        }
    };
}

/// Answers DescribeAcls, grouping the bindings by resource.
pub(crate) fn describe(acls: &Authorizer, r: &DescribeAclsRequest) -> DescribeAclsResponse {
    let filter = filter_of!(r);
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in acls.describe(&filter) {
        let mut d = AclDescription::default();
        d.principal = text(&b.principal);
        d.host = text(&b.host);
        d.operation = b.operation;
        d.permission_type = b.permission;
        by_resource
            .entry((b.resource_type, b.name, b.pattern))
            .or_default()
            .push(d);
    }
    let mut resp = DescribeAclsResponse::default();
    resp.resources = by_resource
        .into_iter()
        .map(|((rt, name, pattern), acls)| {
            let mut res = DescribeAclsResource::default();
            res.resource_type = rt;
            res.resource_name = StrBytes::from_string(name);
            res.pattern_type = pattern;
            res.acls = acls;
            res
        })
        .collect();
    resp
}

/// Applies CreateAcls: each creation answered, an invalid one with
/// `INVALID_REQUEST` and the reason.
pub(crate) fn create(acls: &Authorizer, r: &CreateAclsRequest) -> CreateAclsResponse {
    let mut results = Vec::with_capacity(r.creations.len());
    let mut valid = Vec::new();
    for c in &r.creations {
        let b = Binding {
            resource_type: c.resource_type,
            name: c.resource_name.as_str().to_owned(),
            pattern: c.resource_pattern_type,
            principal: c.principal.as_str().to_owned(),
            host: c.host.as_str().to_owned(),
            operation: c.operation,
            permission: c.permission_type,
        };
        let mut result = AclCreationResult::default();
        match b.invalid() {
            Some(why) => {
                result.error_code = ec::INVALID_REQUEST;
                result.error_message = Some(text(why));
            }
            None => valid.push(b),
        }
        results.push(result);
    }
    if let Err(e) = acls.create(&valid) {
        for r in results.iter_mut().filter(|r| r.error_code == ec::NONE) {
            r.error_code = ec::KAFKA_STORAGE_ERROR;
            r.error_message = Some(text(&e.to_string()));
        }
    } else if !valid.is_empty() {
        tracing::info!(count = valid.len(), "ACLs created");
    }
    let mut resp = CreateAclsResponse::default();
    resp.results = results;
    resp
}

/// Applies DeleteAcls: what each filter matched, removed.
pub(crate) fn delete(acls: &Authorizer, r: &DeleteAclsRequest) -> DeleteAclsResponse {
    let filters: Vec<Filter> = r.filters.iter().map(|f| filter_of!(f)).collect();
    let mut resp = DeleteAclsResponse::default();
    match acls.delete(&filters) {
        Ok(removed) => {
            resp.filter_results = removed
                .into_iter()
                .map(|bindings| {
                    let mut fr = DeleteAclsFilterResult::default();
                    fr.matching_acls = bindings
                        .into_iter()
                        .map(|b| {
                            let mut m = DeleteAclsMatchingAcl::default();
                            m.resource_type = b.resource_type;
                            m.resource_name = StrBytes::from_string(b.name);
                            m.pattern_type = b.pattern;
                            m.principal = StrBytes::from_string(b.principal);
                            m.host = StrBytes::from_string(b.host);
                            m.operation = b.operation;
                            m.permission_type = b.permission;
                            m
                        })
                        .collect();
                    fr
                })
                .collect();
        }
        Err(e) => {
            resp.filter_results = filters
                .iter()
                .map(|_| {
                    let mut fr = DeleteAclsFilterResult::default();
                    fr.error_code = ec::KAFKA_STORAGE_ERROR;
                    fr.error_message = Some(text(&e.to_string()));
                    fr
                })
                .collect();
        }
    }
    resp
}
