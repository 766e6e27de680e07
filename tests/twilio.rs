//! End-to-end: the `twilio` service type against the real binary, with a fake Twilio API
//! on 127.0.0.1:0 that checks requests as Twilio documents them, and inbound requests
//! signed here with our own HMAC-SHA1 code.
#![cfg(all(feature = "twilio", feature = "api"))]

mod common;
#[path = "fakes/twilio/mod.rs"]
mod twilio_kit;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use twilio_kit::*;

#[tokio::test]
async fn signed_sms_and_whatsapp_messages_are_stored_with_their_media() {
    let fake = FakeTwilio::start().await;
    let h = start(PUBLIC, &twilio_service("sms", &fake, FROM_PARAM));
    let (d, api) = (&h.daemon, &h.api);
    let url = format!("{PUBLIC}/hooks/sms");

    // SMS, text only.
    let sms = sms_params(
        "SM00000000000000000000000000000001",
        SMS_CONTACT,
        SMS_NUMBER,
        "Hello",
    );
    let r = post_signed(d, &url, &sms).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, "text/xml");
    assert_eq!(r.body, "<Response/>");

    // MMS from the same phone: two media items, no text.
    let mut mms = sms_params(
        "MM00000000000000000000000000000002",
        SMS_CONTACT,
        SMS_NUMBER,
        "",
    );
    with_media(
        &mut mms,
        &[
            (
                "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM2/Media/ME1",
                "image/jpeg",
            ),
            (
                "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM2/Media/ME2",
                "application/pdf",
            ),
        ],
    );
    assert_eq!(post_signed(d, &url, &mms).await.status, 200);

    // WhatsApp, text only, then an image with a caption.
    let wa = whatsapp_params("SM00000000000000000000000000000003", "Hoi, met Mary", &[]);
    assert_eq!(post_signed(d, &url, &wa).await.status, 200);
    let wa_media = whatsapp_params(
        "MM00000000000000000000000000000004",
        "the receipt",
        &[(
            "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM4/Media/ME3",
            "image/png",
        )],
    );
    assert_eq!(post_signed(d, &url, &wa_media).await.status, 200);

    let convs = conversations(api, "sms").await;
    assert_eq!(
        convs.len(),
        2,
        "one conversation per (From, To) pair: {convs:#?}"
    );

    let sms_conv = conversation(api, "sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}")).await;
    assert_eq!(sms_conv["contact"]["external_id"], SMS_CONTACT);
    assert_eq!(sms_conv["contact"]["phone"], SMS_CONTACT);
    assert_eq!(sms_conv["contact"]["name"], Value::Null);
    let msgs = messages(api, &sms_conv).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["external_id"], "SM00000000000000000000000000000001");
    assert_eq!(msgs[0]["text"], "Hello");
    assert_eq!(msgs[0]["attachments"], json!([]));
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["author"]["type"], "contact");
    assert_eq!(msgs[1]["external_id"], "MM00000000000000000000000000000002");
    assert_eq!(msgs[1]["text"], Value::Null);
    assert_eq!(
        msgs[1]["attachments"],
        json!([
            {"url": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM2/Media/ME1", "content_type": "image/jpeg"},
            {"url": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM2/Media/ME2", "content_type": "application/pdf"},
        ])
    );

    let wa_conv = conversation(api, "sms", &format!("{WA_CONTACT}|{WA_NUMBER}")).await;
    assert_eq!(wa_conv["contact"]["external_id"], WA_CONTACT);
    assert_eq!(wa_conv["contact"]["name"], "Mary");
    assert_eq!(wa_conv["contact"]["phone"], "+31687654321");
    let msgs = messages(api, &wa_conv).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["text"], "Hoi, met Mary");
    assert_eq!(msgs[0]["author"]["name"], "Mary");
    assert_eq!(msgs[1]["text"], "the receipt");
    assert_eq!(
        msgs[1]["attachments"],
        json!([{"url": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM4/Media/ME3", "content_type": "image/png"}])
    );
    assert_eq!(events_of(d, "message.created").await.len(), 4);

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_and_nothing_is_stored() {
    let fake = FakeTwilio::start().await;
    let h = start(PUBLIC, &twilio_service("sms", &fake, FROM_PARAM));
    let (d, api) = (&h.daemon, &h.api);
    let url = format!("{PUBLIC}/hooks/sms");
    let params = sms_params(
        "SM00000000000000000000000000000011",
        SMS_CONTACT,
        SMS_NUMBER,
        "Hello",
    );

    let forged = twilio_signature("not-the-auth-token", &url, &params);
    let over_other_host =
        twilio_signature(AUTH_TOKEN, "https://evil.example.com/hooks/sms", &params);
    let over_other_path = twilio_signature(AUTH_TOKEN, &format!("{PUBLIC}/hooks/other"), &params);
    let over_other_query = twilio_signature(AUTH_TOKEN, &format!("{url}?x=1"), &params);
    let wrong_default_port =
        twilio_signature(AUTH_TOKEN, "https://sb.example.com:80/hooks/sms", &params);
    let mut tampered = params.clone();
    tampered.iter_mut().find(|(k, _)| k == "Body").unwrap().1 = "Send money".into();
    let valid = twilio_signature(AUTH_TOKEN, &url, &params);

    type Form = [(String, String)];
    let cases: Vec<(&str, &Form, Option<&str>)> = vec![
        ("forged with another key", &params, Some(&forged)),
        ("missing", &params, None),
        ("empty", &params, Some("")),
        ("over another host", &params, Some(&over_other_host)),
        ("over another path", &params, Some(&over_other_path)),
        ("over another query", &params, Some(&over_other_query)),
        (
            "over the wrong default port",
            &params,
            Some(&wrong_default_port),
        ),
        ("over other form values", &tampered, Some(&valid)),
    ];
    for (what, body, signature) in cases {
        let r = post_hook(d, "/hooks/sms", body, signature).await;
        assert_eq!(r.status, 401, "signature {what}: {}", r.body);
    }
    assert!(conversations(api, "sms").await.is_empty(), "nothing stored");
    assert!(events_of(d, "message.created").await.is_empty());
    assert!(events_of(d, "contact.created").await.is_empty());

    // The same request, correctly signed, is accepted: the refusals were the signature's.
    let r = post_hook(d, "/hooks/sms", &params, Some(&valid)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(conversations(api, "sms").await.len(), 1);
    assert!(fake.requests().is_empty(), "nothing was sent to Twilio");

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn the_url_is_accepted_with_the_default_port_added_or_removed_as_twilio_does() {
    let fake = FakeTwilio::start().await;
    let service = twilio_service("sms", &fake, FROM_PARAM);

    // public_url without a port: Twilio may sign with ":443" added.
    let h = start("https://sb.example.com", &service);
    let (d, api) = (&h.daemon, &h.api);
    let p = sms_params(
        "SM00000000000000000000000000000021",
        SMS_CONTACT,
        SMS_NUMBER,
        "via :443",
    );
    let r = post_signed(d, "https://sb.example.com:443/hooks/sms", &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p = sms_params(
        "SM00000000000000000000000000000022",
        SMS_CONTACT,
        SMS_NUMBER,
        "as is",
    );
    assert_eq!(
        post_signed(d, "https://sb.example.com/hooks/sms", &p)
            .await
            .status,
        200
    );
    let conv = conversation(api, "sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}")).await;
    assert_eq!(messages(api, &conv).await.len(), 2);
    h.finish();

    // public_url with the default ":80": Twilio may sign without it.
    let h = start("http://sb.example.com:80", &service);
    let (d, api) = (&h.daemon, &h.api);
    let p = sms_params(
        "SM00000000000000000000000000000023",
        SMS_CONTACT,
        SMS_NUMBER,
        "without :80",
    );
    assert_eq!(
        post_signed(d, "http://sb.example.com/hooks/sms", &p)
            .await
            .status,
        200
    );
    let p = sms_params(
        "SM00000000000000000000000000000024",
        SMS_CONTACT,
        SMS_NUMBER,
        "with :80",
    );
    assert_eq!(
        post_signed(d, "http://sb.example.com:80/hooks/sms", &p)
            .await
            .status,
        200
    );
    // The other scheme is another URL.
    let p = sms_params(
        "SM00000000000000000000000000000025",
        SMS_CONTACT,
        SMS_NUMBER,
        "https",
    );
    assert_eq!(
        post_signed(d, "https://sb.example.com/hooks/sms", &p)
            .await
            .status,
        401
    );
    let conv = conversation(api, "sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}")).await;
    let texts: Vec<Value> = messages(api, &conv)
        .await
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, [json!("without :80"), json!("with :80")]);
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_repeated_message_sid_is_acknowledged_and_stored_once() {
    let fake = FakeTwilio::start().await;
    let h = start(PUBLIC, &twilio_service("sms", &fake, FROM_PARAM));
    let (d, api) = (&h.daemon, &h.api);
    let url = format!("{PUBLIC}/hooks/sms");
    let p = whatsapp_params("SM00000000000000000000000000000031", "Hello once", &[]);
    for attempt in 0..3 {
        let r = post_signed(d, &url, &p).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "<Response/>"),
            "attempt {attempt}"
        );
    }
    let conv = conversation(api, "sms", &format!("{WA_CONTACT}|{WA_NUMBER}")).await;
    let msgs = messages(api, &conv).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["external_id"], "SM00000000000000000000000000000031");
    assert_eq!(events_of(d, "message.created").await.len(), 1);
    assert_eq!(events_of(d, "conversation.created").await.len(), 1);
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_reply_goes_out_with_twilios_form_fields_and_status_callbacks_only_move_it_forward() {
    let fake = FakeTwilio::start().await;
    let h = start(PUBLIC, &twilio_service("sms", &fake, FROM_PARAM));
    let (d, api) = (&h.daemon, &h.api);
    let p = whatsapp_params(
        "SM00000000000000000000000000000041",
        "Where is my order?",
        &[],
    );
    assert_eq!(
        post_signed(d, &format!("{PUBLIC}/hooks/sms"), &p)
            .await
            .status,
        200
    );
    let conv = conversation(api, "sms", &format!("{WA_CONTACT}|{WA_NUMBER}")).await;

    let id = reply(
        api,
        &conv,
        json!({"text": "On its way, Mary", "author": {"type": "agent", "name": "Anna"},
               "attachments": [{"url": "https://files.example.com/track.png", "content_type": "image/png"},
                               {"url": "https://files.example.com/invoice.pdf"}]}),
    )
    .await;
    let sent = wait_status(api, &id, "sent").await;
    let calls = fake.requests();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.answered, 201);
    assert_eq!(sent["external_id"], call.sid.clone().unwrap());
    let callback = call.field("StatusCallback").unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{PUBLIC}/hooks/sms/status?idempotency_key=")),
        "{callback}"
    );
    // Exactly these fields: the reply goes from the WhatsApp address the contact wrote
    // to (not the configured SMS `from`), with one MediaUrl per attachment.
    assert_eq!(
        sorted(&call.form),
        sorted(&pairs(&[
            ("To", WA_CONTACT),
            ("From", WA_NUMBER),
            ("Body", "On its way, Mary"),
            ("MediaUrl", "https://files.example.com/track.png"),
            ("MediaUrl", "https://files.example.com/invoice.pdf"),
            ("StatusCallback", &callback),
        ]))
    );

    // Status callbacks, signed over the StatusCallback URL as Twilio does.
    let sid = call.sid.clone().unwrap();
    let status = |s: &str| status_params(&sid, s, None);
    let forged = status("failed");
    let r = post_hook(
        d,
        &path_of(&callback),
        &forged,
        Some(&twilio_signature("wrong", &callback, &forged)),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(status_of(api, &id).await["status"], "sent");

    for (twilio_says, expect) in [
        ("queued", "sent"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("delivered", "read"),
        ("undelivered", "read"),
        ("failed", "read"),
        ("read", "read"),
    ] {
        let r = post_signed(d, &callback, &status(twilio_says)).await;
        assert_eq!(r.status, 200, "{twilio_says}: {}", r.body);
        assert_eq!(
            status_of(api, &id).await["status"],
            expect,
            "after {twilio_says}"
        );
    }
    let changes: Vec<Value> = events_of(d, "message.status")
        .await
        .into_iter()
        .filter(|e| e["data"]["message"]["id"] == id.as_str())
        .map(|e| e["data"]["message"]["status"].clone())
        .collect();
    assert_eq!(changes, [json!("sent"), json!("delivered"), json!("read")]);
    assert_eq!(status_of(api, &id).await["error"], Value::Null);
    assert_eq!(fake.requests().len(), 1, "one reply, one send");

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_messaging_service_sends_without_from_and_undelivered_fails_with_the_error_code() {
    let fake = FakeTwilio::start().await;
    let h = start(
        PUBLIC,
        &twilio_service(
            "pool",
            &fake,
            &format!("messaging_service_sid = \"{MESSAGING_SERVICE}\""),
        ),
    );
    let (d, api) = (&h.daemon, &h.api);
    let p = sms_params(
        "SM00000000000000000000000000000051",
        SMS_CONTACT,
        SMS_NUMBER,
        "Hi",
    );
    assert_eq!(
        post_signed(d, &format!("{PUBLIC}/hooks/pool"), &p)
            .await
            .status,
        200
    );
    let conv = conversation(api, "pool", &format!("{SMS_CONTACT}|{SMS_NUMBER}")).await;

    let id = reply(api, &conv, json!({"text": "Hello from the pool"})).await;
    wait_status(api, &id, "sent").await;
    let call = fake.requests().remove(0);
    let callback = call.field("StatusCallback").unwrap().to_owned();
    assert!(callback.starts_with(&format!("{PUBLIC}/hooks/pool/status?idempotency_key=")));
    assert_eq!(
        sorted(&call.form),
        sorted(&pairs(&[
            ("To", SMS_CONTACT),
            ("MessagingServiceSid", MESSAGING_SERVICE),
            ("Body", "Hello from the pool"),
            ("StatusCallback", &callback),
        ]))
    );

    let sid = call.sid.clone().unwrap();
    let undelivered = status_params(&sid, "undelivered", Some("30003"));
    assert_eq!(post_signed(d, &callback, &undelivered).await.status, 200);
    let failed = status_of(api, &id).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("30003"),
        "{failed}"
    );
    // A late `delivered` does not revive it.
    let delivered = status_params(&sid, "delivered", None);
    assert_eq!(post_signed(d, &callback, &delivered).await.status, 200);
    assert_eq!(status_of(api, &id).await["status"], "failed");

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_rate_limited_send_waits_for_retry_after_and_is_sent_once() {
    let fake = FakeTwilio::start().await;
    let (h, conv) = sms_conversation(&fake, "SM00000000000000000000000000000061", "Hi").await;
    let api = &h.api;

    fake.script(Scripted::Error {
        status: 429,
        retry_after: Some("1"),
        code: 20429,
        message: "Too Many Requests",
    });
    let id = reply(api, &conv, json!({"text": "Patience"})).await;
    let sent = wait_status(api, &id, "sent").await;
    let calls = fake.requests();
    assert_eq!(
        calls.iter().map(|c| c.answered).collect::<Vec<_>>(),
        [429, 201]
    );
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
    assert_eq!(
        calls[0].form, calls[1].form,
        "the retry sends the same request"
    );
    assert_eq!(sent["external_id"], calls[1].sid.clone().unwrap());
    assert_eq!(
        calls[1].form,
        pairs(&[
            ("To", SMS_CONTACT),
            ("From", SMS_NUMBER),
            ("Body", "Patience"),
            ("StatusCallback", calls[1].field("StatusCallback").unwrap()),
        ])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 2, "nothing after success");

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_permanent_error_fails_the_message_with_twilios_code_and_message() {
    let fake = FakeTwilio::start().await;
    let (h, conv) = sms_conversation(&fake, "SM00000000000000000000000000000071", "Hi").await;
    let (d, api) = (&h.daemon, &h.api);

    fake.script(Scripted::Error {
        status: 400,
        retry_after: None,
        code: 21211,
        message: "Invalid 'To' Phone Number: +31612345678",
    });
    let id = reply(api, &conv, json!({"text": "Hello?"})).await;
    let failed = wait_status(api, &id, "failed").await;
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("21211") && error.contains("Invalid 'To' Phone Number"),
        "{error}"
    );
    assert!(!error.contains(AUTH_TOKEN));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 1, "a permanent error is not retried");
    assert!(
        !d.log_text().contains(AUTH_TOKEN),
        "the auth token leaked into the logs"
    );

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_not_repeated_once_a_status_callback_named_it() {
    let fake = FakeTwilio::start().await;
    let (h, conv) = sms_conversation(&fake, "SM00000000000000000000000000000081", "Hi").await;
    let (d, api) = (&h.daemon, &h.api);

    // Twilio creates the message and calls back, but its answer to us is a 503.
    fake.script(Scripted::CreatedButAnswerLost { daemon: d.addr });
    let id = reply(api, &conv, json!({"text": "Only once"})).await;
    let sent = wait_status(api, &id, "sent").await;
    let calls = fake.requests();
    assert_eq!(calls.len(), 1, "not sent twice: {calls:#?}");
    assert_eq!(calls[0].answered, 503);
    assert_eq!(sent["external_id"], calls[0].sid.clone().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 1);

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_wrong_auth_token_fails_the_service() {
    let fake = FakeTwilio::start().await;
    let service =
        twilio_service("sms", &fake, FROM_PARAM).replace(AUTH_TOKEN, "an-old-rotated-auth-token");
    let h = start(PUBLIC, &service);
    let (d, api) = (&h.daemon, &h.api);

    let state = api.wait_state("sms", "failed").await;
    let reason = state["reason"].as_str().unwrap();
    assert!(reason.contains("20003"), "{reason}");
    assert!(!reason.contains("an-old-rotated-auth-token"));

    // Inbound requests are signed with the token Twilio holds, not the stale one.
    let p = sms_params(
        "SM00000000000000000000000000000091",
        SMS_CONTACT,
        SMS_NUMBER,
        "Hi",
    );
    let r = post_signed(d, &format!("{PUBLIC}/hooks/sms"), &p).await;
    assert_eq!(r.status, 401);
    assert!(!d.log_text().contains("an-old-rotated-auth-token"));

    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn replies_wait_while_twilio_refuses_the_credentials_and_go_out_once_it_accepts_them() {
    let fake = FakeTwilio::start().await;
    let h = start(PUBLIC, &twilio_service("sms", &fake, FROM_PARAM));
    let (d, api) = (&h.daemon, &h.api);
    api.wait_state("sms", "connected").await;
    let p = sms_params(
        "SM000000000000000000000000000000a1",
        SMS_CONTACT,
        SMS_NUMBER,
        "Hi",
    );
    assert_eq!(
        post_signed(d, &format!("{PUBLIC}/hooks/sms"), &p)
            .await
            .status,
        200
    );
    let conv = conversation(api, "sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}")).await;

    // The token was rotated at Twilio: sends get 401 / 20003.
    fake.revoke_credentials(true);
    let id = reply(api, &conv, json!({"text": "Are you there?"})).await;
    let state = api.wait_state("sms", "failed").await;
    assert!(
        state["reason"].as_str().unwrap().contains("rejected"),
        "{state}"
    );
    eventually(T, "several refused attempts", || async {
        (fake.requests().iter().filter(|r| r.answered == 401).count() >= 3).then_some(())
    })
    .await;
    assert_eq!(
        status_of(api, &id).await["status"],
        "pending",
        "the reply waits, not failed"
    );

    // Credentials work again (say, the operator fixed them at Twilio's side).
    fake.revoke_credentials(false);
    let sent = wait_status(api, &id, "sent").await;
    let created: Vec<SendRequest> = fake
        .requests()
        .into_iter()
        .filter(|r| r.answered == 201)
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(sent["external_id"], created[0].sid.clone().unwrap());
    api.wait_state("sms", "connected").await;

    h.finish();
    fake.stop().await;
}

#[test]
fn invalid_params_are_named_by_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |params: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[services.sms]\ntype = \"twilio\"\n[services.sms.params]\n{params}\n"),
        )
        .unwrap();
        let (status, _, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()], &[]);
        (status.code(), err)
    };

    let (code, err) = check(&format!(
        "account_sid = \"AC123\"\nauth_token = \"{AUTH_TOKEN}\""
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("services.sms.params.account_sid: expected \"AC\" followed by 32 hex digits"),
        "{err}"
    );
    assert!(
        err.contains("services.sms.params.from: either from or messaging_service_sid is required"),
        "{err}"
    );
    assert!(!err.contains(AUTH_TOKEN), "a secret leaked: {err}");

    let (code, err) = check(&format!(
        "account_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nfrom = \"+14155550100\"\nmessaging_service_sid = \"{MESSAGING_SERVICE}\""
    ));
    assert_eq!(code, Some(2));
    assert!(err.contains("services.sms.params.messaging_service_sid: give either from or messaging_service_sid, not both"), "{err}");

    let (code, err) = check(&format!(
        "account_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nmessaging_service_sid = \"MG1\"\napi_base = \"not a url\""
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("services.sms.params.messaging_service_sid: expected \"MG\""),
        "{err}"
    );
    assert!(
        err.contains("services.sms.params.api_base: expected an http(s) URL"),
        "{err}"
    );

    // A valid service, with the token from a file (systemd LoadCredential=).
    let token_file = dir.path().join("twilio_token");
    std::fs::write(&token_file, format!("{AUTH_TOKEN}\n")).unwrap();
    let (code, err) = check(&format!(
        "account_sid = \"{ACCOUNT_SID}\"\nauth_token_file = \"{}\"\nfrom = \"+14155550100\"",
        token_file.display()
    ));
    assert_eq!(code, Some(0), "{err}");

    let (code, err) = check(&format!(
        "account_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\nfrom = \"+14155550100\"\ncolour = \"red\""
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("services.sms.params.colour: unknown key"),
        "{err}"
    );
}
