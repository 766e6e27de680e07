#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/ (not committed):
# the provider fixtures as published, plus bodies built from the documented shapes where
# no fixture exists (Twilio forms, API bodies, configs). `cargo fuzz cmin` then folds
# them into fuzz/corpus/<target>/ (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
vendor="${VENDOR_FIXTURES:-../shared/vendor/fixtures}"
[ -d "$vendor" ] || vendor=/work/shared/vendor/fixtures
out=fuzz/seeds
rm -rf "$out"
for t in twilio_form smooch_webhook intercom_notification intercom_html gbm_webhook \
         api_inbound api_reply config_load dashly_parts nimchat_webhook messenger_webhook mailgun_webhook \
         haptik_webhook askhandle_webhook; do
  mkdir -p "$out/$t"
done
put() { printf '%s' "$2" >"$out/$1/$3"; }

# Twilio: forms as Twilio posts them (parameter lists from Twilio's webhook docs).
put twilio_form 'ToCountry=US&ToState=CA&SmsMessageSid=SM11&NumMedia=0&ToCity=SAN+FRANCISCO&FromZip=&SmsSid=SM11&FromState=&SmsStatus=received&FromCity=&Body=Hello+there%21+caf%C3%A9&FromCountry=NL&To=%2B14155550100&ToZip=94105&NumSegments=1&MessageSid=SM11&AccountSid=AC00000000000000000000000000000000&From=%2B31612345678&ApiVersion=2010-04-01' sms
put twilio_form 'SmsMessageSid=MM22&NumMedia=2&ProfileName=Mary&MessageType=image&SmsSid=MM22&WaId=31687654321&SmsStatus=received&Body=&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=MM22&AccountSid=AC00000000000000000000000000000000&From=whatsapp%3A%2B31687654321&ApiVersion=2010-04-01&MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC0%2FMessages%2FMM22%2FMedia%2FME0&MediaContentType1=application%2Fpdf&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fm%2F1' whatsapp_media
put twilio_form 'MessageSid=SM33&From=whatsapp%3A%2B1555&To=whatsapp%3A%2B1666&ButtonText=Yes+please&ButtonPayload=yes&MessageType=button' whatsapp_button
put twilio_form 'MessageSid=SM44&From=whatsapp%3A%2B1555&To=whatsapp%3A%2B1666&Latitude=52.37&Longitude=4.89&Label=Dam&Address=Amsterdam&MessageType=location' whatsapp_location
put twilio_form 'SmsSid=SM55&SmsStatus=undelivered&MessageStatus=undelivered&To=whatsapp%3A%2B31687654321&MessageSid=SM55&AccountSid=AC0&From=whatsapp%3A%2B14155238886&ApiVersion=2010-04-01&ErrorCode=30003&ErrorMessage=Unreachable' status_failed
put twilio_form 'MessageSid=SM66&MessageStatus=delivered&ChannelToAddress=%2B1555' status_delivered

