//! Intercom bodies are HTML (`<p>Hi</p><p>How are you?</p>`, inline `<img>`); agents and
//! bots read plain text. This turns a body into readable text — tags stripped, entities
//! decoded, one line per paragraph or `<br>` — and collects inline image URLs so they
//! can be kept as attachments. Outbound text goes the other way through [`text_to_html`].

/// A body converted for a message: its text and the images it showed inline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Converted {
    /// Readable text; empty when the body had none.
    pub text: String,
    /// `src` of every `<img>`, in order.
    pub images: Vec<String>,
}

/// Tags whose start and end break the line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "hr",
];

/// Converts an HTML body to text and inline image URLs.
pub fn html_to_text(html: &str) -> Converted {
    let mut out = String::new();
    let mut images = Vec::new();
    // (start of the link text in `out`, href) of the open `<a>`, if any.
    let mut link: Option<(usize, String)> = None;
    let mut skip_until: Option<&'static str> = None;
    let mut pre = 0usize;
    let mut line = Line::default();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest, pre > 0, skip_until.is_some());
            break;
        };
        push_text(&mut out, &rest[..lt], pre > 0, skip_until.is_some());
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        let Some(end) = tag_end(rest) else {
            // A lone `<` that opens no tag is text ("a < b").
            push_text(&mut out, "<", pre > 0, skip_until.is_some());
            rest = &rest[1..];
            continue;
        };
        let tag = Tag::parse(&rest[1..end]);
        rest = &rest[end + 1..];
        let Some(tag) = tag else {
            push_text(&mut out, "<", pre > 0, skip_until.is_some());
            continue;
        };
        if let Some(until) = skip_until {
            if tag.closing && tag.name == until {
                skip_until = None;
            }
            continue;
        }
        match tag.name.as_str() {
            "script" | "style" | "head" | "title" if !tag.closing => {
                skip_until = Some(match tag.name.as_str() {
                    "script" => "script",
                    "style" => "style",
                    "head" => "head",
                    _ => "title",
                })
            }
            "br" => out.push('\n'),
            "li" if tag.closing => {}
            "img" if !tag.closing => {
                if let Some(src) = tag.attr("src").filter(|s| !s.is_empty()) {
                    images.push(src);
                }
            }
            "a" if !tag.closing => link = tag.attr("href").map(|h| (out.len(), h)),
            "a" => {
                if let Some((start, href)) = link.take() {
                    let shown = out[start..].trim();
                    let target = href.strip_prefix("mailto:").unwrap_or(&href);
                    if (href.starts_with("http") || href.starts_with("mailto:"))
                        && shown != target
                        && !shown.is_empty()
                    {
                        out.push_str(&format!(" ({target})"));
                    }
                }
            }
            "li" => {
                soft_break(&mut out, &mut line);
                out.push_str("- ");
            }
            name if BLOCKS.contains(&name) => {
                if name == "pre" {
                    pre = if tag.closing {
                        pre.saturating_sub(1)
                    } else {
                        pre + 1
                    };
                }
                soft_break(&mut out, &mut line);
            }
            _ => {}
        }
    }
    Converted {
        text: tidy(&out),
        images,
    }
}

/// Turns an agent's plain text into an Intercom body that shows exactly that text:
/// `&`, `<`, `>` escaped, line breaks as `<br>`.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Ends the current line unless it is already ended: adjacent blocks (`</p><p>`) make
/// one line break, while each `<br>` makes its own.
fn soft_break(out: &mut String, line: &mut Line) {
    if line.has_text(out) {
        out.push('\n');
    }
}

/// Whether the line being written shows any text, learnt from what was written since
/// the last look: reading the whole line again at every block tag made a long line of
/// `&nbsp;` between tags quadratic (a 1 MB body took minutes).
#[derive(Default)]
struct Line {
    /// How much of the output was looked at.
    seen: usize,
    /// Whether the current line had text by then.
    text: bool,
}

impl Line {
    fn has_text(&mut self, out: &str) -> bool {
        let new = &out[self.seen..];
        let tail = match new.rfind('\n') {
            Some(i) => {
                self.text = false;
                &new[i + 1..]
            }
            None => new,
        };
        self.text |= tail.chars().any(|c| !c.is_whitespace());
        self.seen = out.len();
        self.text
    }
}

