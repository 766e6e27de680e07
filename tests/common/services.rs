//! Config snippets of the provider services that tests outside a connector's own file
//! configure (the hostile-body and hardening tests), pointing at a provider API that
//! nothing listens on: those tests post to our hooks and never reach the provider.

use std::path::Path;

/// A provider API base where nothing listens (the discard port).
pub const NOWHERE: &str = "http://127.0.0.1:9";

/// A `smooch` service `id` whose webhooks carry `webhook_secret` in `X-API-Key`.
pub fn smooch_service(id: &str, webhook_secret: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "smooch"
[services.{id}.params]
appId = "app1"
keyId = "key1"
secret = "api-secret"
webhook_secret = "{webhook_secret}"
api_base = "{NOWHERE}"
"#
    )
}

/// An `intercom` service `id` whose notifications are signed with `client_secret`.
pub fn intercom_service(id: &str, client_secret: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "intercom"
[services.{id}.params]
app_id = "app1"
access_token = "intercom-access-token"
assignee_id = 1
client_secret = "{client_secret}"
api_base = "{NOWHERE}"
"#
    )
}

/// A `gbm` service `id` whose webhooks are signed with `client_token`; its service
/// account key file (naming a token endpoint nobody answers) is written into `dir`.
pub fn gbm_service(dir: &Path, id: &str, client_token: &str, key_file: &str) -> String {
    let key = dir.join(format!("{id}-service-account.json"));
    std::fs::write(&key, key_file).unwrap();
    format!(
        r#"
[services.{id}]
type = "gbm"
[services.{id}.params]
location = "loc1"
welcomeMessage = "hi"
starter = "hello"
client_token = "{client_token}"
service_account_file = "{}"
api_base = "{NOWHERE}"
"#,
        key.display()
    )
}

/// A `twilio` service `id` whose requests are signed with `auth_token`.
pub fn twilio_service_nowhere(id: &str, auth_token: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "twilio"
[services.{id}.params]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "{auth_token}"
from = "+14155550100"
api_base = "{NOWHERE}"
"#
    )
}

/// A `messenger` service `id` whose webhooks are signed with `app_secret`.
pub fn messenger_service(id: &str, app_secret: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "messenger"
[services.{id}.params]
page_id = "682498302938465"
page_access_token = "page-token"
app_secret = "{app_secret}"
verify_token = "verify-token"
api_base = "{NOWHERE}"
"#
    )
}

/// A `mailgun` service `id` whose forwards and events are signed with `signing_key`.
pub fn mailgun_service(id: &str, signing_key: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "mailgun"
[services.{id}.params]
domain = "mg.example.com"
api_key = "mailgun-api-key"
signing_key = "{signing_key}"
from = "Support <support@mg.example.com>"
api_base = "{NOWHERE}"
"#
    )
}