# Smooch / Sunshine: the fixtures as published.
cp connectors/smooch/fixtures/*.json "$out/smooch_webhook/"
cp "$vendor"/sunshine/*.json "$out/smooch_webhook/"

# Intercom: the envelope, the conversation object (bare, as catch-up reads it, and in a
# conversation.user.replied envelope, as a notification carries it).
cp connectors/intercom/fixtures/*.json "$out/intercom_notification/"
cp "$vendor"/intercom/*.json "$out/intercom_notification/"
conv="$vendor/intercom/spec_2.14_conversation_object_user_reply_example.json"
{ printf '{"type":"notification_event","app_id":"abc123","id":"notif_1","topic":"conversation.user.replied","created_at":1700000000,"data":{"type":"notification_event_data","item":'
  cat "$conv"; printf '}}'; } >"$out/intercom_notification/envelope_user_replied.json"

# nimchat (Chatwoot): message_created as a message's webhook_data with `event`, in each
# message type; a private note; an echo of ours; a resolution.
reply='{"event":"message_created","id":1001,"content":"Hi, Anna here","created_at":"2026-12-02T14:00:00.000Z","message_type":"outgoing","content_type":"text","content_attributes":{},"private":false,"source_id":null,"sender":{"id":3,"name":"Anna","email":"anna@desk.example","type":"user"},"conversation":{"id":42,"inbox_id":5,"status":"open","contact_inbox":{"source_id":"src-1"},"messages":[]},"account":{"id":1,"name":"Acme"},"inbox":{"id":5,"name":"switchboard"},"attachments":[{"id":1,"file_type":"image","data_url":"https://desk.example/a.png"}]}'
put nimchat_webhook "$reply" reply
put nimchat_webhook "${reply/\"private\":false/\"private\":true}" private_note
put nimchat_webhook "${reply/\"message_type\":\"outgoing\"/\"message_type\":0}" incoming_numeric
put nimchat_webhook "${reply/\"content_attributes\":\{\}/\"content_attributes\":\{\"switchboard_id\":\"mir_7\"\}}" echo
put nimchat_webhook '{"event":"conversation_status_changed","id":42,"status":"resolved","inbox_id":5,"messages":[],"meta":{},"changed_attributes":[{"status":{"previous_value":"open","current_value":"resolved"}}]}' resolved

# Intercom HTML bodies: the fixtures' bodies and the shapes the converter's tests use.
put intercom_html '<p>this is the message body</p>' p
put intercom_html '<p>Hi</p><p>How are you?</p><p>one<br>two<br/>three</p>' paragraphs
put intercom_html '<p>Tom &amp; Jerry &lt;3 &quot;caf&eacute;&quot; &#8364;5 &#x1F600;&nbsp;x</p> AT&T &unknown; a < b > c' entities
put intercom_html '<html><head><title>x</title><style>p{}</style></head><body><h2>List</h2><ul><li>Coffee</li><li>Tea</li></ul><p>See <a href="https://example.com/doc?a=1&amp;b=2">the doc</a> or <a href='"'"'https://example.com'"'"'>https://example.com</a></p><div class="intercom-container"><img src="https://downloads.intercomcdn.com/i/o/1/a.png" alt=""></div><script>alert(1)</script><!-- hidden --></body></html>' page
put intercom_html '<pre>  keep
  this </pre><p>Thanks again :)</p>' pre

# Google Business Messages: the fixtures, the setup request, a typing signal, receipts.
cp connectors/gbm/fixtures/*.json "$out/gbm_webhook/"
put gbm_webhook '{"clientToken":"ct","secret":"s3"}' handshake
put gbm_webhook '{"agent":"brands/b/agents/a","conversationId":"c1","requestId":"r","userStatus":{"isTyping":true,"createTime":"2021-05-04T10:00:00Z"},"sendTime":"x"}' typing
put gbm_webhook '{"agent":"brands/b/agents/a","conversationId":"c1","sendTime":"x","receipts":{"receipts":[{"message":"conversations/c1/messages/m-1","receiptType":"DELIVERED"},{"message":"conversations/c1/messages/m-2","receiptType":"READ"}],"createTime":"x"}}' receipts
put gbm_webhook '{"conversationId":"c1","userStatus":{"requestedLiveAgent":true}}' live_agent
put gbm_webhook '{"conversationId":"c1","surveyResponse":{"survey":"s"}}' survey

# Dashly: Web API answers in the meta envelope (the seed's shapes): pages of parts and of
# conversations, with integer, float and null cursors, and an error answer.
put dashly_parts '{"meta":{"status":200,"next_after":1002},"data":[{"id":"1001","conversation":"c1","created":1700000000,"direction":"u2a","type":"reply_user","body":"Hello","from":{"type":"user","id":"u1","name":"Mary"},"attachments":[{"url":"https://files.dashly.app/a.png","filename":"a.png","mime_type":"image/png","size":10}]},{"id":"1002","conversation":"c1","created":1700000001,"direction":"a2u","type":"reply_admin","body":"Hi","from":{"type":"admin","id":"77","name":"Anna"},"attachments":[]}]}' parts
put dashly_parts '{"meta":{"status":200,"next_after":1700000000.125},"data":[{"id":"c1","user":{"id":"u1","name":"Mary","email":"mary@example.com"},"last_update":1700000000.125,"closed":false,"part_last":null}]}' conversations
put dashly_parts '{"meta":{"status":200,"next_after":null},"data":[]}' empty
put dashly_parts '{"meta":{"status":400,"error":"ValidationError","error_message":"count: from 1 to 50"},"data":{}}' error
# Messenger: the documented examples (placeholders filled) inside a page body, and a
# batch of every event kind the parser reads.
fill() { sed -e 's/<PSID>/1254459154682919/g' -e 's/<PAGE_ID>/682498302938465/g' \
  -e 's/<image|video|audio|file|reel|ig_reel>/image/' -e 's#<ATTACHMENT_URL>#https://scontent.xx.fbcdn.net/v/p.jpg#' "$1"; }
{ printf '{"object":"page","entry":[{"id":"682498302938465","time":1458692752478,"messaging":['
  fill connectors/messenger/fixtures/docs_messages_event_text.json; printf ']}]}'; } >"$out/messenger_webhook/text.json"
{ printf '{"object":"page","entry":['; fill connectors/messenger/fixtures/docs_messages_entry_attachment.json; printf ']}'; } \
  >"$out/messenger_webhook/attachment.json"
put messenger_webhook '{"object":"page","entry":[{"id":"682498302938465","time":1,"messaging":[{"sender":{"id":"1254"},"recipient":{"id":"682498302938465"},"timestamp":5,"message":{"mid":"m1","text":"hi","is_echo":true}},{"sender":{"id":"1254"},"recipient":{"id":"682498302938465"},"timestamp":6,"postback":{"title":"Talk to a person","payload":"HUMAN"}},{"sender":{"id":"1254"},"recipient":{"id":"682498302938465"},"delivery":{"mids":["m_1"],"watermark":1700000001000}},{"sender":{"id":"1254"},"recipient":{"id":"682498302938465"},"read":{"watermark":1700000002000}},{"sender":{"id":"1254"},"recipient":{"id":"682498302938465"},"message":{"mid":"m2","attachments":[{"type":"location","payload":{"coordinates":{"lat":1,"long":2}}}]}}]},{"id":"999","messaging":[]}]}' batch
put messenger_webhook 'hub.mode=subscribe&hub.verify_token=abc&hub.challenge=1158201444' verification

# Mailgun: the documented forward as a form (first byte even: urlencoded) and as
# multipart (odd; boundary b0undary), a reply mail with threading headers, and event
# webhooks. The forms come from the fixture's field map.
python3 - "$out/mailgun_webhook" connectors/mailgun/fixtures/docs_route_forward_sample.json <<'PY'
import json, sys, urllib.parse
out, fixture = sys.argv[1], sys.argv[2]
f = json.load(open(fixture))
def put(name, data): open(f"{out}/{name}", "wb").write(data)
put("forward_form", b"0" + urllib.parse.urlencode(f).encode())
reply = dict(f, **{"In-Reply-To": "<sb.1@mg.example.com>", "References": "<root@x> <sb.1@mg.example.com>",
                   "attachments": json.dumps([{"url": "https://storage.mailgun.net/a/0", "content-type": "image/png", "name": "a.png", "size": 1}])})
put("reply_form", b"0" + urllib.parse.urlencode(reply).encode())
parts = b"".join(b'--b0undary\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode()) for k, v in f.items())
parts += b'--b0undary\r\nContent-Disposition: form-data; name="attachment-1"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--b0undary--\r\n'
put("forward_multipart", b"1" + parts)
for kind, extra in [("delivered", {}), ("opened", {}), ("failed", {"severity": "permanent", "reason": "bounce", "delivery-status": {"code": 550, "message": "5.1.1 no such user"}})]:
    ev = {"signature": {"timestamp": "1700000000", "token": "t", "signature": "0" * 64},
          "event-data": dict({"event": kind, "message": {"headers": {"message-id": "sb.1@mg.example.com"}}}, **extra)}
    put(f"event_{kind}", b"0" + json.dumps(ev).encode())
PY

# Haptik: the documented webhook payload's shape (a bot's answer; an agent's with the
# HSL body as a string; chat_pinned with a conversation number; chat_complete; an event
# we ignore) and a v2.0 chat history answer.
answer='{"version":"1.0","timestamp":"2026-12-02T14:00:00.000Z","user":{"auth_id":"7","user_name":"ab112468917fgghdebc","device_platform":"api"},"business_id":343,"business_name":"Acme","event_name":"message","agent":{"id":4415,"name":"gogo","profile_image":"https://assets.example/p.png","is_automated":true,"email":null},"message":{"id":5001,"body":{"text":"Bot answer 1","type":"TEXT","data":{"quick_replies":[]}}}}'
put haptik_webhook "$answer" bot_answer
put haptik_webhook '{"event_name":"message","user":{"auth_id":"7"},"agent":{"name":"Anna","is_automated":false},"message":{"id":"5002","body":"{\"text\":\"Anna here\",\"type\":\"TEXT\"}"}}' agent_answer
put haptik_webhook '{"event_name":"chat_pinned","user":{"auth_id":"7","user_name":"ab112468917fgghdebc"},"conversation_no":12}' pinned
put haptik_webhook '{"event_name":"chat_complete","user":{"auth_id":"7"}}' complete
put haptik_webhook '{"event_name":"user_feedback","user":{"auth_id":"7"}}' ignored
put haptik_webhook '{"chat_json":[{"text":"hi","sender":"user","message_id":1,"timestamp":"06/22/20 07:24:25 AM UTC"},{"text":"Hello!","sender":"bot","message_id":"2","timestamp":"06/22/20 07:24:26 AM UTC"},{"text":"Anna here","sender":"agent(Anna)","message_id":3,"timestamp":"06/22/20 07:25:00 PM UTC"}]}' history

# AskHandle: `{data, webhook}` deliveries (the seed's example payload): an answer with
# its room as an object and as a uuid, our own message echoed, a room out of bot use.
hook='"webhook":{"uuid":"273dcd5c-64e6-4560-a777-0b52caac9615","event":"message.added","target":"http://127.0.0.1/"}'
put askhandle_webhook '{"data":{"uuid":"d8a2e337-9d4d-4515-979a-6f5903798401","body":"Bot answer 1","email":"bot@askhandle.example","nickname":"Handle bot","is_support_sender":true,"sent_at":"2026-12-02T13:06:12.373601+00:00","room":{"uuid":"de1e39a5-a391-4d7f-836d-cf3589529af8"}},'"$hook"'}' answer
put askhandle_webhook '{"data":{"uuid":"d8a2e337-9d4d-4515-979a-6f5903798402","body":"Bot answer 2","is_support_sender":true,"room":"de1e39a5-a391-4d7f-836d-cf3589529af8"},'"$hook"'}' answer_room_uuid
put askhandle_webhook '{"data":{"uuid":"d8a2e337-9d4d-4515-979a-6f5903798403","body":"hi","is_support_sender":false},'"$hook"'}' echo
put askhandle_webhook '{"data":{"uuid":"de1e39a5-a391-4d7f-836d-cf3589529af8","label":"switchboard-1","is_bot_use":false,"messages":[]},"webhook":{"event":"chat.added","target":"http://127.0.0.1/"}}' room_handed_off

# The API's inbound message and reply bodies (docs/contract.md).
put api_inbound '{"external_id":"crm-1","contact":{"external_id":"cust-9","name":"Mary","email":"mary@example.com","phone":"+31612345678"},"conversation_external_id":"case-4","text":"Hello","attachments":[{"url":"https://files.example.com/a.pdf","content_type":"application/pdf","name":"a.pdf"}]}' full
put api_inbound '{"external_id":"m2","contact":{"external_id":"c"},"text":"hi"}' minimal
put api_reply '{"text":"Hi Mary","author":{"type":"agent","name":"Ann"},"idempotency_key":"reply-1"}' text
put api_reply '{"attachments":[{"url":"https://files.example.com/a.png","content_type":"image/png"}],"author":{"type":"bot"}}' attachment

# The config: the example (commented blocks uncommented too), the packaged config, and
# one service of each type with an environment override after a NUL byte.
cp config.example.toml "$out/config_load/example.toml"
cp packaging/switchboard.toml "$out/config_load/packaged.toml"
sed -E 's/^# (\[|[a-z_A-Z]+ = )/\1/' config.example.toml >"$out/config_load/example_uncommented.toml"
{ printf '[server]\nlisten = "127.0.0.1:8080"\nmax_body = 4096\n[services.remote]\ntype = "api"\n[services.remote.params.tokens.bot]\ntoken_file = "token"\nscopes = ["ingest"]\n'
  printf '\0SERVER__LISTEN=127.0.0.1:9\nSERVICES__REMOTE__PARAMS__CALLBACK_TIMEOUT=5s\n'; } >"$out/config_load/env_override"
echo "seeds written to $out"
