//! The document against the router: the routes `http::router` serves (read from its
//! source, `src/http/mod.rs`) and the operations of the document must be the same set.

use std::collections::BTreeSet;

use serde_json::Value;

use super::document;

/// `(method, path)` of every route in the router's source, in OpenAPI spelling
/// (`{*rest}` → `{rest}`). `any(…)` routes yield `ANY`.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../mod.rs");
    let mut routes = BTreeSet::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.find('"').expect("a path literal");
        let close = open + 1 + rest[open + 1..].find('"').expect("a closed path");
        let path = rest[open + 1..close].replace("{*", "{");
        // The method router runs to the matching parenthesis of `.route(`.
        let mut depth = 1;
        let mut end = close;
        for (i, c) in rest[close..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = close + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let methods = &rest[close + 1..end];
        let mut found = false;
        for m in ["get", "post", "put", "patch", "delete", "any"] {
            let called = |prefix: &str| methods.contains(&format!("{prefix}{m}("));
            if called(" ") || called(".") || called("\n") || called("(") {
                routes.insert((m.to_uppercase(), path.clone()));
                found = true;
            }
        }
        assert!(found, "no method router understood for {path}: {methods}");
    }
    assert!(
        routes.len() > 10,
        "the router's routes were not found: {routes:?}"
    );
    routes
}

fn document_operations() -> BTreeSet<(String, String)> {
    let doc = document();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let routes = router_routes();
    let ops = document_operations();
    for (method, path) in &routes {
        if method == "ANY" {
            assert!(
                ops.iter().any(|(_, p)| p == path),
                "the router serves {path} (any method) but the document has no operation for it"
            );
        } else {
            assert!(
                ops.contains(&(method.clone(), path.clone())),
                "the router serves {method} {path} but the document does not describe it"
            );
        }
    }
    for (method, path) in &ops {
        assert!(
            routes.contains(&(method.clone(), path.clone()))
                || routes.contains(&("ANY".to_owned(), path.clone())),
            "the document describes {method} {path} but the router does not serve it"
        );
    }
}

#[test]
fn it_is_openapi_3_1_with_every_reference_resolved() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every `$ref` points at a component that exists.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // Every operation that needs a token says so, and answers 401 for a missing one.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_some() {
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} is secured but documents no 401"
                );
            }
            if path.starts_with("/v1/") && path != "/v1/openapi.json" {
                assert!(
                    op.get("security").is_some(),
                    "{method} {path} documents no credentials"
                );
            }
        }
    }
}

/// Every link names an operation of the document by `operationId`, with parameters
/// that operation has.
#[test]
fn links_point_at_operations() {
    let doc = document();
    let mut ops = std::collections::BTreeMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op["operationId"].as_str() {
                let params: Vec<String> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| p["name"].as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                ops.insert(id.to_owned(), params);
            }
        }
    }
    let count: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|i| i.as_object().unwrap().len())
        .sum();
    assert_eq!(ops.len(), count, "every operation has its own operationId");
    let mut seen = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            for r in responses.values() {
                for (name, link) in r["links"].as_object().into_iter().flatten() {
                    seen += 1;
                    assert!(link.get("operation_id").is_none(), "{name}: snake_case");
                    let target = link["operationId"].as_str().expect("an operationId");
                    let params = ops
                        .get(target)
                        .unwrap_or_else(|| panic!("{name}: no {target}"));
                    for p in link["parameters"].as_object().unwrap().keys() {
                        assert!(params.contains(p), "{name}: {target} has no parameter {p}");
                    }
                }
            }
        }
    }
    assert!(seen >= 10, "links: {seen}");
}

#[test]
fn service_statuses_are_the_configs() {
    let doc = document();
    let names: Vec<&str> = doc["components"]["schemas"]["ServiceStatusName"]["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for s in [
        crate::config::ServiceStatus::Queued,
        crate::config::ServiceStatus::Active,
        crate::config::ServiceStatus::Disabled,
        crate::config::ServiceStatus::PendingArchive,
        crate::config::ServiceStatus::Archived,
    ] {
        assert!(names.contains(&s.as_str()), "{} is missing", s.as_str());
    }
    assert_eq!(names.len(), 5);
}

/// `SWITCHBOARD_DUMP_OPENAPI=path cargo test --lib dump_openapi` writes the document.
#[test]
fn dump_openapi() {
    if let Ok(path) = std::env::var("SWITCHBOARD_DUMP_OPENAPI") {
        std::fs::write(path, serde_json::to_string_pretty(&document()).unwrap()).unwrap();
    }
}
