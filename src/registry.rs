//! The closed set of service types: one enum variant per connector, each behind its Cargo
//! feature, and the single `match` that parses and builds each. Adding a connector is one
//! crate, one feature and one variant here.

use std::collections::BTreeMap;
use std::sync::Arc;

use config::Value;
use switchboard_core::{Connector, Issue, Params, Validator};

use crate::config::{ServiceConfig, Unknown, typed_with};

/// Every type the Web1on1 seed and the contract name, compiled in or not.
pub const KNOWN_TYPES: &[&str] = &[
    "api",
    "webhook",
    "smartsupp",
    "twilio",
    "smooch",
    "intercom",
    "gbm",
    "mailgun",
    "messenger",
    "nimchat",
    "askhandle",
    "dashly",
    "haptik",
];

/// A service's typed params.
#[derive(Debug, Clone)]
pub enum ServiceParams {
    /// `api`: tokens and callback.
    #[cfg(feature = "api")]
    Api(switchboard_api::ApiParams),
    /// `webhook`: signed event delivery.
    #[cfg(feature = "webhook")]
    Webhook(switchboard_webhook::WebhookParams),
    /// `smooch`: Sunshine Conversations webhooks and replies.
    #[cfg(feature = "smooch")]
    Smooch(switchboard_smooch::SmoochParams),
    /// `twilio`: SMS and WhatsApp.
    #[cfg(feature = "twilio")]
    Twilio(switchboard_twilio::TwilioParams),
    /// `intercom`: Intercom conversations with catch-up.
    #[cfg(feature = "intercom")]
    Intercom(switchboard_intercom::IntercomParams),
    /// `gbm`: Google Business Messages (shut down by Google on 2024-07-31).
    #[cfg(feature = "gbm")]
    Gbm(switchboard_gbm::GbmParams),
    /// `smartsupp`: an XMPP account.
    #[cfg(feature = "smartsupp")]
    Smartsupp(switchboard_smartsupp::SmartsuppParams),
}

/// The types compiled into this build.
pub fn compiled_types() -> Vec<&'static str> {
    KNOWN_TYPES
        .iter()
        .copied()
        .filter(|t| secret_params(t).is_some())
        .collect()
}

/// The secret params of a compiled-in type (which may be given as `<name>_file`), or
/// `None` for a type this build does not know.
pub fn secret_params(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        #[cfg(feature = "api")]
        "api" => switchboard_api::ApiParams::SECRETS,
        #[cfg(feature = "webhook")]
        "webhook" => switchboard_webhook::WebhookParams::SECRETS,
        #[cfg(feature = "smooch")]
        "smooch" => switchboard_smooch::SmoochParams::SECRETS,
        #[cfg(feature = "twilio")]
        "twilio" => switchboard_twilio::TwilioParams::SECRETS,
        #[cfg(feature = "intercom")]
        "intercom" => switchboard_intercom::IntercomParams::SECRETS,
        #[cfg(feature = "gbm")]
        "gbm" => switchboard_gbm::GbmParams::SECRETS,
        #[cfg(feature = "smartsupp")]
        "smartsupp" => switchboard_smartsupp::SmartsuppParams::SECRETS,
        _ => return None,
    })
}

/// The message for a `type` this build cannot run.
pub fn unknown_type_message(kind: &str) -> String {
    if KNOWN_TYPES.contains(&kind) {
        format!("service type {kind:?} is not compiled into this build (Cargo feature {kind:?})")
    } else {
        format!(
            "unknown service type {kind:?}; expected one of {}",
            compiled_types().join(", ")
        )
    }
}

