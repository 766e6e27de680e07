//! Registration: how a connector crate tells the daemon its `type` name, its params, how
//! to build it, and what it offers the daemon besides the [`Connector`] itself (bearer
//! tokens, an event subscription, whether it can be a desk). The daemon lists each type
//! once (`src/registry.rs`) and never names a connector type anywhere else.
//!
//! The capabilities are read from the params, not from a running connector: the token
//! table and the event routes are built from the config (and checked by `check-config`)
//! before anything is started.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use crate::connector::Connector;
use crate::model::Scope;
use crate::params::Params;
use crate::secret::Secret;

/// A service type: the `type = "…"` of `[services.<id>]`, its params and its factory.
pub trait ServiceType: 'static {
    /// The `type` value, e.g. `"smooch"`.
    const NAME: &'static str;

    /// Whether a service of this type can answer channels' conversations as their desk
    /// (`desk = "<service id>"` must name a service of such a type).
    const DESK: bool = false;

    /// `[services.<id>.params]`, typed, with its secrets and its validation.
    type Params: Params;

    /// Builds the running connector from validated params. An error is a bug or an
    /// unreadable file: params that validate should build.
    fn build(params: &Self::Params) -> Result<Arc<dyn Connector>, String>;

    /// The bearer tokens a service of this type grants on `/v1`.
    fn tokens(params: &Self::Params) -> Vec<GrantedToken> {
        let _ = params;
        Vec::new()
    }

    /// The events of its organization a service of this type receives through the
    /// outbox (its connector's `deliver_event` takes them); `None` for none.
    fn subscription(params: &Self::Params) -> Option<EventSubscription> {
        let _ = params;
        None
    }
}

/// A bearer token a service grants.
#[derive(Debug, Clone)]
pub struct GrantedToken {
    /// The token's name in the config, which logs show instead of the token.
    pub name: String,
    /// Where it is configured, below the service's params (`tokens.bot.token`), so that
    /// a problem with it names the key.
    pub key: String,
    /// The token itself.
    pub token: Secret,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// Which events a service receives. A struct rather than a list so that it can grow
/// (desks will take only their own channels' events) without changing every type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventSubscription {
    /// Event types taken; every type when `None`.
    pub types: Option<Vec<String>>,
}

impl EventSubscription {
    /// Every event of the organization.
    pub fn all() -> Self {
        EventSubscription { types: None }
    }

    /// Events of these types only; every type when `None`.
    pub fn types(types: Option<Vec<String>>) -> Self {
        EventSubscription { types }
    }

    /// Whether an event of type `kind` is taken.
    pub fn wants(&self, kind: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == kind))
    }
}

/// A service's typed params with its type erased: what the daemon keeps per service. Its
/// `Debug` is the params' own, which never shows a secret.
pub trait AnyParams: Debug + Send + Sync + 'static {
    /// The type name ([`ServiceType::NAME`]).
    fn type_name(&self) -> &'static str;
    /// [`ServiceType::DESK`].
    fn can_be_desk(&self) -> bool;
    /// [`ServiceType::build`].
    fn build(&self) -> Result<Arc<dyn Connector>, String>;
    /// [`ServiceType::tokens`].
    fn tokens(&self) -> Vec<GrantedToken>;
    /// [`ServiceType::subscription`].
    fn subscription(&self) -> Option<EventSubscription>;
    /// The typed params, for [`downcast_ref`](trait.AnyParams.html#method.downcast_ref).
    fn as_any(&self) -> &dyn Any;
}

impl dyn AnyParams {
    /// The typed params, if they are a `P` (a connector's own tests use this).
    pub fn downcast_ref<P: 'static>(&self) -> Option<&P> {
        self.as_any().downcast_ref()
    }
}

/// The params of a service of type `T`, as [`AnyParams`].
pub struct Registered<T: ServiceType>(pub T::Params);

impl<T: ServiceType> Registered<T> {
    /// Erases the type.
    pub fn erase(params: T::Params) -> Arc<dyn AnyParams> {
        Arc::new(Registered::<T>(params))
    }
}

impl<T: ServiceType> Debug for Registered<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: ServiceType> AnyParams for Registered<T> {
    fn type_name(&self) -> &'static str {
        T::NAME
    }

    fn can_be_desk(&self) -> bool {
        T::DESK
    }

    fn build(&self) -> Result<Arc<dyn Connector>, String> {
        T::build(&self.0)
    }

    fn tokens(&self) -> Vec<GrantedToken> {
        T::tokens(&self.0)
    }

    fn subscription(&self) -> Option<EventSubscription> {
        T::subscription(&self.0)
    }

    fn as_any(&self) -> &dyn Any {
        &self.0
    }
}
