//! AskHandle's REST API, all of this connector's requests, each with
//! `Authorization: Token <key>`. With `username` + `password` the key is fetched from
//! `/api/v1/auth/api-token`, kept, and fetched again once when a request is refused with
//! 401 (the key was rotated); a second 401 is a refusal of our credentials (transient:
//! held until fixed).

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_core::backoff::retry_after;
use switchboard_core::{DeliveryError, Secret};
use tokio::sync::Mutex;

use crate::config::AskHandleParams;
use crate::payload::{List, Message, Room, Webhook};

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The account's endpoints and credentials.
#[derive(Debug)]
pub struct Client {
    base: String,
    login: Option<(String, Secret)>,
    token: Mutex<Option<Secret>>,
}

/// A failed request: its status (0 when there was no answer) and the error.
type Failed = (u16, DeliveryError);

impl Client {
    /// A client for the account in `params`.
    pub fn new(params: &AskHandleParams) -> Self {
        Client {
            base: params.base().to_owned(),
            login: params
                .username
                .clone()
                .zip(params.password.clone())
                .filter(|_| params.token.is_none()),
            token: Mutex::new(params.token.clone()),
        }
    }

    async fn key(&self, http: &reqwest::Client, fresh: bool) -> Result<Secret, DeliveryError> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref().filter(|_| !fresh) {
            return Ok(t.clone());
        }
        let Some((username, password)) = &self.login else {
            return token
                .clone()
                .ok_or_else(|| DeliveryError::transient("no AskHandle token"));
        };
        #[derive(serde::Deserialize)]
        struct Answer {
            token: String,
        }
        let url = format!("{}/api/v1/auth/api-token", self.base);
        let body = json!({"username": username, "password": password.expose()});
        let answer: Answer = send(http.post(url).json(&body), "logging in")
            .await
            .map_err(|(_, e)| e)?;
        let key = Secret::new(answer.token);
        *token = Some(key.clone());
        Ok(key)
    }

    /// `method path` with `body`, logging in again once on a 401.
    async fn call<T: DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<T, Failed> {
        let url = format!("{}{path}", self.base);
        let mut fresh = false;
        loop {
            let key = self.key(http, fresh).await.map_err(|e| (0, e))?;
            let mut req = http
                .request(method.clone(), &url)
                .header("authorization", format!("Token {}", key.expose()));
            if let Some(b) = body {
                req = req.json(b);
            }
            match send(req, what).await {
                Err((401, _)) if self.login.is_some() && !fresh => fresh = true,
                other => return other,
            }
        }
    }

    /// `GET /api/v1/webhooks/`.
    pub async fn webhooks(&self, http: &reqwest::Client) -> Result<Vec<Webhook>, DeliveryError> {
        let list: List<Webhook> = self
            .call(
                http,
                Method::GET,
                "/api/v1/webhooks/",
                None,
                "listing webhooks",
            )
            .await
            .map_err(|(_, e)| e)?;
        Ok(list.into_vec())
    }

    /// `POST /api/v1/webhooks/`.
    pub async fn create_webhook(
        &self,
        http: &reqwest::Client,
        event: &str,
        target: &str,
    ) -> Result<(), DeliveryError> {
        let body = json!({"event": event, "target": target});
        let _: Value = self
            .call(
                http,
                Method::POST,
                "/api/v1/webhooks/",
                Some(&body),
                "creating a webhook",
            )
            .await
            .map_err(|(_, e)| e)?;
        Ok(())
    }

    /// `GET /api/v1/rooms/`.
    pub async fn rooms(&self, http: &reqwest::Client) -> Result<Vec<Room>, DeliveryError> {
        let list: List<Room> = self
            .call(http, Method::GET, "/api/v1/rooms/", None, "listing rooms")
            .await
            .map_err(|(_, e)| e)?;
        Ok(list.into_vec())
    }

    /// `GET /api/v1/rooms/<label>/`, with its messages; `None` when there is none.
    pub async fn room(
        &self,
        http: &reqwest::Client,
        label: &str,
    ) -> Result<Option<Room>, DeliveryError> {
        let path = format!("/api/v1/rooms/{label}/");
        match self
            .call(http, Method::GET, &path, None, "reading the room")
            .await
        {
            Ok(room) => Ok(Some(room)),
            Err((404, _)) => Ok(None),
            Err((_, e)) => Err(e),
        }
    }

    /// `POST /api/v1/rooms/`.
    pub async fn create_room(
        &self,
        http: &reqwest::Client,
        label: &str,
        name: &str,
    ) -> Result<Room, DeliveryError> {
        let body = json!({"label": label, "name": name, "is_bot_use": true});
        self.call(
            http,
            Method::POST,
            "/api/v1/rooms/",
            Some(&body),
            "creating the room",
        )
        .await
        .map_err(|(_, e)| e)
    }

    /// `POST /api/v1/messages/`: the contact's message in room `room`.
    pub async fn post_message(
        &self,
        http: &reqwest::Client,
        room: &str,
        text: &str,
        nickname: &str,
        email: Option<&str>,
    ) -> Result<Message, DeliveryError> {
        let mut body = json!({"body": text, "nickname": nickname, "room": {"uuid": room}});
        if let Some(e) = email {
            body["email"] = json!(e);
        }
        self.call(
            http,
            Method::POST,
            "/api/v1/messages/",
            Some(&body),
            "posting the message",
        )
        .await
        .map_err(|(_, e)| e)
    }
}

/// Sends `req` within [`REQUEST_TIMEOUT`] and reads a 2xx answer as `T`. Never shows
/// the URL or the key.
async fn send<T: DeserializeOwned>(req: reqwest::RequestBuilder, what: &str) -> Result<T, Failed> {
    let resp = req
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| (0, DeliveryError::from_reqwest_within(&e, REQUEST_TIMEOUT)))?;
    let status = resp.status();
    let hint = retry_after(resp.headers());
    let body = resp
        .bytes()
        .await
        .map_err(|e| (0, DeliveryError::from_reqwest_within(&e, REQUEST_TIMEOUT)))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| {
            (
                status.as_u16(),
                DeliveryError::transient(format!(
                    "{what}: AskHandle's answer is not understood: {e}"
                )),
            )
        });
    }
    let text = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            ["detail", "error", "message"].iter().find_map(|k| {
                v.get(*k)
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            })
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let reason = format!("{what}: AskHandle answered {}: {text}", status.as_u16());
    let err = if matches!(status.as_u16(), 401 | 403) {
        DeliveryError::Transient {
            reason,
            retry_after: hint,
        }
    } else {
        DeliveryError::from_status(status, hint, reason)
    };
    Err((status.as_u16(), err))
}