/// Appends text between tags: entities decoded, whitespace runs collapsed (HTML source
/// line breaks are not line breaks) except inside `<pre>`.
fn push_text(out: &mut String, raw: &str, pre: bool, skipped: bool) {
    if skipped || raw.is_empty() {
        return;
    }
    let decoded = decode_entities(raw);
    if pre {
        out.push_str(&decoded);
        return;
    }
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else if c == '\u{a0}' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

/// Trims every line, drops leading and trailing blank lines and keeps at most one blank
/// line in a row.
fn tidy(s: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in s.split('\n') {
        let line = line.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// The index of the `>` closing a tag that starts at `s[0] == '<'`, skipping quoted
/// attribute values; `None` when `<` does not start a tag.
fn tag_end(s: &str) -> Option<usize> {
    let next = s[1..].chars().next()?;
    if !(next.is_ascii_alphabetic() || next == '/' || next == '!' || next == '?') {
        return None;
    }
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// A parsed tag: lower-case name, whether it closes, and its raw attribute text.
struct Tag<'a> {
    name: String,
    closing: bool,
    attrs: &'a str,
}

impl<'a> Tag<'a> {
    fn parse(inner: &'a str) -> Option<Tag<'a>> {
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        if inner.starts_with(['!', '?']) {
            // Doctype or processing instruction: nothing to show.
            return Some(Tag {
                name: String::new(),
                closing,
                attrs: "",
            });
        }
        let name_end = inner
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        Some(Tag {
            name,
            closing,
            attrs: &inner[name_end..],
        })
    }

    /// An attribute's value, entities decoded.
    fn attr(&self, wanted: &str) -> Option<String> {
        let mut s = self.attrs;
        loop {
            s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if s.is_empty() {
                return None;
            }
            let key_end = s
                .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
                .unwrap_or(s.len());
            let key = &s[..key_end];
            s = s[key_end..].trim_start();
            let value = if let Some(after) = s.strip_prefix('=') {
                let after = after.trim_start();
                let (value, rest) = match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let body = &after[1..];
                        let close = body.find(q).unwrap_or(body.len());
                        (&body[..close], body.get(close + 1..).unwrap_or(""))
                    }
                    _ => {
                        let end = after.find(char::is_whitespace).unwrap_or(after.len());
                        (&after[..end], &after[end..])
                    }
                };
                s = rest;
                value
            } else {
                ""
            };
            if key.eq_ignore_ascii_case(wanted) {
                return Some(decode_entities(value.trim()));
            }
        }
    }
}

/// Decodes `&name;`, `&#NN;` and `&#xHH;`; unknown entities stay as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Entity names are short: looking further for the `;` made a body of many `&`
        // quadratic.
        let semi = rest.as_bytes()[1..]
            .iter()
            .take(33)
            .position(|&b| b == b';')
            .map(|i| i + 1);
        let decoded = semi.and_then(|i| entity(&rest[1..i]).map(|c| (c, i)));
        match decoded {
            Some((c, i)) => {
                out.push(c);
                rest = &rest[i + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "deg" => '°',
        "times" => '×',
        "divide" => '÷',
        "eacute" => 'é',
        "egrave" => 'è',
        "euml" => 'ë',
        "aacute" => 'á',
        "agrave" => 'à',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "ccedil" => 'ç',
        "szlig" => 'ß',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        html_to_text(html).text
    }

    #[test]
    fn paragraphs_and_breaks_become_lines() {
        assert_eq!(
            text("<p>this is the message body</p>"),
            "this is the message body"
        );
        assert_eq!(text("<p>Hi</p><p>How are you?</p>"), "Hi\nHow are you?");
        assert_eq!(text("<p>one<br>two<br/>three</p>"), "one\ntwo\nthree");
        assert_eq!(text("<p>a</p><p></p><p><br></p><p></p><p>b</p>"), "a\n\nb");
        assert_eq!(text("<p>  spaced \n  out  </p>"), "spaced out");
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            text("<p>Tom &amp; Jerry &lt;3 &quot;caf&eacute;&quot; &#8364;5 &#x1F600;&nbsp;x</p>"),
            "Tom & Jerry <3 \"café\" €5 😀 x"
        );
        assert_eq!(text("AT&T &unknown; &"), "AT&T &unknown; &");
        assert_eq!(text("a < b > c"), "a < b > c");
    }

    #[test]
    fn lists_links_images_and_scripts() {
        let c = html_to_text(
            "<html><head><title>x</title><style>p{}</style></head><body><h2>List</h2>\
             <ul><li>Coffee</li><li>Tea</li></ul>\
             <p>See <a href=\"https://example.com/doc?a=1&amp;b=2\">the doc</a> or \
             <a href='https://example.com'>https://example.com</a></p>\
             <div class=\"intercom-container\"><img src=\"https://downloads.intercomcdn.com/i/o/1/a.png\" alt=\"\"></div>\
             <script>alert(1)</script><!-- hidden --></body></html>",
        );
        assert_eq!(
            c.text,
            "List\n- Coffee\n- Tea\nSee the doc (https://example.com/doc?a=1&b=2) or https://example.com"
        );
        assert_eq!(c.images, ["https://downloads.intercomcdn.com/i/o/1/a.png"]);
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(text("Thanks again :)"), "Thanks again :)");
        assert_eq!(text(""), "");
        assert_eq!(text("<p><i>deleted</i></p>"), "deleted");
    }

    /// Found while fuzzing `intercom_html`: both took seconds to minutes on a 1 MB
    /// body (the largest a hook accepts by default), blocking a runtime worker.
    #[test]
    fn long_bodies_convert_in_linear_time() {
        let started = std::time::Instant::now();
        let nbsp = "<p>&nbsp;".repeat(110_000);
        assert_eq!(text(&nbsp), "");
        let amps = "&".repeat(1_000_000);
        assert_eq!(text(&amps).len(), 1_000_000);
        let mixed = format!(
            "{}&amp;{}",
            "&".repeat(500_000),
            "<p>x&nbsp;</p>".repeat(50_000)
        );
        assert!(text(&mixed).starts_with("&&&"));
        // Quadratic, these took minutes; linear, well under a second even in debug.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn blank_lines_between_blocks_stay_collapsed() {
        assert_eq!(
            text("<p>a</p><p>&nbsp;</p><p>&nbsp; </p><div>b</div>"),
            "a\nb"
        );
        assert_eq!(text("<pre>\u{2003}</pre><p>c</p>"), "\u{2003}c");
        assert_eq!(text("<li>one<li>two"), "- one\n- two");
    }

    #[test]
    fn outbound_text_round_trips() {
        let t = "Hi <Mary> & co\nsecond line";
        let h = text_to_html(t);
        assert_eq!(h, "Hi &lt;Mary&gt; &amp; co<br>second line");
        assert_eq!(text(&h), t);
    }
}