impl ServiceParams {
    /// Types and validates the params of a service of type `kind`.
    pub fn parse(
        kind: &str,
        value: Value,
        prefix: &str,
        unknown: Unknown,
        issues: &mut Vec<Issue>,
    ) -> Option<Self> {
        match kind {
            #[cfg(feature = "api")]
            "api" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Api),
            #[cfg(feature = "webhook")]
            "webhook" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Webhook),
            #[cfg(feature = "smooch")]
            "smooch" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Smooch),
            #[cfg(feature = "twilio")]
            "twilio" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Twilio),
            #[cfg(feature = "intercom")]
            "intercom" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Intercom),
            #[cfg(feature = "gbm")]
            "gbm" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Gbm),
            #[cfg(feature = "smartsupp")]
            "smartsupp" => parse_as(value, prefix, unknown, issues).map(ServiceParams::Smartsupp),
            _ => {
                issues.push(Issue {
                    path: prefix.trim_end_matches(".params").to_owned() + ".type",
                    message: unknown_type_message(kind),
                });
                None
            }
        }
    }

    /// The type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "api")]
            ServiceParams::Api(_) => "api",
            #[cfg(feature = "webhook")]
            ServiceParams::Webhook(_) => "webhook",
            #[cfg(feature = "smooch")]
            ServiceParams::Smooch(_) => "smooch",
            #[cfg(feature = "twilio")]
            ServiceParams::Twilio(_) => "twilio",
            #[cfg(feature = "intercom")]
            ServiceParams::Intercom(_) => "intercom",
            #[cfg(feature = "gbm")]
            ServiceParams::Gbm(_) => "gbm",
            #[cfg(feature = "smartsupp")]
            ServiceParams::Smartsupp(_) => "smartsupp",
        }
    }

    /// Builds the running connector.
    pub fn build(&self) -> Result<Arc<dyn Connector>, String> {
        Ok(match self {
            #[cfg(feature = "api")]
            ServiceParams::Api(p) => Arc::new(switchboard_api::ApiConnector::new(p.clone())?),
            #[cfg(feature = "webhook")]
            ServiceParams::Webhook(p) => {
                Arc::new(switchboard_webhook::WebhookConnector::new(p.clone())?)
            }
            #[cfg(feature = "smooch")]
            ServiceParams::Smooch(p) => {
                Arc::new(switchboard_smooch::SmoochConnector::new(p.clone())?)
            }
            #[cfg(feature = "twilio")]
            ServiceParams::Twilio(p) => {
                Arc::new(switchboard_twilio::TwilioConnector::new(p.clone())?)
            }
            #[cfg(feature = "intercom")]
            ServiceParams::Intercom(p) => {
                Arc::new(switchboard_intercom::IntercomConnector::new(p.clone())?)
            }
            #[cfg(feature = "gbm")]
            ServiceParams::Gbm(p) => Arc::new(switchboard_gbm::GbmConnector::new(p.clone())?),
            #[cfg(feature = "smartsupp")]
            ServiceParams::Smartsupp(p) => {
                Arc::new(switchboard_smartsupp::SmartsuppConnector::new(p.clone())?)
            }
        })
    }

    /// The api params, for token authentication.
    #[cfg(feature = "api")]
    pub fn as_api(&self) -> Option<&switchboard_api::ApiParams> {
        match self {
            ServiceParams::Api(p) => Some(p),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The webhook params, for event routing.
    #[cfg(feature = "webhook")]
    pub fn as_webhook(&self) -> Option<&switchboard_webhook::WebhookParams> {
        match self {
            ServiceParams::Webhook(p) => Some(p),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

fn parse_as<P: Params>(
    value: Value,
    prefix: &str,
    unknown: Unknown,
    issues: &mut Vec<Issue>,
) -> Option<P> {
    let params: P = typed_with(value, prefix, unknown, issues)?;
    let mut v = Validator::new(prefix);
    params.validate(&mut v);
    let found = v.into_issues();
    if found.is_empty() {
        Some(params)
    } else {
        issues.extend(found);
        None
    }
}

/// Checks that span services: a bearer token must identify one api service.
pub fn cross_checks(services: &BTreeMap<String, ServiceConfig>) -> Vec<Issue> {
    #[allow(unused_mut)]
    let mut issues = Vec::new();
    #[cfg(feature = "api")]
    {
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        for svc in services.values() {
            let Some(api) = svc.params.as_api() else {
                continue;
            };
            for (name, t) in &api.tokens {
                let path = format!("services.{}.params.tokens.{name}.token", svc.id);
                if let Some(first) = seen.get(t.token.expose()) {
                    issues.push(Issue {
                        path,
                        message: format!("the same token is already configured at {first}"),
                    });
                } else {
                    seen.insert(t.token.expose(), path);
                }
            }
        }
    }
    #[cfg(not(feature = "api"))]
    let _ = services;
    issues
}
