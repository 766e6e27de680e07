//! The form a Mailgun route posts: `application/x-www-form-urlencoded`, or
//! `multipart/form-data` (parsed with `multer`, the parser behind axum's `Multipart`)
//! when the mail carries files. Pure: the body is in memory, so the parser's future is
//! driven to completion here without a runtime.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use switchboard_core::HookError;

/// A file part of a multipart forward. Its bytes are not kept: switchboard stores media
/// by URL only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// The form field (`attachment-1`).
    pub field: String,
    /// The file name, when given.
    pub name: Option<String>,
}

/// The fields of a posted form, in order; the first of a repeated name answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// Text fields.
    pub fields: Vec<(String, String)>,
    /// File parts (multipart only).
    pub files: Vec<FilePart>,
}

impl Form {
    /// Parses `body` by its `Content-Type`. A body that is not the type it claims (bad
    /// percent-escapes, text that is not UTF-8, a broken multipart) is 400.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Form, HookError> {
        let ct = content_type.unwrap_or("").trim();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-www-form-urlencoded" => urlencoded(body),
            "multipart/form-data" => {
                let boundary = multer::parse_boundary(ct)
                    .map_err(|e| HookError::BadRequest(format!("Content-Type: {e}")))?;
                multipart(body, &boundary)
            }
            _ => Err(HookError::BadRequest(format!(
                "expected a form (application/x-www-form-urlencoded or multipart/form-data), got {:?}",
                ct.chars().take(100).collect::<String>()
            ))),
        }
    }

    /// The first field named exactly `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first field named `name` in any case: MIME header names (`Message-Id`,
    /// `Message-ID`) are case-insensitive.
    pub fn get_ci(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn urlencoded(body: &[u8]) -> Result<Form, HookError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        HookError::BadRequest(format!("the form is not UTF-8 at byte {}", e.valid_up_to()))
    })?;
    let mut fields = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        fields.push((decode(k)?, decode(v)?));
    }
    Ok(Form {
        fields,
        files: Vec::new(),
    })
}

/// Decodes one `application/x-www-form-urlencoded` component, strictly: a `%` must
/// start two hex digits, and the bytes must be UTF-8.
fn decode(s: &str) -> Result<String, HookError> {
    let bad = |what: &str| HookError::BadRequest(format!("the form has {what}"));
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|c| (c as char).to_digit(16));
                let lo = bytes.next().and_then(|c| (c as char).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(bad("a % that is not followed by two hex digits")),
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad("a field that is not UTF-8"))
}

fn multipart(body: &[u8], boundary: &str) -> Result<Form, HookError> {
    let bad =
        |e: multer::Error| HookError::BadRequest(format!("the multipart body is broken: {e}"));
    let chunk: Result<Bytes, std::convert::Infallible> = Ok(Bytes::copy_from_slice(body));
    let mut parts =
        multer::Multipart::new(futures_util::stream::once(async move { chunk }), boundary);
    let mut form = Form::default();
    loop {
        let Some(field) = ready(parts.next_field())?.map_err(bad)? else {
            break;
        };
        let name = field.name().unwrap_or("").to_owned();
        let file = field.file_name().map(str::to_owned);
        let data = ready(field.bytes())?.map_err(bad)?;
        match file {
            Some(f) => form.files.push(FilePart {
                field: name,
                name: Some(f).filter(|f| !f.trim().is_empty()),
            }),
            None => {
                let text = String::from_utf8(data.to_vec()).map_err(|_| {
                    HookError::BadRequest(format!("multipart field {name:?} is not UTF-8"))
                })?;
                form.fields.push((name, text));
            }
        }
    }
    Ok(form)
}

/// Runs a future over in-memory data to its end. The multipart parser only waits for
/// its stream, and a stream of one ready chunk never makes it wait; should it ever,
/// that is a broken body rather than a hang.
fn ready<F: Future>(fut: F) -> Result<F::Output, HookError> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
    }
    Err(HookError::BadRequest(
        "the multipart body could not be read".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_strictly() {
        let f = Form::parse(
            Some("application/x-www-form-urlencoded"),
            b"Message-Id=%3Ca%40b%3E&subject=Caf%C3%A9+time&empty&x=1&x=2",
        )
        .unwrap();
        assert_eq!(f.get_ci("message-id"), Some("<a@b>"));
        assert_eq!(f.get("subject"), Some("Café time"));
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.get("x"), Some("1"));
        for bad in [&b"a=%zz"[..], b"a=%e9", b"a=\xe9"] {
            assert!(matches!(
                Form::parse(Some("application/x-www-form-urlencoded"), bad),
                Err(HookError::BadRequest(_))
            ));
        }
        assert!(matches!(
            Form::parse(Some("application/json"), b"{}"),
            Err(HookError::BadRequest(_))
        ));
    }

    #[test]
    fn multipart_with_a_file() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nCaf\u{e9}\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"a.pdf\"\r\n\
                    Content-Type: application/pdf\r\n\r\n%PDF-1.4 \x00\x01\r\n--XyZ--\r\n";
        let f = Form::parse(Some("multipart/form-data; boundary=XyZ"), body.as_bytes()).unwrap();
        assert_eq!(f.get("subject"), Some("Café"));
        assert_eq!(
            f.files,
            [FilePart {
                field: "attachment-1".into(),
                name: Some("a.pdf".into())
            }]
        );
        assert!(matches!(
            Form::parse(
                Some("multipart/form-data; boundary=XyZ"),
                b"--XyZ\r\nbroken"
            ),
            Err(HookError::BadRequest(_))
        ));
        assert!(matches!(
            Form::parse(Some("multipart/form-data"), body.as_bytes()),
            Err(HookError::BadRequest(_))
        ));
    }
}
