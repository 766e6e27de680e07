// The service types of this build: a connector is its crate, its Cargo feature and one
// line here. Expanded by `connectors!` in src/registry.rs (and by tests that must cover
// every type); not a module of its own.
connectors! {
    #[cfg(feature = "api")] switchboard_api::Api,
    #[cfg(feature = "webhook")] switchboard_webhook::Webhook,
    #[cfg(feature = "smooch")] switchboard_smooch::Smooch,
    #[cfg(feature = "twilio")] switchboard_twilio::Twilio,
    #[cfg(feature = "intercom")] switchboard_intercom::Intercom,
    #[cfg(feature = "gbm")] switchboard_gbm::Gbm,
    #[cfg(feature = "smartsupp")] switchboard_smartsupp::Smartsupp,
    #[cfg(feature = "dashly")] switchboard_dashly::Dashly,
    #[cfg(feature = "nimchat")] switchboard_nimchat::Nimchat,
    #[cfg(feature = "messenger")] switchboard_messenger::Messenger,
    #[cfg(feature = "mailgun")] switchboard_mailgun::Mailgun,
    #[cfg(feature = "haptik")] switchboard_haptik::Haptik,
    #[cfg(feature = "askhandle")] switchboard_askhandle::AskHandle,
}
